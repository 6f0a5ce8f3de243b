"""One class of good and broken submissions of the tiny assignment, graded with real
nbgrader and real kernels by `grade_assignment(workers=2)`: every failure mode is named
in the report, intact parts keep their points, good copies are untouched by bad ones."""
from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coursectl.grading import grade_assignment
from fixtures.grading import tiny
from nbcourse import BIN, nbgrader, scores, submit

FULL = {"test_square": (2.0, 2.0), "test_cube": (3.0, 3.0)}
SLEEP_TAG = "313.25"  # a background `sleep` that must not outlive its submission

# student -> (notebook or raw bytes, file name, phrase its report line must contain)
CLASS = {
    "good_1": (tiny.good(), "tiny.ipynb", None),
    "good_2": (tiny.good(), "tiny.ipynb", None),
    "good_3": (tiny.good(), "tiny.ipynb", None),
    "wrong": (tiny.wrong_answer(), "tiny.ipynb", None),
    "loop": (tiny.with_cell("while True:\n    pass"), "tiny.ipynb", "timed out after 5 s"),
    "deaf_loop": (tiny.with_cell("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
                  "tiny.ipynb", "ignored the interrupt"),
    "memory": (tiny.with_cell("hog = bytearray(8 * 1024**3)"), "tiny.ipynb", "ran out of memory (limit 2048 MB)"),
    "os_exit": (tiny.with_cell("import os\nos._exit(1)"), "tiny.ipynb", "the kernel exited (code 1)"),
    "sys_exit": (tiny.with_cell("import sys\nsys.exit(3)"), "tiny.ipynb", "called sys.exit()"),
    "segfault": (tiny.with_cell("import ctypes\nctypes.string_at(0)"), "tiny.ipynb", "killed by SIGSEGV"),
    "abort": (tiny.with_cell("import os\nos.abort()"), "tiny.ipynb",
              "killed by SIGABRT (maybe the 2048 MB memory cap; see --memory-mb)"),
    "flood": (tiny.with_cell("for i in range(300):\n    print('x' * 1_000_000, flush=True)"), "tiny.ipynb",
              "printed more than 5 MB"),
    "deleted": (tiny.without("test_cube"), "tiny.ipynb", "cells deleted: test_cube"),
    "duplicated": (tiny.duplicated("test_square"), "tiny.ipynb", "test_square appears 2 times"),
    "retyped": (tiny.retyped("cube"), "tiny.ipynb", "cell type changed: cube (code -> markdown)"),
    "not_json": (tiny.truncated_bytes(), "tiny.ipynb", "not valid JSON"),
    "empty": (b"", "tiny.ipynb", "empty file"),
    "bad_name": (tiny.good(), "Tiny (1).ipynb", "wrong file name: 'Tiny (1).ipynb'"),
    "latin1": (tiny.latin1_bytes(), "tiny.ipynb", "not UTF-8"),
    "network": (tiny.with_cell("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
                               "    print('NET-OPEN')\nexcept OSError as exc:\n    print('NET-BLOCKED', exc)"),
                "tiny.ipynb", None),
    "spawner": (tiny.with_cell(f"import subprocess\nsubprocess.Popen(['sleep', '{SLEEP_TAG}'])"), "tiny.ipynb", None),
}
UNGRADABLE = {"not_json", "empty"}


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _place(course: Path, student: str, content, name: str) -> None:
    if isinstance(content, bytes):
        dest = course / "submitted" / student / tiny.ASSIGNMENT
        dest.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(content)
    else:
        submit(course, student, tiny.ASSIGNMENT, content, name=name)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tiny.make_course(tmp_path_factory.mktemp("class"))
    for student, (content, name, _) in CLASS.items():
        _place(course, student, content, name)
    before = _tree_digest(course / "submitted")
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=2, cell_timeout=5, memory_mb=2048, timeout=120,
                           progress=False)
    return course, run, before


def test_every_submission_is_accounted_for(graded):
    _, run, _ = graded
    assert sorted(r.student for r in run.results) == sorted(CLASS)
    assert run.summary["failed"] == len(UNGRADABLE)


