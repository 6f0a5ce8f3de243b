"""What runs inside the forked grading process (see jobs.py for the process itself).

nbgrader autogrades the staged submission in its own small course folder with its own
SQLite gradebook, then writes feedback. Everything nbgrader does is unchanged except the
execute step: ``GuardedExecute`` behaves exactly like nbgrader's ``Execute`` until
something goes wrong, then it records a one-line reason, restarts a dead or stuck kernel
(silently replaying the cells that had run, so later cells still see the student's
definitions), drops floods of output and stops starting cells at the deadline. The kernel
starts through sandbox.py: in a bubblewrap sandbox (unless the run opted out), with a
memory cap and no network.

This module is heavy to import (nbgrader, nbconvert, jupyter_client); the fork server
imports it once, and `course grade`'s own process never does.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from queue import Empty

from .model import skip_slow_format_checks

skip_slow_format_checks()  # before nbclient, nbformat and nbgrader import jsonschema

from jupyter_client.asynchronous import AsyncKernelClient  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_output
from traitlets import Bool, DottedObjectName, Float, Integer, List, Type, Unicode
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute
from nbgrader.utils import capture_log
import nbconvert.exporters.html  # noqa: F401  (preloaded in the fork server for feedback)

from . import cgroups, gradebook
from .feedback import FeedbackExporter
from .model import KERNELS_FILE, LOG_FILE, RESULT_FILE, GradeJob
from . import zygote
from .sandbox import KERNEL_UID
from .sandbox import kernel_place as sandbox_kernel_place
from .sandbox import plan as sandbox_plan

SANDBOX_SCRIPT = str(Path(__file__).with_name("sandbox.py"))

# Set inside the grading process only (one submission per process).
SANDBOX: dict = {}
EVENTS: list[str] = []
TIMED_OUT: list[bool] = []
# Seconds spent per part of the job in this process (see model.TIMING_PARTS), for the
# benchmark and the report: measured, never used to decide anything.
TIMINGS: dict[str, float] = {}
# The grading process's end of its pipe to grade_job (jobs.py), when the job's kernel is
# started ahead: "ready" once the kernel is up with the modules preloaded, then wait for
# "go" (a free cell slot on this worker) before the first cell; "done" after autograde.
TURN: list = []

# Trusted start-up code: run silently (no history, no execution count, no names left in
# the namespace) in each fresh kernel before the submission's first cell, so the
# notebook's own imports of these modules take no time. Which modules: those the
# instructor's source notebook imports, of zygote.PRELOAD_PACKAGES (the hidden grader
# packages are never among them, and cannot be imported in the sandbox anyway). Like the
# kernel's start, it does not count against the submission's wall-clock limit. A kernel
# forked from the zygote (zygote.py) has them already: the code then only finds them.
PRELOAD_CODE = """\
def __course_grader_preload():
    import importlib
    for name in {names!r}:
        try:
            importlib.import_module(name)
        except Exception:  # the notebook's own import will say why
            pass
__course_grader_preload()
del __course_grader_preload
"""


def preload_modules(source_dir: Path) -> list[str]:
    """The modules to preload for an assignment (zygote.preload_modules of its source
    notebooks)."""
    texts = []
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        try:
            texts.append(path.read_text())
        except (OSError, UnicodeDecodeError):
            continue
    return zygote.preload_modules(texts)


def _wait_for_turn(preload_s: float) -> float:
    """Tell grade_job the kernel is ready (and how long the preload took, which its
    wall-clock limit does not count) and wait for its go; seconds waited."""
    if not TURN:
        return 0.0
    clock = time.perf_counter()
    try:
        TURN[0].send(("ready", preload_s))
        TURN[0].recv()
    except (EOFError, OSError):  # grade_job is gone: this process dies with it
        TURN.clear()
    return time.perf_counter() - clock


def _turn_done() -> None:
    """The cells are over: the worker's slot may go to the next job's waiting kernel.
    (A second notebook of the same submission then runs without waiting for a slot.)"""
    if TURN:
        try:
            TURN[0].send("done")
        except (EOFError, OSError):
            pass
        TURN.clear()


def _spent(part: str, seconds: float) -> None:
    TIMINGS[part] = TIMINGS.get(part, 0.0) + max(0.0, seconds)


def _kernel_seconds(reply: dict) -> float | None:
    """The time the kernel itself spent on a cell: from its own start stamp to its reply."""
    try:
        started, done = reply["metadata"]["started"], reply["header"]["date"]
        from datetime import datetime

        started = datetime.fromisoformat(started) if isinstance(started, str) else started
        done = datetime.fromisoformat(done) if isinstance(done, str) else done
        return (done - started).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def _cell_part(cell) -> str:
    """Which timing part a cell's kernel time counts in: ``imports`` (mostly import
    statements), ``checks`` (a grade cell: the tests) or ``cells`` (the rest)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return "checks"
    import ast

    try:
        body = ast.parse(cell.source).body
    except (SyntaxError, ValueError):
        return "cells"
    imports = sum(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)
    return "imports" if imports and imports >= len(body) - imports else "cells"  # mostly imports


