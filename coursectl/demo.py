"""`course demo`: the instructor's whole loop on an embedded default, offline.

Builds the offline datasets, creates a demo course folder, releases a1_rnn_cells,
submits three sample notebooks (the solution, the untouched release, one with a
typical GRU bug), grades them, prints a grade table and points at the feedback HTML
and the grade CSVs.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat

from .nbg import CourseError, find_course_root, release

ASSIGNMENT = "a1_rnn_cells"
SAMPLES = Path(__file__).with_name("demo_samples")


def _notebook(folder: Path) -> Path:
    found = sorted(folder.glob("*.ipynb"))
    if len(found) != 1:
        raise CourseError(f"expected one notebook in {folder}, found {len(found)}")
    return found[0]


def _replace_cell(nb, grade_id: str, source: str):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
            return nb
    raise CourseError(f"no cell {grade_id!r} in the notebook")


def make_samples(course: Path, assignment: str = ASSIGNMENT) -> dict[str, str]:
    """Write three submissions into submitted/; returns student -> description."""
    solution = _notebook(course / "source" / assignment)
    released = _notebook(course / "release" / assignment)
    buggy = nbformat.read(solution, as_version=4)
    _replace_cell(buggy, "gru_cell", (SAMPLES / "gru_raw_projection.py").read_text())
    samples = {
        "alice": ("the solution notebook", nbformat.read(solution, as_version=4)),
        "bob": ("the untouched release", nbformat.read(released, as_version=4)),
        "carol": ("solution with a typical GRU bug", buggy),
    }
    for student, (_, nb) in samples.items():
        dest = course / "submitted" / student / assignment
        dest.mkdir(parents=True, exist_ok=True)
        for asset in released.parent.iterdir():
            if asset.suffix != ".ipynb" and asset.is_file():
                shutil.copy(asset, dest / asset.name)
        nbformat.write(nb, dest / released.name)
    return {student: desc for student, (desc, _) in samples.items()}


def run_demo(where: Path | None = None) -> Path:
    import data_scripts

    repo = find_course_root()
    course = (where or repo / "demo").resolve()
    start = time.perf_counter()
    print(f"[1/5] offline datasets for {ASSIGNMENT}")
    for name in ("speech_commands",):
        print(f"      {name}: {data_scripts.build_offline(name)}")
    print(f"[2/5] demo course in {course} (rebuilt from scratch)")
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    shutil.copy(repo / "nbgrader_config.py", course)
    shutil.copytree(repo / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    print(f"[3/5] release with nbgrader generate_assignment -> {release(course, ASSIGNMENT)}")
    print("[4/5] three sample submissions:")
    for student, desc in make_samples(course).items():
        print(f"      {student:<6} {desc}")
    print("[5/5] grading with `course grade` (parallel workers, nbgrader gradebook)")
    from .grading import grade_assignment

    run = grade_assignment(course, ASSIGNMENT)
    print()
    print(grade_table(run))
    print()
    print(run.text, end="")
    for label, path in run.files.items():
        print(f"{label}: {path}")
    print(f"feedback: {course / 'feedback'}/<student>/{ASSIGNMENT}/{ASSIGNMENT}.html")
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; course folder: {course}")
    return course


def grade_table(run) -> str:
    """Autograded cells as rows, students as columns: 'score/max' per cell."""
    students = [r.student for r in run.results]
    cells = sorted({gid for r in run.results for gid, (_, _, auto) in r.cells.items() if auto})
    width = max([len(c) for c in cells] + [len("autograded total")])
    lines = [f"{'grade cell':<{width}}  " + "  ".join(f"{s:>9}" for s in students)]
    for gid in cells:
        row = []
        for r in run.results:
            score, most, _ = r.cells.get(gid, (0.0, 0.0, True))
            row.append(f"{(score or 0):>4.2g}/{most:<4g}")
        lines.append(f"{gid:<{width}}  " + "  ".join(f"{x:>9}" for x in row))
    totals = []
    for r in run.results:
        auto = [(s or 0, m) for s, m, a in r.cells.values() if a]
        totals.append(f"{sum(s for s, _ in auto):>4.3g}/{sum(m for _, m in auto):<4g}")
    lines.append(f"{'autograded total':<{width}}  " + "  ".join(f"{x:>9}" for x in totals))
    return "\n".join(lines)
