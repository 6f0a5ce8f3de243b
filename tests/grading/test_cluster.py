"""Grading on a Dask cluster (`course grade --cluster`): the same grades as the local
pool, a worker killed mid-job changes no grade, a submission that keeps killing workers
is reported, and a scheduler that cannot be reached stops the run before it writes."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from coursectl.grading import grade_assignment
from coursectl.errors import CourseError
from fixtures.grading import tiny
from nbcourse import BIN, scores, submit

FULL = {"test_square": (2.0, 2.0), "test_cube": (3.0, 3.0)}


def _raw(course, student: str, data: bytes) -> None:
    dest = course / "submitted" / student / tiny.ASSIGNMENT
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "tiny.ipynb").write_bytes(data)


def test_unreachable_scheduler_fails_at_once_and_writes_nothing(tmp_path):
    course = tiny.make_course(tmp_path, generate=False)
    submit(course, "a", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    start = time.monotonic()
    with pytest.raises(CourseError) as err:
        grade_assignment(course, tiny.ASSIGNMENT, cluster="tcp://127.0.0.1:9", progress=False)
    assert time.monotonic() - start < 30
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in str(err.value)
    assert not (course / "gradebook.db").exists() and not (course / "reports").exists()
    proc = subprocess.run([str(BIN / "course"), "grade", tiny.ASSIGNMENT, "--cluster", "local:zero"], cwd=course,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "say local:N with N worker processes" in proc.stderr
    assert not (course / "gradebook.db").exists()


def _class(course) -> None:
    """Good and bad submissions: full marks, a wrong answer, a dead kernel (restarted,
    earlier cells replayed), a deleted test cell (put back), two files nbgrader cannot read."""
    submit(course, "good", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    submit(course, "wrong", tiny.ASSIGNMENT, tiny.wrong_answer(), name="tiny.ipynb")
    submit(course, "crash", tiny.ASSIGNMENT, tiny.with_cell("import os\nos._exit(1)", after="test_square"),
           name="tiny.ipynb")
    submit(course, "deleted", tiny.ASSIGNMENT, tiny.without("test_cube"), name="tiny.ipynb")
    _raw(course, "empty", b"")
    _raw(course, "not_json", tiny.truncated_bytes())


def _view(run):
    return {r.student: (r.status, r.score, r.max_score, r.problems, dict(r.cells)) for r in run.results}


@pytest.mark.slow
def test_local_cluster_grades_like_the_local_pool(tmp_path):
    pool_course = tiny.make_course(tmp_path / "pool")
    dask_course = tiny.make_course(tmp_path / "dask")
    _class(pool_course)
    _class(dask_course)
    pool = grade_assignment(pool_course, tiny.ASSIGNMENT, workers=2, progress=False)
    dask = grade_assignment(dask_course, tiny.ASSIGNMENT, cluster="local:2", progress=False)
    assert _view(dask) == _view(pool)
    assert dask.summary == pool.summary
    assert {s: r[1] for s, r in _view(dask).items()} == {
        "good": 5, "wrong": 2, "crash": 5, "deleted": 5, "empty": 0, "not_json": 0}
    assert dask.result("empty").status == "failed" and dask.result("not_json").status == "failed"
    assert "the kernel exited (code 1)" in dask.result("crash").reason
    assert "cells deleted: test_cube" in dask.result("deleted").reason
    for student in ("good", "wrong", "crash", "deleted"):
        assert scores(dask_course, tiny.ASSIGNMENT, student) == scores(pool_course, tiny.ASSIGNMENT, student)
        for kind, name in (("autograded", "tiny.ipynb"), ("feedback", "tiny.html")):
            assert (dask_course / kind / student / tiny.ASSIGNMENT / name).is_file(), (kind, student)
    assert dask.runner.startswith("Dask LocalCluster") and dask.workers == 2
    assert "sandbox: bubblewrap" in dask.text
    assert (dask_course / "reports" / tiny.ASSIGNMENT / "logs" / "crash.log").is_file()


# Kills the Dask worker process that runs this submission (found up the process tree:
# kernel, grading process, fork server, worker), once or every time.
KILL_WORKER = """import os, signal
def _worker_pid():
    pid = os.getpid()
    while pid > 1:
        with open(f"/proc/{{pid}}/cmdline", "rb") as fh:
            if b"spawn_main" in fh.read():
                return pid
        with open(f"/proc/{{pid}}/stat") as fh:
            pid = int(fh.read().rsplit(")", 1)[1].split()[1])
    raise RuntimeError("no Dask worker above this kernel")
if {always} or not os.path.exists({marker!r}):
    open({marker!r}, "w").close()
    os.kill(_worker_pid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_killed_worker_changes_no_grade_and_a_worker_killer_is_reported(tmp_path):
    # Without the sandbox a kernel can see (and kill) the worker's process: what a crash
    # of the worker's machine looks like to the scheduler.
    course = tiny.make_course(tmp_path)
    marker = str(tmp_path / "killed-once")
    submit(course, "good", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    submit(course, "wrong", tiny.ASSIGNMENT, tiny.wrong_answer(), name="tiny.ipynb")
    submit(course, "once", tiny.ASSIGNMENT,
           tiny.with_cell(KILL_WORKER.format(always=False, marker=marker), after="test_square"), name="tiny.ipynb")
    submit(course, "always", tiny.ASSIGNMENT,
           tiny.with_cell(KILL_WORKER.format(always=True, marker=marker + "-x"), after="test_square"),
           name="tiny.ipynb")
    run = grade_assignment(course, tiny.ASSIGNMENT, cluster="local:2", tries=2, sandbox=False, progress=False)
    assert os.path.exists(marker), "the worker was never killed"
    assert {r.student: (r.status, r.score) for r in run.results} == {
        "good": ("graded", 5), "wrong": ("graded", 2), "once": ("graded", 5), "always": ("failed", 0)}, run.text
    assert run.result("once").problems == []
    assert scores(course, tiny.ASSIGNMENT, "once") == FULL
    assert "killed the Dask worker running it 2 times" in run.result("always").reason
    assert "always  FAILED" in run.text
