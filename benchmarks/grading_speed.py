"""How fast `course grade` is compared with sequential `nbgrader autograde`, and where a
job's time goes.

Grades N copies of an assignment's solution notebook (default: a1_rnn_cells), each run on
a fresh copy of the same course whose gradebook already holds the assignment:

* `nbgrader autograde` (sequential), and `nbgrader autograde` + `nbgrader
  generate_feedback` (what an nbgrader user runs to get what `course grade` writes);
* `course grade --workers W` for each W of ``--workers`` (default 1 2), with feedback,
  CSVs and the report, as an instructor runs it;
* `course grade --cluster local:2` (a Dask LocalCluster of 2 processes, start-up included);
* `course grade --workers 1` of one submission on a course whose gradebook does not hold the
  assignment yet: the one-off definition cost and the latency to a first result;
* with ``--baseline REF``, `course grade --workers W` again for each W with the grading code
  (coursectl/) of git revision REF, in the same invocation, for a fair before/after.

For each `course grade` run it prints the wall time, throughput (submissions per minute,
and per worker), the time to the first result, and the mean per-job time split into parts
(from JobResult.timings, written by the pipeline when COURSE_GRADE_TIMINGS names a file):
staging (scratch course), fork (grading process), setup (config, gradebook), kernel start
(sandboxed kernel until it answers), preload (the trusted start-up code's imports in the
kernel), waiting (a kernel started ahead waiting for its worker's cell slot), ahead (all
of the job before that slot: done while the worker's previous job ran its cells), the
kernel's own time for import cells (mostly import statements), other cells
and grade cells (the kernel's reply stamps), judging (nbgrader's steps around the kernel:
the trusted preprocessors and saving scores), feedback (HTML export), exit (the grading
process's end until its result is read), packing (results back) and writing (merge into
the course), and the course process's own checking (the submission checked, repaired and
packed into a job before it is sent). One course process serves all workers: its seconds
per submission (checking + writing) against a worker's shortest turn (execute: the cells
hold the worker's slot, the rest overlaps) say about how many workers it can feed, which
is where adding cores stops paying on a bigger machine. Overhead per job = the job's time
after it got its cell slot (job - ahead, + writing) minus the kernel's own time for the
submission's non-import cells; the line below it counts the whole job (ahead included).
Scores must equal nbgrader's.

    python benchmarks/grading_speed.py [--copies 8] [--assignment a1_rnn_cells] [--workers 1 2 4]
                                       [--baseline REF] [--pairs N]

With ``--pairs N`` it then runs N more back-to-back pairs of sequential nbgrader and
`course grade --workers 2` and prints each pair's speed-up and their median: on a shared
machine whose speed drifts over minutes, runs next to each other compare more fairly.

Targets (issue 18): 2 workers on 2 cores >= 3x sequential nbgrader (a1, 8+ copies); per-job
overhead <= 0.5 s; --cluster local:2 within 15% of --workers 2; first result <= 3 s plus
the notebook's own cell time. The load average (1 min) is printed before and after each run,
and (on Linux) the CPU the whole machine spent during each run per submission ("cpu/sub", busy
time from /proc/stat: every process, kernels included): on a shared VM whose speed drifts, what
a submission costs is steadier than the wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursectl.grading.model import TIMING_PARTS
from coursectl.nbg import nbgrader_env

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PARTS = TIMING_PARTS
SPANS = ("imports", "cells", "checks", "checking", "writing", "ahead")  # inside other parts, or outside the job


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=dict(nbgrader_env(), **(env or {})), capture_output=True, text=True)
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


def scores(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(assignment).submissions}


def load() -> float:
    return os.getloadavg()[0]


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user, nice, system, irq, softirq, steal: not idle (3) or iowait (4)
    return sum(t for i, t in enumerate(ticks[:8]) if i not in (3, 4)) / os.sysconf("SC_CLK_TCK")


def _spent(before: float | None) -> float | None:
    after = busy_seconds()
    return None if before is None or after is None else after - before


class Run:
    """One timed command on a fresh copy of the course."""

    def __init__(self, label: str, workers: int, wall: float, got: dict, loads: tuple[float, float],
                 lines: list[dict], cpu: float | None = None):
        self.label, self.workers, self.wall, self.scores, self.loads = label, workers, wall, got, loads
        self.cpu = cpu  # the machine's busy CPU seconds during the run
        self.jobs = [ln for ln in lines if "timings" in ln]
        self.steps = {ln["step"]: ln["at"] for ln in lines if "step" in ln}

    def part(self, name: str) -> float:
        return statistics.fmean(j["timings"].get(name, 0.0) for j in self.jobs) if self.jobs else 0.0

    @property
    def first(self) -> float | None:
        return min((j["at"] for j in self.jobs), default=None)

    @property
    def job_seconds(self) -> float:
        return self.part("job") + self.part("writing")

    @property
    def serial(self) -> float:
        """The course process's own seconds per submission (checking it, writing its result)."""
        return self.part("checking") + self.part("writing")

    @property
    def feeds(self) -> float:
        """How many workers one course process keeps up with: a worker hands in at most one
        result per ``execute`` seconds (its cells hold its slot; the rest can overlap), and
        each result costs the course process ``serial`` seconds."""
        return self.part("execute") / self.serial if self.serial else float("inf")

    @property
    def after_turn(self) -> float:
        """The job from its cell slot on (what its worker spends on it beyond the overlap)."""
        return self.job_seconds - self.part("ahead")

    @property
    def own(self) -> float:
        """The kernel's own time for the submission's cells (imports not counted)."""
        return self.part("cells") + self.part("checks")


