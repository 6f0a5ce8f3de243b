"""What runs in the student's kernel during grading: call probe functions, send back data.

The grader sends this module's source, ``wire``'s source, the assignment's probe module
and a plan (which probe to call on which notebook objects with which inputs) into the
kernel as one cell. ``run`` calls each probe, encodes what it returned (or the exception
the student's code raised) and displays the lot as one output of the MIME type
``wire.MIME``. Nothing here decides a grade: the grader compares the data with its own
reference afterwards. Like ``wire``, it imports only the standard library at the top.

Every probe call runs inside ``probe_context``, the one for all assignments: torch's RNG
forked and seeded (``PROBE_SEED`` of the probe module, default 0), Python's and numpy's
random state put back afterwards, torch on ``PROBE_THREADS`` threads if the module sets it,
and inside the module's ``PROBE_CONTEXTS`` (context-manager factories, e.g. a1's
"gradients on, TF32 off"), so a probe module declares settings, not its own context.
"""
from __future__ import annotations

import contextlib
import functools
import io
import signal
import sys
import traceback
import warnings

CALL_TIMEOUT_S = 60


class ProbeError(Exception):
    """Raised by a probe for a message about the student's code (shown as is)."""


class _Timeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _where(exc: BaseException) -> str:
    """The innermost frame of the student's notebook code, as ' (line N: ...)'."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith("<ipython-input") or "ipykernel_" in f.filename
              or f.filename.startswith("/tmp/ipykernel")]
    if not frames:
        return ""
    f = frames[-1]
    return f" (in your notebook, line {f.lineno}: {(f.line or '').strip()[:120]})"


def describe(exc: BaseException) -> str:
    if isinstance(exc, ProbeError):
        return str(exc)[:600]
    if isinstance(exc, _Timeout):
        return f"did not finish within {CALL_TIMEOUT_S} s"
    text = f"{type(exc).__name__}: {exc}".strip()
    return f"your code raised {text[:400]}{_where(exc)}"


class Student:
    """The notebook objects a unit grades, by the unit's parameter names, and its options."""

    def __init__(self, objects: dict, options: dict, names: dict | None = None):
        self._objects, self.options = objects, options
        self._names = names or {}

    def __getitem__(self, name):
        obj = self._objects.get(name, _MISSING)
        if obj is _MISSING:
            shown = self._names.get(name, name)
            if shown.startswith("__obj_"):  # a local run: the unit's own parameter name
                shown = name
            raise ProbeError(f"{shown} is not defined (run the cell that defines it)")
        return obj

    def get(self, name, default=None):
        obj = self._objects.get(name, _MISSING)
        return default if obj is _MISSING else obj


_MISSING = object()


def _call(fn, student, args, wire):
    sink = io.StringIO()
    old = None
    try:
        old = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, CALL_TIMEOUT_S)
    except (ValueError, OSError):  # not the main thread: no per-call limit
        old = None
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            value = fn(student, **args)
        return {"ok": True, "value": wire.encode(value)}
    except BaseException as exc:  # the student's code may raise anything, SystemExit included
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"ok": False, "error": describe(exc)}
    finally:
        if old is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- op guard
#
# A unit with a from-scratch policy (``autograder.from_scratch``) names torch ops its code
# must not call (``lstm_cell``). While its probes run, a torch function mode makes those
# ops raise: every route to them (``torch.lstm_cell``, ``torch._VF``, ``torch._C.
# _VariableFunctions``, ``torch.ops.aten``, ``nn.LSTMCell``'s forward, a module unpickled or
# called through ``torch.func.functional_call``) goes through torch's function-mode
# dispatch. Only calls made directly by the probe module's ``TRUSTED_OP_CALLERS`` (the
# grader's stand-in cells) pass. The grader's first cell installs the guard before any
# student code runs, so the mode class and torch's push/pop functions it uses are the
# originals, kept in a closure.

GUARD_KEY = "_course_op_guard"


def install_guard():
    """Create the op guard once per kernel; returns its ``watching`` context manager."""
    held = sys.modules.get(GUARD_KEY)
    if held is not None and callable(getattr(held, "watching", None)):
        return held.watching
    import types

    module = types.ModuleType(GUARD_KEY)
    module.watching = _make_guard()
    sys.modules[GUARD_KEY] = module
    return module.watching


