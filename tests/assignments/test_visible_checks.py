"""The visible tests of the release notebooks catch typical mistakes, as a student sees them.

For every mutant in ``tests/mutants/<set>/`` the RELEASE notebook's visible test cells run
in-process with the mutant's cell in place of the solution (the solution's other cells
stay). A mutant whose mistake shows in the unit's own inputs and outputs must make a
visible test of its unit raise, with a message that names the mistake (``VISIBLE``); the
other units' visible tests must still pass (the message points at the right unit), except a
visible test that runs on another answer by design (``BUILDS_ON``): that one may fail too,
but its message must send the student to the mutated unit's own test. The
few mistakes that only the hidden tests can see are listed in ``HIDDEN_ONLY`` with the
reason, and must pass every visible test. The solution itself raises nowhere.
"""
from __future__ import annotations

import contextlib
import io
import os
import re

import nbformat
import pytest

from coursectl.assignments import ASSIGNMENTS
from mutants import load_mutants
from nbcourse import REPO

# Cells (by grade id) that a grade cell needs besides the answer cells and the grade cells
# themselves, and those of them run once and then copied, come from the assignment
# registry; everything else (data plots, training) is left out to keep this fast.
SPECS = {spec.mutants: spec for spec in ASSIGNMENTS.values() if spec.visible_setup is not None}
SETS = {s: spec.name for s, spec in SPECS.items()}
SETUP = {spec.name: spec.visible_setup for spec in SPECS.values()}
BASE = {spec.name: spec.visible_base for spec in SPECS.values()}

