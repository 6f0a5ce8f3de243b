"""Wall-clock limits (the soft stop inside nbgrader and the hard kill around it) and the
executor seam (another concurrent.futures executor runs the same jobs)."""
from __future__ import annotations

import subprocess
from concurrent.futures import ProcessPoolExecutor

import pytest

from coursectl.grading import grade_assignment, jobs
from fixtures.grading import tiny
from nbcourse import scores, submit

FULL = {"test_square": (2.0, 2.0), "test_cube": (3.0, 3.0)}


def test_wall_clock_limit_stops_cells_and_keeps_earlier_points(tmp_path):
    course = tiny.make_course(tmp_path)
    submit(course, "good", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    submit(course, "slow", tiny.ASSIGNMENT, tiny.with_cell("import time\ntime.sleep(60)", after="test_square"),
           name="tiny.ipynb")
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=2, timeout=8, progress=False)
    assert scores(course, tiny.ASSIGNMENT, "good") == FULL
    slow = run.result("slow")
    assert slow.status == "graded" and slow.timed_out
    assert "stopped at the wall-clock limit" in slow.reason
    assert scores(course, tiny.ASSIGNMENT, "slow") == {"test_square": (2.0, 2.0), "test_cube": (0.0, 3.0)}
    assert slow.seconds < 8 + 10


def test_hard_kill_when_a_submission_will_not_stop(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "GRACE_S", 0.5)
    course = tiny.make_course(tmp_path)
    deaf = ("import signal, subprocess\nsubprocess.Popen(['sleep', '271.5'])\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")
    submit(course, "deaf", tiny.ASSIGNMENT, tiny.with_cell(deaf), name="tiny.ipynb")
    submit(course, "good", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=2, timeout=4, progress=False)
    deaf_res = run.result("deaf")
    assert deaf_res.status == "failed" and deaf_res.timed_out
    assert deaf_res.reason.startswith("wall-clock limit: still running")
    assert scores(course, tiny.ASSIGNMENT, "good") == FULL
    leftover = subprocess.run(["pgrep", "-f", "sleep 271.5"], capture_output=True, text=True).stdout
    assert leftover.strip() == "", "the killed submission's processes survived"


def test_any_concurrent_futures_executor_can_run_the_jobs(tmp_path):
    course = tiny.make_course(tmp_path)
    submit(course, "a", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    submit(course, "b", tiny.ASSIGNMENT, tiny.wrong_answer(), name="tiny.ipynb")
    submit(course, "c", tiny.ASSIGNMENT, tiny.with_cell("import os\nos._exit(1)"), name="tiny.ipynb")
    with ProcessPoolExecutor(max_workers=2) as pool:
        run = grade_assignment(course, tiny.ASSIGNMENT, executor=pool, progress=False)
    assert {r.student: r.score for r in run.results} == {"a": 5.0, "b": 2.0, "c": 5.0}, run.text
    assert "the kernel exited (code 1)" in run.result("c").reason


def test_memory_cap_can_be_switched_off_and_network_isolation_reported(tmp_path):
    course = tiny.make_course(tmp_path)
    submit(course, "a", tiny.ASSIGNMENT, tiny.with_cell("big = bytearray(1536 * 1024 * 1024)\ndel big"),
           name="tiny.ipynb")
    capped = grade_assignment(course, tiny.ASSIGNMENT, memory_mb=1024, progress=False)
    assert "ran out of memory (limit 1024 MB)" in capped.result("a").reason
    free = grade_assignment(course, tiny.ASSIGNMENT, memory_mb=0, isolate_network=False, progress=False)
    assert free.result("a").problems == []
    assert free.network == "not isolated (switched off)"
    assert "network: not isolated (switched off)" in free.text


@pytest.mark.parametrize("workers", [1])
def test_missing_assignment_in_gradebook_is_created_from_source(tmp_path, workers, monkeypatch):
    course = tiny.make_course(tmp_path, generate=False)
    # As `.venv/bin/course grade` runs without an activated environment: nbgrader's new
    # gradebook needs the `alembic` command, which is then not on PATH.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    submit(course, "a", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=workers, progress=False)
    assert scores(course, tiny.ASSIGNMENT, "a") == FULL
    assert not (course / "release").exists()  # the course's release/ was left alone
    assert run.result("a").problems == []
