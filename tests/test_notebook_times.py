"""benchmarks/notebook_times.py: parts and their seconds from nbclient's cell timing; bad input."""
import importlib.util

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbcourse import REPO

spec = importlib.util.spec_from_file_location("notebook_times", REPO / "benchmarks" / "notebook_times.py")
notebook_times = importlib.util.module_from_spec(spec)
spec.loader.exec_module(notebook_times)


def _timed(source, start, end):
    cell = new_code_cell(source)
    cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
    return cell


def test_seconds_are_summed_per_part_under_level_two_headings():
    nb = new_notebook(cells=[
        new_markdown_cell("# Title"),
        _timed("import x", "2026-01-01T10:00:00.000Z", "2026-01-01T10:00:01.500Z"),
        new_markdown_cell("## 1. Data\ntext"),
        _timed("a = 1", "2026-01-01T10:00:02.000Z", "2026-01-01T10:00:04.000Z"),
        new_markdown_cell("### 1.1 a subsection stays in part 1"),
        _timed("b = 1", "2026-01-01T10:00:04.000Z", "2026-01-01T10:00:05.250Z"),
        new_markdown_cell("## 2. Training"),
        _timed("fit()", "2026-01-01T10:00:05.250Z", "2026-01-01T10:01:05.250Z"),
        new_code_cell("never ran"),
    ])
    nbformat.validate(nb)
    assert notebook_times._parts(nb) == [("setup", 1.5), ("1. Data", 3.25), ("2. Training", 60.0)]


def test_unknown_assignment_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        notebook_times.main(["no_such_assignment"])
    assert exc.value.code == 2
    assert "no solution notebook for no_such_assignment" in capsys.readouterr().err
