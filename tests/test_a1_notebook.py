"""a1_rnn_cells end to end: release in sync and leak-free, the solution runs, and the
real nbgrader CLI grades the solution, the untouched release and mutant submissions."""
from __future__ import annotations

import filecmp
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mutants import combine, load_mutants
from nbcourse import REPO, cell_by_id, make_course, nbgrader, scores, submit

A = "a1_rnn_cells"
SOURCE_NB = REPO / "source" / A / f"{A}.ipynb"
RELEASE_NB = REPO / "release" / A / f"{A}.ipynb"


def _grade_cells(nb) -> dict[str, float]:
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            out[meta["grade_id"]] = float(meta["points"])
    return out


AUTOGRADED = _grade_cells(nbformat.read(SOURCE_NB, as_version=4))


def test_release_is_what_generate_assignment_makes(tmp_path):
    course = make_course(tmp_path, A)
    nbgrader(course, "generate_assignment", A, "--force")
    fresh = course / "release" / A
    cmp = filecmp.dircmp(fresh, REPO / "release" / A)
    assert not cmp.left_only and not cmp.right_only, (cmp.left_only, cmp.right_only)
    for name in cmp.common_files:
        assert (fresh / name).read_bytes() == (REPO / "release" / A / name).read_bytes(), \
            f"release/{A}/{name} is stale: run `course release {A}`"


def test_release_has_no_solutions_or_hidden_tests():
    text = RELEASE_NB.read_text()
    for leak in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "autograder", "check_lstm_cell"):
        assert leak not in text, f"release leaks {leak!r}"
    nb = nbformat.read(RELEASE_NB, as_version=4)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert answers, "release has no answer cells"
    for cell in answers:
        if cell.cell_type == "code":
            assert "raise NotImplementedError()" in cell.source, cell.metadata.nbgrader.grade_id
        else:
            assert cell.source.strip() == "YOUR ANSWER HERE"


def test_every_behaviour_has_its_own_grade_cell():
    expected = {"test_lstm_cell", "test_gru_cell", "test_abc_answers"}
    expected |= {f"test_{kind}_model_{m}" for kind in ("rnn", "bidir")
                 for m in ("lstm", "gru", "rnn_tanh", "rnn_relu")}
    assert set(AUTOGRADED) == expected


@pytest.mark.slow
def test_solution_runs_top_to_bottom_with_nbval(tmp_path):
    env = dict(os.environ, COURSE_QUICK="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           str(SOURCE_NB), "-W", "ignore::DeprecationWarning"],
                          cwd=SOURCE_NB.parent, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert re.search(r"\b\d+ passed", proc.stdout)


def _with_mutants(group):
    nb = nbformat.read(SOURCE_NB, as_version=4)
    for m in group:
        cell_by_id(nb, m.cell).source = m.source
    return nb


def _warning_submission():
    """The solution, but the LSTM cell warns on stderr each time it runs."""
    nb = nbformat.read(SOURCE_NB, as_version=4)
    cell = cell_by_id(nb, "lstm_cell")
    cell.source = "import warnings\n" + cell.source.replace(
        "        ### BEGIN SOLUTION\n        if hx is None:",
        "        ### BEGIN SOLUTION\n        warnings.warn('this op is deprecated', UserWarning)\n        if hx is None:")
    assert "warnings.warn" in cell.source
    return nb


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """One course, one `nbgrader autograde` run over every sample submission."""
    course = make_course(tmp_path_factory.mktemp("a1"), A)
    nbgrader(course, "generate_assignment", A, "--force")
    groups = combine(load_mutants("a1"))
    expected = {"solution": set(), "release": set(AUTOGRADED), "warnings": set()}
    submit(course, "solution", A, SOURCE_NB)
    submit(course, "release", A, RELEASE_NB)
    submit(course, "warnings", A, _warning_submission(), name=RELEASE_NB.name)
    for i, group in enumerate(groups):
        student = f"mutants{i:02d}"
        submit(course, student, A, _with_mutants(group), name=RELEASE_NB.name)
        expected[student] = set().union(*(m.loses for m in group))
    proc = nbgrader(course, "autograde", A, "--force", timeout=3600)
    nbgrader(course, "generate_feedback", A, "--force")
    return course, expected, groups, proc


@pytest.mark.slow
def test_solution_gets_every_autograded_point(graded_class):
    course, *_ = graded_class
    got = scores(course, A, "solution")
    assert {k: v for k, v in got.items() if k in AUTOGRADED} == {k: (p, p) for k, p in AUTOGRADED.items()}


@pytest.mark.slow
def test_untouched_release_gets_zero_everywhere(graded_class):
    course, *_ = graded_class
    got = scores(course, A, "release")
    assert {k: got[k][0] for k in AUTOGRADED} == {k: 0.0 for k in AUTOGRADED}


@pytest.mark.slow
def test_warnings_on_stderr_cost_nothing(graded_class):
    course, *_ = graded_class
    got = scores(course, A, "warnings")
    assert {k: got[k][0] for k in AUTOGRADED} == AUTOGRADED
    nb = nbformat.read(course / "autograded" / "warnings" / A / RELEASE_NB.name, as_version=4)
    assert "deprecated" in json.dumps(nb.cells[[c.metadata.get("nbgrader", {}).get("grade_id")
                                               for c in nb.cells].index("test_lstm_cell")].outputs)


@pytest.mark.slow
def test_each_mutant_loses_points_only_in_its_unit(graded_class):
    course, expected, groups, *_ = graded_class
    assert groups, "no mutants in tests/mutants/a1"
    for i, group in enumerate(groups):
        student = f"mutants{i:02d}"
        got = scores(course, A, student)
        names = [m.name for m in group]
        for gid, points in AUTOGRADED.items():
            if gid in expected[student]:
                assert got[gid][0] < points, f"{names}: {gid} kept all {points} points"
            else:
                assert got[gid][0] == points, f"{names}: {gid} lost points ({got[gid][0]}/{points})"


@pytest.mark.slow
def test_feedback_never_shows_hidden_tests(graded_class):
    course, expected, *_ = graded_class
    pages = sorted((course / "feedback").glob(f"*/{A}/*.html"))
    assert len(pages) == len(expected)
    for page in pages:
        html = page.read_text()
        for leak in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "autograder", "check_gru_cell",
                     "check_bidir_model", "a1_abc_key"):
            assert leak not in html, f"{page} shows {leak!r}"
    # The feedback still tells the student what failed.
    mutant_pages = [p for p in pages if "mutants" in str(p)]
    assert any("FAILED" in p.read_text() for p in mutant_pages)