@pytest.mark.parametrize("student", [s for s in CLASS if s.startswith("good")])
def test_good_copies_get_full_marks_and_no_complaint(graded, student):
    course, run, _ = graded
    assert scores(course, tiny.ASSIGNMENT, student) == FULL
    res = run.result(student)
    assert res.status == "graded" and res.problems == []
    assert (res.score, res.max_score) == (5.0, 7.0)  # the 2-point written answer awaits a grader


@pytest.mark.parametrize("student", [s for s, (_, _, why) in CLASS.items() if why])
def test_each_broken_submission_is_named_with_a_reason(graded, student):
    course, run, _ = graded
    phrase = CLASS[student][2]
    res = run.result(student)
    assert phrase in res.reason, res.reason
    line = next(ln for ln in run.text.splitlines() if ln.strip().startswith(student + " "))
    assert phrase in line
    if student in UNGRADABLE:
        assert res.status == "failed" and res.score == 0
    else:  # the intact parts earn their points
        assert res.status == "graded"
        assert scores(course, tiny.ASSIGNMENT, student) == FULL


def test_wrong_answer_loses_only_its_cell(graded):
    course, run, _ = graded
    assert scores(course, tiny.ASSIGNMENT, "wrong") == {"test_square": (2.0, 2.0), "test_cube": (0.0, 3.0)}
    assert run.result("wrong").problems == []


def test_unreadable_submissions_are_zero_and_flagged(graded):
    from nbgrader.api import Gradebook

    course, _, _ = graded
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in UNGRADABLE:
            sub = gb.find_submission(tiny.ASSIGNMENT, student)
            assert sub.score == 0 and all(nb.flagged for nb in sub.notebooks)
    page = (course / "feedback" / "empty" / tiny.ASSIGNMENT / "tiny.html").read_text()
    assert "empty file" in page


def test_timeouts_counted(graded):
    _, run, _ = graded
    assert {r.student for r in run.results if r.timed_out} == {"loop", "deaf_loop"}
    assert run.summary["timed_out"] == 2


def test_submitted_folder_is_untouched(graded):
    course, _, before = graded
    assert _tree_digest(course / "submitted") == before


def test_no_network_inside_kernels(graded):
    course, run, _ = graded
    text = (course / "autograded" / "network" / tiny.ASSIGNMENT / "tiny.ipynb").read_text()
    if run.network.startswith("isolated"):
        assert "NET-BLOCKED" in text and "NET-OPEN" not in text.replace("print('NET-OPEN')", "")
    else:  # the OS refused: the report must say so
        assert "not isolated" in run.text


def test_background_processes_do_not_outlive_their_submission(graded):
    leftover = subprocess.run(["pgrep", "-f", f"sleep {SLEEP_TAG}"], capture_output=True, text=True).stdout
    assert leftover.strip() == ""