# mutant -> a pattern its visible failure message must contain (case-insensitive).
VISIBLE = {
    "a1": {
        "abc_all_same": r"each model appears once",
        "abc_lowercase": r"must be 'RNN', 'LSTM' or 'GRU'",
        "bidir_concat_swapped": r"halves are swapped",
        "bidir_not_reversed": r"reads the steps in forward order",
        "bidir_rev_last_step": r"reverse state after reading only step T",
        "bidir_shared_cells": r"each direction needs its own cells",
        "bidir_upper_forward_only": r"reads 2H",
        "gru_mix_projection": r"z = 1.*must be h",
        "gru_reset_before_projection": r"r = 0.*after the projection",
        "gru_swapped_mix": r"z = 1.*must be h",
        "gru_swapped_reset_update": r"reset, update, new",
        "lstm_empty_state": r"NaN.*torch\.empty",
        "lstm_gate_order": r"gate blocks.*input, forget, cell, output",
        "lstm_h_without_tanh": r"h' = o \* tanh\(c'\)",
        "lstm_no_bias": r"with biases",
        "lstm_squeeze": r"batch size 1",
        "lstm_torch_kernel": r"not allowed",
        "rnn_model_bottom_layer": r"bottom layer",
        "rnn_model_empty_state": r"NaN.*torch\.empty",
        "rnn_model_ignores_hx": r"given hx is ignored",
        "rnn_model_nn_lstm": r"not allowed",
        "rnn_model_off_by_one": r"last step is never read",
        "rnn_model_relu_as_tanh": r"tanh RNN.*nonlinearity='relu'",
        "rnn_model_squeeze": r"batch size 1",
    },
    "a2": {
        "best_by_train_loss": r"best_epoch gave 3, expected 2",
        "best_state_not_copied": r"restore\(\) should bring back epoch 0",
        "count_tied_twice": r"shared .*once",
        "count_trainable_only": r"frozen",
        "model_default_init": r"std.*0\.001",
        "model_first_step": r"last word",
        "model_sigmoid_twice": r"logits, not probabilities",
        "pad_keras_default_pre": r"post/post",
        "pad_truncate_off_by_one": r"post/post",
        "plot_no_labels": r"label",
        "plot_swapped_panels": r"left panel.*loss",
        "ratio_keras_one_bias": r"nn\.RNN\(50, 5\)",
        "ratio_no_recurrent_matrix": r"nn\.RNN\(50, 5\)",
        "train_sigmoid_twice": r"no sigmoid",
        "train_threshold_logits": r"logit .*0",
        "train_validation_first": r"LAST 20%",
        "vocab_cap_off_by_one": r"indices >= num_words become 2",
        "vocab_no_offset": r"r \+ 3",
        "vocab_ties_alphabetical": r"first appearance",
    },
    "a3": {
        "accuracy_wrong_dim": r"argmax over the LAST dimension",
        "bits_in_nats": r"not nats",
        "bits_log_of_mean_prob": r"mean of -log2 p, not -log2 of the mean p",
        "encode_unknown_to_zero": r"raise KeyError",
        "evaluate_mean_of_batches": r"weight each batch by its size",
        "evaluate_train_mode": r"model\.eval\(\)",
        "generate_always_greedy": r"sample with the given generator",
        "generate_returns_prefix": r"12 NEW characters",
        "generate_state_reset": r"carry the state",
        "generate_temperature_after_softmax": r"BEFORE the softmax",
        "macs_gate_count": r"FlopCounterMode counts",
        "macs_upper_layers_input_size": r"layer 2 reads H",
        "model_head_tanh": r"nn\.ReLU",
        "model_ignores_state": r"should continue forward",
        "model_last_position_only": r"every position",
        "size_in_bits": r"220 bytes",
        "size_trainable_only": r"buffers count",
        "split_vocab_from_training_part": r"vocabulary should come from the whole text",
        "split_windows_cross_boundary": r"windows of text\[:cut\] only",
        "vocab_first_appearance": r"SORTED distinct characters",
        "windows_drop_last": r"expected shapes \(5, 3\)",
        "windows_target_off_by_one": r"character AFTER the window",
    },
    "a4": {
        "cnn_filters_hardcoded": r"conv1_filters must set",
        "cnn_rgb_input": r"expected 1 -> 32",
        "deconv_conv_not_transposed": r"transposed convolution",
        "deconv_other_maps_kept": r"zero the others",
        "deconv_padding_hardcoded": r"conv1's own padding",
        "deconv_plain_upsampling": r"switches",
        "gray_bgr_order": r"channels reversed",
        "gray_mean_weights": r"plain mean",
        "gray_not_scaled": r"expected \[0\.299, 0\.587, 0\.114\]",
        "gray_reshape_not_permute": r"permute, not reshape",
        "grid_column_major": r"row by row",
        "grid_joint_normalisation": r"scaled on its own",
        "grid_no_padding": r"1 px around and between",
        "log_accuracies_swapped": r"test/accuracy read back",
        "log_steps_from_zero": r"first epoch is step 1",
        "log_underscore_tags": r"found the tags",
        "max_descent": r"ascend",
        "max_ignores_generator": r"generator",
        "max_not_clipped": r"clip the image",
        "max_updates_weights": r"weights changed",
        "occ_in_place": r"occlude a copy",
        "occ_logits": r"probabilities",
        "occ_patch_off_by_one": r"patch x patch pixels",
        "occ_positions_off_by_one": r"expected \(7, 7\)",
        "rnn_always_lstm": r"expected one RNN",
        "rnn_column_wise": r"column by column",
        "rnn_first_step": r"LAST step",
        "rnn_mean_of_steps": r"output of the last step",
        "stats_before_relu": r"after the ReLU",
        "stats_over_batch_only": r"images AND positions",
        "stats_per_image_std": r"images AND positions",
    },
}

# Mistakes the visible tests cannot see from the unit's inputs and outputs, and why. None of
# the current mutants is one. Kinds that would be: a cell's initialisation range or
# reset_parameters() (no output shows them), wrong gradients with right outputs (a detached
# state), bias=False in a model or an in-place update of the state passed in.
HIDDEN_ONLY: dict[str, dict[str, str]] = {"a1": {}, "a2": {}, "a3": {}, "a4": {}}

# grade id -> answer cells its visible test runs on besides its own (the notebook builds
# them on each other on purpose: evaluate and generate need a CharModel). A mistake in
# one of those may fail that test too, with a message naming the mutated unit's test.
BUILDS_ON: dict[str, dict[str, frozenset[str]]] = {
    "a1": {}, "a2": {}, "a4": {},
    "a3": {"test_train_val_windows": frozenset({"make_windows"}),
           "test_evaluate": frozenset({"char_model"}), "test_generate": frozenset({"char_model"})},
}


