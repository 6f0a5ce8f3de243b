"""The unit of work an executor runs: grade one self-contained job in a fresh process.

``grade_job(job)`` writes the job's files into a scratch course folder of its own
(nbgrader_config.py, source/<a>, a gradebook with the definition, submitted/<s>/<a>),
forks a grading process from a fork server that has already imported nbgrader
(worker.py) and the checks, and sends back a ``JobResult`` with the grades, the graded
notebooks, the feedback pages and the log; the scratch folder is then removed. So it runs
the same in a local thread and on a Dask worker on another machine. Each submission gets
a process of its own: a crash, a leak or a hang stays there; ``grade_job`` enforces the
wall-clock limit by killing that process and its kernels. It imports only the standard
library and model.py, so `course grade` stays light. What comes back from the scratch
course is packed without following links (safefs): a kernel that left a link to the
solution in its folder sends back nothing through it, and the link is named.

A local pool passes ``slots`` (``CellSlots``): then each worker also runs the *next* job
ahead. That job's grading process starts its (fresh, sandboxed) kernel and the trusted
start-up code's imports while the worker's current job runs its cells, and waits, kernel
ready, for a cell slot; the current job gives its slot up when its cells are done and
goes on judging and writing feedback beside the next job's cells. At most ``slots.n``
submissions run cells at once; every submission still has a process and a kernel of its
own.
"""
from __future__ import annotations

import fnmatch
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .model import CHECKS_VAR, KERNELS_FILE, LOG_FILE, RESULT_FILE, SKIP, GradeJob, JobResult, Tree, unpack_tree
from . import safefs, sandbox, zygote

SANDBOX_SCRIPT = sandbox.__file__
GRACE_S = 30.0  # after the deadline: time to save grades and feedback before a hard kill
_PRELOAD = ["coursectl.grading.graded_checks", "coursectl.grading.prefork"]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS")
_RUNNING: dict[str, object] = {}  # workdir -> grading process, for stop_all()
_LOCK = threading.Lock()
_SANDBOX_OK: dict[bool, str] = {}  # no_network -> bwrap path, once it has started here


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


def start_fork_server(assignments=None) -> None:
    """Start the fork server now, so its imports overlap with the parent's preparation.
    ``assignments``: the names of those it will grade (None: any), whose checks modules
    (autograder/<name>/checks.py, with torch) and references' first-use imports
    (AssignmentSpec.grader_imports) it makes too, before any job; with names, no other
    assignment's (an assignment graded later by the same server imports its own checks in
    each job). Only imports: a torch operation run in the fork server would start torch's
    thread pool, and a process forked after that hangs in its first torch operation."""
    from ..assignments import ASSIGNMENTS

    names = ASSIGNMENTS if assignments is None else assignments
    first_use = [m for name in names if name in ASSIGNMENTS for m in ASSIGNMENTS[name].grader_imports]
    _PRELOAD[:] = list(dict.fromkeys(first_use + _PRELOAD))  # before prefork: its gc.freeze covers them
    _context()
    from multiprocessing import forkserver

    checks = "*" if assignments is None else ",".join(names)  # one with no checks module: nothing imported
    before = os.environ.get(CHECKS_VAR)
    os.environ[CHECKS_VAR] = checks  # the server's environment is this process's as it starts
    try:
        forkserver.ensure_running()
    finally:
        if before is None:
            os.environ.pop(CHECKS_VAR, None)
        else:
            os.environ[CHECKS_VAR] = before


def probe_network() -> str:
    """What network isolation this machine grants a kernel (one line for the report)."""
    try:
        proc = subprocess.run([sys.executable, "-I", SANDBOX_SCRIPT, "--probe"],
                              capture_output=True, text=True, timeout=30)
        return proc.stdout.strip() or f"not isolated: probe failed ({proc.stderr.strip()[-200:]})"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"not isolated: probe failed ({exc})"


def probe_sandbox(no_network: bool = True, remember: bool = False) -> tuple[str | None, str]:
    """(bwrap path or None, one line): can kernels start in the bubblewrap sandbox here?
    None means no, and the line says why. ``remember``: this process's jobs need not
    probe again."""
    bwrap = sandbox.find_bwrap()
    ok, line = sandbox.probe_bwrap(bwrap, no_network=no_network)
    if ok and remember:
        _SANDBOX_OK[no_network] = bwrap
    return (bwrap if ok else None), line