def test_feedback_for_every_graded_student_without_hidden_tests(graded):
    course, run, _ = graded
    for res in run.results:
        page = (course / "feedback" / res.student / tiny.ASSIGNMENT / "tiny.html").read_text()
        for marker in (*tiny.HIDDEN_MARKERS, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in page, (res.student, marker)
        if res.status == "graded":  # visible tests stay visible
            assert "assert square(3) == 9" in html.unescape(re.sub(r"<[^>]+>", "", page))


def test_autograded_notebooks_in_the_course(graded):
    course, run, _ = graded
    for res in run.results:
        path = course / "autograded" / res.student / tiny.ASSIGNMENT / "tiny.ipynb"
        assert path.exists() == (res.status == "graded"), res.student
    flood = (course / "autograded" / "flood" / tiny.ASSIGNMENT / "tiny.ipynb").stat().st_size
    assert flood < 10_000_000  # of the 300 MB printed, only the first 5 MB were kept


def test_report_files(graded):
    course, run, _ = graded
    assert set(run.files) == {"grades_csv", "canvas_csv", "report_txt", "report_json", "plot_png"}
    assert run.files["plot_png"].read_bytes()[:4] == b"\x89PNG"
    data = json.loads(run.files["report_json"].read_text())
    assert data["summary"]["submissions"] == len(CLASS)
    assert data["summary"]["pass_rate"]["test_cube"]["passed"] == len(CLASS) - len(UNGRADABLE) - 1
    assert "distribution of scores" in run.text and "pass rate per autograded cell" in run.text


def test_grades_csv_matches_nbgrader_export(graded):
    course, run, _ = graded
    nbgrader(course, "export", "--to", "exported.csv")
    ours = list(csv.DictReader(run.files["grades_csv"].open()))
    theirs = list(csv.DictReader((course / "exported.csv").open()))
    key = lambda r: r["student_id"]  # noqa: E731
    assert sorted(ours, key=key) == sorted(theirs, key=key)
    canvas = list(csv.reader(run.files["canvas_csv"].open()))
    assert canvas[1][:1] == ["Points Possible"]
    assert {row[2]: row[5] for row in canvas[2:]}["good_1"] == "5"


def test_rerun_is_idempotent_and_keeps_manual_grades(graded):
    from nbgrader.api import Gradebook

    course, first, before = graded
    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db) as gb:
        grade = gb.find_grade("explain", "tiny", tiny.ASSIGNMENT, "good_1")
        grade.manual_score = 1.5
        gb.db.commit()
        rows = len(gb.db.execute(__import__("sqlalchemy").text("select * from grade")).all())
    subset = ["good_1", "wrong", "deleted", "os_exit", "empty"]
    again = grade_assignment(course, tiny.ASSIGNMENT, workers=2, cell_timeout=5, memory_mb=2048, students=subset,
                             progress=False)
    for student in subset:
        a, b = first.result(student), again.result(student)
        assert (a.status, a.problems, a.cells) == (b.status, b.problems, b.cells) or student == "good_1"
    assert again.result("good_1").score == 6.5
    with Gradebook(db) as gb:
        grade = gb.find_grade("explain", "tiny", tiny.ASSIGNMENT, "good_1")
        assert grade.manual_score == 1.5 and grade.needs_manual_grade
        assert len(gb.db.execute(__import__("sqlalchemy").text("select * from grade")).all()) == rows
        assert len(gb.find_assignment(tiny.ASSIGNMENT).submissions) == len(CLASS)
    assert _tree_digest(course / "submitted") == before


def test_cli_grades_without_importing_torch(tmp_path):
    course = tiny.make_course(tmp_path)
    submit(course, "ann", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    submit(course, "bob", tiny.ASSIGNMENT, tiny.with_cell("import os\nos._exit(3)"), name="tiny.ipynb")
    code = ("import sys\nfrom coursectl.cli import main\n"
            f"rc = main(['--course-dir', {str(course)!r}, 'grade', 'tiny', '--workers', '2', '--cell-timeout', '20',"
            " '--memory-mb', '3000', '--timeout', '300'])\n"
            "print('TORCH', 'torch' in sys.modules)\nsys.exit(rc)")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TORCH False" in proc.stdout
    assert "bob" in proc.stdout and "the kernel exited (code 3)" in proc.stdout
    assert "grading tiny" in proc.stderr  # the progress bar
    assert scores(course, tiny.ASSIGNMENT, "ann") == FULL


def test_cli_grades_a_canvas_download(tmp_path):
    """`course grade --from ZIP --roster CSV`, the installed console script, end to end."""
    course = tiny.make_course(tmp_path)
    (tmp_path / "roster.csv").write_text(tiny.CANVAS_ROSTER)
    zpath = tiny.canvas_zip(tmp_path / "canvas.zip", tiny.notebook_bytes(tiny.good()))
    proc = subprocess.run([str(BIN / "course"), "grade", tiny.ASSIGNMENT, "--from", str(zpath), "--roster",
                           str(tmp_path / "roster.csv"), "--workers", "2"],
                          cwd=course, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert scores(course, tiny.ASSIGNMENT, "jdoe") == FULL
    assert scores(course, tiny.ASSIGNMENT, "bsmith") == FULL  # tiny-1.ipynb graded as tiny.ipynb
    assert "wrong file name: 'tiny-1.ipynb'" in proc.stdout
    assert "files not placed (3)" in proc.stdout and "stranger_99999_902_tiny.ipynb" in proc.stdout
    rows = list(csv.reader((course / "reports" / tiny.ASSIGNMENT / f"canvas_{tiny.ASSIGNMENT}.csv").open()))
    assert rows[0][-1] == "tiny (4242)"
    assert {r[3]: r[-1] for r in rows[2:]} == {"jdoe": "5", "bsmith": "5"}
