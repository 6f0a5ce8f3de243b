"""a2_sentiment end to end (see assignment_suite), plus its own grade-cell layout."""
from __future__ import annotations

import nbformat

from assignment_suite import AssignmentSuite, grade_cells


class TestA2(AssignmentSuite):
    assignment = "a2_sentiment"
    mutant_set = "a2"
    hidden_names = ("check_pad_sequences", "check_vocabulary", "check_sentiment_model", "check_count_parameters",
                    "check_train_model", "check_best_epoch", "check_param_ratio", "check_plot_history",
                    "a2_sentiment.checks")

    def test_grade_cells_and_points(self):
        source = nbformat.read(self.source_nb(), as_version=4)
        assert self.autograded() == {"test_vocabulary": 3, "test_pad_sequences": 3, "test_sentiment_model": 3,
                                     "test_count_parameters": 2, "test_train_model": 4, "test_plot_history": 2,
                                     "test_param_ratio": 2, "test_best_epoch": 3}
        manual = grade_cells(source, "markdown")
        assert set(manual) == {"q_param_difference", "q_overfitting", "q_tuning", "q_gru_vs_lstm", "q_padding"}
        assert sum(manual.values()) == 14

    def test_notebook_says_which_data_it_uses(self):
        source = nbformat.read(self.source_nb(), as_version=4)
        text = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
        assert "offline stand-in" in text and "not movie reviews" in text and "Amazon" in text
