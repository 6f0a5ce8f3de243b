"""What runs in the student's kernel during grading: call probe functions, send back data.

The grader sends this module's source, ``wire``'s source, the assignment's probe module
and a plan (which probe to call on which notebook objects with which inputs) into the
kernel as one cell. ``run`` calls each probe, encodes what it returned (or the exception
the student's code raised) and displays the lot as one output of the MIME type
``wire.MIME``. Nothing here decides a grade: the grader compares the data with its own
reference afterwards. Like ``wire``, it imports only the standard library at the top.
"""
from __future__ import annotations

import contextlib
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


def run(user_ns: dict, plan: dict, probes_source: str, wire, emit: bool = True) -> dict:
    """Call every probe of ``plan`` and return (and display) the encoded results."""
    ns = {"__name__": "course_probes", "ProbeError": ProbeError}
    exec(compile(probes_source, "<grader probes>", "exec"), ns)
    objects = {param: user_ns.get(name, _MISSING) for param, name in plan["objects"].items()}
    student = Student(objects, plan.get("options", {}), plan["objects"])
    context = ns.get("probe_context")
    results = []
    for call in plan["calls"]:
        fn = ns.get(call["probe"])
        if not callable(fn):
            results.append({"ok": False, "error": f"grader error: no probe {call['probe']!r}"})
            continue
        args = wire.decode(call["args"])
        if context is not None:
            try:
                with context():
                    results.append(_call(fn, student, args, wire))
            except Exception as exc:
                results.append({"ok": False, "error": describe(exc)})
        else:
            results.append(_call(fn, student, args, wire))
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
