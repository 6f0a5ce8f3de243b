"""Grading on a Dask cluster (`course grade --cluster`): the same grades as the local
pool, a worker killed mid-job changes no grade, a submission that keeps killing workers
is reported, and a scheduler that cannot be reached stops the run before it writes.
Jobs are self-contained: one grades with the course folder gone."""
from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from coursectl.grading import grade_assignment, gradebook, jobs
from coursectl.grading.model import pack_tree, unpack_tree
from coursectl.errors import CourseError
from fixtures.grading import tiny
from nbcourse import BIN, scores, submit

FULL = {"test_square": (2.0, 2.0), "test_cube": (3.0, 3.0)}


class _ZygoteWatch:
    """The kernel zygotes (zygote.py processes; not the kernels forked from them, which
    keep their command line) that run while the block runs: pid -> (socket, parent pid,
    the parent's parent pid). Zygotes of other test processes are seen as well; what
    counts is who started each."""

    def __init__(self):
        import threading

        self.seen: dict[int, tuple[str, int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    @staticmethod
    def _process(pid) -> tuple[list[bytes], int] | None:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            return argv, int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return None

    def _poll(self) -> None:
        from coursectl.grading import zygote

        mine = zygote.__file__.encode()
        while not self._stop.wait(0.05):
            for entry in os.scandir("/proc"):
                found = self._process(entry.name) if entry.name.isdigit() else None
                if not found or len(found[0]) < 3 or found[0][1] != mine:
                    continue
                parent = self._process(found[1])
                if parent and len(parent[0]) > 1 and parent[0][1] == mine:
                    continue  # a zygote's own child on its way to becoming a kernel
                self.seen[int(entry.name)] = (found[0][2].decode(), found[1], parent[1] if parent else 0)

    def started_here(self) -> set[str]:
        return {sock for sock, parent, _ in self.seen.values() if parent == os.getpid()}

    def started_by_children(self) -> set[str]:
        """Started by a process this one started (a LocalCluster's worker)."""
        return {sock for sock, parent, grand in self.seen.values() if grand == os.getpid() and parent != os.getpid()}

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


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
    with _ZygoteWatch() as zygotes:
        dask = grade_assignment(dask_course, tiny.ASSIGNMENT, cluster="local:2", progress=False)
    # The workers' kernels fork from this process's zygote: no worker started one.
    assert zygotes.started_by_children() == set() and zygotes.started_here(), zygotes.seen
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


@pytest.mark.slow
def test_a_running_scheduler_is_used_by_address(tmp_path):
    from distributed import LocalCluster

    course = tiny.make_course(tmp_path)
    submit(course, "good", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    submit(course, "wrong", tiny.ASSIGNMENT, tiny.wrong_answer(), name="tiny.ipynb")
    # Started as anyone would (daemon worker processes, Dask's defaults), not by the grader.
    with LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=":0") as cluster:
        run = grade_assignment(course, tiny.ASSIGNMENT, cluster=cluster.scheduler_address, progress=False)
    assert {r.student: (r.status, r.score) for r in run.results} == {"good": ("graded", 5), "wrong": ("graded", 2)}
    assert scores(course, tiny.ASSIGNMENT, "good") == FULL
    assert f"ran on: Dask scheduler {cluster.scheduler_address}" in run.text and run.workers == 2


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


def _stage_jobs(course, **options):
    """The jobs `grade_assignment` would send, built by its own steps, nothing graded."""
    from coursectl.grading import GradeOptions, GradingPipeline, gradebook

    pipe = GradingPipeline(course, tiny.ASSIGNMENT, GradeOptions(progress=False, workers=1, **options))
    pipe.prepare()
    try:
        with gradebook.open_gradebook(pipe.db_url, pipe.course_id) as gb:
            pipe.intake(gb)
            pipe.stage(gb)
    finally:
        pipe.runner.close()
        shutil.rmtree(pipe.work, ignore_errors=True)
    return pipe.jobs


@pytest.mark.slow
def test_a_job_carries_all_it_needs(tmp_path):
    course = tiny.make_course(tmp_path / "course")
    submit(course, "good", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    (job,) = _stage_jobs(course)
    shutil.rmtree(tmp_path / "course")  # what a worker on another machine sees of the course: nothing
    result = jobs.grade_job(pickle.loads(pickle.dumps(job)))
    assert (result.status, result.problems) == ("graded", [])
    got = {name: (c.score, c.max_score) for name, c in gradebook.cell_scores(result.grades).items() if c.autograded}
    assert got == FULL
    assert set(result.autograded) == {"tiny.ipynb", "notes.txt"}
    assert b"hidden-square-check" not in result.feedback["tiny.html"][1]
    assert result.network.startswith("isolated") and result.worker == socket.gethostname() and result.seconds > 0
    assert not (tmp_path / "course").exists()


def test_a_worker_without_the_sandbox_reports_it(tmp_path, monkeypatch):
    course = tiny.make_course(tmp_path, generate=False)
    submit(course, "a", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    (job,) = _stage_jobs(course, sandbox=False)  # staged here; graded on a "machine" without bubblewrap
    job = dataclasses.replace(job, sandbox=True)
    monkeypatch.setattr(jobs, "_SANDBOX_OK", {})
    monkeypatch.setattr(jobs.sandbox, "find_bwrap", lambda: None)
    result = jobs.grade_job(job)
    assert result.status == "failed" and result.grades is None
    assert result.reason.startswith(f"the grading machine {socket.gethostname()} cannot start the sandbox: ")


def test_packed_trees_keep_bytes_and_modes_and_stay_inside(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.ipynb").write_bytes(b"\x00\xff notebook")
    (src / "sub" / "b.txt").write_text("b")
    (src / "sub" / "b.txt").chmod(0o444)
    (src / ".ipynb_checkpoints").mkdir()
    (src / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("{}")
    tree = pack_tree(src)
    assert set(tree) == {"a.ipynb", "sub/b.txt"} and tree["sub/b.txt"] == (0o444, b"b")
    unpack_tree(tree, tmp_path / "dest")
    assert (tmp_path / "dest" / "a.ipynb").read_bytes() == b"\x00\xff notebook"
    assert (tmp_path / "dest" / "sub" / "b.txt").stat().st_mode & 0o777 == 0o444
    with pytest.raises(ValueError):
        unpack_tree({"../escape.txt": (0o644, b"x")}, tmp_path / "dest")
    assert not (tmp_path / "escape.txt").exists()
