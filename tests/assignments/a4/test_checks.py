"""a4_visualizing hidden checks, run in this process on the notebook's cells (fast, no nbgrader):
the solution earns every point, the release stubs none, each mutant loses points in its own
unit with a message that names the mistake, and no check raises or writes to stderr."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from autograder.a4_visualizing import checks, probes
from autograder import harness
from mutants import load_mutants
from nbcourse import REPO, answer_namespace, cell_by_id, grade_points

A = "a4_visualizing"
SOURCE_NB = nbformat.read(REPO / "source" / A / f"{A}.ipynb", as_version=4)
RELEASE_NB = nbformat.read(REPO / "release" / A / f"{A}.ipynb", as_version=4)
MUTANTS = load_mutants("a4")

# answer cell -> (grade cell, check, notebook names it grades)
UNITS = {
    "to_grayscale": ("test_to_grayscale", checks.check_to_grayscale, ("to_grayscale",)),
    "small_cnn": ("test_small_cnn", checks.check_small_cnn, ("SmallCNN",)),
    "log_run": ("test_log_run", checks.check_log_run, ("log_run",)),
    "filter_grid": ("test_filter_grid", checks.check_filter_grid, ("filter_grid",)),
    "activation_stats": ("test_activation_stats", checks.check_activation_stats, ("activation_stats",)),
    "maximize_activation": ("test_maximize_activation", checks.check_maximize_activation, ("maximize_activation",)),
    "deconv_project": ("test_deconv_project", checks.check_deconv_project, ("deconv_project",)),
    "occlusion_map": ("test_occlusion_map", checks.check_occlusion_map, ("occlusion_map",)),
    "row_rnn": ("test_row_rnn", checks.check_row_rnn, ("RowRNN",)),
}

PRELUDE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"


def _points(grade_id: str) -> float:
    """What the unit awards: the grade cell's points, or for the extra-credit cell (worth 0,
    coursectl/extra_credit.py) the extra credit its hidden call names."""
    points = grade_points(SOURCE_NB, grade_id)
    if points == 0:
        points = float(re.search(r"extra_credit=([0-9.]+)\)", cell_by_id(SOURCE_NB, grade_id).source).group(1))
    return points


def _namespace(nb, replace: dict[str, str] | None = None) -> dict:
    """The notebook's answer cells as a kernel would hold them (imports as in the set-up cell)."""
    return answer_namespace(nb, UNITS, prelude=PRELUDE, replace=replace)


def _run(cell_id: str, ns: dict, seed: int | None = None) -> float:
    grade_id, check, names = UNITS[cell_id]
    return round(_points(grade_id) * check(*(ns[n] for n in names), seed=seed), 4)  # the call returns the share


@pytest.fixture(scope="module")
def solution():
    return _namespace(SOURCE_NB)


@pytest.fixture(scope="module")
def release():
    return _namespace(RELEASE_NB)


def test_every_unit_has_its_one_line_hidden_check():
    for cell_id, (grade_id, check, names) in UNITS.items():
        src = cell_by_id(SOURCE_NB, grade_id).source
        assert f"from autograder.a4_visualizing.checks import {check.__name__}\n" in src, grade_id
        extra = "" if grade_points(SOURCE_NB, grade_id) else f", extra_credit={_points(grade_id):g}"
        assert f"{check.__name__}({', '.join(names)}{extra})\n" in src, grade_id  # points: the metadata's
        assert check.unit.grade_id == grade_id


