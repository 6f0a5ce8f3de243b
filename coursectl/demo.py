"""`course demo`: the instructor's whole loop on an embedded default, offline.

Builds the offline datasets, creates a demo course folder, releases a1_rnn_cells,
submits three sample notebooks the way students would hand them in (the release notebook
with the answers filled in, the untouched release, and one with a typical GRU bug),
grades them with a Canvas-style roster (so the formgrader shows names), prints a grade
table and points at the feedback HTML, the grade CSVs and the formgrader.
"""
from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path

import nbformat

from . import cells
from .nbg import CourseError, ensure_exchange, release, run_nbgrader

ASSIGNMENT = "a1_rnn_cells"
SAMPLES = Path(__file__).with_name("demo_samples")
MARKER = ".course-demo"  # marks a folder this command built, and may therefore rebuild
SOLUTION_MARKERS = (cells.BEGIN_SOLUTION, cells.END_SOLUTION)
STUDENTS = {
    "alice": "the release with every answer filled in",
    "bob": "the untouched release",
    "carol": "the same answers with a typical GRU bug",
}


def _notebook(folder: Path) -> Path:
    found = sorted(folder.glob("*.ipynb"))
    if len(found) != 1:
        raise CourseError(f"expected one notebook in {folder}, found {len(found)}")
    return found[0]


def without_markers(source: str) -> str:
    """A solution cell's text as a student would have written it: the solution
    delimiters removed, everything between them kept."""
    return "\n".join(line for line in source.splitlines() if not line.strip().startswith(SOLUTION_MARKERS))


def answered(released, solution, replace: dict[str, str] | None = None):
    """The release notebook with its answer cells filled in from the solution notebook
    (or from ``replace``: grade id -> source); every other cell stays as released."""
    answers = {cells.grade_id(c): without_markers(c.source) for c in solution.cells if cells.is_solution(c)}
    answers.update(replace or {})
    nb = copy.deepcopy(released)
    filled = set()
    for cell in nb.cells:
        gid = cells.grade_id(cell)
        if cells.is_solution(cell) and gid in answers:
            cell.source = answers[gid]
            filled.add(gid)
    missing = sorted(set(answers) - filled)
    if missing:
        raise CourseError(f"answer cells {', '.join(missing)} are not in the release notebook")
    return nb


def make_samples(course: Path, assignment: str = ASSIGNMENT) -> dict[str, str]:
    """Write three submissions into submitted/; returns student -> description."""
    solution = nbformat.read(_notebook(course / "source" / assignment), as_version=4)
    released_path = _notebook(course / "release" / assignment)
    released = nbformat.read(released_path, as_version=4)
    bug = {"gru_cell": (SAMPLES / "gru_raw_projection.py").read_text()}
    notebooks = {"alice": answered(released, solution), "bob": released,
                 "carol": answered(released, solution, bug)}
    for student, nb in notebooks.items():
        dest = course / "submitted" / student / assignment
        dest.mkdir(parents=True, exist_ok=True)
        for asset in released_path.parent.iterdir():
            if asset.suffix != ".ipynb" and asset.is_file():
                shutil.copy(asset, dest / asset.name)
        nbformat.write(nb, dest / released_path.name)
    return dict(STUDENTS)


def _is_course(folder: Path) -> bool:
    return (folder / "nbgrader_config.py").is_file() and (folder / "source").is_dir()


def template_course(start: Path | None = None) -> Path:
    """The course the demo copies from: the nearest course folder at or above ``start``
    that is not itself a demo, else the checkout this package runs from."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_course(folder) and not (folder / MARKER).exists():
            return folder
    checkout = Path(__file__).resolve().parents[1]
    if _is_course(checkout) and (checkout / "source" / ASSIGNMENT).is_dir():
        return checkout
    raise CourseError(f"no course folder with source/{ASSIGNMENT} at or above {here} to build the demo from")


def check_target(target: Path, template: Path) -> None:
    """Refuse to wipe anything but a folder an earlier demo built (or an empty one)."""
    if target == template or template.is_relative_to(target):
        raise CourseError(f"the demo cannot be built in {target}: it holds the course it is built from")
    if not target.exists():
        return
    if not target.is_dir():
        raise CourseError(f"{target} is a file; choose a folder for the demo")
    legacy = target == template / "demo"  # demo/ from before the marker existed
    if any(target.iterdir()) and not (target / MARKER).exists() and not legacy:
        raise CourseError(f"{target} is not empty and was not built by `course demo` (no {MARKER}); "
                          "choose a new or empty folder")


def build_course(target: Path, template: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / MARKER).write_text("built by `course demo`; rebuilt from scratch by the next run\n")
    shutil.copy(template / "nbgrader_config.py", target)
    shutil.copytree(template / "source" / ASSIGNMENT, target / "source" / ASSIGNMENT)
    shutil.copy(SAMPLES / "roster.csv", target / "roster.csv")
    ensure_exchange(target / "exchange")


def run_demo(where: Path | None = None) -> Path:
    import data_scripts

    template = template_course()
    course = Path(where or template / "demo").resolve()
    check_target(course, template)
    start = time.perf_counter()
    print(f"[1/5] offline datasets for {ASSIGNMENT}")
    from .assignments import get

    for name in get(ASSIGNMENT).datasets:
        print(f"      {name}: {data_scripts.build_offline(name)}")
        from coursekit.prepare import warm_caches

        warm_caches(name)  # graded kernels cannot write the data folder
    print(f"[2/5] demo course in {course} (rebuilt from scratch)")
    build_course(course, template)
    print(f"[3/5] release with nbgrader generate_assignment -> {release(course, ASSIGNMENT)}")
    run_nbgrader(course, "release_assignment", ASSIGNMENT, "--force", quiet=True)
    exchange = os.environ.get("COURSE_EXCHANGE") or course / "exchange"
    print(f"      published to the exchange ({exchange}) with nbgrader release_assignment")
    print("[4/5] three sample submissions (names in roster.csv, a Canvas gradebook export):")
    for student, desc in make_samples(course).items():
        print(f"      {student:<6} {desc}")
    print("[5/5] grading with `course grade --roster roster.csv` (parallel workers, nbgrader gradebook)")
    from .grading import grade_assignment
    from .grading.sandbox import unavailable

    # The demo grades only notebooks this package wrote itself, so where the sandbox cannot
    # start it grades without one (and says so) instead of stopping; `course grade` refuses.
    why = unavailable()
    if why:
        print(f"      note: grading the demo's own samples without the sandbox ({why}); "
              "`course grade` would refuse, see the README's set-up")
    run = grade_assignment(course, ASSIGNMENT, roster=course / "roster.csv", sandbox=why is None)
    print()
    print(grade_table(run))
    print()
    print(run.text, end="")
    for label, path in run.files.items():
        print(f"{label}: {path}")
    print(f"feedback: {course / 'feedback'}/<student>/{ASSIGNMENT}/{ASSIGNMENT}.html")
    print(f"\nhand grading: `cd {course} && jupyter lab`, then Nbgrader > Formgrader; afterwards\n"
          f"`course --course-dir {course} feedback {ASSIGNMENT}` rewrites the feedback with the hand grades")
    print(f"\ninstant feedback while students work: `cd {course} && course tokens create --roster roster.csv "
          f"--out tokens.csv && course serve`,\nthen students open http://127.0.0.1:8765/ (token login, upload, "
          f"verdict) or use Submit for feedback in JupyterLab; README: Instant feedback")
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
