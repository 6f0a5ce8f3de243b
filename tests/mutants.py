"""Mutant submissions: files ``tests/mutants/<assignment>/<name>.py`` whose header says
which solution cell they replace and which grade cells must lose points::

    # cell: gru_cell
    # loses: test_gru_cell
    <full replacement source of that cell>
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MUTANTS = Path(__file__).resolve().parent / "mutants"


@dataclass(frozen=True)
class Mutant:
    name: str
    cell: str
    loses: frozenset[str]
    source: str


def load_mutants(assignment: str) -> list[Mutant]:
    out = []
    for path in sorted((MUTANTS / assignment).glob("*.py")):
        text = path.read_text()
        header = {}
        for line in text.splitlines():
            if not line.startswith("# "):
                break
            key, _, value = line[2:].partition(":")
            if key.strip() in ("cell", "loses"):
                header[key.strip()] = value.strip()
        assert "cell" in header and "loses" in header, f"{path} needs '# cell:' and '# loses:' header lines"
        loses = frozenset(x.strip() for x in header["loses"].split(",") if x.strip())
        out.append(Mutant(path.stem, header["cell"], loses, text))
    return out


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
