"""a2_sentiment hidden checks, run directly on the notebook's cells (fast, no nbgrader):
the solution earns every point, the release stubs none, each mutant loses points in its
own unit, on every draw of the inputs, and no check raises, writes to stderr or disturbs
the notebook's RNG. The probe module the kernel receives holds no reference code."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from autograder.a2_sentiment import checks
from autograder.a2_sentiment import probes as kit
from autograder.a2_sentiment import reference as ref
from mutants import load_mutants
from nbcourse import REPO, answer_namespace, cell_by_id, grade_points
from probe_modules import assert_kernel_safe

matplotlib.use("Agg")

A = "a2_sentiment"
SOURCE_NB = nbformat.read(REPO / "source" / A / f"{A}.ipynb", as_version=4)
RELEASE_NB = nbformat.read(REPO / "release" / A / f"{A}.ipynb", as_version=4)
MUTANTS = load_mutants("a2")

# solution cell -> (grade cell, check, names the check takes from the notebook)
UNITS = {
    "vocabulary": ("test_vocabulary", checks.check_vocabulary, ("build_word_index", "docs_to_sequences")),
    "pad_sequences": ("test_pad_sequences", checks.check_pad_sequences, ("pad_sequences",)),
    "sentiment_model": ("test_sentiment_model", checks.check_sentiment_model, ("SentimentRNN",)),
    "count_parameters": ("test_count_parameters", checks.check_count_parameters, ("count_parameters",)),
    "train_model": ("test_train_model", checks.check_train_model, ("train_model", "evaluate")),
    "plot_history": ("test_plot_history", checks.check_plot_history, ("plot_history",)),
    "param_ratio": ("test_param_ratio", checks.check_param_ratio, ("recurrent_param_count",)),
    "best_epoch": ("test_best_epoch", checks.check_best_epoch, ("best_epoch", "KeepBest")),
}


def _points(grade_id: str) -> float:
    return grade_points(SOURCE_NB, grade_id)


def _namespace(nb, replace: dict[str, str] | None = None) -> dict:
    """The notebook's imports plus its answer cells, as a kernel would hold them."""
    return answer_namespace(nb, UNITS, prelude=cell_by_id(nb, "setup").source, replace=replace)


def _run(cell_id: str, ns: dict) -> float:
    grade_id, check, names = UNITS[cell_id]
    return round(_points(grade_id) * check(*(ns[n] for n in names)), 4)  # the call returns the share earned


@pytest.fixture(scope="module")
def solution():
    return _namespace(SOURCE_NB)


@pytest.fixture(scope="module")
def release():
    return _namespace(RELEASE_NB)


def test_every_unit_has_its_hidden_check_in_the_notebook():
    for cell_id, (grade_id, check, names) in UNITS.items():
        src = cell_by_id(SOURCE_NB, grade_id).source
        assert f"{check.__name__}({', '.join(names)})\n" in src, grade_id  # points: the cell's metadata only


@pytest.mark.parametrize("cell_id", list(UNITS))
def test_solution_earns_every_point(cell_id, solution, capsys):
    assert _run(cell_id, solution) == _points(UNITS[cell_id][0])
    out = capsys.readouterr()
    assert "FAILED" not in out.out and out.err == ""


@pytest.mark.parametrize("cell_id", list(UNITS))
def test_release_stub_earns_nothing(cell_id, release, capsys):
    assert _run(cell_id, release) == 0.0
    out = capsys.readouterr()
    assert "NotImplementedError" in out.out and out.err == ""


def test_mutants_cover_the_typical_mistakes():
    names = {m.name for m in MUTANTS}
    assert {"pad_keras_default_pre", "pad_truncate_off_by_one", "model_sigmoid_twice",
            "train_threshold_logits", "count_trainable_only", "count_tied_twice",
            "best_by_train_loss", "best_state_not_copied"} <= names
    assert {m.cell for m in MUTANTS} == set(UNITS), "every answer cell has a mutant"


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_loses_points_only_in_its_unit(mutant, capsys):
    grade_id = UNITS[mutant.cell][0]
    # Checks receive only their own cell's objects, so a mutant can only touch its own unit.
    assert mutant.loses == {grade_id}, f"{mutant.name}: loses {set(mutant.loses)}, its cell is graded by {grade_id}"
    ns = _namespace(SOURCE_NB, {mutant.cell: mutant.source})
    score = _run(mutant.cell, ns)
    assert score < _points(grade_id), f"{mutant.name} kept all points"
    out = capsys.readouterr()
    assert "FAILED" in out.out and out.err == ""


