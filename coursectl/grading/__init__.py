"""Batch grading for `course grade`: parallel, isolated, and kind to broken notebooks.

Flow of ``grade_assignment``:
1. intake: submitted/<student>/<assignment>/ (after unpacking a Canvas zip if given);
2. the assignment's definition is read from the course gradebook (created there from
   source/ if missing) and copied into a small template gradebook;
3. each submission is checked and staged in its own scratch course folder (precheck.py);
4. an executor runs ``jobs.grade_job`` for each: nbgrader autograde + feedback in a fresh
   process with per-cell and wall-clock limits; its kernel runs in a bubblewrap sandbox
   (sandbox.py) with a memory cap and no network. Without bubblewrap grading refuses,
   unless the caller opts out (``sandbox=False``, `course grade --no-sandbox`);
5. as results arrive, this process alone merges them into the real gradebook (SQLite or
   PostgreSQL via ``db_url``) and copies autograded/ and feedback/ into the course;
6. report (text, JSON, PNG), `nbgrader export` CSV and a Canvas CSV go to reports/<a>/.

This module and what it imports at the top stay light: `course grade` never imports torch.
"""
from __future__ import annotations

import html
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .executor import as_completed, default_workers, local_executor
from . import report
from .report import SubmissionResult

DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MEMORY_MB = 4096
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS")

__all__ = ["grade_assignment", "grade_from_cli", "GradingRun", "SubmissionResult"]


@dataclass
class GradingRun:
    assignment: str
    results: list[SubmissionResult]
    summary: dict
    unplaced: list[tuple[str, str]]
    report_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    text: str = ""
    seconds: float = 0.0
    workers: int = 1
    network: str = ""
    sandbox: str = ""  # the protection the kernels had, in words

    def result(self, student: str) -> SubmissionResult:
        return next(r for r in self.results if r.student == student)


def course_settings(course: Path) -> tuple[str, str | None]:
    """(db_url, course_id) from the course's nbgrader_config.py."""
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    db_url = cfg.CourseDirectory.get("db_url") or f"sqlite:///{course / 'gradebook.db'}"
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        db_url = f"sqlite:///{course / db_url[len('sqlite:///'):]}"  # relative to the course, as nbgrader runs there
    return db_url, cfg.CourseDirectory.get("course_id") or None


def job_env(workers: int) -> dict[str, str]:
    """Variables for each grading process and its kernel. Math libraries get an equal
    share of the cores, so parallel kernels do not fight over them."""
    threads = str(max(1, default_workers() // max(1, workers)))
    env = {var: os.environ.get(var, threads) for var in THREAD_VARS}
    env.update({k: v for k, v in os.environ.items() if k.startswith("COURSE_")})
    return env


def _replace_tree(src: Path | None, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    if src is not None and src.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dest)


def _failure_feedback(folder: Path, assignment: str, notebooks: list[str], reason: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)}</title></head>"
            f"<body><h1>{html.escape(assignment)}: not graded automatically</h1>"
            f"<p>{html.escape(reason)}</p><p>Your instructor has been told.</p></body></html>\n")
    for name in notebooks:
        (folder / f"{name}.html").write_text(page, encoding="utf-8")


def grade_assignment(course, assignment: str, **options) -> GradingRun:
    """Grade every submission of ``assignment``; see the module docstring for the steps.

    Options: ``workers`` (default: one per core), ``timeout`` (wall clock per submission,
    s), ``cell_timeout`` (s), ``memory_mb`` (0: no cap), ``from_zip`` + ``roster`` (Canvas
    intake), ``db_url`` (default: the course's), ``executor`` (anything with
    concurrent.futures' ``submit``: a process pool, a Dask ``Client``), ``students`` (only
    these ids), ``isolate_network``, ``feedback``, ``progress``, ``work_dir`` (kept if given),
    ``max_output_bytes`` (per cell), ``sandbox`` (default True: kernels run under bubblewrap,
    and grading refuses where it cannot start; False grades without it, at the caller's risk).
    """
    with warnings.catch_warnings():
        # nbgrader's gradebook code trips SQLAlchemy warnings that mean nothing to a grader
        warnings.filterwarnings("ignore", message=".*not in session.*")
        return _grade(course, assignment, **options)


