"""a4_visualizing end to end (see assignment_suite), its grade-cell layout, what it says about
its data, and the solution's TensorBoard runs read by the tensorboard program itself."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from assignment_suite import AssignmentSuite, grade_cells
from nbcourse import cell_by_id


EXTRA_CREDIT = "test_maximize_activation"  # worth 0 points; its hidden check's 2 points are extra credit


class TestA4(AssignmentSuite):
    assignment = "a4_visualizing"
    mutant_set = "a4"
    hidden_names = ("check_to_grayscale", "check_small_cnn", "check_log_run", "check_filter_grid",
                    "check_activation_stats", "check_maximize_activation", "check_deconv_project",
                    "check_occlusion_map", "check_row_rnn", "a4_visualizing.checks")

    @classmethod
    def autograded(cls) -> dict[str, float]:
        """The grade cells that count towards the maximum; the extra-credit cell has its own tests."""
        return {k: v for k, v in super().autograded().items() if k != EXTRA_CREDIT}

    def test_grade_cells_and_points(self):
        source = nbformat.read(self.source_nb(), as_version=4)
        assert self.autograded() == {"test_to_grayscale": 2, "test_small_cnn": 2, "test_log_run": 2,
                                     "test_filter_grid": 2, "test_activation_stats": 2,
                                     "test_deconv_project": 3, "test_occlusion_map": 3, "test_row_rnn": 3}
        manual = grade_cells(source, "markdown")
        assert manual == {"q_tuning": 2, "q_filters": 2, "q_zeiler_fergus": 6, "q_rnn_comparison": 4}
        extra = cell_by_id(source, EXTRA_CREDIT)
        assert extra.metadata["nbgrader"]["points"] == 0
        assert "check_maximize_activation(maximize_activation, extra_credit=2)" in extra.source
        assert sum(grade_cells(source, "code").values()) + sum(manual.values()) == 33

    def test_intro_table_agrees_with_the_points(self):
        intro = nbformat.read(self.source_nb(), as_version=4).cells[0].source
        assert "Autograded: 19 points, plus 2 points of extra credit" in intro and "written: 14 points" in intro
        assert "The maximum is\n33 points" in intro and "35" not in intro

    @pytest.mark.slow
    def test_maximize_activation_is_extra_credit(self, graded_class):
        """nbgrader's extra credit: the solution earns 2 above a maximum of 33, the release
        nothing, and a wrong maximize_activation less than 2."""
        from nbgrader.api import Gradebook

        course, expected, _ = graded_class
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            def grade(student):
                sub = gb.find_submission(self.assignment, student)
                (nb,) = sub.notebooks
                return sub, next(g for g in nb.grades if g.name == EXTRA_CREDIT)

            sub, g = grade("solution")
            assert (g.max_score, g.auto_score, g.extra_credit) == (0.0, 0.0, 2.0)
            assert sub.max_score == 33.0
            assert sub.score == sum(self.autograded().values()) + 2.0  # written answers not graded yet
            assert not grade("release")[1].extra_credit
            wrong = [s for s, loses in expected.items() if EXTRA_CREDIT in loses and s != "release"]
            assert wrong, "no mutant of maximize_activation"
            for student in wrong:
                assert (grade(student)[1].extra_credit or 0.0) < 2.0, student
            for student, loses in expected.items():
                if EXTRA_CREDIT not in loses and student != "release":
                    assert grade(student)[1].extra_credit == 2.0, student

    def test_every_grade_cell_lists_what_its_hidden_tests_check(self):
        source = nbformat.read(self.source_nb(), as_version=4)
        for gid in self.autograded():
            assert "# Hidden tests:" in cell_by_id(source, gid).source, gid

    def test_notebook_says_which_data_it_uses(self):
        source = nbformat.read(self.source_nb(), as_version=4)
        text = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
        assert "offline stand-ins" in text and "Fashion-MNIST" in text and "handwritten digits" in text
        assert "accuracies do not" in text
        for figure in ("65.6%", "68.2%", "33-39%", "82%", "96%", "92-93%", "92-94%"):
            assert figure in text, figure
        assert "%load_ext tensorboard" in text


def _exec_cells(nb, ids, ns):
    for gid in ids:
        exec(cell_by_id(nb, gid).source, ns)


@pytest.mark.slow
def test_solution_runs_are_read_by_tensorboard_itself(tmp_path):
    """The solution's log_run and add_hparams, as the notebook calls them, give event files that
    `tensorboard --inspect` (the program, not our reader) lists with the right tags and steps."""
    nb = nbformat.read(TestA4.source_nb(), as_version=4)
    ns: dict = {}
    exec("import torch\nfrom torch.utils.tensorboard import SummaryWriter\n", ns)
    _exec_cells(nb, ["log_run"], ns)
    history = {"train_loss": [2.1, 1.4, 1.1, 0.9], "train_accuracy": [0.3, 0.5, 0.6, 0.7],
               "test_accuracy": [0.3, 0.45, 0.55, 0.6]}
    with ns["SummaryWriter"](tmp_path / "baseline") as writer:
        ns["log_run"](writer, history)
    with ns["SummaryWriter"](tmp_path / "tuned") as writer:   # as the notebook's run(): curves, then hparams
        ns["log_run"](writer, history)
        writer.add_hparams({"lr": 1e-3, "batch_size": 256}, {"hparam/test_accuracy": 0.6}, run_name=".")
    tensorboard = Path(sys.executable).with_name("tensorboard")
    proc = subprocess.run([str(tensorboard), "--inspect", "--logdir", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    tags, stats = _blocks(out, "These tags are in "), _blocks(out, "Event statistics for ")
    base, tuned = str(tmp_path / "baseline"), str(tmp_path / "tuned")
    for tag in ("train/loss", "train/accuracy", "test/accuracy"):
        assert tag in tags[base] and tag in tags[tuned], out[-3000:]
    for line in ("first_step           1", "last_step            4", "min_step             1", "max_step             4"):
        assert line in stats[base], stats[base]
    assert "hparam/test_accuracy" in tags[tuned]


def _blocks(text: str, marker: str) -> dict[str, str]:
    """`tensorboard --inspect` output: run folder -> the block that starts with ``marker + folder``."""
    out = {}
    for chunk in text.split(marker)[1:]:
        head, _, body = chunk.partition("\n")
        out[head.rstrip(":").strip()] = body.split("=" * 20)[0]
    return out


def test_a4_student_bundle_is_clean(tmp_path):
    """The student bundle holds the release notebook and the helper packages, and no solution line."""
    import zipfile

    from coursectl.bundle import build_bundle, verify_bundle
    from nbcourse import REPO

    path = build_bundle(REPO, "a4_visualizing", tmp_path)
    names = zipfile.ZipFile(path).namelist()
    top = "a4_visualizing-student"
    for name in ("a4_visualizing/a4_visualizing.ipynb", "coursekit/vision.py", "data_scripts/cifar.py",
                 "data_scripts/mnist.py", "coursekit/assets/a4_conv1_trained_longer.json"):  # filters shown in 1.5
        assert f"{top}/{name}" in names, name
    assert verify_bundle(path, REPO, "a4_visualizing") == []