# --------------------------------------------------------------------------- kernel


class ReadyKernelClient(AsyncKernelClient):
    """jupyter_client's asynchronous client, but ready as soon as the kernel is.

    Its ``wait_for_ready`` ends by reading IOPub until nothing arrives for 0.2 s, to drop
    the start-up's status messages: 0.2 s of every kernel start spent waiting. Those
    messages answer no cell (nbclient reads only the replies to the cell it sent), so here
    the ones already there are dropped and the wait ends at once. Otherwise the same: a
    kernel_info reply on the shell channel, then one IOPub message (its subscription works),
    asking again until ``timeout``; a kernel that dies first is an error."""

    async def _wait_until_ready(self, timeout: float | None = None) -> None:
        end = time.time() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await ensure_async(self.shell_channel.get_msg(timeout=1))
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await ensure_async(self.iopub_channel.get_msg(timeout=0.2))
                except Empty:
                    pass  # not subscribed yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.time() > end:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
        while True:
            try:
                await ensure_async(self.iopub_channel.get_msg(timeout=0.005))
            except Empty:
                return

    wait_for_ready = _wait_until_ready


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel through sandbox.py. The kernel and this process talk over unix
    sockets in a runtime folder of the job's own (the only host folder the sandbox can
    write): the kernel's network namespace has no route to ours.

    `course grade` sets SANDBOX in each grading process. Named in nbgrader_config.py
    (``c.Execute.kernel_manager_class``), it also sandboxes plain `nbgrader autograde`:
    then it sets itself up (bubblewrap from PATH, a runtime folder per kernel manager, the
    ``memory_mb`` cap, no network) and refuses to start a kernel without bubblewrap unless
    the environment says ``COURSE_NO_SANDBOX=1``.

    Each kernel start gets a control group of its own (cgroups.py) holding the kernel and
    all it starts, capped at ``memory_mb`` (tmpfs and shared memory included) and
    ``max_processes``; shutting the kernel down (or restarting it) kills what is left in
    the group and removes it.
    """

    memory_mb = Integer(4096, help="memory cap of a kernel started by plain nbgrader, MB: the whole job "
                                   "(control group) and each process's address space (0: none)"
                        ).tag(config=True)
    max_processes = Integer(cgroups.DEFAULT_MAX_PROCESSES,
                            help="processes and threads of a kernel started by plain nbgrader, all "
                                 "together (0: no cap)").tag(config=True)

    client_class = DottedObjectName("coursectl.grading.worker.ReadyKernelClient")
    client_factory = Type(klass=ReadyKernelClient)

    preloaded = Bool(False, help="plain nbgrader, where it runs as root: fork each kernel from a process that "
                                 "has imported what the assignment's source notebooks import (zygote.py), as "
                                 "`course grade` does").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._own_runtime: str | None = None
        self.forked_pid: int | None = None  # the kernel's host pid, when it came from the zygote
        self._fork: tuple | None = None     # (kernel command, launcher options) while a holder is launched
        self._preload: list[str] = []       # plain nbgrader with `preloaded`: the zygote's modules
        self._group: cgroups.JobGroup | None = None
        self.sandbox = SANDBOX if SANDBOX else self._standalone()
        if self.sandbox.get("no_network") or self.sandbox.get("bwrap"):
            name = f"k{os.urandom(4).hex()}"
            self.transport = "ipc"
            self.ip = os.path.join(self.sandbox["runtime_dir"], name)
            # Not jupyter_client's default (a temporary file in /tmp, which the sandbox hides).
            self.connection_file = os.path.join(self.sandbox["runtime_dir"], f"{name}.json")

    def _standalone(self) -> dict:
        if os.environ.get("COURSE_NO_SANDBOX") == "1":
            return {}
        bwrap, line = _standalone_probe()
        if not bwrap:
            raise RuntimeError(f"refusing to run a submission's kernel without the sandbox: {line}. "
                               "Install bubblewrap (apt-get install bubblewrap), or set COURSE_NO_SANDBOX=1 "
                               "to run it unsandboxed at your own risk.")
        self._own_runtime = tempfile.mkdtemp(prefix="krt")
        return dict(sandbox_plan(self._own_runtime), bwrap=bwrap, memory_mb=self.memory_mb or None,
                    max_processes=self.max_processes or None, no_network=True,
                    preloaded=self.preloaded and zygote.supported() is None)

    async def _async_pre_start_kernel(self, **kw):
        cwd = kw.get("cwd")
        if self._own_runtime and cwd and "files_from" in self.sandbox:
            # nbgrader runs the kernel in autograded/<student>/<assignment>/: its files only.
            up = Path(cwd).resolve().parents[1] if len(Path(cwd).resolve().parents) > 1 else None
            self.sandbox["files_from"] = str(up) if up is not None and up.name == "autograded" else None
            if self.sandbox.get("preloaded"):  # what course/source/<assignment>/ imports
                source = up.parent / "source" / Path(cwd).resolve().name if self.sandbox["files_from"] else None
                self._preload = preload_modules(source) if source is not None and source.is_dir() else []
        return await super()._async_pre_start_kernel(**kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        self._remove_group()
        if self._own_runtime and not restart:
            shutil.rmtree(self._own_runtime, ignore_errors=True)

    def _make_group(self) -> dict:
        """The whole-job limits for the next kernel start: a fresh control group (the
        part of OPTIONS_JSON the launcher reads), or why there is none."""
        self._remove_group()  # a kernel that died without a shutdown
        memory_mb, max_processes = self.sandbox.get("memory_mb"), self.sandbox.get("max_processes")
        if not memory_mb and not max_processes:
            return {"cgroup": None, "cgroup_why": "switched off"}
        mech = cgroups.detect()
        if mech.kind == "none":
            return {"cgroup": None, "cgroup_why": mech.why}
        try:
            self._group = cgroups.create_job(memory_mb, max_processes, mechanism=mech)
            _LIVE_GROUPS.append(self._group)
        except OSError as exc:
            # The machine has control groups but refused this one: say so for this submission.
            EVENTS.append(f"whole-job limits not applied ({exc}); per-process limits only")
            self.log.warning("whole-job limits not applied: %s", exc)
            return {"cgroup": None, "cgroup_why": str(exc)}
        return {"cgroup": {"procs": self._group.procs_files(), "describe": self._group.describe()}}

    def _remove_group(self) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        if group in _LIVE_GROUPS:
            _LIVE_GROUPS.remove(group)
        hit = cgroups.events(group)
        mb = (group.memory_bytes or 0) // 2**20
        if hit["oom_kill"]:
            EVENTS.append(f"the submission reached the whole-job memory cap ({mb} MB, tmpfs and shared memory "
                          f"included): {hit['oom_kill']} of its processes killed")
        if hit["pids_max"]:
            EVENTS.append(f"the submission reached the cap of {group.max_processes} processes and threads: "
                          f"{hit['pids_max']} starts refused")
        if hit["oom_kill"] or hit["pids_max"]:
            self.log.warning("%s", EVENTS[-1])
        if not cgroups.remove_job(group):
            self.log.warning("the kernel's control group %s could not be removed", group.folders)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        self._fork, self.forked_pid = None, None
        if not self.sandbox:
            return cmd
        if self.sandbox.get("bwrap"):
            # A signal to the bwrap process never reaches the kernel inside its PID
            # namespace: interrupt (cell timeouts) with a message on the control channel.
            self.kernel_spec.interrupt_mode = "message"
        opts = dict(self.sandbox, **self._make_group())
        for key in ("zygote", "zygote_pid", "preloaded"):
            opts.pop(key, None)
        forks = self.sandbox.get("zygote") or self.sandbox.get("preloaded")
        if forks and self.sandbox.get("bwrap") and cmd[:3] == [sys.executable, "-m", "ipykernel_launcher"]:
            # The sandbox's PID 1 is a holder; the kernel comes forked from the zygote.
            self._fork = (cmd, opts)
            return self._launcher(dict(opts, as_pid_1=True), zygote.holder_command())
        return self._launcher(opts, cmd)

    @staticmethod
    def _launcher(opts: dict, cmd: list[str]) -> list[str]:
        return [sys.executable, "-I", SANDBOX_SCRIPT, json.dumps(opts), "--", *cmd]

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        await super()._async_launch_kernel(kernel_cmd, **kw)
        if not self._fork:
            return
        cmd, opts = self._fork
        try:
            holder = zygote.find_holder(self.provisioner.process.pid)
            cwd, env = sandbox_kernel_place(opts, kw.get("cwd") or os.getcwd(), kw.get("env") or os.environ)
            address, pid = self.sandbox.get("zygote"), self.sandbox.get("zygote_pid")
            if not address:  # plain nbgrader: this process's own zygote for these kernels
                found = zygote.ZYGOTES.address(self._preload, env, self.sandbox.get("home_files", []))
                if found is None:
                    raise RuntimeError(zygote.supported() or "no zygote")
                address, pid = found
            zygote.request_kernel(address, {
                "holder": holder, "argv": cmd, "cwd": cwd, "env": env, "uid": KERNEL_UID, "gid": KERNEL_UID,
                **{k: opts.get(k) for k in ("memory_mb", "cgroup", "cgroup_why", "max_processes")}}, pid=pid)
            self.forked_pid = zygote.kernel_of(holder)
        except (RuntimeError, OSError, ValueError) as exc:
            # Not forked: the ordinary start, in the same control group.
            self.log.warning("kernel not forked from the preloaded process (%s): starting it afresh", exc)
            await self.provisioner.kill()
            await self.provisioner.wait()
            self._fork = None
            await super()._async_launch_kernel(self._launcher(opts, cmd), **kw)


# Job groups made in this process and not yet removed: a kernel whose start failed, or a
# manager never shut down, leaves one; removed when this process ends.
_LIVE_GROUPS: list[cgroups.JobGroup] = []


def remove_live_groups() -> None:
    while _LIVE_GROUPS:
        cgroups.remove_job(_LIVE_GROUPS.pop(), timeout=2.0)


atexit.register(remove_live_groups)  # plain nbgrader; child_main calls it itself (os._exit)

_PROBED: list[tuple[str | None, str]] = []


def _standalone_probe() -> tuple[str | None, str]:
    """Probe bubblewrap once per process (plain nbgrader starts one kernel per notebook)."""
    if not _PROBED:
        from .sandbox import find_bwrap, probe_bwrap

        bwrap = find_bwrap()
        ok, line = probe_bwrap(bwrap)
        _PROBED.append((bwrap if ok else None, line))
    return _PROBED[0]


def _error_output(ename: str, text: str):
    return new_output("error", ename=ename, evalue=text, traceback=[f"{ename}: {text}"])


def _cell_name(cell, index: int) -> str:
    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"cell {gid}" if gid else f"cell #{index + 1}"


class GuardedExecute(Execute):
    """nbgrader's Execute, made to survive whatever the notebook does."""

    deadline = Float(0.0, help="time.time() after which no further cell starts (0: none)").tag(config=True)
    max_output_bytes = Integer(5_000_000, help="output kept per cell; the rest is dropped").tag(config=True)
    max_restarts = Integer(3, help="kernel restarts before the remaining cells are skipped").tag(config=True)
    preload = List(Unicode(), [], help="modules the trusted start-up code imports in each new kernel before "
                                       "the first cell (preload_modules)").tag(config=True)

    def __init__(self, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        # The outputs are final once the last cell ran; a graceful shutdown only waits
        # (sometimes seconds) for the kernel's own cleanup.
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(**kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._ran: list[int] = []        # cells whose effects a restarted kernel must replay
        self._stop: str | None = None    # once set, remaining cells are not run
        self._restarts = 0
        self._out_bytes: dict[int, int] = {}
        self._cut: set[int] = set()
        self._started = time.perf_counter()
        self._ready: float | None = None  # the kernel answered
        self._go: float | None = None     # preloaded, and its turn came: the first cell is sent
        try:
            return super().preprocess(nb, resources, km)
        finally:
            _turn_done()  # the kernel is gone: judging and feedback need no cell slot
            end = time.perf_counter()
            ready = self._ready or end
            _spent("kernel_start", ready - self._started)
            _spent("execute", end - (self._go or ready))  # the cells, messaging and the kernel's shutdown

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        if self._ready is not None:  # not the first kernel of this notebook (a restart replays cells)
            return kc
        self._ready = time.perf_counter()
        preload_s = 0.0
        if self.preload:
            await self._preload(kc)
            preload_s = time.perf_counter() - self._ready
            _spent("preload", preload_s)
        waited = _wait_for_turn(preload_s)
        _spent("waiting", waited)
        if self.deadline:
            # The wall-clock limit counts the submission's time, not our start-up code nor the queue.
            self.deadline += preload_s + waited
        self._go = time.perf_counter()
        return kc

    # nbclient's setup_kernel calls the blocking wrapper, bound to its own coroutine.
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def _preload(self, kc) -> None:
        """The trusted start-up code (PRELOAD_CODE), before any of the notebook's cells."""
        msg_id = kc.execute(PRELOAD_CODE.format(names=tuple(self.preload)), silent=True, store_history=False,
                            allow_stdin=False)
        end = time.monotonic() + max(30.0, float(self.timeout or 0))
        while time.monotonic() < end:
            try:
                reply = await ensure_async(kc.shell_channel.get_msg(timeout=max(0.1, end - time.monotonic())))
            except Empty:
                break
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return
        self.log.warning("the kernel did not finish preloading %s", ", ".join(self.preload))

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        if self.deadline:
            left = max(1, int(self.deadline - time.time()) + 1)
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        if self._stop is None and self.deadline and time.time() >= self.deadline:
            self._stop = "the wall-clock limit was reached"
            TIMED_OUT.append(True)
            EVENTS.append(f"wall-clock limit reached before {_cell_name(cell, index)}; later cells not run")
        if self._stop:
            cell.outputs = [_error_output("NotRun", f"not run: {self._stop}")]
            cell.execution_count = None
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except Exception as exc:  # the kernel died or stopped answering
            why = self._kernel_trouble(exc)
            cell.outputs.append(_error_output("KernelDied", why))
            EVENTS.append(f"{_cell_name(cell, index)}: {why}")
            self._recover()
            return cell, resources
        self._ran.append(index)
        return cell, resources

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        cell, index, reply = kwargs["cell"], kwargs["cell_index"], kwargs["execute_reply"]
        content = (reply or {}).get("content", {})
        took = _kernel_seconds(reply or {})
        if took is not None:
            _spent(_cell_part(cell), took)
        if content.get("status") == "error" and content.get("ename") == "CellTimeoutError":
            TIMED_OUT.append(True)
            if self.deadline and time.time() >= self.deadline - 1:
                EVENTS.append(f"{_cell_name(cell, index)}: stopped at the wall-clock limit")
                self._stop = "the wall-clock limit was reached"
            else:
                EVENTS.append(f"{_cell_name(cell, index)}: timed out after {self.timeout} s (cell time limit)")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") == "SystemExit":
                EVENTS.append(f"{_cell_name(cell, index)}: called sys.exit(); the kernel kept running")
            if out.get("output_type") == "error" and (
                    out.get("ename") == "MemoryError" or "allocate" in str(out.get("evalue", ""))):
                limit = f" (limit {SANDBOX['memory_mb']} MB)" if SANDBOX.get("memory_mb") else ""
                EVENTS.append(f"{_cell_name(cell, index)}: ran out of memory{limit}")
                break

    def _kernel_trouble(self, exc: Exception) -> str:
        code = None
        try:
            code = self.km.provisioner.process.poll()
        except Exception:
            pass
        if code is not None:
            if getattr(self.km, "sandbox", SANDBOX).get("bwrap") and code > 128:
                code = 128 - code  # bwrap exits 128+N when the kernel dies of signal N
            if code < 0:
                try:
                    name = signal.Signals(-code).name
                except ValueError:
                    name = f"signal {-code}"
                # Native code that cannot allocate under the address-space cap aborts.
                hint = (f" (maybe the {SANDBOX['memory_mb']} MB memory cap; see --memory-mb)"
                        if name == "SIGABRT" and SANDBOX.get("memory_mb") else "")
                return f"the kernel was killed by {name}{hint}"
            return f"the kernel exited (code {code})"
        if isinstance(exc, DeadKernelError):
            return "the kernel died"
        if isinstance(exc, TimeoutError):
            TIMED_OUT.append(True)
            return "the kernel ignored the interrupt after the time limit and was restarted"
        return f"the kernel failed ({type(exc).__name__}: {exc})"

    def _recover(self) -> None:
        """Fresh kernel, then silently re-run the cells that had run, so that cells
        after the crash are graded on the student's definitions."""
        self._restarts += 1
        if self._restarts > self.max_restarts:
            self._stop = f"the kernel failed {self._restarts} times"
            return
        try:
            run_sync(self.km.restart_kernel)(now=True)
            self._wait_for_iopub()
            for j in self._ran:
                cell = self.nb.cells[j]
                msg_id = self.kc.execute(cell.source, silent=True, store_history=False)
                if self.wait_for_reply(msg_id, cell) is None:
                    raise RuntimeError(f"replaying {_cell_name(cell, j)} timed out")
        except Exception as exc:
            self._stop = f"the kernel could not be restarted ({exc})"
            EVENTS.append(f"kernel restart failed: {exc}; later cells not run")

    def _wait_for_iopub(self, seconds: float = 20.0) -> None:
        """Block until the restarted kernel's output channel reaches us. The client's
        subscription reconnects on its own, but output published before it does is lost,
        and a cell would then wait for an end-of-output message that never comes."""
        get = run_sync(self.kc.iopub_channel.get_msg)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg_id = self.kc.kernel_info()
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                try:
                    msg = get(timeout=0.1)
                except Empty:
                    continue
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    return
        raise RuntimeError("the restarted kernel sends no output")

    def output(self, outs, msg, display_id, cell_index):
        # Keep memory bounded when a cell prints hundreds of MB. What decides the grade is
        # kept: errors, the execute result, and the first piece of each stream.
        content, kind = msg["content"], msg["msg_type"]
        if kind == "stream":
            size = len(content.get("text", ""))
        elif kind == "display_data":
            size = sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in content.get("data", {}).values())
        else:
            size = 0
        used = self._out_bytes.get(cell_index, 0) + size
        self._out_bytes[cell_index] = used
        if size and used > self.max_output_bytes:
            seen = any(o.get("output_type") == "stream" and o.get("name") == content.get("name") for o in outs)
            if kind == "stream" and not seen:
                msg = dict(msg, content=dict(content, text=content["text"][:2000]))
            else:
                if cell_index not in self._cut:
                    self._cut.add(cell_index)
                    mb = self.max_output_bytes / 1e6
                    EVENTS.append(f"{_cell_name(self.nb.cells[cell_index], cell_index)}: "
                                  f"printed more than {mb:g} MB; the rest of its output was dropped")
                    outs.append(new_output("stream", name="stdout",
                                           text=f"\n[grader: output cut after {mb:g} MB]\n"))
                return None
        return super().output(outs, msg, display_id, cell_index)


# --------------------------------------------------------------------------- one submission


def _load_config(course: Path, job: GradeJob) -> Config:
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    if job.course_id:
        config.CourseDirectory.course_id = job.course_id
    if job.limits.cell_timeout:
        config.Execute.timeout = int(job.limits.cell_timeout)
    steps = config.Autograde.get("autograde_preprocessors") or Autograde.class_traits()["autograde_preprocessors"].default()
    config.Autograde.autograde_preprocessors = [
        GuardedExecute if p is Execute or p in ("nbgrader.preprocessors.Execute", "Execute") else p for p in steps]
    if job.secret:  # the course's secret for drawing check inputs (coursectl/secret.py): in memory only
        config.InjectProbes.secret = job.secret
    if "exporter_class" not in config.GenerateFeedback:  # a course's own exporter wins
        config.GenerateFeedback.exporter_class = FeedbackExporter
    config.GuardedExecute.deadline = time.time() + float(job.limits.timeout)
    config.GuardedExecute.max_output_bytes = int(job.limits.max_output_bytes or 5_000_000)
    config.GuardedExecute.preload = preload_modules(course / "source" / job.assignment)
    return config


def _last_error_line(result: dict) -> str:
    text = (result.get("error") or "").strip() or (result.get("log") or "").strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "Error" in ln]
    return (errors or lines or ["unknown error"])[-1][:300]