def test_probe_module_imports_only_torch_numpy_and_the_standard_library():
    import ast
    import sys

    tree = ast.parse(Path(probes.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots <= {"torch", "numpy"} | set(sys.stdlib_module_names), roots
    assert "reference import" not in Path(probes.__file__).read_text() and "autograder" not in roots


@pytest.mark.parametrize("cell_id", list(UNITS))
def test_solution_earns_every_point(cell_id, solution, capsys):
    assert _run(cell_id, solution) == _points(UNITS[cell_id][0])
    out = capsys.readouterr()
    assert "FAILED" not in out.out and out.err == ""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_solution_passes_on_other_draws(seed, solution, capsys):
    """Inputs differ per grading run; tolerances must hold for any draw."""
    for cell_id in UNITS:
        assert _run(cell_id, solution, seed=seed) == _points(UNITS[cell_id][0]), (cell_id, capsys.readouterr().out)


@pytest.mark.parametrize("cell_id", list(UNITS))
def test_release_stub_earns_nothing(cell_id, release, capsys):
    assert _run(cell_id, release) == 0.0
    out = capsys.readouterr()
    assert "NotImplementedError" in out.out and out.err == ""


def test_mutants_cover_the_typical_mistakes():
    names = {m.name for m in MUTANTS}
    assert {"gray_bgr_order", "gray_mean_weights", "stats_over_batch_only", "stats_before_relu",
            "grid_joint_normalisation", "max_not_clipped", "max_updates_weights", "deconv_plain_upsampling",
            "deconv_conv_not_transposed", "occ_patch_off_by_one", "occ_positions_off_by_one", "rnn_column_wise",
            "rnn_first_step"} <= names
    assert {m.cell for m in MUTANTS} == set(UNITS), "every answer cell has a mutant"


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_loses_points_only_in_its_unit(mutant, capsys):
    grade_id = UNITS[mutant.cell][0]
    assert mutant.loses == {grade_id}, f"{mutant.name}: loses {set(mutant.loses)}, its cell is graded by {grade_id}"
    # A unit's probes receive only its own notebook objects, so a mutant can touch no other unit
    # (the end-to-end suite grades whole mutant notebooks to confirm it).
    ns = _namespace(SOURCE_NB, {mutant.cell: mutant.source})
    assert _run(mutant.cell, ns) < _points(grade_id), f"{mutant.name} kept all points"
    out = capsys.readouterr()
    assert "FAILED" in out.out and out.err == ""


@pytest.mark.parametrize("name, phrase", [
    ("gray_bgr_order", "B, G, R order"), ("gray_mean_weights", "plain mean"), ("gray_not_scaled", "divide by 255"),
    ("cnn_rgb_input", "input channels"), ("log_steps_from_zero", "start at 0"),
    ("log_accuracies_swapped", "holds the values of"), ("grid_joint_normalisation", "scaled together"),
    ("stats_before_relu", "before the ReLU"), ("stats_over_batch_only", "over the images only"),
    ("max_not_clipped", "clip to [0, 1]"), ("max_updates_weights", "weights changed"),
    ("occ_positions_off_by_one", "positions per axis"), ("occ_logits", "probabilities"),
    ("occ_in_place", "modified in place"), ("rnn_column_wise", "column by column"),
    ("rnn_first_step", "first step"), ("rnn_always_lstm", "expected nn.GRU"),
])
def test_failure_messages_say_what_is_wrong(name, phrase, capsys):
    (mutant,) = [m for m in MUTANTS if m.name == name]
    _run(mutant.cell, _namespace(SOURCE_NB, {mutant.cell: mutant.source}))
    assert phrase in capsys.readouterr().out, name


@pytest.mark.parametrize("name, low", [("deconv_padding_hardcoded", 1.5), ("rnn_always_lstm", 0.5),
                                       ("cnn_filters_hardcoded", 1.0), ("max_ignores_generator", 0.5)])
def test_partial_credit_for_a_single_mistake(name, low):
    (mutant,) = [m for m in MUTANTS if m.name == name]
    score = _run(mutant.cell, _namespace(SOURCE_NB, {mutant.cell: mutant.source}))
    assert low <= score < _points(UNITS[mutant.cell][0])


def _broken(*args, **kwargs):
    import sys

    print("noise on stderr", file=sys.stderr)
    warnings.warn("a warning", UserWarning)
    raise RuntimeError("student code crashed")


@pytest.mark.parametrize("cell_id", list(UNITS))
@pytest.mark.parametrize("bad", [None, _broken, 42], ids=["None", "crashing", "int"])
def test_checks_never_raise_nor_write_stderr(cell_id, bad, capfd):
    grade_id, check, names = UNITS[cell_id]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = check(*([bad] * len(names)))
    assert score == 0.0
    assert capfd.readouterr().err == ""


def test_checks_leave_the_notebook_rng_alone(solution):
    torch.manual_seed(123)
    np.random.seed(5)
    state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    for cell_id in ("small_cnn", "maximize_activation", "row_rnn"):
        _run(cell_id, solution)
    assert torch.equal(torch.get_rng_state(), state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_inputs_depend_on_the_grading_secret():
    unit = checks.check_deconv_project.unit
    a = unit.plan(harness.seed_for(1, unit.grade_id), bindings={"deconv_project": "f"}).kernel["calls"]
    b = unit.plan(harness.seed_for(2, unit.grade_id), bindings={"deconv_project": "f"}).kernel["calls"]
    assert a != b


def test_forged_payload_earns_nothing():
    """A kernel that sends back made-up numbers for inputs it could not predict gets no points."""
    unit = checks.check_occlusion_map.unit
    plan = unit.plan(np.random.default_rng(7), bindings={"occlusion_map": "f"})
    fake = {"nonce": plan.kernel["nonce"],
            "results": [{"ok": True, "value": {"out": {"__tensor__": ["float32", [7, 7], "AAAA" * 49]},
                                                "unchanged": True}}] * len(plan.kernel["calls"])}
    assert unit.judge(plan, fake).score == 0.0


def test_maximize_cases_leave_the_image_open():
    """Every drawn ascent leaves MIN_OPEN_PIXELS of its image strictly inside (0, 1): an image
    clipped all over hid where its start noise came from and how it was moved."""
    from autograder.a4_visualizing.checks import inside

    for seed in range(40):
        *_, expected = inside._max_case(np.random.default_rng(seed))
        assert inside._open_share(expected) >= inside.MIN_OPEN_PIXELS, seed


@pytest.mark.parametrize("name", ["max_ignores_generator", "max_updates_weights"])
def test_maximize_mistakes_lose_the_ascent_check_whatever_the_secret(name):
    """Under this secret the ascent's draw once clipped every pixel, and both mistakes kept
    the check (max_ignores_generator then kept the whole cell)."""
    import hashlib

    mutant = next(m for m in load_mutants("a4") if m.name == name)
    ns = _namespace(SOURCE_NB, {mutant.cell: mutant.source})
    result = checks.maximize_unit.run_local({"maximize_activation": ns["maximize_activation"]},
                                            secret=hashlib.sha256(b"sweep 35").digest(), assignment=A,
                                            grade_id="test_maximize_activation")
    ascent = next(c for c in result.checks if c.name.startswith("the reference ascent"))
    assert not ascent.passed


def test_occlusion_cases_move_a_likely_class():
    """Every drawn occlusion case scores a class the net finds likely (OCC_MIN_PROB) and
    moves it by OCC_MIN_RANGE: a class at 1e-4 left every map inside the tolerance."""
    from autograder.a4_visualizing.checks import inside

    for seed in range(30):
        rng = np.random.default_rng(seed)
        net, image, label, expected = inside._occ_case(rng, {"patch": 10, "stride": 3, "fill": 0.3})
        with torch.no_grad():
            prob = torch.softmax(inside._model(net)(image[None]), dim=1)[0, label]
        assert float(prob) >= inside.OCC_MIN_PROB
        assert float(expected.max() - expected.min()) >= inside.OCC_MIN_RANGE


def test_a_patch_one_pixel_short_loses_every_occlusion_check_whatever_the_secret():
    """Under this secret the default case once scored a class at 1e-4, and the mistake kept it."""
    import hashlib

    mutant = next(m for m in load_mutants("a4") if m.name == "occ_patch_off_by_one")
    ns = _namespace(SOURCE_NB, {mutant.cell: mutant.source})
    result = checks.occlusion_unit.run_local({"occlusion_map": ns["occlusion_map"]},
                                             secret=hashlib.sha256(b"sweep2 7").digest(), assignment=A,
                                             grade_id="test_occlusion_map")
    assert [c.name for c in result.checks if c.passed] == []
