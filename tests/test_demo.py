"""`course demo`: the sample submissions are what students hand in (no solution markers),
the roster gives them names, and the demo folder comes from --course-dir or --dir and is
never a folder the demo did not build. (The whole demo runs in tests/test_browser.py.)"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from coursectl import demo
from coursectl.cli import main
from coursectl.grading.intake import read_roster
from coursectl.nbg import CourseError
from nbcourse import REPO

A1 = demo.ASSIGNMENT


def _solution_cells(nb):
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


@pytest.fixture
def course(tmp_path):
    """A course folder with a1's source and release, as `course demo` has it before grading."""
    for part in ("source", "release"):
        shutil.copytree(REPO / part / A1, tmp_path / part / A1)
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    return tmp_path


def test_without_markers_keeps_the_answer():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    assert demo.without_markers(src) == "def f(x):\n    return 2 * x"
    md = "### BEGIN SOLUTION\nBecause $f'(x) = 2$.\n### END SOLUTION"
    assert demo.without_markers(md) == "Because $f'(x) = 2$."


def test_samples_are_filled_in_release_notebooks(course):
    described = demo.make_samples(course)
    assert set(described) == {"alice", "bob", "carol"}
    released = nbformat.read(course / "release" / A1 / f"{A1}.ipynb", as_version=4)
    solution = nbformat.read(course / "source" / A1 / f"{A1}.ipynb", as_version=4)
    subs = {s: nbformat.read(course / "submitted" / s / A1 / f"{A1}.ipynb", as_version=4) for s in described}
    for student, nb in subs.items():
        text = "\n".join(c.source for c in nb.cells)
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
            assert marker not in text, (student, marker)
        assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells] == \
            [c.metadata.get("nbgrader", {}).get("grade_id") for c in released.cells]
        assert (course / "submitted" / student / A1 / "abc_training_curves.png").is_file()

    answers, stubs, sol = _solution_cells(subs["alice"]), _solution_cells(released), _solution_cells(solution)
    assert set(answers) == set(sol) and len(answers) >= 8
    for gid, cell in answers.items():
        assert cell.source == demo.without_markers(sol[gid].source), gid
        assert "NotImplementedError" not in cell.source and "YOUR ANSWER HERE" not in cell.source, gid
        assert cell.source != stubs[gid].source, gid
    # LaTeX in a written answer reaches the formgrader as the student wrote it
    assert "$" in answers["q_vanishing_gradients"].source
    # cells that are not answers stay exactly as released (visible tests, given code)
    for mine, theirs in zip(subs["alice"].cells, released.cells):
        if not mine.metadata.get("nbgrader", {}).get("solution"):
            assert mine.source == theirs.source

    assert [c.source for c in subs["bob"].cells] == [c.source for c in released.cells]
    carol = _solution_cells(subs["carol"])
    assert carol["gru_cell"].source == (demo.SAMPLES / "gru_raw_projection.py").read_text()
    assert "update * h_n" in carol["gru_cell"].source
    assert carol["lstm_cell"].source == answers["lstm_cell"].source


def test_answered_refuses_answers_the_release_lacks(course):
    released = nbformat.read(course / "release" / A1 / f"{A1}.ipynb", as_version=4)
    solution = nbformat.read(course / "source" / A1 / f"{A1}.ipynb", as_version=4)
    with pytest.raises(CourseError, match="no_such_cell"):
        demo.answered(released, solution, {"no_such_cell": "x = 1"})


def test_demo_roster_names_every_sample_student():
    roster = read_roster(demo.SAMPLES / "roster.csv")
    names = {e.student_id: (e.first_name, e.last_name) for e in roster.entries}
    assert names == {"alice": ("Alice", "Moreau"), "bob": ("Bob", "Okafor"), "carol": ("Carol", "Lindqvist")}
    assert set(names) == set(demo.STUDENTS)


def test_course_dir_names_the_demo_folder(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda where=None: seen.append(where))
    assert main(["--course-dir", str(tmp_path / "d1"), "demo"]) == 0
    assert main(["demo", "--dir", str(tmp_path / "d2")]) == 0
    assert main(["--course-dir", str(tmp_path / "d3"), "demo", "--dir", str(tmp_path / "d3")]) == 0
    assert main(["demo"]) == 0
    assert seen == [(tmp_path / "d1").resolve(), (tmp_path / "d2").resolve(), (tmp_path / "d3").resolve(), None]


def test_conflicting_demo_folders_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "run_demo", lambda where=None: pytest.fail("must not run"))
    assert main(["--course-dir", str(tmp_path / "a"), "demo", "--dir", str(tmp_path / "b")]) == 2
    assert "differ" in capsys.readouterr().err


def test_demo_rebuilds_only_its_own_folders(tmp_path):
    template = tmp_path / "course"
    (template / "source").mkdir(parents=True)
    demo.check_target(tmp_path / "new", template)           # missing: fine
    (tmp_path / "empty").mkdir()
    demo.check_target(tmp_path / "empty", template)         # empty: fine
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / demo.MARKER).write_text("")
    (tmp_path / "old" / "gradebook.db").write_text("")
    demo.check_target(tmp_path / "old", template)           # an earlier demo: fine
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "thesis.tex").write_text("precious")
    with pytest.raises(CourseError, match="not built by `course demo`"):
        demo.check_target(tmp_path / "work", template)
    for inside in (template, tmp_path):
        with pytest.raises(CourseError, match="holds the course"):
            demo.check_target(inside, template)
    assert (tmp_path / "work" / "thesis.tex").read_text() == "precious"


def test_demo_copies_from_a_real_course_not_from_a_demo(tmp_path):
    real = tmp_path / "course"
    (real / "source" / A1).mkdir(parents=True)
    (real / "nbgrader_config.py").write_text("")
    built = real / "demo"
    demo.build_course(built, REPO)
    assert (built / demo.MARKER).is_file() and (built / "roster.csv").is_file()
    assert (built / "exchange").is_dir()
    # inside the demo folder, the course to copy from is the real one above it
    assert demo.template_course(built / "source") == real