def autograde_here(job: GradeJob, course: Path) -> dict:
    """Autograde (and write feedback for) the submission staged in ``course``, in this
    process; returns what result.json holds."""
    assignment, student = job.assignment, job.student
    clock = time.perf_counter()
    os.chdir(course)
    config = _load_config(course, job)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id, coursedir.student_id = assignment, student
    db_url = coursedir.db_url

    if job.prior:
        with gradebook.open_gradebook(db_url, coursedir.course_id) as gb:
            gradebook.seed_prior(gb, assignment, student, job.prior)

    problems: list[str] = []
    _spent("setup", time.perf_counter() - clock)
    clock = time.perf_counter()
    app = Autograde(coursedir=coursedir, config=config)
    app.force, app.create_student = True, True
    outcome = capture_log(app)
    _turn_done()  # (already, unless nbgrader never ran the notebook)
    # nbgrader's own steps around the kernel: copying, the trusted preprocessors that judge
    # the outputs, saving the scores in the gradebook.
    _spent("judging", time.perf_counter() - clock - sum(TIMINGS.get(k, 0.0) for k in (
        "kernel_start", "preload", "waiting", "execute")))
    status = "graded" if outcome["success"] else "failed"
    if not outcome["success"]:
        problems.append(f"nbgrader could not grade it: {_last_error_line(outcome)}")
    from coursectl import trusted

    problems.extend(dict.fromkeys(EVENTS + trusted.NOTES))  # keep order, drop repeats

    grades = None
    try:
        with gradebook.open_gradebook(db_url, coursedir.course_id) as gb:
            grades = gradebook.collect_grades(gb, assignment, student)
    except Exception as exc:  # a submission nbgrader never created
        problems.append(f"no grades recorded ({exc})")
        status = "failed"

    if status == "graded" and job.feedback:
        clock = time.perf_counter()
        fb = GenerateFeedback(coursedir=coursedir, config=config)
        fb.force = True
        fb_outcome = capture_log(fb)
        if not fb_outcome["success"]:
            problems.append(f"feedback not written: {_last_error_line(fb_outcome)}")
        _spent("feedback", time.perf_counter() - clock)
    return {"status": status, "problems": problems, "grades": grades, "timed_out": bool(TIMED_OUT),
            "timings": {k: round(v, 4) for k, v in TIMINGS.items()}}