def _make_guard():
    import torch
    from torch.overrides import TorchFunctionMode

    push, pop, getframe = torch.overrides._push_mode, torch.overrides._pop_mode, sys._getframe
    state = {"ops": frozenset(), "trusted": frozenset(), "seen": []}

    class _ForbiddenOps(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            base = (getattr(func, "__name__", "") or "").split(".")[0]
            if base in state["ops"] and getframe(1).f_code not in state["trusted"]:
                state["seen"].append(base)
                raise RuntimeError(f"torch's {base} may not be used here (the grader stopped it)")
            return func(*args, **(kwargs or {}))

    @contextlib.contextmanager
    def watching(ops, trusted_codes):
        state["ops"], state["trusted"], state["seen"] = frozenset(ops), frozenset(trusted_codes), []
        mode = _ForbiddenOps()
        push(mode)
        try:
            yield state["seen"]
        finally:
            try:
                pop()
            except Exception:  # the student's code left the mode stack changed
                pass
            state["ops"] = frozenset()
    return watching


def _guarded_call(call, guard, ns):
    """``call()`` with the plan's forbidden ops raising; a result that saw one says so."""
    if not guard or not guard.get("ops"):
        return call()
    codes = [getattr(f, "__code__", None) for f in ns.get("TRUSTED_OP_CALLERS", ())]
    with install_guard()(guard["ops"], [c for c in codes if c is not None]) as seen:
        result = call()
    if seen:
        advice = guard.get("advice") or ""
        message = (f"your code called torch's {seen[0]} while it was checked, which this unit does not allow"
                   + (f" ({advice})" if advice else ""))
        return {"ok": False, "error": message, "forbidden": message}
    return result


def _seed(torch, seed: int, devices: list) -> None:
    """``torch.manual_seed(seed)`` for the generators a probe can use: the CPU's and, where
    there are any, CUDA's. (torch.manual_seed also queues a seed for each accelerator
    library not yet started, with a captured stack each time: most of a probe call's
    overhead on a machine without one.)"""
    torch.default_generator.manual_seed(seed)
    if devices:
        torch.cuda.manual_seed_all(seed)


@contextlib.contextmanager
def probe_context(ns: dict):
    """The context of every probe call; ``ns``: the probe module's namespace (see above)."""
    import random

    import numpy as np
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    py_state, np_state = random.getstate(), np.random.get_state()
    threads = torch.get_num_threads()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng(devices=devices))
            if ns.get("PROBE_THREADS"):
                torch.set_num_threads(int(ns["PROBE_THREADS"]))
            for make in ns.get("PROBE_CONTEXTS", ()):
                stack.enter_context(make())
            _seed(torch, int(ns.get("PROBE_SEED", 0)), devices)
            yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(py_state)
        np.random.set_state(np_state)


@functools.lru_cache(maxsize=16)
def _compiled(probes_source: str):
    """The probe module's code (a code object is immutable: each run still executes it in
    a namespace of its own). In a kernel this module is loaded afresh for each grade cell;
    in the grader's process (``Unit.run_local``) it saves compiling per call."""
    return compile(probes_source, "<grader probes>", "exec")


def run(user_ns: dict, plan: dict, probes_source: str, wire, emit: bool = True) -> dict:
    """Call every probe of ``plan`` and return (and display) the encoded results."""
    ns = {"__name__": "course_probes", "ProbeError": ProbeError}
    exec(_compiled(probes_source), ns)
    objects = {param: user_ns.get(name, _MISSING) for param, name in plan["objects"].items()}
    student = Student(objects, plan.get("options", {}), plan["objects"])
    guard = plan.get("guard")
    results = []
    for call in plan["calls"]:
        fn = ns.get(call["probe"])
        if not callable(fn):
            results.append({"ok": False, "error": f"grader error: no probe {call['probe']!r}"})
            continue
        args = wire.decode(call["args"])
        one = (lambda fn=fn, args=args: _call(fn, student, args, wire))
        try:
            with probe_context(ns):
                results.append(_guarded_call(one, guard, ns))
        except Exception as exc:
            results.append({"ok": False, "error": describe(exc)})
    payload = {"nonce": plan["nonce"], "unit": plan["unit"], "results": results}
    if emit:
        from IPython.display import display

        display({wire.MIME: payload, "text/plain": f"(grader: {len(results)} probe calls for {plan['unit']})"},
                raw=True)
    return payload


BOOT = """\
def __course_grader_probe():
    import base64, json, sys, types
    def _load(name, b64):
        module = types.ModuleType(name)
        exec(compile(base64.b64decode(b64).decode("utf-8"), "<grader " + name + ">", "exec"), module.__dict__)
        return module
    wire = _load("course_wire", "{wire}")
    side = _load("course_kernel_side", "{side}")
    plan = json.loads(base64.b64decode("{plan}").decode("utf-8"))
    side.run(globals(), plan, base64.b64decode("{probes}").decode("utf-8"), wire)
__course_grader_probe()
del __course_grader_probe
"""

# The grader's first cell: installs the op guard before any student code runs.
GUARD_BOOT = """\
def __course_grader_guard():
    import base64, types
    side = types.ModuleType("course_kernel_side")
    exec(compile(base64.b64decode("{side}").decode("utf-8"), "<grader course_kernel_side>", "exec"), side.__dict__)
    try:
        side.install_guard()
    except ImportError:  # no torch in this kernel: nothing to guard
        pass
__course_grader_guard()
del __course_grader_guard
"""