def _run_child(job: GradeJob, workdir: str, runtime: str, bwrap: str | None, asked: float = 0.0,
               turn=None, zygote: tuple[str, int] | None = None) -> None:
    from .worker import child_main  # already imported in the fork server

    child_main(job, workdir, runtime, bwrap, asked, turn, zygote)


def _with_threads(env: dict[str, str]) -> dict[str, str]:
    """A job's environment as grade_job runs it: math-library thread counts set."""
    env = dict(env)
    for var, value in thread_env(_worker_slots()).items():
        env.setdefault(var, value)
    return env


def warm_zygote(source: Tree, env: dict[str, str]) -> tuple[str, tuple[str, int]] | None:
    """Start now the zygote that jobs with this ``source`` and ``env`` will use (as a run
    starts: its imports overlap with the run's preparation); (its key, (socket, pid)), or
    None where there is none."""
    spec = _zygote_spec(source, _with_threads(env))
    if spec is None:
        return None
    found = zygote.ZYGOTES.address(*spec)
    return None if found is None else (zygote.Zygotes.key(*spec[:2]), found)


def adopt_zygote(source: Tree, env: dict[str, str], shared: tuple[str, tuple[str, int]]) -> bool:
    """On a worker of a LocalCluster: let this worker's jobs with ``source`` and ``env`` use
    the zygote ``shared`` (warm_zygote's answer in the `course grade` process that started
    the cluster) instead of starting one of its own, where the kernels it forks are the
    very ones this worker would ask for (same modules, same environment); whether it did."""
    spec = _zygote_spec(source, _with_threads(env))
    key, (address, pid) = shared
    if spec is None or zygote.Zygotes.key(*spec[:2]) != key:
        return False
    zygote.ZYGOTES.adopt(key, address, pid)
    return True


def _zygote_for(source: Tree, env: dict[str, str]) -> tuple[str, int] | None:
    """(socket, pid) of the zygote (zygote.py) whose kernels suit jobs of this assignment
    (its ``source`` notebooks) and environment, or None: where zygotes cannot be used
    here, or COURSE_NO_ZYGOTE=1 says not to."""
    spec = _zygote_spec(source, env)
    return None if spec is None else zygote.ZYGOTES.address(*spec)


def _zygote_spec(source: Tree, env: dict[str, str]) -> tuple[list, dict, list] | None:
    """(modules, kernel environment, font files) of the zygote for jobs of this assignment
    and environment, or None where there is none (see _zygote_for)."""
    environ = dict(os.environ, **env, NBGRADER_EXECUTION="autograde")  # as nbgrader's Autograde sets it
    if environ.get("COURSE_NO_ZYGOTE") == "1" or zygote.supported() is not None:
        return None
    opts = sandbox.plan(tempfile.gettempdir(), data_dir=sandbox.default_data_dir(environ))
    kernel_env = sandbox.kernel_env(environ, opts, f"{sandbox.HOME}/work")
    texts = [data.decode("utf-8", "replace") for rel, (_, data) in sorted(source.items())
             if rel.endswith(".ipynb") and "/" not in rel]
    return _preload_for(texts), kernel_env, opts["home_files"]


_PRELOADS: dict[tuple[str, ...], list] = {}
_PRELOADS_LOCK = threading.Lock()


def _preload_for(texts: list[str]) -> list:
    """zygote.preload_modules of these notebook texts, parsed once per run and never in two
    threads at once: the pool's threads parsing side by side hit a race in CPython 3.11's
    ast module ("AST constructor recursion depth mismatch", a SystemError that failed the
    job)."""
    key = tuple(texts)
    with _PRELOADS_LOCK:
        if key not in _PRELOADS:
            _PRELOADS.clear()  # one assignment's at a time is all a run needs
            _PRELOADS[key] = zygote.preload_modules(texts)
        return list(_PRELOADS[key])


