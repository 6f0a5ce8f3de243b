"""The checks harness on a toy unit: planning, probing, judging, partial credit."""
import numpy as np
import pytest
import torch

import square_probes
from autograder import harness, kernel_side, wire
from autograder.harness import CheckFailed, Probe, Unit, require

PROBES = square_probes


def make_unit():
    unit = Unit("square", grade_id="test_square", objects=("fn",), probes=PROBES)

    @unit.check("positive numbers", weight=1)
    def positive(rng):
        x = float(rng.uniform(1, 5))
        return Probe("call_square", x=x), lambda out: require(abs(out - x * x) < 1e-9, f"square({x}) gave {out}")

    @unit.check("negative numbers", weight=1)
    def negative(rng):
        xs = [float(v) for v in -rng.uniform(1, 5, size=3)]

        def judge(outs):
            require(outs[0] == [x * x for x in xs], f"got {outs[0]}")
        return [Probe("call_both", xs=xs)], judge

    @unit.check("tensors", weight=1)
    def tensors(rng):
        x = torch.from_numpy(rng.normal(size=(2, 3)))
        return Probe("call_square", x=x), lambda out: harness.assert_close(out, x * x, 1e-9, 0, "square")

    return unit


def test_all_pass_full_points():
    unit = make_unit()
    result = unit.run_local({"fn": lambda x: x * x}, points=3)
    assert [c.passed for c in result.checks] == [True, True, True]
    assert result.score == 3.0


def test_partial_credit_and_messages():
    unit = make_unit()
    result = unit.run_local({"fn": lambda x: abs(x) * x}, points=3)
    assert [c.passed for c in result.checks] == [True, False, False]
    assert result.score == 1.0
    assert "FAILED negative numbers" in result.report()


def test_student_exception_is_a_failed_check_not_a_crash():
    def boom(x):
        raise ValueError("nope")
    result = make_unit().run_local({"fn": boom})
    assert result.score == 0.0
    assert all("ValueError: nope" in c.message for c in result.checks)


def test_missing_object_is_reported():
    result = make_unit().run_local({})
    assert result.score == 0.0 and "fn is not defined" in result.checks[0].message


def test_forged_or_missing_payload_earns_nothing():
    unit = make_unit()
    plan = unit.plan(np.random.default_rng(1), bindings={"fn": "f"})
    assert unit.judge(plan, None, missing="kernel died").score == 0.0
    fake = {"nonce": plan.kernel["nonce"], "results": [{"ok": True, "value": 4.0}] * 3}
    assert unit.judge(plan, fake).score == 0.0          # wrong values for unknown inputs
    junk = {"nonce": plan.kernel["nonce"], "results": [{"ok": True, "value": {"__tensor__": ["object", [1], "AA=="]}}] * 3}
    assert unit.judge(plan, junk).score == 0.0


def test_inputs_depend_on_the_secret():
    unit = make_unit()
    a = unit.plan(harness.seed_for(1, "test_square"), bindings={"fn": "f"}).kernel["calls"]
    b = unit.plan(harness.seed_for(2, "test_square"), bindings={"fn": "f"}).kernel["calls"]
    assert a != b


def test_entry_point_prints_report_and_returns_the_share_earned(capsys):
    check = make_unit().entry_point()
    assert check(lambda x: x * x) == 1.0
    assert "3/3 checks passed -> 100% of the grade cell's points" in capsys.readouterr().out
    assert check(lambda x: abs(x) * x) == round(1 / 3, 4)


def test_hidden_call_takes_no_points():
    """Points are written once, in the grade cell's metadata: a call that names them is refused."""
    check = make_unit().entry_point()
    with pytest.raises(TypeError, match="metadata"):
        check(lambda x: x * x, points=6)


