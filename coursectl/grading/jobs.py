"""The unit of work an executor runs: grade one staged submission in a fresh process.

``grade_job(job)`` forks a process from a fork server that has already imported
nbgrader (coursectl.grading.worker), so a submission costs no interpreter start or import
time, yet each submission still gets a process of its own: a crash, a leak or a hang
stays there. ``grade_job`` enforces the wall-clock limit by killing that process and its
kernels. It imports only the standard library, so `course grade` stays light.

A job is a plain dict (picklable, JSON-able):
  assignment, student, workdir (holds course/ with nbgrader_config.py, source/<a>,
  gradebook.db and submitted/<student>/<a>), course_id, timeout (s, wall clock),
  cell_timeout (s or None), memory_mb (or None), no_network, max_output_bytes,
  feedback, env (variables for the grading process and its kernel), prior (manual
  grades already in the real gradebook), bwrap (path of bubblewrap, or None to run the
  kernel unsandboxed).
The result is a dict: student, status ("graded"/"failed"), problems (one-line reasons),
grades (see gradebook.collect_grades), timed_out, network, seconds.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import sandbox

RESULT_FILE = "result.json"
KERNELS_FILE = "kernels.jsonl"
LOG_FILE = "grader.log"
SANDBOX_SCRIPT = str(Path(__file__).with_name("sandbox.py"))
GRACE_S = 30.0  # after the deadline: time to save grades and feedback before a hard kill
_PRELOAD = ["coursectl.grading.prefork"]
_RUNNING: dict[str, object] = {}  # workdir -> grading process, for stop_all()
_LOCK = threading.Lock()


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _forget_inherited_fork_server() -> None:
    """A process forked from one that runs a fork server (a process-pool worker, say)
    inherits the server's bookkeeping but is not its parent; make it start its own."""
    from multiprocessing import forkserver

    fs = forkserver._forkserver
    if getattr(fs, "_forkserver_pid", None) is None:
        return
    try:
        os.close(fs._forkserver_alive_fd)
    except (OSError, TypeError):
        pass
    fs._forkserver_address = fs._forkserver_alive_fd = fs._forkserver_pid = None


os.register_at_fork(after_in_child=_forget_inherited_fork_server)


def start_fork_server() -> None:
    """Start the fork server now, so its imports overlap with the parent's preparation."""
    _context()
    from multiprocessing import forkserver

    forkserver.ensure_running()


def probe_network() -> str:
    """What network isolation this machine grants a kernel (one line for the report)."""
    try:
        proc = subprocess.run([sys.executable, "-I", SANDBOX_SCRIPT, "--probe"],
                              capture_output=True, text=True, timeout=30)
        return proc.stdout.strip() or f"not isolated: probe failed ({proc.stderr.strip()[-200:]})"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"not isolated: probe failed ({exc})"


def probe_sandbox(no_network: bool = True) -> tuple[str | None, str]:
    """(bwrap path or None, one line): can kernels start in the bubblewrap sandbox here?
    None means no, and the line says why."""
    bwrap = sandbox.find_bwrap()
    ok, line = sandbox.probe_bwrap(bwrap, no_network=no_network)
    return (bwrap if ok else None), line


def _run_child(job: dict) -> None:
    from .worker import child_main  # already imported in the fork server

    child_main(job)


def _kernels(workdir: Path) -> tuple[list[int], str | None]:
    pids, network = [], None
    path = workdir / KERNELS_FILE
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                note = json.loads(line)
            except ValueError:
                continue
            pids.append(int(note["pid"]))
            network = note.get("network", network)
    return pids, network


def _kill_kernels(pids: list[int]) -> None:
    """Kill what is left of a submission's kernels: each kernel leads its own process
    group (jupyter_client starts it in a new session), which holds anything it spawned."""
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:  # already gone
            pass


def stop_all() -> None:
    """Kill every grading process this process started, and their kernels (Ctrl-C)."""
    with _LOCK:
        running = list(_RUNNING.items())
    for workdir, proc in running:
        try:
            proc.kill()
        except (OSError, ValueError, AttributeError):
            pass
        _kill_kernels(_kernels(Path(workdir))[0])


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def grade_job(job: dict) -> dict:
    """Grade one staged submission in a fresh process; a bad notebook never raises here."""
    start = time.monotonic()
    workdir = Path(job["workdir"])
    for name in (RESULT_FILE, KERNELS_FILE):
        (workdir / name).unlink(missing_ok=True)
    # The kernel's connection file and sockets: the one host folder a sandboxed kernel
    # may write, its own, removed with everything in it once the job is over.
    runtime = tempfile.mkdtemp(prefix="krt")  # short: unix socket paths are limited to 107 bytes
    job = dict(job, runtime_dir=runtime)
    proc = _context().Process(target=_run_child, args=(job,), daemon=True)
    with _LOCK:
        _RUNNING[str(workdir)] = proc
    try:
        proc.start()
        limit = float(job["timeout"]) + GRACE_S
        proc.join(limit)
        killed = proc.is_alive()
        if killed:
            proc.kill()
            proc.join()
    finally:
        with _LOCK:
            _RUNNING.pop(str(workdir), None)
        pids, network = _kernels(workdir)
        _kill_kernels(pids)
        shutil.rmtree(runtime, ignore_errors=True)
    result_path = workdir / RESULT_FILE
    if not killed and result_path.exists():
        result = json.loads(result_path.read_text())
    else:
        why = (f"wall-clock limit: still running {limit:.0f} s after start, stopped" if killed
               else f"the grading process died ({_exit_reason(proc.exitcode)})")
        result = {"student": job["student"], "status": "failed", "grades": None,
                  "problems": [why], "timed_out": killed}
    result["network"] = network
    result["seconds"] = round(time.monotonic() - start, 2)
    return result