def _cells(path):
    nb = nbformat.read(path, as_version=4)
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        out.append((meta.get("grade_id"), cell.cell_type, meta, cell.source))
    return out


class Runner:
    """The release notebook's test cells on top of the solution's (or a mutant's) cells."""

    def __init__(self, assignment):
        self.assignment = assignment
        self.release = _cells(REPO / "release" / assignment / f"{assignment}.ipynb")
        source = _cells(REPO / "source" / assignment / f"{assignment}.ipynb")
        self.solutions = {gid: src for gid, kind, meta, src in source if kind == "code" and meta.get("solution")}
        self.grade_ids = [gid for gid, kind, meta, _ in self.release
                          if kind == "code" and meta.get("grade") and not meta.get("solution")]
        self.base = {"__name__": "__main__"}
        cwd = os.getcwd()
        try:
            os.chdir(REPO / "release" / assignment)
            for gid, kind, meta, src in self.release:
                if gid in BASE[assignment]:
                    self._exec(src, self.base, gid)
        finally:
            os.chdir(cwd)

    @staticmethod
    def _exec(src, ns, name):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(src, f"<cell {name}>", "exec"), ns)

    def run(self, replace: dict[str, str]) -> dict[str, str | None]:
        """grade id -> None (passed) or the error message, for every grade cell."""
        import matplotlib.pyplot as plt

        ns = dict(self.base)
        results = {}
        for gid, kind, meta, src in self.release:
            if kind != "code" or gid in BASE[self.assignment]:
                continue
            if meta.get("solution"):
                self._exec(replace.get(gid, self.solutions[gid]), ns, gid)
            elif gid in self.grade_ids:
                try:
                    self._exec(src, ns, gid)
                    results[gid] = None
                except Exception as exc:  # what the student would see under the cell
                    results[gid] = f"{type(exc).__name__}: {exc}"
                plt.close("all")
            elif gid in SETUP[self.assignment]:
                self._exec(src, ns, gid)
        return results


@pytest.fixture(scope="module")
def runners():
    os.environ.setdefault("MPLBACKEND", "Agg")
    return {}


def _runner(runners, mutant_set):
    if mutant_set not in runners:
        runners[mutant_set] = Runner(SETS[mutant_set])
    return runners[mutant_set]


@pytest.mark.parametrize("mutant_set", sorted(SETS))
def test_every_mutant_is_listed_once(mutant_set):
    assert set(SETS) == set(VISIBLE) == set(HIDDEN_ONLY) == set(BUILDS_ON), "every assignment is under the rule"
    names = {m.name for m in load_mutants(mutant_set)}
    visible, hidden = set(VISIBLE[mutant_set]), set(HIDDEN_ONLY[mutant_set])
    assert not visible & hidden
    assert visible | hidden == names, ("unlisted", names - visible - hidden, "gone", (visible | hidden) - names)


@pytest.mark.parametrize("mutant_set", sorted(SETS))
def test_the_solution_passes_every_visible_test(runners, mutant_set):
    results = _runner(runners, mutant_set).run({})
    assert results and all(v is None for v in results.values()), results


def _cases():
    return [(s, m) for s in sorted(SETS) for m in load_mutants(s)]


@pytest.mark.slow  # about two minutes for all mutants on 2 busy cores
@pytest.mark.parametrize("mutant_set,mutant", _cases(), ids=lambda v: getattr(v, "name", v))
def test_mutant_fails_a_visible_test_of_its_unit_with_a_message(runners, mutant_set, mutant):
    results = _runner(runners, mutant_set).run({mutant.cell: mutant.source})
    failed = {gid: msg for gid, msg in results.items() if msg is not None}
    outside = {gid: msg for gid, msg in failed.items() if gid not in mutant.loses}
    builds_on = BUILDS_ON[mutant_set]
    unexplained = {gid: msg for gid, msg in outside.items()
                   if mutant.cell not in builds_on.get(gid, ()) or not any(own in msg for own in mutant.loses)}
    assert not unexplained, f"{mutant.name} fails visible tests of other units: {unexplained}"
    if mutant.name in HIDDEN_ONLY[mutant_set]:
        assert not failed, f"{mutant.name} is listed as hidden-only but fails visibly: {failed}"
        return
    assert failed, f"{mutant.name} passes every visible test"
    pattern = VISIBLE[mutant_set][mutant.name]
    assert any(re.search(pattern, msg, re.I | re.S) for msg in failed.values()), \
        f"{mutant.name}: no message matches {pattern!r}: {failed}"