@pytest.mark.parametrize("name, low, high", [
    ("model_sigmoid_twice", 0.5, 3.0), ("train_threshold_logits", 0.5, 4.0),
    ("count_tied_twice", 0.5, 2.0), ("plot_swapped_panels", 0.5, 2.0)])
def test_partial_credit_for_a_single_mistake(name, low, high):
    (mutant,) = [m for m in MUTANTS if m.name == name]
    score = _run(mutant.cell, _namespace(SOURCE_NB, {mutant.cell: mutant.source}))
    assert low <= score < high


def test_failure_messages_say_what_is_wrong(capsys):
    expected = {"model_sigmoid_twice": "probabilities", "best_state_not_copied": "in place",
                "train_validation_first": "LAST part", "vocab_cap_off_by_one": "num_words"}
    for name, phrase in expected.items():
        (mutant,) = [m for m in MUTANTS if m.name == name]
        _run(mutant.cell, _namespace(SOURCE_NB, {mutant.cell: mutant.source}))
        assert phrase in capsys.readouterr().out, name


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
        warnings.simplefilter("error")  # a warning escaping the checks would fail here
        score = check(*([bad] * len(names)))
    assert score == 0.0
    assert capfd.readouterr().err == ""


def test_checks_leave_the_notebook_rng_alone(solution):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for cell_id in ("sentiment_model", "train_model", "count_parameters", "best_epoch"):
        _run(cell_id, solution)
    assert torch.equal(torch.get_rng_state(), state)


def test_checks_close_their_figures(solution):
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    _run("plot_history", solution)
    assert set(plt.get_fignums()) == before


# ------------------------------------------------------------ random draws

SEEDS = (11, 12, 13)

# mutant -> the check built to catch it: it must fail whatever the draw
CAUGHT_BY = {
    "vocab_ties_alphabetical": "equal counts rank in order of first appearance",
    "vocab_cap_off_by_one": "num_words at the boundary (index num_words - 1 kept, num_words dropped)",
    "pad_keras_default_pre": "padding='post' puts the values after the sequence",
    "pad_truncate_off_by_one": "truncating='post' keeps the first maxlen items",
    "model_sigmoid_twice": "forward: logits from the hidden state after the last time step",
    "count_trainable_only": "frozen (non-trainable) parameters count too",
    "count_tied_twice": "a shared (tied) tensor counts once",
    "train_threshold_logits": "evaluate: mean BCE on logits, accuracy with the logit-0 threshold",
    "train_validation_first": "validation metrics on the last validation_split of the data",
    "best_by_train_loss": "best epoch = highest validation accuracy",
    "best_state_not_copied": "restore() brings back the best epoch's weights",
    "plot_swapped_panels": "loss left, accuracy right",
}


def _unit_and_objects(cell_id: str, ns: dict):
    _, check, names = UNITS[cell_id]
    return check.unit, {param: ns[name] for param, name in zip(check.unit.objects, names)}


@pytest.mark.parametrize("cell_id", list(UNITS))
def test_solution_earns_every_point_on_every_draw(cell_id, solution):
    unit, objects = _unit_and_objects(cell_id, solution)
    for seed in SEEDS:
        result = unit.run_local(objects, seed=seed)
        assert result.score == 1.0, f"seed {seed}: {result.report()}"


@pytest.mark.parametrize("name", sorted(CAUGHT_BY))
def test_mutant_fails_its_check_on_every_draw(name):
    (mutant,) = [m for m in MUTANTS if m.name == name]
    unit, objects = _unit_and_objects(mutant.cell, _namespace(SOURCE_NB, {mutant.cell: mutant.source}))
    for seed in SEEDS:
        result = unit.run_local(objects, seed=seed)
        assert CAUGHT_BY[name] in {c.name for c in result.checks if not c.passed}, f"seed {seed}: {result.report()}"


# Counts depend on sizes alone, and sizes are fixed per check: these units draw nothing.
SIZES_ONLY = {"test_count_parameters", "test_param_ratio"}


@pytest.mark.parametrize("cell_id", list(UNITS))
def test_every_check_draws_its_inputs_from_the_seed(cell_id):
    unit = UNITS[cell_id][1].unit
    bindings = {p: p for p in unit.objects}
    first, second = (unit.plan(np.random.default_rng(seed), bindings=bindings) for seed in (1, 2))
    for a, b in zip(first.checks, second.checks):
        assert a.error is None and b.error is None, (a.error, b.error)
        sent = [json.dumps([plan.kernel["calls"][i] for i in pc.calls]) for plan, pc in ((first, a), (second, b))]
        if unit.grade_id in SIZES_ONLY:
            assert sent[0] == sent[1], f"{a.check.name}: a counting check draws its sizes"
        else:
            assert sent[0] != sent[1], f"{a.check.name}: the same inputs for two seeds"