class CellSlots:
    """How many submissions of one pool may run cells at once (``n``, its workers).

    A job holds a slot from its first cell to the end of its cells. A job that starts
    while all are held is the worker's next job, started ahead: it waits (before forking)
    until some job is running cells, so the first jobs' start-up is not slowed, then
    starts its kernel and waits, ready, for a slot."""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self._cond = threading.Condition()
        self._held = 0
        self._in_cells = 0

    def try_hold(self) -> bool:
        with self._cond:
            if self._held < self.n:
                self._held += 1
                return True
            return False

    def wait_for_cells(self, timeout: float) -> None:
        """Until a job runs cells or a slot is free (or ``timeout``): time to start ahead."""
        with self._cond:
            self._cond.wait_for(lambda: self._in_cells > 0 or self._held < self.n, timeout)

    def hold(self, alive) -> bool:
        """Wait for a slot while ``alive()``; whether one is held."""
        with self._cond:
            while self._held >= self.n:
                if not alive():
                    return False
                self._cond.wait(0.5)
            self._held += 1
            return True

    def started_cells(self) -> None:
        with self._cond:
            self._in_cells += 1
            self._cond.notify_all()

    def release(self, in_cells: bool) -> None:
        with self._cond:
            self._held -= 1
            if in_cells:
                self._in_cells -= 1
            self._cond.notify_all()


