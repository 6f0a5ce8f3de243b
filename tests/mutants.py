"""Mutant submissions: small patches against a solution cell, one typical mistake each.

A file ``tests/mutants/<set>/<name>.py`` (``<set>`` is an assignment's ``mutants`` entry in
coursectl/assignments.py) is a header, then one or more hunks::

    # cell: lstm_cell
    # loses: test_lstm_cell
    # Gate blocks read as input, forget, output, cell.   (free text: the mistake, one line or more)
    @@ forward: the gate blocks
             h, c = hx
    -        i, f, g, o = (self.x2h(input) + self.h2h(h)).chunk(4, dim=1)
    +        i, f, o, g = (self.x2h(input) + self.h2h(h)).chunk(4, dim=1)

Header: every line before the first ``@@`` is a comment. ``# cell:`` names the solution
cell by its nbgrader grade id; ``# loses:`` the grade cells that must lose points (comma
separated); any other comment lines say what the mistake is. (Above, the file's lines are
shown indented by four spaces; in the file each starts in the first column.)

Hunks: a line starting with ``@@`` opens one (the rest of that line is a free note). Inside,
each line's first character says what it is: a space for a context line (kept), ``-`` for a
solution line the mutant removes, ``+`` for a line it adds; an empty line is an empty
context line. The hunk's old side (its context and ``-`` lines, in order) must be found
exactly once, as consecutive whole lines, in the solution cell after the previous hunk; it is
replaced by the new side (context and ``+`` lines). There are no line numbers, so edits
elsewhere in the cell do not disturb a patch, and a hunk whose lines changed fails loudly
(``PatchError`` naming the mutant, the cell and the hunk) instead of applying somewhere else.

The solution cell is the cell's source in ``source/<assignment>/<assignment>.ipynb`` with its
``### BEGIN SOLUTION`` / ``### END SOLUTION`` marker lines removed (a student's cell has none),
so hunks are written against that text. ``Mutant.source`` is what a submission's cell holds:
the header comment lines, then the patched cell.
"""
from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MUTANTS = Path(__file__).resolve().parent / "mutants"
REPO = MUTANTS.parents[1]
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


class PatchError(ValueError):
    """A mutant's patch is malformed or no longer applies to its solution cell."""


@dataclass(frozen=True)
class Hunk:
    note: str
    old: tuple[str, ...]        # context and removed lines, in order
    new: tuple[str, ...]        # context and added lines, in order
    line: int                   # the ``@@`` line's number in the patch file


@dataclass(frozen=True)
class Mutant:
    name: str
    cell: str
    loses: frozenset[str]
    source: str                 # the submission cell: header comments + patched solution cell
    mutant_set: str = ""
    path: Path | None = field(default=None, compare=False)   # the patch file

    def source_file(self) -> str:
        """A real file holding ``source`` (for ``compile``: inspect.getsource, which the
        guards use, reads classes' source from their file)."""
        folder = Path(tempfile.gettempdir()) / f"course-mutants-{os.getuid()}" / self.mutant_set
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{self.name}.py"
        if not target.exists() or target.read_text() != self.source:
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")  # atomic: xdist workers share it
            with os.fdopen(fd, "w") as f:
                f.write(self.source)
            os.replace(tmp, target)
        return str(target)


def notebook_of(mutant_set: str) -> Path:
    from coursectl.assignments import ASSIGNMENTS

    for spec in ASSIGNMENTS.values():
        if spec.mutants == mutant_set:
            return REPO / "source" / spec.name / f"{spec.name}.ipynb"
    raise KeyError(f"no assignment in coursectl/assignments.py has mutants={mutant_set!r}")


@functools.lru_cache(maxsize=None)
def solution_cells(mutant_set: str) -> dict[str, str]:
    """grade id -> the solution cell's source without its solution marker lines."""
    import nbformat

    nb = nbformat.read(notebook_of(mutant_set), as_version=4)
    out = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            out[gid] = "".join(line for line in cell.source.splitlines(keepends=True)
                               if line.strip() not in SOLUTION_MARKERS)
    return out


