"""How a graded job becomes the verdict the service returns (no kernels): points from the
grades nbgrader recorded, checks from the trusted chain's grade-cell metadata only."""
from __future__ import annotations

import json

from coursectl.grading.gradebook import CellDef
from coursectl.grading.model import JobResult
from coursectl.service.grader import MESSAGE_LIMIT, verdict_from_result
from coursectl.trusted import CHECKS_KEY


def _grade(auto, max_score, cell_type="code"):
    return {"auto_score": auto, "manual_score": None, "extra_credit": None, "max_score": max_score,
            "needs_manual_grade": auto is None, "cell_type": cell_type, "autograded": auto is not None}


def _result(checks_meta: dict) -> JobResult:
    cells = []
    for gid, meta in checks_meta.items():
        md = {"nbgrader": {"grade_id": gid, "grade": True}}
        if meta is not None:
            md[CHECKS_KEY] = meta
        cells.append({"cell_type": "code", "metadata": md, "source": "", "outputs": []})
    nb = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    grades = {"notebooks": {"hw": {"late_penalty": None, "comments": {},
                                   "grades": {"t1": _grade(1.5, 3.0), "t2": _grade(2.0, 2.0),
                                              "essay": _grade(None, 4.0, "markdown")}}}}
    return JobResult("ann", "graded", grades=grades, autograded={"hw.ipynb": (0o644, nb),
                                                                   "sub/x.ipynb": (0o644, b"junk")})


DEFINITION = {"hw": [CellDef("t2", "code", True, "", None, grade=True, points=2),
                     CellDef("essay", "markdown", False, "", None, grade=True, solution=True, points=4),
                     CellDef("t1", "code", True, "", None, grade=True, points=3)]}


def test_units_points_and_checks():
    long = "x" * (MESSAGE_LIMIT + 50)
    v = verdict_from_result(_result({"t1": {"held": False, "checks": [
        {"name": "shape", "passed": True, "message": ""}, {"name": "values", "passed": False, "message": long}]},
        "t2": None}), DEFINITION)
    assert v.status == "graded" and v.score == 3.5 and v.max_score == 9.0
    assert [u["grade_id"] for u in v.units] == ["t2", "t1"]  # the notebook's order; the essay waits for a hand grade
    t1 = v.units[1]
    assert (t1["points"], t1["max_points"]) == (1.5, 3.0)
    assert [c["name"] for c in t1["checks"]] == ["shape", "values"] and len(t1["checks"][1]["message"]) == MESSAGE_LIMIT
    assert v.units[0]["checks"] == []  # no unit: no checks


def test_failed_job():
    v = verdict_from_result(JobResult.failed("ann", "wall-clock limit: still running"), DEFINITION)
    assert v.status == "failed" and v.units == [] and "wall-clock" in v.reason


def test_held_unit_says_so_at_every_visibility():
    from coursectl.service.client import render
    from coursectl.service.visibility import filter_units

    v = verdict_from_result(_result({"t1": {"held": True, "checks": [{"name": "shape", "passed": True}]},
                                     "t2": {"held": False, "checks": []}}), DEFINITION)
    assert [(u["grade_id"], u["held"]) for u in v.units] == [("t2", False), ("t1", True)]
    for level in ("points", "checks", "messages"):
        assert [u["held"] for u in filter_units(v.units, level)] == [False, True], level
    text = render({"attempt": 1, "assignment": "hw", "student": "ann", "status": "graded", "score": v.score,
                   "max_score": v.max_score, "units": v.units})
    assert "t1: 1.5 / 3 (held for your instructor's review)" in text and "t2: 2 / 2\n" in text
