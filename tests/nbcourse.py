"""Test helpers: temporary nbgrader course folders driven through the real CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from coursectl import cells

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def nbgrader(course: Path, *args: str, check: bool = True, timeout: int = 900,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real `nbgrader` CLI inside ``course`` (``env``: variables to add)."""
    env = dict(os.environ, **(env or {}))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_course(tmp: Path, *assignments: str) -> Path:
    """A fresh course folder with the repo's config and the given source assignments."""
    course = tmp / "course"
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    for a in assignments:
        shutil.copytree(REPO / "source" / a, course / "source" / a)
    return course


def notebook_path(folder: Path) -> Path:
    (nb,) = sorted(folder.glob("*.ipynb"))
    return nb


def submit(course: Path, student: str, assignment: str, nb: nbformat.NotebookNode | Path,
           name: str | None = None) -> Path:
    """Place a notebook in submitted/<student>/<assignment>/ with the release's other files."""
    dest = course / "submitted" / student / assignment
    release = course / "release" / assignment
    if release.exists():
        shutil.copytree(release, dest, dirs_exist_ok=True)
        for old in dest.glob("*.ipynb"):
            old.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, Path):
        name = name or nb.name
        nb = nbformat.read(nb, as_version=4)
    target = dest / (name or "submission.ipynb")
    nbformat.write(nb, target)
    return target


def cell_by_id(nb: nbformat.NotebookNode, grade_id: str):
    for cell in nb.cells:
        if cells.grade_id(cell) == grade_id:
            return cell
    raise KeyError(grade_id)


def scores(course: Path, assignment: str, student: str) -> dict[str, tuple[float, float]]:
    """grade_id -> (score, max_score) for autograded cells, read from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(assignment, student)
        out = {}
        for nb in sub.notebooks:
            for grade in nb.grades:
                if grade.auto_score is not None or grade.cell_type == "code":
                    out[grade.name] = (grade.score, grade.max_score)
        return out


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def grade_points(nb: nbformat.NotebookNode, grade_id: str) -> float:
    """The points nbgrader gives grade cell ``grade_id`` of ``nb``."""
    return float(cells.meta(cell_by_id(nb, grade_id))["points"])


def answer_namespace(nb: nbformat.NotebookNode, answer_cells, *, prelude: str,
                     replace: dict[str, str] | None = None) -> dict:
    """What a kernel holds after ``prelude`` (imports) and the answer cells of ``nb`` ran,
    with ``replace`` (cell id -> source) swapped in; the prelude's printing is dropped."""
    import contextlib
    import io

    ns: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(prelude, ns)
    for cell_id in answer_cells:
        exec((replace or {}).get(cell_id, cell_by_id(nb, cell_id).source), ns)
    return ns
