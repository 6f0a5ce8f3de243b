"""`course release A --bundle`: what the student zip holds, what it must never hold, and
that a fresh environment built from it runs and validates the release notebook."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from coursectl.assignments import ASSIGNMENTS
from coursectl.bundle import build_bundle, verify_bundle
from coursectl.cli import main
from coursectl.nbg import CourseError
from fixtures.grading import tiny
from nbcourse import REPO, BIN

TOP = f"{tiny.ASSIGNMENT}-student"


@pytest.fixture(scope="module")
def released_once(tmp_path_factory):
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{BIN}{os.pathsep}{old}"  # `course release` runs the nbgrader CLI
    try:
        course = tiny.make_course(tmp_path_factory.mktemp("bundle"), generate=False)
        assert main(["--course-dir", str(course), "release", tiny.ASSIGNMENT, "--bundle"]) == 0
    finally:
        os.environ["PATH"] = old
    return course


@pytest.fixture
def released(released_once, tmp_path):
    """A private copy of the released course (tests plant files in it)."""
    return Path(shutil.copytree(released_once, tmp_path / "course"))


def test_bundle_contents(released):
    path = released / "bundles" / f"{tiny.ASSIGNMENT}-student.zip"
    names = set(zipfile.ZipFile(path).namelist())
    for expected in ("README.md", "environment.yml", "requirements.txt", "pyproject.toml", "coursekit/__init__.py",
                     "data_scripts/__init__.py", "tiny/tiny.ipynb", "tiny/notes.txt"):
        assert f"{TOP}/{expected}" in names
    assert not any(part in ("autograder", "coursectl", "source") for n in names for part in n.split("/"))
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    text = zipfile.ZipFile(path).read(f"{TOP}/tiny/tiny.ipynb").decode()
    for secret in (*tiny.HIDDEN_MARKERS, "return x * x", "BEGIN SOLUTION", "BEGIN HIDDEN TESTS"):
        assert secret not in text
    reqs = zipfile.ZipFile(path).read(f"{TOP}/requirements.txt").decode().split()
    assert any(r.startswith("torch") for r in reqs) and not any(r.startswith("pytest") for r in reqs)
    assert verify_bundle(path, released, tiny.ASSIGNMENT) == []


def test_bundle_turns_off_instructor_tools(released):
    zf = zipfile.ZipFile(released / "bundles" / f"{tiny.ASSIGNMENT}-student.zip")
    read = lambda name: zf.read(f"{TOP}/{name}").decode()  # noqa: E731
    lab = json.loads(read("jupyter-config/labconfig/page_config.d/seqcourse-student.json"))
    assert lab == {"disabledExtensions": {"@jupyter/nbgrader:formgrader": True,
                                          "@jupyter/nbgrader:create-assignment": True,
                                          "@jupyter/nbgrader:course-list": True}}
    server = json.loads(read("jupyter-config/jupyter_server_config.d/seqcourse-student.json"))
    assert server == {"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": False,
                                                            "nbgrader.server_extensions.course_list": False}}}
    student = json.loads(read("jupyter-config/nbgrader_config.json"))
    assert student["Execute"] == {"timeout": 120}
    # the course's exchange and id, as the course's own config sets them (not nbgrader's missing default)
    assert student["CourseDirectory"] == {"course_id": "seqcourse"}
    root = Path(student["Exchange"]["root"])  # the released course's (this test has a copy of it)
    assert root.is_absolute() and root.name == "exchange" and (root.parent / "nbgrader_config.py").is_file()
    assert root.is_dir()
    # pip puts them where Jupyter reads an environment's settings
    data_files = tomllib.loads(read("pyproject.toml"))["tool"]["setuptools"]["data-files"]
    assert data_files["etc/jupyter/labconfig/page_config.d"] == [
        "jupyter-config/labconfig/page_config.d/seqcourse-student.json"]
    assert data_files["etc/jupyter"] == ["jupyter-config/nbgrader_config.json"]
    readme = read("README.md")
    assert "jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader" in readme
    assert "pip install .\n" in readme and "- .\n" in read("environment.yml")  # not editable: data files
    reqs = read("requirements.txt").split()
    assert not any(r.startswith(("selenium", "jupyter-server-mathjax", "psycopg")) for r in reqs)


@pytest.mark.parametrize("plant, complaint", [
    ("answers.ipynb", "BEGIN SOLUTION"),
    ("autograder/checks.py", "instructor file"),
    ("helper.py", "imports an instructor package"),
    ("notes.md", "source-only line"),
])
def test_leaks_are_refused(released, plant, complaint):
    target = released / "release" / tiny.ASSIGNMENT / plant
    target.parent.mkdir(parents=True, exist_ok=True)
    content = {"answers.ipynb": (released / "source" / tiny.ASSIGNMENT / "tiny.ipynb").read_text(),
               "autograder/checks.py": "X = 1\n",
               "helper.py": "from autograder.a1_rnn_cells import checks\n",
               "notes.md": "hint: assert cube(-3) == -27  # hidden-cube-check\n"}[plant]
    target.write_text(content)
    out = released / "other"
    with pytest.raises(CourseError, match=complaint):
        build_bundle(released, tiny.ASSIGNMENT, out)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.skipif(not (REPO / "release" / "a1_rnn_cells").is_dir(), reason="a1_rnn_cells is not released yet")
def test_a1_bundle_is_clean(tmp_path):
    path = build_bundle(REPO, "a1_rnn_cells", tmp_path)
    names = zipfile.ZipFile(path).namelist()
    assert "a1_rnn_cells-student/a1_rnn_cells/a1_rnn_cells.ipynb" in names
    assert verify_bundle(path, REPO, "a1_rnn_cells") == []


def _student_env(bundle: Path, where: Path, top: str = TOP) -> Path:
    """Unpack the bundle and install it into a new venv. torch, nbgrader and friends come
    from the test environment's site-packages through a path file (not its editable
    install of this repo), so only the bundle supplies coursekit and data_scripts."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(where)
    env = where / "env"
    # no pip or setuptools of its own: the ones behind the path file are used (same versions as here)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env)], check=True)
    py = env / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_course_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    str(where / top)], check=True, capture_output=True)
    return py


