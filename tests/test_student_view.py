"""What students see, small things (issue 17): JupyterLab 4's menu names in the
instructions, integer epoch ticks, one TensorBoard event folder per run, no grading-machine
paths in what notebooks print, and the student environment's JupyterLab without the news
prompt. Fast: no kernels."""
from __future__ import annotations

import json
import zipfile

import matplotlib
import nbformat
import pytest

from coursectl.bundle import LAB_OVERRIDES, build_bundle
from coursectl.assignments import ASSIGNMENTS
from nbcourse import REPO

matplotlib.use("Agg")



@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_instructions_name_jupyterlab_4_menus(assignment):
    for folder in ("source", "release"):
        nb = nbformat.read(REPO / folder / assignment / f"{assignment}.ipynb", as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert "Restart & Run All" not in text and "Restart &amp; Run All" not in text, f"{folder}/{assignment}"
        assert "Kernel > Restart Kernel and Run All Cells..." in text, f"{folder}/{assignment}"


def test_epoch_axes_tick_whole_epochs():
    from coursekit.vision import plot_curves

    history = {"train_loss": [2.0, 1.0], "train_accuracy": [0.2, 0.4], "test_accuracy": [0.1, 0.3]}
    fig = plot_curves({"run": history})
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_a_rerun_replaces_the_run_folder(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from coursekit.vision import fresh_run_dir

    for value in (1.0, 2.0):  # the same run twice, as a student re-running the cell
        with SummaryWriter(fresh_run_dir(tmp_path, "baseline")) as w:
            w.add_scalar("train/loss", value, 1)
    assert len(list((tmp_path / "baseline").iterdir())) == 1
    (tmp_path / "other").mkdir()
    fresh_run_dir(tmp_path, "baseline")
    assert (tmp_path / "other").is_dir()  # only that run's folder is cleared


def test_printed_paths_hide_the_data_folder(tmp_path, monkeypatch):
    from coursekit.paths import shown

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "graderdata"))
    inside = tmp_path / "graderdata" / "tiny_shakespeare" / "offline" / "input.txt"
    assert shown(inside) == "<course data>/tiny_shakespeare/offline/input.txt"
    assert shown(tmp_path / "elsewhere" / "x.txt") == "x.txt"
    assert str(tmp_path) not in shown(inside)


def test_a4_given_cells_print_no_grader_folder():
    nb = nbformat.read(REPO / "source" / "a4_visualizing" / "a4_visualizing.ipynb", as_version=4)
    setup = next(c for c in nb.cells if c.get("id") == "setup").source
    grading_branch = setup.split("if is_grading():", 1)[1].split("else:", 1)[0]
    assert "print(" in grading_branch and "LOG_DIR)" not in grading_branch


def test_student_environment_turns_the_news_prompt_off(tmp_path):
    path = build_bundle(REPO, "a3_char_lm", tmp_path)
    zf = zipfile.ZipFile(path)
    top = "a3_char_lm-student"
    settings = json.loads(zf.read(f"{top}/jupyter-config/lab-settings/overrides.d/seqcourse-student.json"))
    assert settings == LAB_OVERRIDES
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    pyproject = zf.read(f"{top}/pyproject.toml").decode()
    assert ('"share/jupyter/lab/settings/overrides.d" = '
            '["jupyter-config/lab-settings/overrides.d/seqcourse-student.json"]') in pyproject


def test_course_environment_gets_the_same_lab_defaults(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "coursectl.bundle", "lab-settings", str(tmp_path)],
                          capture_output=True, text=True, check=True)
    written = tmp_path / "share/jupyter/lab/settings/overrides.d/seqcourse.json"
    assert str(written) in proc.stdout
    assert json.loads(written.read_text()) == LAB_OVERRIDES
    # JupyterLab's own reader finds it in that environment's settings folder
    from jupyterlab_server.settings_utils import _get_overrides

    overrides, error = _get_overrides(str(tmp_path / "share/jupyter/lab/settings"))
    assert not error and overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