def test_weights_split_the_points():
    """A unit with checks of weight 1 and 3 gives 1/4 and 3/4 of the metadata's points; a
    new check is a visible change of the split."""
    def squares(low, high, n):  # a check: n numbers drawn in [low, high), squared by the student
        def check(rng):
            xs = [float(v) for v in rng.uniform(low, high, size=n)]
            return Probe("call_both", xs=xs), lambda out: require(out == [x * x for x in xs], f"square{xs}")
        return check

    unit = Unit("square", grade_id="test_square", objects=("fn",), probes=PROBES)
    unit.check("one positive number", weight=1)(squares(1, 5, 1))
    unit.check("three negative numbers", weight=3)(squares(-5, -1, 3))

    assert unit.total_weight == 4.0
    assert unit.run_local({"fn": lambda x: x * x}, points=8).score == 8.0
    only_light = unit.run_local({"fn": lambda x: abs(x) * x}, points=8)   # wrong for negative numbers
    assert [c.passed for c in only_light.checks] == [True, False]
    assert only_light.score == 2.0 and "weights 1 of 4" in only_light.report()
    only_heavy = unit.run_local({"fn": lambda x: x * x if x < 0 else -1.0}, points=8)
    assert only_heavy.score == 6.0
    with pytest.raises(ValueError, match="weight"):
        unit.check("no weight", weight=0)


@pytest.mark.parametrize("value", [None, True, 3, -2 ** 70, 1.5, float("nan"), float("inf"), "é", [1, (2, 3)],
                                   {"a": 1}, {1: "x", (2, 3): None}, {"__tensor__": 1},
                                   torch.arange(6, dtype=torch.float32).reshape(2, 3), np.arange(4),
                                   torch.tensor([True, False]), ValueError("bad")])
def test_wire_round_trip(value):
    back = wire.loads(wire.dumps(value))
    if isinstance(value, torch.Tensor):
        assert torch.equal(back, value) and back.dtype == value.dtype
    elif isinstance(value, np.ndarray):
        assert np.array_equal(back, value)
    elif isinstance(value, float) and value != value:
        assert back != back
    elif isinstance(value, BaseException):
        assert isinstance(back, wire.RemoteError) and back.name == "ValueError"
    else:
        assert back == value


@pytest.mark.parametrize("text", ["", "[", '{"__tensor__": ["float32", [2], "AAAA"]}',
                                  '{"__ndarray__": ["|O", [1], "AA=="]}', '{"__dict__": [[[1], 2]]}',
                                  "1" * (wire.MAX_PAYLOAD + 1)])
def test_wire_rejects_bad_payloads(text):
    with pytest.raises(wire.WireError):
        wire.loads(text)


@pytest.mark.parametrize("body", ["[" * 200_000 + "]" * 200_000, '{"a":' * 5000 + "1" + "}" * 5000])
def test_wire_refuses_deep_payload_text_with_a_message(body):
    with pytest.raises(wire.WireError, match="nested more than"):
        wire.parse_bounded(body)


def test_wire_refuses_deep_parsed_payload_and_keeps_strings_out_of_the_count():
    deep: list = []
    for _ in range(200_000):
        deep = [deep]
    with pytest.raises(wire.WireError, match="nested more than"):
        wire.parse_bounded(deep)
    # Brackets inside strings (and escaped quotes) are data, not nesting.
    text = '{"note": "[[[[{{{{ \\" [[[[", "x": [1, [2]]}'
    assert wire.parse_bounded(text)["x"] == [1, [2]]
    assert wire.loads(wire.dumps({"t": (1, [2, {"k": "[["}])})) == {"t": (1, [2, {"k": "[["}])}


def test_kernel_side_boot_source_runs(tmp_path):
    """The cell the grader injects runs on its own and displays one payload."""
    from coursectl.trusted import probe_cell_source
    unit = make_unit()
    plan = unit.plan(np.random.default_rng(0), bindings={"fn": "square"}, points=3)
    shown = []
    import IPython.display as d
    orig = d.display
    d.display = lambda obj, raw=False: shown.append(obj)
    try:
        ns = {"square": lambda x: x * x}
        exec(probe_cell_source(plan.kernel, unit.probe_source()), ns)
    finally:
        d.display = orig
    payload = shown[0][wire.MIME]
    assert unit.judge(plan, payload).score == 3.0
    assert "__course_grader_probe" not in ns


def test_torch_threads_sets_torch_only_where_it_is_imported():
    """Checks that need no torch are planned and judged without loading it (a grading
    process for such an assignment never imports torch); where it is loaded, the count
    is set inside and put back after."""
    import subprocess
    import sys

    code = ("import sys\nfrom autograder.harness import torch_threads\n"
            "with torch_threads(1):\n    pass\nprint('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    before = torch.get_num_threads()
    with harness.torch_threads(1):
        inside = torch.get_num_threads()
    assert inside == 1 and torch.get_num_threads() == before
