"""Checks as declared units, with the verdict decided outside the student's process.

A *unit* is what one grade cell grades (``test_lstm_cell``): a name, the notebook objects
it receives (``objects``), its probe module, and a list of *checks*, each a short function
registered with ``@unit.check("what it checks", weight=w)``. A check runs in the grader:
it draws its inputs from the random generator it is given (its own, derived from the
course's secret: see ``Draws``), says which *probe* the student's kernel must call on them,
and returns a *judge* that compares what came back with the reference::

    from . import probes                  # the probe module (its source goes to the kernel)

    lstm = Unit("LSTMCell", grade_id="test_lstm_cell", objects=("cls",), probes=probes)

    @lstm.check("given state (B=3, D=5, H=4)", weight=1)
    def given_state(rng):
        case = draw_case(rng, 3, 5, 4)    # sizes fixed per check; only values are drawn
        def judge(out):                   # out: what probe "cell_case" returned
            assert_close(out["h"], reference(case), ATOL, RTOL, "h'")
        return Probe("cell_case", **case), judge

    check_lstm_cell = lstm.entry_point()  # the notebook's hidden test: check_lstm_cell(LSTMCell)

Points are written once, in the grade cell's nbgrader metadata (``points``); the grader
reads them there and splits them over the unit's checks by their declared weights (a
check of weight 3 beside one of weight 1 is worth 3/4 of the cell). Adding a check is
therefore a visible change of weights in its declaration. A 0-point cell whose hidden call
says ``extra_credit=2`` is graded out of 2 points of extra credit (coursectl.extra_credit).

A probe is a plain function in the assignment's probe module (``a1_rnn_cells/probes.py``),
which imports only torch, numpy and the standard library because its source is sent into
the kernel; it gets the student's objects and the inputs, and returns data (see ``wire``).
Several probes may be returned as a list; the judge then gets a list of outputs
(``per_case`` builds such checks from a list of drawn cases). Every probe call runs inside
the probe module's context (``kernel_side.probe_context``: torch seeded, RNGs kept).

Two ways to run a unit:
* in the grader (trusted): ``plan`` draws every check's inputs and gives the kernel its
  calls; after the notebook ran, ``judge`` scores the outputs (``coursectl.trusted``);
* in one process (the instructor's notebook, unit tests): ``run_local`` does both, with
  every value passed through the same encoding as in grading. The notebook one-liner
  ``check_lstm_cell(LSTMCell)`` does this when it runs outside grading, and reports the
  share of the cell's points its checks earned.

The judges' shared helpers live here too: ``assert_close`` (tensors), ``tensor_of``,
``number_of``, ``integer_of``, ``assert_equal_long``, ``close_or_known_mistake`` (a wrong
result that matches a typical mistake gets that mistake's message) and ``torch_threads``.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import io
import math
import random
import secrets
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import kernel_side, wire

LOCAL_SEED = 20240501  # run_local's default draw: the same every time, like the old checks


class CheckFailed(AssertionError):
    """A check found a wrong answer; the message says what was wrong."""


def require(condition, message: str) -> None:
    """Raise ``CheckFailed(message)`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def assert_close(actual, expected, atol: float, rtol: float, what: str) -> None:
    """Tensors ``actual`` (the student's) and ``expected`` agree in shape and within
    ``atol + rtol * |expected|``, compared in float64; the message names ``what`` and the
    largest difference. NaN where numbers are expected fails with its own message."""
    import torch

    if not isinstance(actual, torch.Tensor):
        raise CheckFailed(f"{what}: expected a tensor, got {type(actual).__name__}")
    if tuple(actual.shape) != tuple(expected.shape):
        raise CheckFailed(f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    a = actual.detach().double().cpu()
    e = expected.detach().double().cpu()
    if bool(torch.isnan(a).any()) and not bool(torch.isnan(e).any()):
        raise CheckFailed(f"{what}: contains NaN (is a tensor from torch.empty used before being filled? "
                          "a default state must be zeros)")
    if not torch.allclose(a, e, atol=atol, rtol=rtol):
        diff = (a - e).abs().max().item()
        raise CheckFailed(f"{what}: values differ (max abs diff {diff:.2e}, tolerance atol={atol:g}, rtol={rtol:g})")


def tensor_of(value, what: str):
    """``value`` if it is a torch tensor, else ``CheckFailed`` naming what came instead."""
    import torch

    if not isinstance(value, torch.Tensor):
        shown = value if isinstance(value, str) and value.startswith("<") else type(value).__name__
        raise CheckFailed(f"{what}: expected a torch tensor, got {shown}")
    return value


def number_of(value, what: str, *, kind: str | None = None) -> float:
    """A returned float, int or one-element tensor/array as a Python float (never a bool);
    ``kind``: the type name the kernel reported, for the message."""
    import torch

    if isinstance(value, (torch.Tensor, np.ndarray)):
        size = value.numel() if isinstance(value, torch.Tensor) else value.size
        require(size == 1, f"{what}: expected one number, got a tensor of shape {tuple(value.shape)}")
        value = value.reshape(-1)[0].item()
    require(isinstance(value, (int, float)) and not isinstance(value, bool),
            f"{what}: expected a number, got {kind or type(value).__name__}")
    return float(value)


def integer_of(value, what: str) -> int:
    """A returned whole number (an int, or a float/one-element tensor holding one)."""
    import torch

    if isinstance(value, (torch.Tensor, np.ndarray)) and (value.numel() if isinstance(value, torch.Tensor)
                                                          else value.size) == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        raise CheckFailed(f"{what}: expected an integer, got {value!r}"[:300])
    return int(value)


def assert_equal_long(got, want, what: str) -> None:
    """``got`` is a torch.long tensor equal to ``want``; the message shows the first wrong row."""
    import torch

    got = tensor_of(got, what)
    require(tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    require(got.dtype == torch.long, f"{what}: dtype {got.dtype}, expected torch.long (int64)")
    if not torch.equal(got, want):
        bad = int(torch.nonzero((got != want).reshape(len(want), -1).any(-1))[0]) if len(want) else 0
        raise CheckFailed(f"{what}: row {bad} is {got[bad].tolist()}, expected {want[bad].tolist()}")


def close_or_known_mistake(got, expected, atol: float, rtol: float, what: str, mistakes=()) -> None:
    """``assert_close``, except that a result matching one of ``mistakes`` (a list of
    ``(what that mistake gives, message)``) fails with that mistake's message."""
    import torch

    a = tensor_of(got, what).detach().double()
    if tuple(a.shape) == tuple(expected.shape) and torch.allclose(a, expected.double(), atol=atol, rtol=rtol):
        return
    for wrong, message in mistakes:
        wrong = wrong() if callable(wrong) else wrong  # computed only when needed
        require(not (tuple(a.shape) == tuple(wrong.shape)
                     and torch.allclose(a, wrong.detach().double(), atol=atol, rtol=rtol)), f"{what}: {message}")
    assert_close(got, expected, atol, rtol, what)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run with ``n`` torch threads (None: as is): tiny models run far faster on one thread,
    above all on a busy machine. Where torch is not imported yet nothing is changed, and
    torch is not imported for it: an assignment whose checks need no torch (its checks
    module imports none) is graded without loading it."""
    torch = sys.modules.get("torch")
    if n is None or torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def per_case(probes: Callable, compare: Callable):
    """A check function from ``draw(rng, **options) -> [case, ...]``: the kernel runs
    ``probes(cases)`` (a list of Probes, or one Probe whose output is a list, one output per
    case) and ``compare(case, output)`` judges each. Use under ``@unit.check``::

        @unit.check("padding='post'", weight=1)
        @per_case(lambda cases: Probe("pad", cases=cases), same_padding)
        def post(rng): ...
    """
    def wrap(draw):
        @functools.wraps(draw)
        def check(rng, **options):
            cases = draw(rng, **options)

            def judge(outs):
                require(isinstance(outs, (list, tuple)) and len(outs) == len(cases),
                        "expected one result per case")
                for case, out in zip(cases, outs):
                    compare(case, out)
            return probes(cases), judge
        return check
    return wrap


@dataclass
class Probe:
    """One call the kernel makes: probe function ``name`` with keyword inputs ``args``."""
    name: str
    args: dict

    def __init__(self, name: str, /, **args):
        self.name, self.args = name, args


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str = ""
    weight: float = 1.0


@dataclass
class UnitResult:
    """A unit's verdict: the checks that ran and the points they earned, ``points`` split
    over the checks by weight (None: graded outside a notebook; ``score`` is then the
    share earned, 0 to 1)."""
    unit: str
    grade_id: str
    points: float | None
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def share(self) -> float:
        """The passed checks' weight over all checks' weight."""
        total = sum(c.weight for c in self.checks)
        return sum(c.weight for c in self.checks if c.passed) / total if total > 0 else 0.0

    @property
    def score(self) -> float:
        points = 1.0 if self.points is None else self.points
        return min(points, max(0.0, round(points * self.share, 4)))

    def report(self) -> str:
        if self.points is None:
            earned = f"{self.share:.0%} of the grade cell's points"
        else:
            earned = f"{self.score:g} of {self.points:g} points"
        weights = ""
        if len({c.weight for c in self.checks}) > 1:
            weights = f" (weights {sum(c.weight for c in self.checks if c.passed):g} of " \
                      f"{sum(c.weight for c in self.checks):g})"
        lines = [f"{self.unit}: {self.passed}/{len(self.checks)} checks passed{weights} -> {earned}"]
        lines += [f"  FAILED {c.name}: {c.message}" for c in self.checks if not c.passed]
        return "\n".join(lines)

    @classmethod
    def failed(cls, unit: str, grade_id: str, points: float | None, name: str, message: str) -> "UnitResult":
        """A unit that could not be checked at all: one failed check with the reason."""
        return cls(unit, grade_id, points, [CheckResult(name, False, message)])


@dataclass
class Check:
    name: str
    fn: Callable
    weight: float = 1.0


@dataclass
class PlannedCheck:
    """A check's kernel calls (indices into the plan) and its judge, kept in the grader."""
    check: Check
    calls: list[int]
    single: bool
    judge: Callable | None
    error: str | None = None


@dataclass
class Plan:
    """What one unit asks of the kernel (``kernel``, sent) and how it judges (kept)."""
    unit: "Unit"
    grade_id: str
    points: float | None
    kernel: dict
    checks: list[PlannedCheck]


def _silenced():
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class Unit:
    """A graded unit; see the module docstring.

    ``objects``: the parameter names of the notebook objects it grades, in the order the
    notebook's one-liner passes them. ``options``: names of further arguments that are
    plain values (a mode string), passed to checks as keyword arguments and to probes as
    ``student.options``. ``probes``: the probe module, imported (the one way a probe
    module is reached: the grader may use its helpers, and its source is what the kernel runs). ``threads``: torch threads while checks draw and judge
    (``torch_threads``). ``policy``: a rule the unit's objects must keep, e.g. a1's
    ``from_scratch.FromScratch`` (torch's recurrent layers named in the source cost every
    point, dynamic features hold the unit for review, the named ops raise in the kernel
    while its probes run); the trusted chain asks it (``review``, ``kernel_plan``) and the
    unit lets it wrap each check (``wrap_check``) and overrule the verdict (``overrule``),
    so neither knows any assignment. ``stand_ins``: notebook names the unit's probes
    replace with the grader's own objects while they run (a1's models get stand-in
    cells), so what those names hold does not count against it.
    """

    def __init__(self, name: str, *, grade_id: str, objects: tuple[str, ...], probes,
                 options: tuple[str, ...] = (), policy=None, threads: int | None = None):
        self.name, self.grade_id = name, grade_id
        self.objects, self.options = tuple(objects), tuple(options)
        if not isinstance(getattr(probes, "__file__", None), str):
            raise TypeError(f"{name}: probes must be the imported probe module (its source goes to the kernel)")
        self.probes = Path(probes.__file__)
        self.policy, self.threads = policy, threads
        self.stand_ins: tuple[str, ...] = ()
        self.checks: list[Check] = []
        self.label: Callable[[dict], str] | None = None

    def check(self, name: str, *, weight: float):
        """Decorator: register ``fn(rng, **options) -> (Probe | [Probe...], judge)`` as
        check ``name`` worth ``weight`` (its share of the cell's points: weight / total)."""
        if not (isinstance(weight, (int, float)) and weight > 0 and math.isfinite(weight)):
            raise ValueError(f"{self.name}: check {name!r} needs a positive weight, got {weight!r}")

        def register(fn):
            wrapped = fn
            if self.threads is not None:
                wrapped = _on_threads(wrapped, self.threads)
            if hasattr(self.policy, "wrap_check"):
                wrapped = self.policy.wrap_check(wrapped)
            self.checks.append(Check(name, wrapped, float(weight)))
            return fn
        return register

    @property
    def total_weight(self) -> float:
        return sum(c.weight for c in self.checks)

    def title(self, options: dict) -> str:
        return self.label(options) if self.label else self.name

    def probe_source(self) -> str:
        return self.probes.read_text(encoding="utf-8")

    # ---------------------------------------------------------------- trusted side

    def plan(self, draws: "Draws | np.random.Generator", *, bindings: dict[str, str], options: dict | None = None,
             points: float | None = None, grade_id: str | None = None) -> Plan:
        """Draw every check's inputs, each check from its own generator (``Draws``; a bare
        generator stands for the secret it yields). ``bindings``: parameter name -> notebook name;
        ``points``: the grade cell's (from its metadata; None: report the share earned)."""
        if not isinstance(draws, Draws):
            draws = Draws(draws.bytes(32), grade_id or self.grade_id)
        options = dict(options or {})
        calls, planned = [], []
        seen: dict[str, int] = {}
        for check in self.checks:
            seen[check.name] = seen.get(check.name, 0) + 1  # two checks of one name never share draws
            key = check.name if seen[check.name] == 1 else f"{check.name}#{seen[check.name]}"
            try:
                with _silenced():
                    probes, judge = check.fn(draws.rng(key), **options)
                single = isinstance(probes, Probe)
                probes = [probes] if single else list(probes)
                idx = []
                for p in probes:
                    idx.append(len(calls))
                    calls.append({"probe": p.name, "args": wire.encode(p.args)})
                planned.append(PlannedCheck(check, idx, single, judge))
            except CheckFailed as exc:  # decided without the kernel (an invalid mode, say)
                planned.append(PlannedCheck(check, [], True, None, str(exc) or "wrong"))
            except Exception as exc:
                planned.append(PlannedCheck(check, [], True, None, f"grader error: {_short(exc)}"))
        nonce = secrets.token_hex(8)  # fresh per run: it marks this run's probe output, it draws nothing
        kernel = {"unit": self.name, "nonce": nonce, "objects": dict(bindings),
                  "options": options, "calls": calls}
        if self.policy is not None:  # the kernel's op guard (kernel_side)
            kernel["guard"] = self.policy.kernel_plan()
        return Plan(self, grade_id or self.grade_id, None if points is None else float(points), kernel, planned)

    def judge(self, plan: Plan, payload: dict | None, *, missing: str = "") -> UnitResult:
        """Score the kernel's decoded ``payload`` (None: it never arrived, ``missing`` says why)."""
        result = UnitResult(self.title(plan.kernel["options"]), plan.grade_id, plan.points)
        results = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(results, list) or len(results) != len(plan.kernel["calls"]):
            results = None
        stopped = next((r["forbidden"] for r in results or [] if isinstance(r, dict)
                        and isinstance(r.get("forbidden"), str)), None)
        if stopped is not None and self.policy is not None:  # the kernel's op guard stopped a forbidden op
            return UnitResult.failed(result.unit, result.grade_id, result.points, self.policy.name, stopped[:600])
        for pc in plan.checks:
            name = pc.check.name
            weight = pc.check.weight
            if pc.error is not None:
                result.checks.append(CheckResult(name, False, pc.error, weight))
                continue
            if results is None:
                result.checks.append(CheckResult(name, False, missing or "the checks did not run", weight))
                continue
            outs, error = [], None
            for i in pc.calls:
                r = results[i]
                if not isinstance(r, dict) or (r.get("ok") is not True and not isinstance(r.get("error"), str)):
                    error = "the kernel sent back something unreadable"
                    break
                if r.get("ok") is not True:
                    error = r["error"][:600]
                    break
                try:
                    outs.append(wire.decode(r.get("value")))
                except wire.WireError as exc:
                    error = f"the kernel sent back something unreadable ({exc})"
                    break
            if error is not None:
                result.checks.append(CheckResult(name, False, error, weight))
                continue
            try:
                with _silenced():
                    pc.judge(outs[0] if pc.single else outs)
                result.checks.append(CheckResult(name, True, "", weight))
            except AssertionError as exc:
                result.checks.append(CheckResult(name, False, str(exc)[:600] or "wrong result", weight))
            except Exception as exc:  # odd data the judge could not handle
                result.checks.append(CheckResult(name, False, f"unexpected result ({_short(exc)})", weight))
        if hasattr(self.policy, "overrule"):  # e.g. a forbidden layer seen by a probe fails the whole unit
            return self.policy.overrule(plan, result) or result
        return result

    # ---------------------------------------------------------------- one process

    def run_local(self, objects: dict, *, options: dict | None = None, points: float | None = None,
                  seed: int | None = None, secret: bytes | None = None, assignment: str = "",
                  grade_id: str | None = None, emit: bool = False) -> UnitResult:
        """Plan, probe in this process and judge; every value goes through ``wire``.
        Inputs come from ``secret``, drawn as grading draws them for grade cell ``grade_id``
        of ``assignment``, or else from ``seed`` (default ``LOCAL_SEED``). ``points``: the
        cell's (None: the result's score is the share earned, 0 to 1)."""
        if secret is None:
            secret = f"local-seed:{LOCAL_SEED if seed is None else int(seed)}".encode()
        draws = Draws.for_unit(secret, assignment, grade_id or self.grade_id)
        names = {p: f"__obj_{p}" for p in self.objects}
        user_ns = {names[p]: objects[p] for p in self.objects if p in objects}
        with _rng_kept():  # checks and judges may build torch modules too, not only the probes
            plan = self.plan(draws, bindings=names, options=options, points=points, grade_id=grade_id)
            payload = kernel_side.run(user_ns, plan.kernel, self.probe_source(), wire, emit=emit)
            return self.judge(plan, wire.loads(wire.dumps(payload)))

    def entry_point(self):
        """The function a notebook's hidden test calls: ``f(*objects, *options)``.

        Outside grading it checks in this process, prints the report and returns the share
        of the cell's points earned, 0 to 1 (what an instructor sees running the solution
        notebook). During trusted grading the call is never run: the grader reads it and
        plans the unit instead, with the points of the grade cell's metadata. It takes no
        points: they are written once, in that metadata (``extra_credit=`` only marks a
        0-point cell's extra credit, and changes nothing here).
        """
        unit = self

        def entry(*args, seed=None, secret=None, extra_credit=None, **kwargs):
            if "points" in kwargs:
                raise TypeError(f"{unit.name}: points come from the grade cell's metadata, not from the call")
            names = unit.objects + unit.options
            if len(args) > len(names):
                raise TypeError(f"{unit.name}: expected at most {len(names)} arguments")
            given = dict(zip(names, args))
            given.update(kwargs)
            objects = {k: v for k, v in given.items() if k in unit.objects}
            options = {k: v for k, v in given.items() if k in unit.options}
            try:
                result = unit.run_local(objects, options=options, seed=seed, secret=secret)
            except Exception as exc:  # never crash the notebook
                result = UnitResult.failed(unit.name, unit.grade_id, None, "grader",
                                           f"could not run the checks ({_short(exc)})")
            print(result.report())
            return result.score

        entry.unit = unit
        entry.__name__ = f"check_{unit.grade_id.removeprefix('test_')}"
        entry.__doc__ = f"Grade {unit.name} ({len(unit.checks)} checks); returns the points earned."
        return entry


def _on_threads(fn, threads: int):
    """``fn`` with itself and its judge run on ``threads`` torch threads."""
    @functools.wraps(fn)
    def planned(rng, **options):
        with torch_threads(threads):
            probes, judge = fn(rng, **options)

        def judged(out):
            with torch_threads(threads):
                return judge(out)
        return probes, judged
    return planned


@contextlib.contextmanager
def _rng_kept():
    """Leave the notebook's random state as it was (probes seed their own draws)."""
    import torch

    state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(state)
            np.random.set_state(np_state)


@dataclass(frozen=True)
class Draws:
    """Where one unit's checks draw their inputs: check ``name`` gets a generator seeded
    with HMAC-SHA256(secret, "<scope>/<name>"), scope being "<assignment>/<grade id>".

    The secret is the course's (``coursectl.secret``), so the same submission gets the same
    inputs, hence the same scores, in every grading run; assignments, grade cells and checks
    never share draws, and adding a check changes no other check's inputs.
    """
    secret: bytes
    scope: str

    @classmethod
    def for_unit(cls, secret: bytes, assignment: str, grade_id: str) -> "Draws":
        return cls(bytes(secret), f"{assignment}/{grade_id}")

    def rng(self, check: str) -> np.random.Generator:
        digest = hmac.new(self.secret, f"{self.scope}/{check}".encode(), hashlib.sha256).digest()
        return np.random.default_rng(int.from_bytes(digest, "little"))


def seed_for(secret: int, grade_id: str) -> np.random.Generator:
    """A generator from an integer secret and a grade cell's id (tests; grading uses ``Draws``)."""
    digest = hashlib.sha256(f"{secret}:{grade_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def find_unit(module_name: str, function: str, packages=("autograder",)) -> Unit | None:
    """The unit behind ``from <module_name> import <function>`` in a hidden test, looked
    up only in ``packages`` (the grader never imports other modules a cell names)."""
    import importlib

    if not any(module_name == p or module_name.startswith(p + ".") for p in packages):
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(getattr(module, function, None), "unit", None)