# --------------------------------------------------------------------------- layout a student relies on

def _release(assignment):
    return nbformat.read(REPO / "release" / assignment / f"{assignment}.ipynb", as_version=4)


@pytest.mark.parametrize("assignment,cell_id,names", [
    ("a1_rnn_cells", "choose", ("MODEL_CLASS", "MODE")),
    ("a2_sentiment", "sweep-settings", ("SWEEP_KIND", "LENGTHS", "HIDDEN_SIZES", "KINDS")),
])
def test_choices_sit_in_cells_the_student_owns(assignment, cell_id, names):
    """nbgrader restores locked cells at grading; a choice the notebook invites must not be in one."""
    nb = _release(assignment)
    (cell,) = [c for c in nb.cells if c.get("id") == cell_id]
    assert "nbgrader" not in cell.metadata and cell.metadata.get("editable", True), cell.metadata
    for name in names:
        assert re.search(rf"^{name}\b.*=|^\s*{name}, .*=|, {name}\b.*=", cell.source, re.M), name
        for other in nb.cells:
            meta = other.metadata.get("nbgrader", {})
            if other.cell_type == "code" and meta.get("locked"):
                assert not re.search(rf"^{name}\s*=", other.source, re.M), f"{name} set in locked {meta['grade_id']}"


def test_a1_shows_points_and_a_reasoning_cell_for_q3():
    nb = _release("a1_rnn_cells")
    intro = nb.cells[0].source
    assert "27 points" in intro and "11 points" in intro and "hidden tests check" in intro
    manual = {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"] for c in nb.cells
              if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")}
    assert manual == {"q_vanishing_gradients": 3, "q_lstm_vs_rnn": 3, "q_abc_reasoning": 2, "q_when_to_use": 3}
    q3 = next(c.source for c in nb.cells if "abc_training_curves.png" in c.source)
    caption = q3[q3.index("*Figure:"):]
    for fact in ("validation accuracy", "100 epochs", "one-layer", "32", "stand-in"):
        assert fact in caption, fact


def test_a2_writes_the_init_distribution_one_way():
    text = "\n".join(c.source for c in _release("a2_sentiment").cells)
    assert "N(0, 0.001)" not in text and "0.001^2" in text and "standard deviation 0.001" in text


@pytest.mark.slow  # in-process, but it runs every visible test of a1 twice
@pytest.mark.parametrize("cell_id,grade_id,old", [
    ("lstm_cell", "test_lstm_cell", "zeros = input.new_zeros(input.size(0), self.hidden_size)"),
    ("gru_cell", "test_gru_cell", "hx = input.new_zeros(input.size(0), self.hidden_size)"),
])
def test_a1_default_state_on_the_inputs_dtype(runners, cell_id, grade_id, old):
    """A default state from torch.zeros (float32 on the CPU) is named, not left to a dtype crash."""
    runner = _runner(runners, "a1")
    source = runner.solutions[cell_id]
    assert old in source
    results = runner.run({cell_id: source.replace(old, old.replace("input.new_zeros", "torch.zeros"))})
    assert results[grade_id] and "input.new_zeros" in results[grade_id], results[grade_id]
    assert all(msg is None for gid, msg in results.items() if gid != grade_id), results


@pytest.mark.slow  # in-process, every visible test of a1 once
def test_a1_template_style_student_fails_visibly_where_it_loses_points(runners):
    """The whole submission written the way course templates usually look (see the fixture)."""
    from pathlib import Path

    from mutants import load_cells

    cells, loses = load_cells(Path(__file__).parents[1] / "fixtures" / "a1" / "template_style_student.py")
    results = _runner(runners, "a1").run(cells)
    assert {gid for gid, msg in results.items() if msg} == set(loses), results
    assert "h' with z = 1" in results["test_gru_cell"] and "batch size 1" in results["test_rnn_model_lstm"]
