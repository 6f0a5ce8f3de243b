"""nbgrader preprocessors the course adds to autograde and feedback."""
from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import List

_WARNING = re.compile(r"\b\w*Warning\b|^\s*warnings\.warn", re.MULTILINE)
# One reader of hidden regions for the whole package (re-exported for older callers).
from .cells import BEGIN_HIDDEN, END_HIDDEN, HIDDEN_NOTE, split_hidden  # noqa: E402,F401

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
    visible, secret = split_hidden(source)
    return visible, bool(secret)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ARROW = re.compile(r"^\s*-+>")  # IPython's marker of the line that raised
HIDDEN_TRACEBACK = "(traceback hidden: it quotes hidden test code)"


def redact_traceback(traceback: list[str], secret: list[str]) -> list[str] | None:
    """The traceback without the context lines that quote hidden code, or None when what
    is left would still give something away or no longer says where the error was: the
    error was raised by a hidden line, or a frame comes from the autograder package."""
    kept, arrow = [], False
    for entry in traceback:
        lines = []
        for line in entry.split("\n"):
            plain = _ANSI.sub("", line)
            if any(s in plain for s in secret):
                continue
            arrow = arrow or bool(_ARROW.match(plain))
            lines.append(line)
        kept.append("\n".join(lines))
    text = _ANSI.sub("", "\n".join(kept))
    if "autograder" in text or (not arrow and len(traceback) > 1):
        return None
    return kept


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: drop hidden test source and the traceback context that quotes it.

    In a cell that holds hidden tests, a failed visible assert keeps its traceback minus
    the context lines from the hidden region, so the student sees which assert failed. An
    error raised by the hidden part, or with a frame inside autograder/, keeps only its
    final line (``NameError: name 'GRUCell' is not defined``).
    """

    # nbconvert's HTMLExporter configures NbConvertBase.display_data_priority, which
    # nbgrader's base class re-declares without config=True: traitlets then warns "not
    # recognized by HideHiddenTests" for every notebook. Configurable here, as in GetGrades.
    display_data_priority = List(NbGraderPreprocessor.display_data_priority.default_value, config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        cell.source, secret = split_hidden(cell.source)
        if secret:
            for out in cell.get("outputs", []):
                if out.output_type != "error":
                    continue
                shown = redact_traceback(list(out.get("traceback", [])), secret)
                out.traceback = shown if shown is not None else [f"{out.ename}: {out.evalue}", HIDDEN_TRACEBACK]
        return cell, resources