class _Turn:
    """One job's side of the pipe to its grading process, and its slot (see CellSlots)."""

    def __init__(self, slots: CellSlots | None):
        self.slots = slots
        self.held = slots.try_hold() if slots is not None else False
        self.in_cells = False
        self.waited = 0.0
        self.go_at: float | None = None

    def ask(self, proc, conn) -> None:
        """The grading process's kernel is ready: give it a slot (waiting for one), then go."""
        clock = time.monotonic()
        if self.slots is not None and not self.held:
            self.held = self.slots.hold(proc.is_alive)
        self.waited = time.monotonic() - clock
        if self.held and not self.in_cells:
            self.in_cells = True
            self.slots.started_cells()
        self.go_at = time.monotonic()
        try:
            conn.send("go")
        except OSError:  # it died meanwhile
            pass

    def done(self) -> None:
        if self.held:
            self.held = False
            self.slots.release(self.in_cells)
            self.in_cells = False


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


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def thread_env(slots: int) -> dict[str, str]:
    """Math-library thread counts for each of ``slots`` parallel grading processes on
    this machine: an equal share of the cores, so parallel kernels do not fight over
    them (variables the caller set win)."""
    threads = str(max(1, cores() // max(1, slots)))
    return {var: os.environ.get(var, threads) for var in THREAD_VARS}


def _worker_slots() -> int:
    """How many jobs may run beside this one: a Dask worker's thread count, else 1."""
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return int(get_worker().state.nthreads)
        except (ValueError, AttributeError, ImportError):
            pass
    return 1


def _where() -> str:
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return get_worker().address
        except (ValueError, AttributeError, ImportError):
            pass
    return socket.gethostname()


def _sandbox_here(no_network: bool) -> tuple[str | None, str]:
    """bubblewrap on the machine that runs the job; a success is remembered."""
    if no_network in _SANDBOX_OK:
        return _SANDBOX_OK[no_network], "ok"
    bwrap, line = probe_sandbox(no_network=no_network)
    if bwrap:
        _SANDBOX_OK[no_network] = bwrap
    return bwrap, line


def _allow_children() -> None:
    """A Dask worker process is a daemon by default, and multiprocessing refuses to
    start children from a daemon. Its only purpose is killing children at exit, which
    ``grade_job`` does itself (and the grading process dies with the fork server)."""
    me = multiprocessing.current_process()
    if me._config.get("daemon"):  # noqa: SLF001 (no public switch)
        me._config["daemon"] = False


def write_scratch_course(job: GradeJob, course: Path) -> None:
    """The small course folder nbgrader grades this submission in."""
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(job.config_text, encoding="utf-8")
    (course / "gradebook.db").write_bytes(job.gradebook)
    unpack_tree(job.source, course / "source" / job.assignment)
    unpack_tree(job.submission, course / "submitted" / job.student / job.assignment)


def grade_job(job: GradeJob, *, slots: CellSlots | None = None) -> JobResult:
    """Grade one submission in a fresh process; a bad notebook never raises here.
    ``slots``: the pool's cell slots, to start this job's kernel ahead (module docstring)."""
    start = time.monotonic()
    turn = _Turn(slots)
    try:
        return _grade_job(job, start, turn)
    finally:
        turn.done()


def _grade_job(job: GradeJob, start: float, turn: _Turn) -> JobResult:
    bwrap = None
    if job.sandbox:
        bwrap, line = _sandbox_here(job.limits.no_network)
        if not bwrap:
            return JobResult.failed(job.student, f"the grading machine {_where()} cannot start the sandbox: {line}")
    env = _with_threads(job.env)
    job = GradeJob(**{**job.__dict__, "env": env})
    workdir = Path(tempfile.mkdtemp(prefix=f"grade-{job.student[:20]}-"))
    # The kernel's connection file and sockets: the one host folder a sandboxed kernel
    # may write, its own. Short: unix socket paths are limited to 107 bytes.
    runtime = tempfile.mkdtemp(prefix="krt")
    timings: dict[str, float] = {}
    try:
        course = workdir / "course"
        clock = time.perf_counter()
        write_scratch_course(job, course)
        timings["staging"] = time.perf_counter() - clock
        _allow_children()
        if turn.slots is not None and not turn.held:
            turn.slots.wait_for_cells(timeout=float(job.limits.timeout))
        ctx = _context()
        ours, theirs = ctx.Pipe() if turn.slots is not None else (None, None)
        kernels_from = _zygote_for(job.source, env) if bwrap else None
        proc = ctx.Process(target=_run_child, args=(job, str(workdir), runtime, bwrap, time.time(), theirs,
                                                    kernels_from),
                           daemon=True)
        with _LOCK:
            _RUNNING[str(workdir)] = proc
        try:
            proc.start()
            if theirs is not None:
                theirs.close()
            limit = float(job.limits.timeout) + GRACE_S
            killed = _wait(proc, ours, turn, time.monotonic() + limit)
        finally:
            with _LOCK:
                _RUNNING.pop(str(workdir), None)
            pids, network = _kernels(workdir)
            _kill_kernels(pids)
        log = _read_log(workdir / LOG_FILE)
        result_path = workdir / RESULT_FILE
        if not killed and result_path.exists():
            data = json.loads(result_path.read_text())
            result = JobResult(job.student, data["status"], problems=data["problems"], grades=data["grades"],
                               timed_out=data["timed_out"], log=log)
            timings.update(data.get("timings") or {})
            timings["exit"] = max(0.0, time.time() - data.get("finished", time.time()))
            if result.status == "graded":
                clock = time.perf_counter()
                result.autograded = _pack_back(course, "autograded", job, result.problems)
                result.feedback = _pack_back(course, "feedback", job, result.problems)
                timings["packing"] = time.perf_counter() - clock
        else:
            why = (f"wall-clock limit: still running {limit:.0f} s after start, stopped" if killed
                   else f"the grading process died ({_exit_reason(proc.exitcode)})")
            result = JobResult.failed(job.student, why, timed_out=killed, log=log)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    result.network = network
    result.worker = _where()
    result.seconds = round(time.monotonic() - start, 2)
    if turn.go_at is not None:
        timings["ahead"] = turn.go_at - start
    result.timings = {k: round(v, 4) for k, v in timings.items()}
    result.timings["job"] = round(time.monotonic() - start, 4)
    return result


def _wait(proc, conn, turn: _Turn, deadline: float) -> bool:
    """Wait for the grading process to end, answering its pipe; whether it was killed at
    the wall-clock limit (which does not count the time its ready kernel waited for a slot
    nor the trusted start-up code's imports)."""
    limit_s = max(0.0, deadline - time.monotonic())
    waits = [proc.sentinel] + ([conn] if conn is not None else [])
    while True:
        ready = multiprocessing.connection.wait(waits, timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            proc.kill()
            proc.join()
            return True
        if conn is not None and conn in ready:
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # it closed its end (exiting)
                waits.remove(conn)
                conn.close()
                conn = None
                continue
            if isinstance(msg, tuple) and msg[:1] == ("ready",):
                turn.ask(proc, conn)
                deadline += turn.waited + min(float(msg[1]), limit_s)  # its preload, as the child counts it
            elif msg == "done":
                turn.done()
        if proc.sentinel in ready:
            proc.join()
            if conn is not None:
                conn.close()
            return False


def _pack_back(course: Path, kind: str, job: GradeJob, problems: list[str]) -> dict:
    """<kind>/<student>/<assignment>/ of the scratch course: regular files only."""
    try:
        tree, refused = safefs.pack(course / kind / job.student / job.assignment,
                                    skip=lambda name: any(fnmatch.fnmatch(name, pat) for pat in SKIP))
    except safefs.Refused as exc:
        problems.append(f"{kind} folder not taken back: {exc}")
        return {}
    problems.extend(f"{kind}/{bad.line()}" for bad in refused)
    return tree


def _read_log(path: Path, limit: int = 1_000_000) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return ""
    if len(data) > limit:  # a flood of stderr: keep the end, where the trouble is
        data = b"[... log cut ...]\n" + data[-limit:]
    return data.decode("utf-8", errors="replace")