def timed(label: str, cmd: list[str], base: Path, tmp: Path, assignment: str, workers: int,
          fresh_gradebook: bool = False, one: bool = False, env: dict | None = None) -> Run:
    course = Path(shutil.copytree(base, tmp / f"run{len(os.listdir(tmp))}"))
    if fresh_gradebook:
        (course / "gradebook.db").unlink()
    if one:  # only the first submission
        for folder in sorted((course / "submitted").iterdir())[1:]:
            shutil.rmtree(folder)
    log = course.parent / f"{course.name}.timings.jsonl"
    before, busy = load(), busy_seconds()
    wall = _run(cmd, course, env={"COURSE_GRADE_TIMINGS": str(log), **(env or {})})
    cpu = _spent(busy)
    lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    run = Run(label, workers, wall, scores(course, assignment), (before, load()), lines, cpu)
    shutil.rmtree(course, ignore_errors=True)
    print(f"  {label}: {wall:.1f} s (load {before:.2f} -> {run.loads[1]:.2f})", flush=True)
    return run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assignment", default="a1_rnn_cells")
    p.add_argument("--copies", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="course grade --workers W, each W")
    p.add_argument("--no-cluster", action="store_true", help="skip --cluster local:2")
    p.add_argument("--no-feedback-baseline", action="store_true", help="skip nbgrader autograde + generate_feedback")
    p.add_argument("--pairs", type=int, default=0, metavar="N",
                   help="then N more back-to-back pairs of sequential nbgrader and course grade --workers 2, "
                        "each pair's speed-up and their median (a shared machine drifts between runs)")
    p.add_argument("--baseline", metavar="REF", help="also run course grade --workers W with coursectl/ of git REF "
                                                     "(or of a folder REF holding a coursectl/)")
    args = p.parse_args()
    a, n = args.assignment, args.copies
    if not (REPO / "source" / a).is_dir():
        sys.exit(f"no source/{a} in {REPO}")
    nbg, course_cli = str(BIN / "nbgrader"), str(BIN / "course")

    with tempfile.TemporaryDirectory(prefix="grading-speed-") as tmp_name:
        tmp = Path(tmp_name)
        base = make_course(tmp / "base", a, n)
        runs_dir = tmp / "runs"
        runs_dir.mkdir()
        print(f"{a}: {n} copies of the solution; {os.cpu_count()} cores, {platform.processor() or platform.machine()}"
              f", {platform.node()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        old_env = None
        if args.baseline and Path(args.baseline).is_dir():
            old_env = {"PYTHONPATH": str(Path(args.baseline).resolve())}  # a folder holding a coursectl/
        elif args.baseline:
            old = tmp / "baseline"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline, "coursectl"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            old_env = {"PYTHONPATH": str(old)}  # its coursectl first; the rest as installed
        # Warm caches (datasets, the page cache of torch) outside the timings.
        timed("warm-up (course grade --workers 1, 1 submission)", [course_cli, "grade", a, "--workers", "1"],
              base, runs_dir, a, 1, one=True)
        runs: list[Run] = []
        runs.append(timed("nbgrader autograde (sequential)", [nbg, "autograde", a, "--force"], base, runs_dir, a, 1))
        if not args.no_feedback_baseline:
            course = Path(shutil.copytree(base, runs_dir / "fb"))
            before, busy = load(), busy_seconds()
            wall = _run([nbg, "autograde", a, "--force"], course) + _run([nbg, "generate_feedback", a, "--force"],
                                                                         course)
            runs.append(Run("nbgrader autograde + generate_feedback", 1, wall, scores(course, a), (before, load()), [],
                            _spent(busy)))
            print(f"  {runs[-1].label}: {wall:.1f} s (load {before:.2f} -> {load():.2f})", flush=True)
        for w in args.workers:
            runs.append(timed(f"course grade --workers {w}", [course_cli, "grade", a, "--workers", str(w)],
                              base, runs_dir, a, w))
        if old_env:
            for w in args.workers:
                runs.append(timed(f"{args.baseline} --workers {w}", [course_cli, "grade", a, "--workers", str(w)],
                                  base, runs_dir, a, w, env=old_env))
        if not args.no_cluster:
            runs.append(timed("course grade --cluster local:2", [course_cli, "grade", a, "--cluster", "local:2"],
                              base, runs_dir, a, 2))
        fresh = timed("course grade --workers 1, 1 submission, fresh gradebook",
                      [course_cli, "grade", a, "--workers", "1"], base, runs_dir, a, 1, fresh_gradebook=True, one=True)
        pairs = []
        for i in range(args.pairs):
            one = timed(f"pair {i + 1}: nbgrader autograde (sequential)", [nbg, "autograde", a, "--force"],
                        base, runs_dir, a, 1)
            two = timed(f"pair {i + 1}: course grade --workers 2", [course_cli, "grade", a, "--workers", "2"],
                        base, runs_dir, a, 2)
            pairs.append((one, two))

    seq = runs[0]
    print(f"\n{'run':<42}{'wall s':>8}{'sub/min':>9}{'/worker':>9}{'speed-up':>10}{'first s':>9}{'load':>12}"
          f"{'cpu/sub':>9}")
    for r in runs:
        rate = 60 * n / r.wall
        first = f"{r.first:9.1f}" if r.first is not None else f"{'':9}"
        cpu = f"{r.cpu / n:9.2f}" if r.cpu is not None else ""
        print(f"{r.label:<42}{r.wall:8.1f}{rate:9.1f}{rate / r.workers:9.1f}{seq.wall / r.wall:9.2f}x{first}"
              f"{r.loads[0]:6.2f}>{r.loads[1]:<5.2f}{cpu}")
        if r.scores != seq.scores:
            print(f"  !! scores differ from nbgrader's: {r.scores}")
    full = set(seq.scores.values())
    print(f"scores per copy: {sorted(full)} (all copies equal: {len(full) == 1}, {len(seq.scores)} graded)")

    graded = [r for r in runs if r.jobs]
    print("\nmean seconds per job (parts; kernel's own time for imports, cells, checks):")
    print(f"{'part':<14}" + "".join(f"{r.label.replace('course grade ', ''):>14}" for r in graded))
    for part in (*PARTS, "job"):
        print(f"{part:<14}" + "".join(f"{r.part(part):14.3f}" for r in graded))
    print(f"{'  unaccounted':<14}" + "".join(
        f"{r.part('job') - sum(r.part(x) for x in PARTS if x not in SPANS):14.3f}"
        for r in graded) + "   (job minus its parts)")
    for step in ("prepared", "intake", "staged"):
        print(f"{'run: ' + step:<14}" + "".join(f"{r.steps.get(step, 0):14.2f}" for r in graded)
              + "   (seconds after the pipeline started)")
    print(f"{'overhead':<14}" + "".join(f"{r.after_turn - r.own:14.3f}" for r in graded)
          + "   (job - ahead + writing - cells - checks; target <= 0.5)")
    print(f"{'  incl. ahead':<14}" + "".join(f"{r.job_seconds - r.own:14.3f}" for r in graded)
          + "   (job + writing - cells - checks: the whole job)")
    print(f"{'  w/o imports':<14}" + "".join(f"{r.job_seconds - r.own - r.part('imports'):14.3f}" for r in graded)
          + "   (the whole job, imports counted as the submission's own time)")
    print(f"{'course proc.':<14}" + "".join(f"{r.serial:14.3f}" for r in graded)
          + "   (checking + writing: the one course process's seconds per submission)")
    print(f"{'feeds workers':<14}" + "".join(f"{r.feeds:14.0f}" for r in graded)
          + "   (execute / course proc.: about where more workers stop paying)")

    two = next((r for r in runs if r.label == "course grade --workers 2"), None)
    if two:
        print(f"\nspeed-up of --workers 2 over sequential nbgrader: {seq.wall / two.wall:.2f}x (target >= 3x)")
    dask = next((r for r in runs if "cluster" in r.label), None)
    if dask and two:
        print(f"--cluster local:2 vs --workers 2: {100 * (dask.wall / two.wall - 1):+.0f}% (target within 15%,"
              f" cluster start-up included)")
    if pairs:
        ratios = [one.wall / two.wall for one, two in pairs]
        print(f"back-to-back pairs, speed-up of --workers 2: "
              + ", ".join(f"{one.wall:.1f}/{two.wall:.1f} s = {r:.2f}x" for (one, two), r in zip(pairs, ratios))
              + f"; median {statistics.median(ratios):.2f}x")
        if all(one.cpu and two.cpu for one, two in pairs):
            print("  machine CPU per submission in the pairs (nbgrader / --workers 2): "
                  + ", ".join(f"{one.cpu / n:.2f}/{two.cpu / n:.2f} s" for one, two in pairs))
        for one, two in pairs:
            if one.scores != seq.scores or two.scores != seq.scores:
                print(f"  !! scores differ in a pair: {one.scores} {two.scores}")
    first_job = fresh.jobs[0]["timings"] if fresh.jobs else {}
    print(f"fresh gradebook: definition (intake step) {fresh.steps.get('intake', 0) - fresh.steps.get('prepared', 0):.2f}"
          f" s; first result at {fresh.first or 0:.2f} s after start; that notebook's own cell time "
          f"{first_job.get('cells', 0) + first_job.get('checks', 0):.2f} s (+ imports {first_job.get('imports', 0):.2f} s)"
          f" (target: first result <= 3 s + cell time)")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if max(r.loads[0] for r in runs) > (os.cpu_count() or 1) * 0.75:
        print("note: the machine was busy with other work during some runs; timings are unreliable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
