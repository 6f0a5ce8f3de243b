"""`grade_assignment` must leave the gradebook exactly as sequential `nbgrader autograde`
does: same scores per cell, flags, comments, timestamps and late penalties."""
from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from coursectl.grading import grade_assignment
from fixtures.grading import tiny
from nbcourse import nbgrader, submit


def _state(course):
    """Everything autograde writes, per student, read through nbgrader's API."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.find_assignment(tiny.ASSIGNMENT).submissions:
            cells = {}
            for nb in sub.notebooks:
                for g in nb.grades:
                    cells[g.name] = (g.auto_score, g.manual_score, g.max_score, g.needs_manual_grade)
                for c in nb.comments:
                    cells[c.name + ":comment"] = c.auto_comment
                cells[nb.name + ":late"] = nb.late_submission_penalty
            out[sub.student.id] = (str(sub.timestamp), sub.score, cells)
    return out


def _outputs(course, student):
    nb = json.loads((course / "autograded" / student / tiny.ASSIGNMENT / "tiny.ipynb").read_text())
    return [(c["source"], [(o["output_type"], o.get("ename"), o.get("name")) for o in c.get("outputs", [])])
            for c in nb["cells"]]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("equiv")
    course = tiny.make_course(root)
    with open(course / "nbgrader_config.py", "a") as fh:  # make lateness cost something
        fh.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    nbgrader(course, "db", "assignment", "add", tiny.ASSIGNMENT, "--duedate=2030-01-01 12:00:00 UTC")
    release = nbformat.read(course / "release" / tiny.ASSIGNMENT / "tiny.ipynb", as_version=4)
    warn = tiny.with_cell("import warnings\nwarnings.warn('harmless library warning')")
    stderr = tiny.good()  # nbgrader gives no points to a test cell that writes to stderr
    stderr.cells[2].source = "import sys\ndef square(x):\n    print('debug', file=sys.stderr)\n    return x * x"
    half = tiny.good()
    half.cells[4].source = "def cube(x):\n    return x ** 3 if x > 0 else 0"  # visible test passes, hidden fails
    for student, nb in {"good": tiny.good(), "wrong": tiny.wrong_answer(), "blank": release, "warn": warn,
                        "stderr": stderr, "half": half, "late": tiny.good(), "ontime": tiny.good()}.items():
        submit(course, student, tiny.ASSIGNMENT, nb, name="tiny.ipynb")
    (course / "submitted" / "late" / tiny.ASSIGNMENT / "timestamp.txt").write_text("2030-01-02 08:00:00 UTC")
    (course / "submitted" / "ontime" / tiny.ASSIGNMENT / "timestamp.txt").write_text("2029-12-31 08:00:00 UTC")
    theirs = root / "nbgrader_course"
    shutil.copytree(course, theirs)
    nbgrader(theirs, "autograde", tiny.ASSIGNMENT, "--force")
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=2, progress=False)
    return course, theirs, run


def test_same_gradebook_as_sequential_nbgrader(both):
    ours, theirs, _ = both
    mine, reference = _state(ours), _state(theirs)
    assert set(mine) == set(reference)
    for student in reference:
        assert mine[student] == reference[student], student


def test_expected_scores(both):
    ours, _, run = both
    got = {r.student: r.score for r in run.results}
    assert got == {"good": 5, "wrong": 2, "blank": 0, "warn": 5, "stderr": 3, "half": 2, "late": 0, "ontime": 5}
    state = _state(ours)
    assert state["late"][2]["tiny:late"] == 5.0 and not state["ontime"][2]["tiny:late"]
    assert state["blank"][2]["square:comment"] == "No response."


def test_same_autograded_notebooks(both):
    ours, theirs, _ = both
    for student in ("good", "wrong", "blank", "stderr", "warn"):
        assert _outputs(ours, student) == _outputs(theirs, student), student


def test_only_problems_reported_are_real(both):
    _, _, run = both
    assert all(r.problems == [] for r in run.results)
