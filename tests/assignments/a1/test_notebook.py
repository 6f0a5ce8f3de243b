"""a1_rnn_cells end to end (see assignment_suite): release in sync and leak-free, the
solution runs, and the real nbgrader CLI grades the solution, the untouched release,
the mutants and a submission that writes warnings to stderr."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from assignment_suite import AssignmentSuite
from mutants import load_cells
from nbcourse import cell_by_id, scores

TEMPLATE_STUDENT = Path(__file__).parents[2] / "fixtures" / "a1" / "template_style_student.py"


def _warning_submission(source_nb):
    """The solution, but the LSTM cell warns on stderr every time it runs."""
    nb = nbformat.read(source_nb, as_version=4)
    cell = cell_by_id(nb, "lstm_cell")
    cell.source = "import warnings\n" + cell.source.replace(
        "        ### BEGIN SOLUTION\n        if hx is None:",
        "        ### BEGIN SOLUTION\n        warnings.warn('this op is deprecated', UserWarning)\n        if hx is None:")
    assert "warnings.warn" in cell.source
    return nb


class TestA1(AssignmentSuite):
    assignment = "a1_rnn_cells"
    mutant_set = "a1"
    hidden_names = ("check_lstm_cell", "check_gru_cell", "check_rnn_model", "check_bidir_model",
                    "check_abc_answers", "a1_rnn_cells.checks", "abc_key")

    def extra_submissions(self):
        cells, loses = load_cells(TEMPLATE_STUDENT)
        template = nbformat.read(self.source_nb(), as_version=4)
        for gid, source in cells.items():
            cell_by_id(template, gid).source = source
        return {"warnings": (_warning_submission(self.source_nb()), set()),
                "template": (template, set(loses))}

    def test_every_behaviour_has_its_own_grade_cell(self):
        expected = {"test_lstm_cell", "test_gru_cell", "test_abc_answers"}
        expected |= {f"test_{kind}_model_{m}" for kind in ("rnn", "bidir")
                     for m in ("lstm", "gru", "rnn_tanh", "rnn_relu")}
        assert set(self.autograded()) == expected

    @pytest.mark.slow
    def test_warnings_reach_the_student_but_cost_nothing(self, graded_class):
        course, *_ = graded_class
        nb = nbformat.read(course / "autograded" / "warnings" / self.assignment / self.release_nb().name,
                           as_version=4)
        outputs = json.dumps(cell_by_id(nb, "test_lstm_cell").outputs)
        assert "deprecated" in outputs and '"stderr"' not in outputs
        got = scores(course, self.assignment, "warnings")
        assert {k: got[k][0] for k in self.autograded()} == self.autograded()