def _grade(course, assignment: str, *, workers: int | None = None, timeout: float | None = None,
                     cell_timeout: int | None = None, memory_mb: int | None = None, from_zip=None,
                     roster=None, db_url: str | None = None, executor=None, students=None,
                     isolate_network: bool = True, feedback: bool = True, progress: bool = True,
                     work_dir=None, max_output_bytes: int = 5_000_000, sandbox: bool = True) -> GradingRun:
    from ..nbg import CourseError, check_assignment
    from . import jobs

    start = time.monotonic()
    course = Path(course).resolve()
    check_assignment(course, assignment)
    bwrap, protection = _probe_sandbox(jobs, sandbox, isolate_network)  # refuse before any work
    if executor is None:  # first, so that its imports overlap with ours
        jobs.start_fork_server()
    threading.Thread(target=report.preload_plotting, daemon=True).start()
    from . import export, gradebook, intake, precheck

    workers = workers or default_workers()
    timeout = float(timeout or DEFAULT_TIMEOUT_S)
    memory_mb = DEFAULT_MEMORY_MB if memory_mb is None else memory_mb

    config_db, course_id = course_settings(course)
    db_url = db_url or config_db
    roster_obj = intake.read_roster(Path(roster)) if roster else None
    found = (intake.from_canvas_zip(Path(from_zip), course, assignment, roster_obj) if from_zip
             else intake.Intake())
    intake.find_submissions(course, assignment, found)
    chosen = {s: p for s, p in found.students.items() if students is None or s in students}
    if bwrap:
        network = "isolated (new network namespace, bubblewrap)" if isolate_network else "not isolated (switched off)"
    else:
        network = jobs.probe_network() if isolate_network else "not isolated (switched off)"

    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix=f"grade-{assignment}-"))
    work.mkdir(parents=True, exist_ok=True)
    report_dir = course / "reports" / assignment
    report_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, SubmissionResult] = {}

    with gradebook.open_gradebook(db_url, course_id) as gb:
        if roster_obj is not None:  # names for the formgrader, with or without a Canvas zip
            gradebook.add_student_names(gb, roster_obj)
        if not gradebook.has_assignment(gb, assignment):
            gradebook.generate_definition(course, assignment, db_url, course_id)
            gb.db.expire_all()
        definition = gradebook.read_definition(gb, assignment, course / "source" / assignment)
        if not definition:
            raise CourseError(f"assignment {assignment!r} has no notebooks in the gradebook")
        template = work / "template.db"
        with gradebook.new_sqlite_gradebook(template, gradebook.schema_version(gb), course_id) as tgb:
            gradebook.copy_definition(gb, tgb, assignment)

        env = job_env(workers)
        seed = secrets.randbits(62)  # one secret per run: check inputs nobody can predict
        pending, staged_by = [], {}
        for i, (student, folder) in enumerate(sorted(chosen.items())):
            wd = work / f"s{i:04d}"
            if wd.exists():
                shutil.rmtree(wd)
            scratch = wd / "course"
            staged = precheck.stage_submission(student, folder, scratch / "submitted" / student / assignment,
                                               definition)
            staged_by[student] = staged
            if not staged.gradable:
                results[student] = SubmissionResult(student, "failed", problems=staged.problems)
                continue
            shutil.copy(course / "nbgrader_config.py", scratch / "nbgrader_config.py")
            (scratch / "source").mkdir()
            (scratch / "source" / assignment).symlink_to(course / "source" / assignment)
            shutil.copy(template, scratch / "gradebook.db")
            pending.append({
                "assignment": assignment, "student": student, "workdir": str(wd), "course_id": course_id,
                "timeout": timeout, "cell_timeout": cell_timeout, "memory_mb": memory_mb or None,
                "no_network": isolate_network, "max_output_bytes": max_output_bytes, "feedback": feedback,
                "env": env, "seed": seed, "prior": gradebook.prior_grades(gb, assignment, student),
                "bwrap": bwrap,
            })

        pool = executor or local_executor(workers)
        futures = {}
        for job in pending:
            futures[pool.submit(jobs.grade_job, job)] = job
        bar = _progress(len(chosen), assignment, progress)
        bar.update(len(results))
        try:
            for fut in as_completed(list(futures)):
                job = futures[fut]
                try:
                    raw = fut.result()
                except Exception as exc:  # the executor itself lost the job
                    raw = {"student": job["student"], "status": "failed", "grades": None, "timed_out": False,
                           "problems": [f"executor error: {type(exc).__name__}: {exc}"], "network": None}
                res = _absorb(gb, course, assignment, raw, staged_by[job["student"]], Path(job["workdir"]),
                              report_dir, definition)
                results[res.student] = res
                if raw.get("network"):
                    network = raw["network"]
                bar.set_postfix_str(f"{res.student}: {res.status}", refresh=False)
                bar.update(1)
        except BaseException:  # Ctrl-C or a bug here: leave no grading process behind
            jobs.stop_all()
            if executor is None:
                pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
        if executor is None:
            pool.shutdown(wait=True)

        ran = {j["student"] for j in pending}
        for student, res in results.items():
            if res.status == "failed" and student not in ran:
                gradebook.record_failure(gb, assignment, student)
                _clear_outputs(course, assignment, student, definition, res.reason, feedback)
            res.score, res.max_score, _ = gradebook.submission_totals(gb, assignment, student)
            res.late = student in found.late
            if res.status == "failed":
                res.cells = {d.name: [0.0, d.points, d.grade and d.cell_type == "code" and not d.solution]
                             for cells in definition.values() for d in cells if d.grade}
        ordered = [results[s] for s in sorted(results)]
        files = {"grades_csv": export.nbgrader_csv(gb, report_dir / "grades.csv")}
    files["canvas_csv"] = export.canvas_csv(report_dir / f"canvas_{assignment}.csv", assignment,
                                            [(r.student, r.score, r.max_score) for r in ordered], roster_obj)

    seconds = time.monotonic() - start
    summary = report.summarize(ordered)
    meta = {"workers": workers, "seconds": round(seconds, 2), "network": network,
            "protection": {"sandbox": protection, "network": network, "memory_cap_mb": memory_mb or None},
            "limits": {"timeout_s": timeout, "cell_timeout_s": cell_timeout, "memory_mb": memory_mb or None}}
    text = report.render_text(assignment, summary, ordered, found.unplaced, meta)
    files["report_txt"] = report_dir / "report.txt"
    files["report_txt"].write_text(text)
    files["report_json"] = report.write_json(report_dir / "report.json", assignment, summary, ordered,
                                             found.unplaced, meta)
    files["plot_png"] = report.plot_summary(report_dir / "summary.png", assignment, summary, ordered)
    if not work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return GradingRun(assignment, ordered, summary, list(found.unplaced), report_dir, files, text,
                      time.monotonic() - start, workers, network, protection)


