"""Extra credit (coursectl/extra_credit.py): what `course grade` merges into the course's
gradebook, and which cells count as extra credit. The end-to-end check through nbgrader
autograde is TestA4.test_maximize_activation_is_extra_credit."""
from __future__ import annotations

import os
from types import SimpleNamespace

from nbformat.v4 import new_code_cell
from nbgrader.api import Gradebook

from coursectl.extra_credit import extra_credit_worth
from coursectl.grading.gradebook import merge_grades
from nbcourse import BIN


def _cell(gid, points):
    return new_code_cell("", metadata={"nbgrader": {"grade": True, "grade_id": gid, "points": points,
                                                    "solution": False, "locked": True, "schema_version": 3}})


def test_only_zero_point_cells_with_scoring_checks_are_extra_credit():
    plans = {"bonus": [(SimpleNamespace(points=2.0), None)], "normal": [(SimpleNamespace(points=3.0), None)]}
    state = {"plans": plans}
    assert extra_credit_worth(state, _cell("bonus", 0)) == 2.0
    assert extra_credit_worth(state, _cell("normal", 3)) == 0.0
    assert extra_credit_worth(state, _cell("plain", 0)) == 0.0  # no hidden check: nothing to earn


def test_course_grade_merges_autograded_extra_credit(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")  # the gradebook runs alembic
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        gb.add_assignment("a")
        gb.add_notebook("nb", "a")
        gb.add_grade_cell("normal", "nb", "a", max_score=3, cell_type="code")
        gb.add_grade_cell("bonus", "nb", "a", max_score=0, cell_type="code")
        gb.add_student("s")
        gb.add_submission("a", "s")
        grades = {"notebooks": {"nb": {"late_penalty": None, "comments": {}, "grades": {
            "normal": {"auto_score": 3.0, "needs_manual_grade": False, "extra_credit": 5.0},  # ignored: not extra
            "bonus": {"auto_score": 0.0, "needs_manual_grade": False, "extra_credit": 2.0}}}}}
        merge_grades(gb, "a", "s", grades)
        sub = gb.find_submission("a", "s")
        got = {g.name: (g.auto_score, g.extra_credit) for g in sub.notebooks[0].grades}
        assert got == {"normal": (3.0, None), "bonus": (0.0, 2.0)}
        assert (sub.score, sub.max_score) == (5.0, 3.0)
