"""tests/mutants.py: mutants are patches against the solution cell; every one applies, changes
its cell, and a patch whose solution lines changed fails loudly, naming mutant, cell and hunk."""
from __future__ import annotations

import pytest

import mutants as M
from coursectl.assignments import ASSIGNMENTS

SETS = sorted(spec.mutants for spec in ASSIGNMENTS.values())
CELL = "def f(x):\n    y = x + 1\n    return y\n\n\ndef g(x):\n    y = x + 1\n    return 2 * y\n"


def _apply(patch: str, base: str = CELL) -> str:
    _, hunks = M.parse(patch, "mutant t/m")
    return M.apply(base, hunks, "mutant t/m on cell 'c'")


def test_hunks_replace_their_lines_and_keep_the_rest():
    assert _apply("# cell: c\n@@\n-    return 2 * y\n+    return 3 * y\n") == CELL.replace("2 * y", "3 * y")
    # context makes a line that occurs twice unique; a later hunk searches after the earlier one
    patched = _apply("@@ in g\n def g(x):\n-    y = x + 1\n+    y = x - 1\n")
    assert patched == CELL.replace("def g(x):\n    y = x + 1", "def g(x):\n    y = x - 1")
    both = _apply("@@\n def f(x):\n-    y = x + 1\n+    y = x\n@@\n-    y = x + 1\n+    y = -x\n")
    assert both == CELL.replace("x + 1", "x", 1).replace("x + 1", "-x")


@pytest.mark.parametrize("patch, problem", [
    ("@@\n-    return 4 * y\n+    return y\n", "is not in the solution cell"),
    ("@@\n-    y = x + 1\n+    y = x\n", "is found 2 times"),
    ("@@\n+    pass\n", "no context or '-' line"),
    ("@@\n*    y = x + 1\n", "starts with ' ', '-' or '+'"),
    ("def f(x):\n@@\n-    y = x + 1\n", "header lines are comments"),
])
def test_a_patch_that_does_not_apply_fails_naming_mutant_and_cell(patch, problem):
    with pytest.raises(M.PatchError, match="mutant t/m") as err:
        _apply(patch)
    assert problem in str(err.value)
    if "solution cell" in problem:
        assert "on cell 'c'" in str(err.value) and "hunk 1 (line 1)" in str(err.value)


def test_a_changed_solution_cell_breaks_the_patch(tmp_path, monkeypatch):
    """The patch files carry no copy of the solution: edit the cell a hunk reads and the
    mutant no longer loads."""
    mutant = M.load_mutants("a4")[0]
    cells = dict(M.solution_cells("a4"))
    first_removed = next(line[1:] for line in mutant.path.read_text().splitlines() if line.startswith("-"))
    cells[mutant.cell] = cells[mutant.cell].replace(first_removed, first_removed + "  # edited")
    monkeypatch.setattr(M, "solution_cells", lambda mutant_set: cells)
    with pytest.raises(M.PatchError, match=f"mutant a4/{mutant.name} on cell '{mutant.cell}'"):
        M.load_mutant(mutant.path)


@pytest.mark.parametrize("mutant_set", SETS)
def test_every_mutant_applies_and_changes_its_cell(mutant_set):
    loaded = M.load_mutants(mutant_set)
    assert loaded
    solution = M.solution_cells(mutant_set)
    for m in loaded:
        header = m.path.read_text().split("\n@@", 1)[0] + "\n"
        assert m.source.startswith(header) and m.loses
        assert m.source[len(header):] != solution[m.cell], f"{m.name} leaves {m.cell} as it is"
        compile(m.source, m.source_file(), "exec")  # valid Python, in a real file for inspect