def parse(text: str, where: str) -> tuple[list[str], list[Hunk]]:
    """The header lines and hunks of a patch file's text."""
    lines = text.splitlines()
    header, hunks, current = [], [], None
    for number, line in enumerate(lines, 1):
        if line.startswith("@@"):
            current = Hunk(line[2:].strip(), (), (), number)
            hunks.append(current)
        elif current is None:
            if line.strip() and not line.startswith("#"):
                raise PatchError(f"{where}:{number}: header lines are comments; hunks start with '@@'")
            header.append(line)
        else:
            kind, body = (line[:1], line[1:]) if line else (" ", "")
            if kind not in " -+":
                raise PatchError(f"{where}:{number}: a hunk line starts with ' ', '-' or '+', not {kind!r}")
            old = current.old + ((body,) if kind in " -" else ())
            new = current.new + ((body,) if kind in " +" else ())
            current = hunks[-1] = Hunk(current.note, old, new, current.line)
    return header, hunks


def apply(base: str, hunks: list[Hunk], where: str) -> str:
    """``base`` with every hunk applied in order; PatchError where one does not apply."""
    lines = base.splitlines()
    start = 0
    for i, h in enumerate(hunks, 1):
        what = f"{where}: hunk {i} (line {h.line}{', ' + h.note if h.note else ''})"
        if not h.old:
            raise PatchError(f"{what} has no context or '-' line to place it")
        n = len(h.old)
        found = [k for k in range(start, len(lines) - n + 1) if tuple(lines[k:k + n]) == h.old]
        if len(found) != 1:
            problem = "is not in" if not found else f"is found {len(found)} times in"
            raise PatchError(f"{what}: its old side (first line {h.old[0]!r}) {problem} the solution cell "
                             f"(after the previous hunk); the solution changed? rewrite the hunk "
                             f"against the cell's current text")
        k = found[0]
        lines[k:k + n] = h.new
        start = k + len(h.new)
    return "\n".join(lines) + "\n"


def load_mutant(path: Path) -> Mutant:
    path = Path(path)
    mutant_set = path.parent.name
    where = f"mutant {mutant_set}/{path.stem}"
    header_lines, hunks = parse(path.read_text(), where)
    header = {}
    for line in header_lines:
        key, sep, value = line[1:].strip().partition(":")
        if sep and key.strip() in ("cell", "loses"):
            header[key.strip()] = value.strip()
    if "cell" not in header or "loses" not in header:
        raise PatchError(f"{where} ({path}) needs '# cell:' and '# loses:' header lines")
    if not hunks:
        raise PatchError(f"{where} ({path}) changes nothing: it has no '@@' hunk")
    cells = solution_cells(mutant_set)
    if header["cell"] not in cells:
        raise PatchError(f"{where}: no cell with grade id {header['cell']!r} in {notebook_of(mutant_set)}")
    patched = apply(cells[header["cell"]], hunks, f"{where} on cell {header['cell']!r}")
    loses = frozenset(x.strip() for x in header["loses"].split(",") if x.strip())
    source = "\n".join(header_lines) + "\n" + patched
    return Mutant(path.stem, header["cell"], loses, source, mutant_set, path)


def load_mutants(mutant_set: str) -> list[Mutant]:
    return [load_mutant(p) for p in sorted((MUTANTS / mutant_set).glob("*.py"))]


def combine(mutants: list[Mutant]) -> list[list[Mutant]]:
    """Group mutants so that no group replaces the same cell twice.

    Units are graded in isolation, so one notebook can carry one mutant per cell;
    this keeps the number of full autograde runs small.
    """
    groups: list[list[Mutant]] = []
    for m in mutants:
        for g in groups:
            if all(other.cell != m.cell for other in g):
                g.append(m)
                break
        else:
            groups.append([m])
    return groups


def load_cells(path: Path) -> tuple[dict[str, str], frozenset[str]]:
    """A whole-submission fixture: ``# %% <cell id>`` separates cell sources, and a
    ``# loses:`` header line names the grade cells that must lose points."""
    text = Path(path).read_text()
    loses = next(line.split(":", 1)[1] for line in text.splitlines() if line.startswith("# loses:"))
    cells, current = {}, None
    for line in text.splitlines(keepends=True):
        if line.startswith("# %% "):
            current = line[5:].strip()
            cells[current] = ""
        elif current:
            cells[current] += line
    return {k: v.strip() + "\n" for k, v in cells.items()}, frozenset(x.strip() for x in loses.split(","))