SANDBOX_HELP = ("Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: "
                "`sudo dnf install bubblewrap`); where it is installed but cannot create namespaces, "
                "allow unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`, on "
                "Ubuntu 24.04 also `sysctl kernel.apparmor_restrict_unprivileged_userns=0`). Or grade "
                "without the sandbox, at your own risk, with `course grade --no-sandbox` "
                "(grade_assignment(..., sandbox=False)): student code then runs as you and can read "
                "and change the course folder, the gradebook and other submissions.")


def _probe_sandbox(jobs, wanted: bool, isolate_network: bool) -> tuple[str | None, str]:
    """(bwrap path or None, the protection line for the report); refuses when the
    sandbox is wanted but cannot start."""
    from ..nbg import CourseError

    if not wanted:
        return None, "none (opted out with --no-sandbox: kernels run unsandboxed)"
    bwrap, line = jobs.probe_sandbox(no_network=isolate_network)
    if not bwrap:
        raise CourseError(f"refusing to grade without a sandbox: {line}. {SANDBOX_HELP}")
    return bwrap, line


def _absorb(gb, course: Path, assignment: str, raw: dict, staged, wd: Path, report_dir: Path,
            definition) -> SubmissionResult:
    """Merge one finished job into the course (this process is the only writer)."""
    from . import gradebook
    from .jobs import LOG_FILE

    student = raw["student"]
    problems = list(staged.problems) + [p for p in raw.get("problems", []) if p not in staged.problems]
    res = SubmissionResult(student, raw["status"], problems=problems, timed_out=bool(raw.get("timed_out")),
                           seconds=float(raw.get("seconds") or 0.0))
    scratch = wd / "course"
    if res.status == "graded" and raw.get("grades"):
        gradebook.merge_grades(gb, assignment, student, raw["grades"])
        _replace_tree(scratch / "autograded" / student / assignment, course / "autograded" / student / assignment)
        _replace_tree(scratch / "feedback" / student / assignment, course / "feedback" / student / assignment)
        res.cells = {k: list(v) for k, v in gradebook.cell_scores(raw["grades"]).items()}
    else:
        res.status = "failed"
        gradebook.record_failure(gb, assignment, student)
        _clear_outputs(course, assignment, student, definition, res.reason, True)
    if res.status == "failed" or raw.get("problems"):
        log = wd / LOG_FILE
        if log.exists():  # keep the grader's log where the instructor will look
            (report_dir / "logs").mkdir(exist_ok=True)
            shutil.copy(log, report_dir / "logs" / f"{student}.log")
    return res


def _clear_outputs(course: Path, assignment: str, student: str, definition, reason: str, feedback: bool) -> None:
    """Drop results of an earlier run for a submission that now failed; explain instead."""
    _replace_tree(None, course / "autograded" / student / assignment)
    fb = course / "feedback" / student / assignment
    _replace_tree(None, fb)
    if feedback:
        _failure_feedback(fb, assignment, list(definition), reason or "it could not be read")


def _progress(total: int, assignment: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"grading {assignment}", unit="sub", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


def grade_from_cli(course: Path, args) -> GradingRun:
    """`course grade ASSIGNMENT [--from ZIP] [--roster CSV] [--workers N] [--timeout S]
    [--cell-timeout S] [--memory-mb M] [--no-sandbox]`: grade, then print the summary and
    file paths."""
    run = grade_assignment(course, args.assignment, workers=args.workers, timeout=args.timeout,
                           cell_timeout=getattr(args, "cell_timeout", None), memory_mb=args.memory_mb,
                           from_zip=getattr(args, "from_zip", None), roster=getattr(args, "roster", None),
                           sandbox=not getattr(args, "no_sandbox", False))
    print(run.text, end="")
    print()
    for label, path in run.files.items():
        print(f"{label}: {path}")
    print(f"feedback: {course / 'feedback'}/<student>/{args.assignment}/")
    return run
