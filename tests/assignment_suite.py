"""The end-to-end checks every assignment must pass, written once.

A test module subclasses :class:`AssignmentSuite` and sets the assignment id, its
mutant set and the names that must never leak; pytest collects the inherited tests.
The class-scoped ``graded_class`` fixture grades the solution, the untouched release
and the mutant notebooks (plus any ``extra_submissions``) in ONE real
``nbgrader autograde`` run, then generates feedback.
"""
from __future__ import annotations

import filecmp
import os
import re
import subprocess
import sys

import nbformat
import pytest

from coursectl import cells

from mutants import combine, load_mutants
from nbcourse import REPO, cell_by_id, make_course, nbgrader, scores, submit


def grade_cells(nb, cell_type: str = "code") -> dict[str, float]:
    """grade_id -> points of the grade cells of one type."""
    return {cells.grade_id(c): float(cells.meta(c)["points"])
            for c in nb.cells if cells.is_grade(c) and c.cell_type == cell_type}


class AssignmentSuite:
    assignment: str = ""
    mutant_set: str = ""          # folder under tests/mutants/
    hidden_names: tuple[str, ...] = ()  # names from hidden tests that must never be shown

    # --- derived ----------------------------------------------------------------
    @classmethod
    def source_nb(cls):
        return REPO / "source" / cls.assignment / f"{cls.assignment}.ipynb"

    @classmethod
    def release_nb(cls):
        return REPO / "release" / cls.assignment / f"{cls.assignment}.ipynb"

    @classmethod
    def autograded(cls) -> dict[str, float]:
        return grade_cells(nbformat.read(cls.source_nb(), as_version=4))

    def extra_submissions(self) -> dict[str, tuple[nbformat.NotebookNode, set[str]]]:
        """student -> (notebook, grade ids that must lose points); override to add."""
        return {}

    def with_mutants(self, group):
        nb = nbformat.read(self.source_nb(), as_version=4)
        for m in group:
            cell_by_id(nb, m.cell).source = m.source
        return nb

    # --- tests that need no grading run -------------------------------------------
    def test_release_is_what_generate_assignment_makes(self, tmp_path):
        a = self.assignment
        course = make_course(tmp_path, a)
        nbgrader(course, "generate_assignment", a, "--force")
        fresh, committed = course / "release" / a, REPO / "release" / a
        cmp = filecmp.dircmp(fresh, committed)
        assert not cmp.left_only and not cmp.right_only, (cmp.left_only, cmp.right_only)
        for name in cmp.common_files:
            assert (fresh / name).read_bytes() == (committed / name).read_bytes(), \
                f"release/{a}/{name} is stale: run `course release {a}`"

    def test_release_has_no_solutions_or_hidden_tests(self):
        text = self.release_nb().read_text()
        for leak in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "autograder", *self.hidden_names):
            assert leak not in text, f"release leaks {leak!r}"
        nb = nbformat.read(self.release_nb(), as_version=4)
        answers = [c for c in nb.cells if cells.is_solution(c)]
        assert answers, "release has no answer cells"
        for cell in answers:
            if cell.cell_type == "code":
                assert "raise NotImplementedError()" in cell.source, cell.metadata.nbgrader.grade_id
            else:
                assert cell.source.strip() == "YOUR ANSWER HERE"

    def test_every_grade_cell_ends_with_its_hidden_check(self):
        source = nbformat.read(self.source_nb(), as_version=4)
        for gid in self.autograded():
            src = cell_by_id(source, gid).source.rstrip()
            # the hidden call names no points: they are the cell's metadata alone (autograder.harness)
            assert src.endswith("### END HIDDEN TESTS") and "points=" not in src.split("### BEGIN HIDDEN TESTS")[1], gid

    @pytest.mark.slow
    def test_solution_runs_top_to_bottom_with_nbval(self):
        nb = self.source_nb()
        env = dict(os.environ, COURSE_QUICK="1", MPLBACKEND="Agg")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                               str(nb), "-W", "ignore::DeprecationWarning"],
                              cwd=nb.parent, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
        assert re.search(r"\b\d+ passed", proc.stdout)

    # --- one grading run for the whole class ----------------------------------------
    @pytest.fixture(scope="class")
    def graded_class(self, tmp_path_factory):
        a, name = self.assignment, self.release_nb().name
        course = make_course(tmp_path_factory.mktemp(a), a)
        nbgrader(course, "generate_assignment", a, "--force")
        groups = combine(load_mutants(self.mutant_set))
        expected = {"solution": set(), "release": set(self.autograded())}
        submit(course, "solution", a, self.source_nb(), name=name)
        submit(course, "release", a, self.release_nb())
        for student, (nb, loses) in self.extra_submissions().items():
            submit(course, student, a, nb, name=name)
            expected[student] = set(loses)
        for i, group in enumerate(groups):
            student = f"mutants{i:02d}"
            submit(course, student, a, self.with_mutants(group), name=name)
            expected[student] = set().union(*(m.loses for m in group))
        # Kernels forked from a preloaded process (SandboxedKernelManager.preloaded, as `course
        # grade` starts them): the same sandbox and verdicts (tests/grading/test_zygote.py), without
        # importing torch again for each of the class's notebooks. The attack suite grades
        # with plain nbgrader's defaults.
        nbgrader(course, "autograde", a, "--force", "--SandboxedKernelManager.preloaded=True", timeout=3600)
        nbgrader(course, "generate_feedback", a, "--force")
        return course, expected, groups

    @pytest.mark.slow
    def test_solution_gets_every_autograded_point(self, graded_class):
        course, *_ = graded_class
        got = scores(course, self.assignment, "solution")
        assert {k: got[k] for k in self.autograded()} == {k: (p, p) for k, p in self.autograded().items()}

    @pytest.mark.slow
    def test_untouched_release_gets_zero_everywhere(self, graded_class):
        course, *_ = graded_class
        got = scores(course, self.assignment, "release")
        assert {k: got[k][0] for k in self.autograded()} == {k: 0.0 for k in self.autograded()}

    @pytest.mark.slow
    def test_each_submission_loses_points_exactly_where_expected(self, graded_class):
        course, expected, groups = graded_class
        assert groups, f"no mutants in tests/mutants/{self.mutant_set}"
        names = {f"mutants{i:02d}": [m.name for m in g] for i, g in enumerate(groups)}
        for student, loses in expected.items():
            got = scores(course, self.assignment, student)
            for gid, points in self.autograded().items():
                who = names.get(student, student)
                if gid in loses:
                    assert got[gid][0] < points, f"{who}: {gid} kept all {points} points"
                else:
                    assert got[gid][0] == points, f"{who}: {gid} lost points ({got[gid][0]}/{points})"

    @pytest.mark.slow
    def test_feedback_never_shows_hidden_tests(self, graded_class):
        course, expected, _ = graded_class
        pages = sorted((course / "feedback").glob(f"*/{self.assignment}/*.html"))
        assert len(pages) == len(expected)
        for page in pages:
            html = page.read_text()
            for leak in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "autograder", *self.hidden_names):
                assert leak not in html, f"{page} shows {leak!r}"
        # The feedback still says what failed.
        assert any("FAILED" in p.read_text() for p in pages if "mutants" in str(p))
