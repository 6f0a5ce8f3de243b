"""The `course` command: clear errors, and release through the real nbgrader."""
import subprocess
import sys
from pathlib import Path

from nbcourse import REPO, make_course

COURSE = str(Path(sys.executable).parent / "course")


def _course(*args, cwd):
    return subprocess.run([COURSE, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_unknown_assignment_is_a_clear_error(tmp_path):
    proc = _course("release", "a9_nope", cwd=REPO)
    assert proc.returncode == 2
    assert "no assignment 'a9_nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_outside_a_course_folder_is_a_clear_error(tmp_path):
    proc = _course("release", "a1_rnn_cells", cwd=tmp_path)
    assert proc.returncode == 2 and "no course folder" in proc.stderr


def test_unknown_dataset_is_a_clear_error(tmp_path):
    proc = _course("data", "--offline", "no_such_data", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no_such_data" in proc.stderr and "Traceback" not in proc.stderr


def test_release_writes_student_version(tmp_path):
    course = make_course(tmp_path, "a1_rnn_cells")
    proc = _course("--course-dir", str(course), "release", "a1_rnn_cells", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    released = course / "release" / "a1_rnn_cells"
    assert (released / "a1_rnn_cells.ipynb").is_file()
    assert (released / "abc_training_curves.png").is_file()
    assert "BEGIN SOLUTION" not in (released / "a1_rnn_cells.ipynb").read_text()
