"""nbgrader preprocessors the course adds to autograde and feedback."""
from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor

_WARNING = re.compile(r"\b\w*Warning\b|^\s*warnings\.warn", re.MULTILINE)
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
HIDDEN_NOTE = "# (hidden tests ran here)"


class SoftenWarnings(NbGraderPreprocessor):
    """Move warning text from stderr to stdout.

    nbgrader gives 0 points to any cell with stderr output, so a harmless torch or
    librosa warning would zero a correct answer. Only streams that look like Python
    warnings are moved; other stderr output still counts as a failure.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                if out.output_type == "stream" and out.name == "stderr" and _WARNING.search(out.text):
                    out.name = "stdout"
        return cell, resources


def strip_hidden(source: str) -> tuple[str, bool]:
    """Remove every hidden-test region (markers included) from a cell's source."""
    lines, out, hidden, found = source.splitlines(), [], False, False
    for line in lines:
        if BEGIN_HIDDEN in line:
            hidden = found = True
            out.append(line[: line.index(BEGIN_HIDDEN)] + HIDDEN_NOTE)
            continue
        if END_HIDDEN in line:
            hidden = False
            continue
        if not hidden:
            out.append(line)
    return "\n".join(out), found


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: drop hidden test source and the traceback context that quotes it.

    An error in a cell that holds hidden tests keeps only its final line
    (``NameError: name 'GRUCell' is not defined``); the frames, which print the
    hidden lines, are removed.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        cell.source, had_hidden = strip_hidden(cell.source)
        if had_hidden:
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    out.traceback = [f"{out.ename}: {out.evalue}",
                                     "(traceback hidden: it quotes hidden test code)"]
        return cell, resources
