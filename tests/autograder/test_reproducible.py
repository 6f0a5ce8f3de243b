"""A grade is a function of the submission and the course secret, and a bug's penalty does
not depend on the draw.

* ``Draws``: one generator per assignment, grade cell and check, from HMAC(secret, ...):
  the same secret gives the same inputs, any other secret, assignment, cell or check other
  inputs, and adding a check leaves the others' inputs alone.
* Every mutant in tests/mutants/ and the template-style a1 student, graded in this process
  (no kernels) under 20 secrets: each affected cell gets the same score under all of them,
  and the mutant still loses points in every cell its header names.
"""
from __future__ import annotations

import pytest

import reproducible as R
import square_probes
from autograder.harness import Draws, Probe, Unit, require

N_SECRETS = 20
SUBMISSIONS = R.submissions()


def _unit() -> Unit:
    unit = Unit("square", grade_id="test_square", objects=("fn",), probes=square_probes)

    @unit.check("one number", weight=1)
    def one(rng):
        x = float(rng.uniform(1, 5))
        return Probe("call_square", x=x), lambda out: require(abs(out - x * x) < 1e-9, "wrong")

    @unit.check("another number", weight=1)
    def another(rng):
        x = float(rng.uniform(1, 5))
        return Probe("call_square", x=x), lambda out: require(abs(out - x * x) < 1e-9, "wrong")
    return unit


def _calls(unit, draws):
    return [c["args"] for c in unit.plan(draws, bindings={"fn": "f"}).kernel["calls"]]


def test_draws_are_a_function_of_secret_assignment_cell_and_check():
    unit = _unit()
    base = Draws.for_unit(b"k" * 32, "a1_rnn_cells", "test_square")
    assert _calls(unit, base) == _calls(unit, Draws.for_unit(b"k" * 32, "a1_rnn_cells", "test_square"))
    for other in (Draws.for_unit(b"j" * 32, "a1_rnn_cells", "test_square"),
                  Draws.for_unit(b"k" * 32, "a2_sentiment", "test_square"),
                  Draws.for_unit(b"k" * 32, "a1_rnn_cells", "test_other")):
        assert _calls(unit, other) != _calls(unit, base)
    first, second = _calls(unit, base)
    assert first != second  # two checks of one unit never share inputs
    # The nonce marks one run's probe output; it is fresh each time, the inputs are not.
    assert unit.plan(base, bindings={"fn": "f"}).kernel["nonce"] != unit.plan(base, bindings={"fn": "f"}).kernel["nonce"]


def test_adding_a_check_changes_no_other_checks_inputs():
    unit = _unit()
    draws = Draws.for_unit(b"s" * 32, "a4_visualizing", "test_square")
    before = _calls(unit, draws)

    @unit.check("a check added later", weight=1)
    def new(rng):
        return Probe("call_square", x=float(rng.uniform(1, 5))), lambda out: None
    assert _calls(unit, draws)[:2] == before


def test_run_local_draws_as_grading_draws():
    """In process, a secret and a grade cell give the very inputs the trusted chain plans."""
    unit, seen = _unit(), []

    @unit.check("records its first draw", weight=1)
    def records(rng):
        seen.append(rng.random())
        return Probe("call_square", x=1.0), lambda out: None
    unit.run_local({"fn": lambda x: x * x}, secret=b"z" * 32, assignment="a3_char_lm", grade_id="test_x")
    assert seen == [Draws.for_unit(b"z" * 32, "a3_char_lm", "test_x").rng("records its first draw").random()]


def test_a_wrong_answer_fails_whatever_the_secret():
    """The check in this file can fail: a wrong square loses the same points every time."""
    unit = _unit()
    scores = {unit.run_local({"fn": lambda x: x * x + 1}, secret=bytes([i]) * 32).score for i in range(5)}
    assert scores == {0.0}


def _sizes(value):
    """A planned input with its values left out: list lengths, tensor shapes, dict keys."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            return ("tensor", value["__tensor__"][0], tuple(value["__tensor__"][1]))
        return {k: _sizes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [len(value), *(_sizes(v) for v in value)]
    return type(value).__name__


def _planned(unit, secret: bytes) -> dict[str, list]:
    plan = unit.plan(Draws.for_unit(secret, "a2_sentiment", unit.grade_id), bindings={p: p for p in unit.objects})
    return {pc.check.name: [plan.kernel["calls"][i] for i in pc.calls] for pc in plan.checks}


# Checks that drew sizes before issue 16: a count depends on sizes alone (these draw nothing);
# the fuzz-style checks draw only values into sizes fixed per case.
SIZE_FIXED = {"count": None, "ratio": None, "pad": ("60 random cases match the reference",),
              "vocab": ("ranks follow word counts, 1 = most common", "equal counts rank in order of first appearance")}


@pytest.mark.parametrize("unit_name", sorted(SIZE_FIXED))
def test_sizes_are_fixed_per_check_and_only_values_drawn(unit_name):
    from autograder.a2_sentiment import checks

    unit, names = getattr(checks, unit_name), SIZE_FIXED[unit_name]
    runs = [_planned(unit, bytes([i]) * 32) for i in range(5)]
    for name in names or [c.name for c in unit.checks]:
        if names is None:  # nothing drawn at all
            assert all(run[name] == runs[0][name] for run in runs), name
        else:
            assert all(_sizes(run[name]) == _sizes(runs[0][name]) for run in runs), f"{name}: sizes drawn"
            assert any(run[name] != runs[0][name] for run in runs), f"{name}: no values drawn"


def test_every_submission_is_listed():
    names = {s.name for s in SUBMISSIONS}
    assert "a1/template_style_student" in names
    assert {s.short for s in SUBMISSIONS} == set(R.ASSIGNMENTS)
    assert len(names) == len(SUBMISSIONS) >= 90
    assert all(R.affected(s) for s in SUBMISSIONS)


@pytest.fixture(scope="module", autouse=True)
def _threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: threads only cost time here
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize("short", sorted(R.ASSIGNMENTS))
def test_per_cell_scores_do_not_depend_on_the_secret(short):
    """Each mutant (and the template-style student) scores the same in every cell it can
    touch under 20 secrets, and keeps losing points where its header says it must."""
    secrets = R.secrets_for_test(N_SECRETS)
    problems = []
    for sub in (s for s in SUBMISSIONS if s.short == short):
        ns = R.namespace(sub)
        runs = [R.grade(sub, secret, ns) for secret in secrets]
        for gid in runs[0]:
            seen = sorted({run[gid] for run in runs})
            if len(seen) > 1:
                problems.append(f"{sub.name}: {gid} scored {seen} under {N_SECRETS} secrets")
        # scores are shares of the cell's points (run_local without the metadata's points)
        kept = sorted(gid for gid in sub.loses if gid in runs[0] and runs[0][gid] >= 1.0)
        if kept:
            problems.append(f"{sub.name}: keeps every point in {kept}")
    assert not problems, "\n".join(problems)
