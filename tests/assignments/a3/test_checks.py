"""a3_char_lm hidden checks, run in-process through their entry points on the notebook's
cells (fast, no nbgrader): the solution earns every point, the release stubs none without
a crash, each mutant loses points in its own unit and nowhere it could leak to, the
messages name the mistake, and the checks leave the notebook's RNG alone."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from autograder.a3_char_lm import checks, probes
from autograder.a3_char_lm import reference as ref
from autograder.harness import Unit
from mutants import load_mutants
from nbcourse import REPO, answer_namespace, cell_by_id, grade_points
from probe_modules import assert_kernel_safe

torch.set_num_threads(1)

A = "a3_char_lm"
SOURCE_NB = nbformat.read(REPO / "source" / A / f"{A}.ipynb", as_version=4)
RELEASE_NB = nbformat.read(REPO / "release" / A / f"{A}.ipynb", as_version=4)
MUTANTS = load_mutants("a3")

# grade cell -> (entry point, notebook names it grades, solution cells those names come from)
UNITS = {
    "test_build_vocab": (checks.check_build_vocab, ("build_vocab",), {"build_vocab"}),
    "test_encode_decode": (checks.check_encode_decode, ("encode", "decode"), {"encode_decode"}),
    "test_make_windows": (checks.check_make_windows, ("make_windows",), {"make_windows"}),
    "test_train_val_windows": (checks.check_train_val_windows,
                               ("train_val_windows", "build_vocab", "encode", "make_windows"),
                               {"train_val_windows", "build_vocab", "encode_decode", "make_windows"}),
    "test_char_model": (checks.check_char_model, ("CharModel",), {"char_model"}),
    "test_macs_per_step": (checks.check_macs_per_step, ("macs_per_step",), {"macs_per_step"}),
    "test_model_size": (checks.check_model_size, ("model_size_bytes",), {"model_size_bytes"}),
    "test_accuracy": (checks.check_accuracy, ("accuracy",), {"accuracy"}),
    "test_bits_per_char": (checks.check_bits_per_char, ("bits_per_char",), {"bits_per_char"}),
    "test_evaluate": (checks.check_evaluate, ("evaluate",), {"evaluate"}),
    "test_generate": (checks.check_generate, ("generate",), {"generate"}),
}
ANSWER_CELLS = sorted(set().union(*(cells for _, _, cells in UNITS.values())))


def _points(grade_id: str) -> float:
    return grade_points(SOURCE_NB, grade_id)


def _namespace(nb, replace: dict[str, str] | None = None) -> dict:
    """The notebook's imports plus its answer cells, as a kernel would hold them."""
    return answer_namespace(nb, ANSWER_CELLS, prelude=cell_by_id(nb, "setup").source, replace=replace)


def _run(grade_id: str, ns: dict, seed=None):
    check, names, _ = UNITS[grade_id]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        score = round(_points(grade_id) * check(*(ns[n] for n in names), seed=seed), 4)  # the share earned
    return score, out.getvalue()


@pytest.fixture(scope="module")
def solution_ns():
    return _namespace(SOURCE_NB)