@pytest.mark.slow
def test_fresh_student_environment_validates_the_release(released, tmp_path):
    py = _student_env(released / "bundles" / f"{tiny.ASSIGNMENT}-student.zip", tmp_path / "student")
    probe = ("import coursekit, importlib.util as u; print(coursekit.__file__); "
             "print(u.find_spec('coursectl'), u.find_spec('autograder'))")
    out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout.split("\n")
    assert out[0].startswith(str(tmp_path / "student" / "env")), out
    assert out[1] == "None None"
    prefix = tmp_path / "student" / "env"
    for installed in ("etc/jupyter/labconfig/page_config.d/seqcourse-student.json",
                      "etc/jupyter/jupyter_server_config.d/seqcourse-student.json", "etc/jupyter/nbgrader_config.json"):
        assert (prefix / installed).is_file(), installed

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV"))}
    env["PATH"] = f"{py.parent}{os.pathsep}{env['PATH']}"
    notebook = tmp_path / "student" / TOP / tiny.ASSIGNMENT / "tiny.ipynb"
    first = subprocess.run([str(py), "-m", "nbgrader", "validate", str(notebook)], capture_output=True, text=True,
                           env=env, cwd=notebook.parent, timeout=300)
    assert "NotImplementedError" in first.stdout and "ModuleNotFoundError" not in first.stdout

    # the student fills in the answers, then checks again
    tiny.answer(notebook)
    second = subprocess.run([str(py), "-m", "nbgrader", "validate", str(notebook)], capture_output=True,
                            text=True, env=env, cwd=notebook.parent, timeout=300)
    assert "Success! Your notebook passes all the tests." in second.stdout, second.stdout + second.stderr


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_every_assignment_has_a_clean_bundle(assignment, tmp_path):
    """Common code a solution shares with the shipped helpers (`model.train()`) or with a
    given line is not refused as a leak; the README names the assignment's own data."""
    path = build_bundle(REPO, assignment, tmp_path)
    assert verify_bundle(path, REPO, assignment) == []
    readme = zipfile.ZipFile(path).read(f"{assignment}-student/README.md").decode()
    for dataset in ASSIGNMENTS[assignment].datasets:
        assert f"data_scripts.build_offline({dataset!r})" in readme
    others = {d for spec in ASSIGNMENTS.values() for d in spec.datasets} - set(ASSIGNMENTS[assignment].datasets)
    assert not any(f"'{d}'" in readme for d in others), assignment
