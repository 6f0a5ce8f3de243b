"""A per-assignment report's grades.csv lists only that assignment, though the gradebook
holds every assignment of the course."""
from __future__ import annotations

import csv
import os

from nbgrader.api import Gradebook

from coursectl.grading.export import nbgrader_csv
from nbcourse import BIN


def test_grades_csv_lists_only_its_assignment(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")  # the gradebook runs alembic
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        gb.add_student("alice")
        for name in ("a3_char_lm", "a4_visualizing"):
            gb.add_assignment(name)
            gb.add_submission(name, "alice")
        only = nbgrader_csv(gb, tmp_path / "a3.csv", assignment="a3_char_lm")
        every = nbgrader_csv(gb, tmp_path / "all.csv")
    rows = lambda p: {r["assignment"] for r in csv.DictReader(open(p))}  # noqa: E731
    assert rows(only) == {"a3_char_lm"}
    assert rows(every) == {"a3_char_lm", "a4_visualizing"}  # without an assignment: nbgrader export's rows