def test_every_grade_cell_has_a_unit():
    graded = {c.metadata.nbgrader.grade_id for c in SOURCE_NB.cells
              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    assert graded == set(UNITS)
    for gid, (check, names, _) in UNITS.items():
        assert isinstance(check.unit, Unit) and check.unit.grade_id == gid
        assert check.unit.objects == names
        assert f"{check.__name__}({', '.join(names)})\n" in cell_by_id(SOURCE_NB, gid).source  # no points


@pytest.mark.parametrize("grade_id", UNITS)
@pytest.mark.parametrize("seed", [None, 7])
def test_solution_gets_full_points(solution_ns, grade_id, seed):
    score, report = _run(grade_id, solution_ns, seed)
    assert score == _points(grade_id), report


@pytest.mark.parametrize("grade_id", UNITS)
def test_reference_gets_full_points(grade_id):
    """The reference itself, bound under the notebook's names, passes (a check is not just
    tuned to the notebook's solution)."""
    ns = {name: getattr(ref, name) for name in dir(ref)}
    score, report = _run(grade_id, ns, seed=3)
    assert score == _points(grade_id), report


def test_release_stubs_get_zero_without_crashing():
    ns = _namespace(RELEASE_NB)
    for gid in UNITS:
        score, report = _run(gid, ns)
        assert score == 0.0, report
        assert "NotImplementedError" in report


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_loses_points_only_in_its_unit(solution_ns, mutant):
    ns = _namespace(SOURCE_NB, {mutant.cell: mutant.source})
    touched = [gid for gid, (_, _, cells) in UNITS.items() if mutant.cell in cells]
    assert set(mutant.loses) <= set(touched), f"{mutant.name}: loses a unit its cell does not feed"
    for gid in touched:
        score, report = _run(gid, ns)
        if gid in mutant.loses:
            assert score < _points(gid), f"{mutant.name} kept every point of {gid}:\n{report}"
            assert "FAILED" in report
        else:
            assert score == _points(gid), f"{mutant.name} lost points in {gid}:\n{report}"


@pytest.mark.parametrize("mutant,message", [
    ("windows_target_off_by_one", "the character AFTER the window"),
    ("split_windows_cross_boundary", "no window"),
    ("split_vocab_from_training_part", "validation part need an index"),
    ("macs_gate_count", "weight blocks per layer"),
    ("size_in_bits", "in bits"),
    ("size_trainable_only", "trainable"),
    ("bits_in_nats", "in nats"),
    ("evaluate_mean_of_batches", "not an average of per-batch"),
    ("evaluate_train_mode", "model.eval()"),
    ("encode_unknown_to_zero", "instead of raising KeyError"),
    ("generate_returns_prefix", "not the prefix"),
])
def test_failure_messages_point_at_the_mistake(mutant, message):
    m = next(m for m in MUTANTS if m.name == mutant)
    ns = _namespace(SOURCE_NB, {m.cell: m.source})
    (gid,) = m.loses
    _, report = _run(gid, ns)
    assert message in report, report


def test_checks_leave_the_notebook_rng_alone(solution_ns):
    torch.manual_seed(123)
    np.random.seed(5)
    before = (torch.random.get_rng_state().clone(), np.random.get_state()[1].copy(), torch.get_num_threads())
    for gid in UNITS:
        _run(gid, solution_ns)
    assert torch.equal(before[0], torch.random.get_rng_state())
    assert np.array_equal(before[1], np.random.get_state()[1])
    assert torch.get_num_threads() == before[2]


def test_inputs_change_with_the_seed():
    plan = lambda seed: checks.check_make_windows.unit.plan(np.random.default_rng(seed), bindings={"make_windows": "m"})
    a, b = plan(1).kernel["calls"], plan(2).kernel["calls"]
    assert a != b


def test_probe_module_imports_only_torch_numpy_and_stdlib():
    assert_kernel_safe(Path(probes.__file__).read_text())
    assert "reference import" not in Path(probes.__file__).read_text()


def test_a_forged_payload_earns_nothing():
    unit = checks.check_generate.unit
    plan = unit.plan(np.random.default_rng(0), bindings={"generate": "generate"})
    fake = {"nonce": plan.kernel["nonce"],
            "results": [{"ok": True, "value": {"text": "x" * 20, "is_str": True, "grad": False, "training": False,
                                               "calls": []}}] * len(plan.kernel["calls"])}
    assert unit.judge(plan, fake).score == 0.0


# ---------------------------------------------------------------- visible tests

# Visible tests that also use other answers (as fixtures): CharModel, the vocabulary.
VISIBLE_USES = {"test_evaluate": {"char_model"}, "test_generate": {"char_model", "build_vocab", "encode_decode"}}


def _visible_failures(replace: dict[str, str] | None = None) -> dict[str, str]:
    """Run the notebook's answer cells and the VISIBLE part of every grade cell, in order;
    grade id -> the error a visible test raised."""
    from coursectl.cells import without_hidden

    ns, fails = {}, {}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in SOURCE_NB.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if cell.cell_type != "code":
                continue
            if gid in UNITS:
                try:
                    exec(without_hidden(cell.source), ns)
                except Exception as exc:
                    fails[gid] = f"{type(exc).__name__}: {exc}"
            elif gid in ANSWER_CELLS or gid in ("setup", "load-passage"):
                exec((replace or {}).get(gid, cell.source), ns)
    return fails


def test_visible_tests_pass_on_the_solution():
    assert _visible_failures() == {}


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_visible_tests_catch_each_mutant_in_its_unit(mutant):
    fails = _visible_failures({mutant.cell: mutant.source})
    for gid in mutant.loses:
        assert fails.get(gid, "").startswith("AssertionError"), f"{mutant.name}: visible {gid} gave {fails.get(gid)}"
    # Other units' visible tests only fail where they build on the mutated cell.
    feeds = {gid for gid, (_, _, cells) in UNITS.items() if mutant.cell in cells | VISIBLE_USES.get(gid, set())}
    assert set(fails) <= feeds | mutant.loses, f"{mutant.name}: {fails}"