def test_probe_module_holds_no_grader_code():
    """The kernel receives the probe module's source: matplotlib (for the plot probe) besides what
    every probe module may import, and no reference code."""
    source = Path(kit.__file__).read_text()
    assert_kernel_safe(source, extra=frozenset({"matplotlib"}))
    assert "reference import" not in source and "checks import" not in source and "from ." not in source


# ------------------------------------------------------- the reference itself

def test_reference_pad_sequences_matches_keras_documented_examples():
    seqs = [[1], [2, 3], [4, 5, 6]]
    assert ref.pad_sequences(seqs).tolist() == [[0, 0, 1], [0, 2, 3], [4, 5, 6]]
    assert ref.pad_sequences(seqs, value=-1).tolist() == [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    assert ref.pad_sequences(seqs, padding="post").tolist() == [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    assert ref.pad_sequences(seqs, maxlen=2).tolist() == [[0, 1], [2, 3], [5, 6]]
    assert ref.pad_sequences([], maxlen=4).shape == (0, 4)


def test_reference_indexing_is_keras():
    docs = [["the", "film", "the"], ["a", "film", "the"]]
    wi = ref.build_word_index(docs)
    assert wi == {"the": 1, "film": 2, "a": 3}
    assert ref.docs_to_sequences(docs, wi) == [[1, 4, 5, 4], [1, 6, 5, 4]]
    # num_words bounds the index: 5 and 6 are >= 5, so they become OOV (2).
    assert ref.docs_to_sequences(docs, wi, num_words=5) == [[1, 4, 2, 4], [1, 2, 2, 4]]


def test_reference_model_counts_match_the_coursework():
    assert ref.count_parameters(ref.SentimentRNN()) == {"embedding": 100_000, "rnn": 285, "fc": 6,
                                                       "total": 100_291}
    assert ref.recurrent_param_count("rnn", 50, 5, biases=1) == 280
    for kind, cls in ref.RECURRENT.items():
        assert ref.recurrent_param_count(kind, 50, 64) == sum(p.numel() for p in cls(50, 64).parameters())


def test_reference_training_is_repeatable_and_learns():
    rng = np.random.default_rng(1)
    x, y = checks.training._toy_data(rng, 400)
    weights = checks.training._bag_weights(rng, 0.1)

    def run():
        return ref.train_model(kit.bag_model(weights), x, y, epochs=checks.training.LEARN_EPOCHS, batch_size=16,
                               lr=0.2)

    first, second = run(), run()
    assert first == second
    assert first["val_accuracy"][-1] >= 0.95 and first["loss"][-1] < first["loss"][0]


def test_reference_keep_best_copies_weights():
    keeper, model = ref.KeepBest(), nn.Linear(2, 1)
    keeper.update(0, {"val_accuracy": 0.9}, model)
    saved = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.mul_(3)
    keeper.update(1, {"val_accuracy": 0.8}, model)
    assert torch.equal(keeper.restore(model).weight, saved) and keeper.best_epoch == 0


def _learns_check(train_model, secret: bytes):
    """The "learns" check's result for ``train_model`` (the solution's evaluate) under ``secret``."""
    result = checks.train.run_local({"train_model": train_model, "evaluate": ref.evaluate}, secret=secret,
                                    assignment=A, grade_id="test_train_model")
    return next(c for c in result.checks if c.name == "mini-batch training learns an easy task")


def test_a_slow_but_right_learner_passes_the_learns_check_whatever_the_secret():
    """A sigmoid before BCEWithLogitsLoss learns slowly: in 8 epochs it missed 90% on about
    one draw in 30 (this secret), so the cell's score depended on the secret. It loses the
    cell on the loss and optimiser checks, every time."""
    import hashlib

    mutant = next(m for m in load_mutants("a2") if m.name == "train_sigmoid_twice")
    ns = _namespace(SOURCE_NB, {mutant.cell: mutant.source})
    assert _learns_check(ns["train_model"], hashlib.sha256(b"sweep 31").digest()).passed


def test_a_loop_that_never_steps_fails_the_learns_check():
    def no_step(model, x, y, **kwargs):  # the optimiser's steps change nothing
        return ref.train_model(model, x, y, **{**kwargs, "lr": 0.0})

    for i in range(3):
        check = _learns_check(no_step, bytes([i]) * 32)
        assert not check.passed and "did not go down" in check.message, check.message