def _die_with_parent() -> None:
    """Linux: be killed when the fork server goes (it goes when the process that runs
    ``grade_job`` dies, say a Dask worker killed mid-job), not left grading for nobody."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_main(job: GradeJob, workdir: str, runtime: str, bwrap: str | None, job_started: float = 0.0,
               turn=None, kernels_from: tuple[str, int] | None = None) -> None:
    """Entry point of the forked grading process. ``workdir`` holds the scratch course
    (see jobs.write_scratch_course); ``runtime`` is the kernel's own folder; ``bwrap``
    is bubblewrap's path, or None to run the kernel unsandboxed; ``job_started`` the
    time.time() at which the parent asked for this process (for the timings); ``turn``
    the pipe on which to wait for a cell slot once the kernel is ready (see TURN);
    ``kernels_from`` the (socket, pid) of the zygote to fork kernels from (zygote.py)."""
    _die_with_parent()
    TIMINGS.clear()
    TURN[:] = [turn] if turn is not None else []
    if job_started:
        TIMINGS["fork"] = max(0.0, time.time() - job_started)  # asking the fork server until running here
    work = Path(workdir)
    log = os.open(work / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)  # nbgrader's log and the kernel's stderr go to a file, not the terminal
    os.dup2(log, 2)
    os.environ.update(job.env)
    os.environ["JUPYTER_RUNTIME_DIR"] = runtime
    SANDBOX.clear()
    SANDBOX.update(memory_mb=job.limits.memory_mb, no_network=job.limits.no_network,
                   max_processes=job.limits.max_processes,
                   status_file=str(work / KERNELS_FILE), runtime_dir=runtime)
    if bwrap:
        # The kernel's working folder gets the files of autograded/<student>/<assignment>/.
        SANDBOX.update(sandbox_plan(runtime, files_from=str(work / "course" / "autograded")), bwrap=bwrap)
        if kernels_from:  # kernels forked preloaded from this zygote (zygote.py): (socket, pid)
            SANDBOX["zygote"], SANDBOX["zygote_pid"] = kernels_from
    try:
        result = autograde_here(job, work / "course")
    except BaseException as exc:
        traceback.print_exc()
        result = {"status": "failed", "grades": None, "timed_out": bool(TIMED_OUT),
                  "problems": [f"grading crashed: {type(exc).__name__}: {exc}"[:300]]}
    _turn_done()
    result["finished"] = time.time()  # the parent counts from here to having read it back
    tmp = work / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(work / RESULT_FILE)
    remove_live_groups()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (atexit of the fork server's modules)


# --------------------------------------------------------------------------- fork server warm-up


def warm_up() -> None:
    """Run nbgrader once, without a kernel, in the fork server.

    nbgrader and its libraries build a lot lazily on first use (compiled regexes, JSON
    schema validators, SQLAlchemy mappers, Jinja templates). Doing it here once means every
    forked grading process starts with it built, instead of paying for it per submission.
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    from nbgrader.converters import GenerateAssignment

    meta = {"grade": True, "grade_id": "t", "locked": True, "points": 1, "schema_version": 3,
            "solution": False, "task": False}
    sol = dict(meta, grade=False, grade_id="s", locked=False, solution=True)
    sol.pop("points")
    nb = new_notebook(cells=[new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
                                           metadata={"nbgrader": sol}),
                             new_code_cell("assert f() == 1\n### BEGIN HIDDEN TESTS\nassert f()\n### END HIDDEN TESTS",
                                           metadata={"nbgrader": meta})])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="warm-") as tmp:
        course = Path(tmp)
        (course / "source" / "w").mkdir(parents=True)
        nbformat.write(nb, course / "source" / "w" / "w.ipynb")
        gradebook.new_sqlite_gradebook(course / "gradebook.db", "warm-up", None).close()
        config = Config()
        config.CourseDirectory.root = str(course)
        # Feedback as the course writes it (templates, filters), so that the fork server
        # holds those templates compiled (feedback.COMPILED_TEMPLATES).
        from coursectl.nbg import html_template_dirs

        config.GenerateFeedback.exporter_class = FeedbackExporter
        config.HTMLExporter.extra_template_basedirs = html_template_dirs()
        config.HTMLExporter.sanitize_html = True
        config.HTMLExporter.filters = {"markdown2html": "coursectl.sanitize.markdown2html",
                                       "clean_html": "coursectl.sanitize.clean_html",
                                       "course_inline_mathjax": "coursectl.offline_math.InlineMathJax"}
        config.Autograde.autograde_preprocessors = [
            p for p in Autograde.class_traits()["autograde_preprocessors"].default() if p is not Execute]
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = "w"
        try:
            gen = GenerateAssignment(coursedir=coursedir, config=config)
            gen.force = True
            capture_log(gen)
            (course / "submitted" / "x").mkdir(parents=True)
            shutil.copytree(course / "release" / "w", course / "submitted" / "x" / "w")
            coursedir.student_id = "x"
            for converter in (Autograde, GenerateFeedback):
                app = converter(coursedir=coursedir, config=config)
                app.force = True
                capture_log(app)
        finally:
            os.chdir(cwd)
