"""How fast `course grade` is compared with sequential `nbgrader autograde`.

Grades N copies of an assignment's solution notebook (default: a1_rnn_cells) three ways,
each on a fresh copy of the same course: `nbgrader autograde` (one after another),
`course grade --workers 1`, `course grade --workers 2` and `course grade --cluster local:2`
(a Dask LocalCluster of 2 worker processes, its start-up included). It prints the wall time of
each, the per-submission overhead beyond the notebook's own execution (the mean time to
execute the notebook once with nbclient, kernel start included, as grading runs it), and
the speed-up. It also checks that all three gave every copy the same, full scores.

    python benchmarks/grading_speed.py [--copies 8] [--assignment a1_rnn_cells]

The last lines give the Dask path's overhead per submission over the local pool with the
same number of workers (target: at most 1 s).

Datasets are found as the notebooks find them (COURSE_DATA_DIR or the default cache).
Targets on a 2-core machine: 2 workers >= 1.7x faster than nbgrader, overhead <= 2 s.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursectl.nbg import nbgrader_env

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=nbgrader_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def make_course(root: Path, assignment: str, copies: int) -> Path:
    course = root / "course"
    (course / "source").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "source" / assignment, course / "source" / assignment)
    _run([str(BIN / "nbgrader"), "generate_assignment", assignment, "--force"], course)
    for i in range(copies):
        shutil.copytree(course / "source" / assignment, course / "submitted" / f"s{i + 1:02d}" / assignment)
    return course


def notebook_seconds(course: Path, assignment: str, repeats: int) -> float:
    """Mean time to execute the solution notebook once, as the grader runs it."""
    import nbformat
    from nbclient import NotebookClient

    folder = course / "release" / assignment
    times = []
    for path in sorted((course / "source" / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for _ in range(repeats):
            os.environ["NBGRADER_EXECUTION"] = "autograde"  # notebooks shrink their runs while graded
            start = time.perf_counter()
            NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}},
                           allow_errors=True).execute()
            times.append(time.perf_counter() - start)
            os.environ.pop("NBGRADER_EXECUTION")
    return statistics.fmean(times)


def scores(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(assignment).submissions}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assignment", default="a1_rnn_cells")
    p.add_argument("--copies", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2, help="executions of the bare notebook to average")
    args = p.parse_args()
    a, n = args.assignment, args.copies
    if not (REPO / "source" / a).is_dir():
        sys.exit(f"no source/{a} in {REPO}")

    with tempfile.TemporaryDirectory(prefix="grading-speed-") as tmp:
        base = make_course(Path(tmp) / "base", a, n)
        print(f"{a}: {n} copies of the solution, {os.cpu_count()} cores", flush=True)
        notebook_seconds(base, a, 1)  # warm caches (datasets, numba) outside the timings
        own = notebook_seconds(base, a, args.repeats)
        print(f"notebook's own execution (nbclient, kernel start included): {own:.2f} s")

        runs = {}
        for label, cmd in (
            ("nbgrader autograde (sequential)", [str(BIN / "nbgrader"), "autograde", a, "--force"]),
            ("course grade --workers 1", [str(BIN / "course"), "grade", a, "--workers", "1"]),
            ("course grade --workers 2", [str(BIN / "course"), "grade", a, "--workers", "2"]),
            ("course grade --cluster local:2", [str(BIN / "course"), "grade", a, "--cluster", "local:2"]),
        ):
            course = Path(shutil.copytree(base, Path(tmp) / label.split()[0] / label.split()[-1]))
            load = os.getloadavg()[0]
            runs[label] = (_run(cmd, course), scores(course, a))
            print(f"  {label}: {runs[label][0]:.1f} s (load average before: {load:.2f})", flush=True)

    reference = runs["nbgrader autograde (sequential)"]
    if max(os.getloadavg()) > 2.5:
        print("note: the machine was busy with other work during the runs; timings are unreliable")
    print(f"\n{'run':<34}{'wall s':>9}{'s / submission':>16}{'overhead s':>12}")
    for label, (wall, got) in runs.items():
        per = wall / n
        workers = 2 if label.endswith("2") else 1  # --workers 2 and --cluster local:2
        overhead = f"{per * workers - own:12.2f}"
        print(f"{label:<34}{wall:9.1f}{per:16.2f}{overhead}")
        if got != reference[1]:
            print(f"  !! scores differ from nbgrader's: {got}")
    full = set(reference[1].values())
    print(f"scores per copy: {sorted(full)} (all copies equal: {len(full) == 1})")
    seq = reference[0]
    speed2 = seq / runs["course grade --workers 2"][0]
    speed1 = seq / runs["course grade --workers 1"][0]
    print(f"speed-up over sequential nbgrader: {speed2:.2f}x with 2 workers, {speed1:.2f}x with 1 worker")
    dask_extra = (runs["course grade --cluster local:2"][0] - runs["course grade --workers 2"][0]) / n
    print(f"Dask path (--cluster local:2) over the local pool (--workers 2): {dask_extra:+.2f} s per submission"
          f" (target <= 1 s; includes starting the cluster)")
    print("(overhead: wall time per submission and worker beyond the notebook's own execution;"
          " for 2 workers the two kernels share 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
