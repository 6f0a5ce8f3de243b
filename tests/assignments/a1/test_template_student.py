"""A template-style a1 submission (correct LSTM cell, wrong GRU cell, `.squeeze()` habits,
broken bidirectional model) loses points exactly in those grade cells, and in proportion:
more than half of a grade cell where only batch size 1 breaks, less than half where the
core computation is wrong; in process and through the real autograde chain."""
import json
import math
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from autograder.a1_rnn_cells import checks as a1_checks
from autograder.a1_rnn_cells import reference as a1_reference
from mutants import load_cells
from nbcourse import REPO, cell_by_id, make_course, nbgrader, scores, submit

FIXTURE = Path(__file__).parents[2] / "fixtures" / "a1" / "template_style_student.py"
MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")


def _grade_all(ns) -> dict[str, tuple[float, float]]:
    # a hidden call returns the share of its cell's points earned; the points are the metadata's
    out = {"test_lstm_cell": (round(4 * a1_checks.check_lstm_cell(ns["LSTMCell"]), 4), 4),
           "test_gru_cell": (round(4 * a1_checks.check_gru_cell(ns["GRUCell"]), 4), 4)}
    for mode in MODES:
        out[f"test_rnn_model_{mode.lower()}"] = (round(2 * a1_checks.check_rnn_model(ns["RNNModel"], mode), 4), 2)
        out[f"test_bidir_model_{mode.lower()}"] = (
            round(2 * a1_checks.check_bidir_model(ns["BidirRecurrentModel"], mode), 4), 2)
    return out


def expected_share(gid: str) -> tuple[float, float]:
    """(lowest, highest) share of the points the template student may get in ``gid``;
    the bounds are exclusive except for a full score."""
    if gid == "test_lstm_cell":
        return 1.0, 1.0
    if gid.startswith("test_rnn_model"):   # only the batch-size-1 check fails
        return 0.5, 1.0
    return 0.0, 0.5                        # GRU cell and bidirectional models: wrong at the core


def assert_shares(got: dict[str, tuple[float, float]], report: str = "") -> None:
    for gid, (score, points) in got.items():
        low, high = expected_share(gid)
        if low == high:
            assert score == points * high, f"{gid}: {score}/{points}\n{report}"
        else:
            assert points * low < score < points * high, f"{gid}: {score}/{points} outside ({low}, {high})\n{report}"


def test_partial_credit_exactly_where_the_submission_is_wrong(capsys):
    cells, loses = load_cells(FIXTURE)
    ns = {"torch": torch, "nn": nn, "math": math, "BasicRNNCell": a1_reference.BasicRNNCell}
    for source in cells.values():
        exec(compile(source, "<student cell>", "exec"), ns)
    got = _grade_all(ns)
    report = capsys.readouterr().out
    assert {gid for gid, (score, points) in got.items() if score < points} == set(loses)
    assert_shares(got, report)
    # .squeeze() is named as the batch-size-1 failure of the unidirectional models.
    assert "FAILED batch size 1" in report
    # The one-tensor LSTM state convention is accepted, so the given-state check passes.
    lstm_part = report.split("RNNModel('LSTM')")[1].split("RNNModel('GRU')")[0]
    assert "FAILED 2 layers, given initial state" not in lstm_part


@pytest.mark.slow
def test_end_to_end_shares_through_the_trusted_chain(tmp_path):
    """Graded by the real nbgrader autograde: the visible asserts the submission fails (batch
    size 1, the GRU's known value) no longer block its hidden checks, so the scores keep the
    same proportions as above."""
    a = "a1_rnn_cells"
    course = make_course(tmp_path, a)
    nbgrader(course, "generate_assignment", a, "--force")
    cells, loses = load_cells(FIXTURE)
    nb = nbformat.read(REPO / "source" / a / f"{a}.ipynb", as_version=4)
    for gid, source in cells.items():
        cell_by_id(nb, gid).source = source
    submit(course, "template", a, nb, name=f"{a}.ipynb")
    nbgrader(course, "autograde", a, "--force", timeout=1200)
    got = scores(course, a, "template")
    graded = {gid: got[gid] for gid in got if gid.startswith(("test_lstm", "test_gru", "test_rnn", "test_bidir"))}
    assert len(graded) == 10
    assert {gid for gid, (score, points) in graded.items() if score < points} == set(loses)
    assert_shares(graded)
    autograded = nbformat.read(course / "autograded" / "template" / a / f"{a}.ipynb", as_version=4)
    shown = json.dumps(cell_by_id(autograded, "test_rnn_model_lstm").outputs)
    assert "FAILED batch size 1" in shown
