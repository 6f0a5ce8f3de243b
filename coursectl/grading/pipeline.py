"""`course grade` as a pipeline of named steps, run by ``GradingPipeline.run``:

1. prepare: check the assignment, the sandbox and the runner (a local pool or a Dask
   cluster), before anything is written, so a refusal leaves the course as it was;
2. intake: submitted/<student>/<assignment>/ (after unpacking a Canvas zip if given), and
   the assignment's definition from the course gradebook (created there from source/ if
   missing), copied into a small template gradebook;
3. stage: each submission is checked and repaired (staging.py) into a self-contained job
   (model.GradeJob: its files, the config, source/<a>, the template gradebook, limits,
   the course's secret, prior manual grades), one at a time as the runner takes them, so
   the first job starts after one submission is staged and the rest overlap with grading;
4. dispatch: the runner runs ``jobs.grade_job`` for each: nbgrader autograde + feedback
   in a fresh process with per-cell and wall-clock limits, its kernel in the bubblewrap
   sandbox with a memory cap and no network;
5. absorb: as results arrive, this process alone merges them into the real gradebook
   (SQLite or PostgreSQL) and writes autograded/ and feedback/ into the course;
6. finish: totals, the report (text, JSON, PNG), `nbgrader export` CSV and a Canvas CSV
   in reports/<a>/.

Every failure, at whatever step, goes through ``GradingPipeline.fail``.
"""
from __future__ import annotations

import html
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import report, runners
from .model import CellScore, GradeJob, JobResult, Limits, pack_tree, unpack_tree
from .report import SubmissionResult

DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MEMORY_MB = 4096
DEFAULT_MAX_PROCESSES = 256

SANDBOX_HELP = ("Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: "
                "`sudo dnf install bubblewrap`); where it is installed but cannot create namespaces, "
                "allow unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`, on "
                "Ubuntu 24.04 also `sysctl kernel.apparmor_restrict_unprivileged_userns=0`). Or grade "
                "without the sandbox, at your own risk, with `course grade --no-sandbox` "
                "(grade_assignment(..., sandbox=False)): student code then runs as you and can read "
                "and change the course folder, the gradebook and other submissions.")


@dataclass(frozen=True)
class GradeOptions:
    """How ``grade_assignment`` grades. Every field is optional."""
    workers: int | None = None         # local pool size (default: one per core)
    cluster: str | None = None         # "local:N" (Dask LocalCluster, N processes) or "tcp://host:port"
    executor: object = None            # a concurrent.futures executor or a Dask Client to run the jobs
    tries: int = runners.DEFAULT_TRIES  # local:N: runs of a job whose worker died, before it fails
    timeout: float | None = None       # wall clock per submission, s (default 1800)
    cell_timeout: int | None = None    # per cell, s (default: the course config's)
    memory_mb: int | None = None       # memory cap, MB: whole job and per process (default 4096; 0: none)
    max_processes: int | None = None   # processes and threads per submission (default 256; 0: none)
    max_output_bytes: int = 5_000_000  # output kept per cell
    isolate_network: bool = True       # kernels get no network
    sandbox: bool = True               # kernels in bubblewrap; refuse where it cannot start
    from_zip: str | Path | None = None  # a Canvas "download submissions" zip to take in first
    roster: str | Path | None = None   # CSV mapping Canvas ids to student ids (and names)
    students: object = None            # only these student ids (default: all)
    db_url: str | None = None          # gradebook (default: the course's)
    feedback: bool = True              # write feedback HTML
    progress: bool = True              # a progress bar on stderr
    work_dir: str | Path | None = None  # staging folder, kept if given (default: a temporary one)
    reseed: bool = False               # draw a new course secret first (coursectl/secret.py)


@dataclass
class GradingRun:
    """What ``grade_assignment`` returns: per-submission results and the report."""
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
    runner: str = ""   # where the jobs ran, in words

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


class GradingPipeline:
    """One grading run of one assignment; see the module docstring for the steps."""

    def __init__(self, course, assignment: str, options: GradeOptions):
        self.course = Path(course).resolve()
        self.assignment = assignment
        self.opts = options
        self.start = time.monotonic()
        self.timeout = float(options.timeout or DEFAULT_TIMEOUT_S)
        self.memory_mb = DEFAULT_MEMORY_MB if options.memory_mb is None else options.memory_mb
        self.max_processes = DEFAULT_MAX_PROCESSES if options.max_processes is None else options.max_processes
        self.job_limits = ""  # how the machine caps a whole job (sandbox.probe_job_limits)
        self.report_dir = self.course / "reports" / assignment
        self.results: dict[str, SubmissionResult] = {}
        self.jobs: list[GradeJob] = []
        self.staged: dict = {}
        self.checking: dict[str, float] = {}  # student -> seconds this process spent making the job
        self.network = "not isolated (switched off)"
        self.protection = ""

    # ------------------------------------------------------------------ steps

    def run(self) -> GradingRun:
        self.prepare()
        try:
            from . import export, gradebook

            with gradebook.open_gradebook(self.db_url, self.course_id) as gb:
                self._mark("prepared")
                self.intake(gb)
                self._mark("intake")
                for job, result in self.dispatch(self.staged_jobs(gb)):
                    clock = time.perf_counter()
                    self.absorb(gb, job, result)
                    result.timings["writing"] = round(time.perf_counter() - clock, 4)
                    result.timings["checking"] = round(self.checking.get(job.student, 0.0), 4)
                    self._note_timings(job, result)
                self.totals(gb)
                self.files = {"grades_csv": export.nbgrader_csv(gb, self.report_dir / "grades.csv",
                                                                 assignment=self.assignment)}
        finally:
            self.runner.close()
            if not self.opts.work_dir:
                shutil.rmtree(self.work, ignore_errors=True)
            from .cgroups import sweep_here

            sweep_here()  # job groups of grading processes killed at the wall-clock limit
        return self.finish()

    def prepare(self) -> None:
        """Refuse early: a missing assignment, no sandbox, an unusable cluster."""
        from ..errors import CourseError
        from ..folders import check_assignment
        from .model import skip_slow_format_checks

        skip_slow_format_checks()  # before the course's config imports nbgrader
        check_assignment(self.course, self.assignment)
        try:
            self.runner = runners.open_runner(cluster=self.opts.cluster, executor=self.opts.executor,
                                              workers=self.opts.workers, tries=self.opts.tries,
                                              assignments=(self.assignment,))
        except runners.ClusterError as exc:
            raise CourseError(str(exc)) from None
        try:
            self._check_sandbox()
            self.source = pack_tree(self.course / "source" / self.assignment)
            if self.opts.sandbox:
                self.runner.warm(self.source, self.runner.job_env())
            threading.Thread(target=report.preload_plotting, daemon=True).start()
            self.db_url, self.course_id = course_settings(self.course)
            self.db_url = self.opts.db_url or self.db_url
            from . import cell_schema

            cell_schema.install()  # staging checks each cell's metadata (a course config may predate it)
            self.work = Path(self.opts.work_dir) if self.opts.work_dir else Path(
                tempfile.mkdtemp(prefix=f"grade-{self.assignment}-"))
            self.work.mkdir(parents=True, exist_ok=True)
            self.report_dir.mkdir(parents=True, exist_ok=True)
            # Last, after every refusal above: the secret all check inputs derive from.
            from .. import secret

            self.secret = secret.reseed(self.course) if self.opts.reseed else secret.load_or_create(self.course)
        except BaseException:
            self.runner.close()
            raise

    def _check_sandbox(self) -> None:
        from ..errors import CourseError

        isolate = self.opts.isolate_network
        if not self.opts.sandbox:
            from .sandbox import probe_job_limits

            self.protection = "none (opted out with --no-sandbox: kernels run unsandboxed)"
            self.job_limits = probe_job_limits()  # the launcher still applies them (here: local machine)
            if isolate:
                from .jobs import probe_network

                self.network = probe_network()
            return
        bwrap, line = self.runner.probe_sandbox(isolate)
        if not bwrap:
            raise CourseError(f"refusing to grade without a sandbox: {line}. {SANDBOX_HELP}")
        from .sandbox import JOB_LIMITS_SEP

        self.protection, _, self.job_limits = line.partition(JOB_LIMITS_SEP)
        if isolate:
            self.network = "isolated (new network namespace, bubblewrap)"

    def intake(self, gb) -> None:
        """Find the submissions and the assignment's definition."""
        from ..errors import CourseError
        from . import gradebook, intake

        self.roster = intake.read_roster(Path(self.opts.roster)) if self.opts.roster else None
        self.found = (intake.from_canvas_zip(Path(self.opts.from_zip), self.course, self.assignment, self.roster)
                      if self.opts.from_zip else intake.Intake())
        intake.find_submissions(self.course, self.assignment, self.found)
        wanted = self.opts.students
        self.chosen = {s: p for s, p in sorted(self.found.students.items()) if wanted is None or s in wanted}
        if self.roster is not None:  # names for the formgrader, with or without a Canvas zip
            gradebook.add_student_names(gb, self.roster)
        if not gradebook.has_assignment(gb, self.assignment):
            gradebook.generate_definition(self.course, self.assignment, self.db_url, self.course_id)
            gb.db.expire_all()
        self.definition = gradebook.read_definition(gb, self.assignment, self.course / "source" / self.assignment)
        if not self.definition:
            raise CourseError(f"assignment {self.assignment!r} has no notebooks in the gradebook")
        template = self.work / "template.db"
        with gradebook.new_sqlite_gradebook(template, gradebook.schema_version(gb), self.course_id) as tgb:
            gradebook.copy_definition(gb, tgb, self.assignment)
        self.template = template.read_bytes()

    def stage(self, gb) -> None:
        """Check and repair every submission into a self-contained job (``self.jobs``)."""
        self.jobs = list(self.staged_jobs(gb))

    def staged_jobs(self, gb) -> Iterator[GradeJob]:
        """Check and repair each submission into a self-contained job, one at a time as the
        runner takes them: the first job starts once its own submission is staged, not the
        whole class's, and staging the rest overlaps with grading."""
        from . import gradebook, staging

        config_text = (self.course / "nbgrader_config.py").read_text(encoding="utf-8")
        source = self.source
        limits = Limits(timeout=self.timeout, cell_timeout=self.opts.cell_timeout,
                        memory_mb=self.memory_mb or None, max_output_bytes=self.opts.max_output_bytes,
                        no_network=self.opts.isolate_network, max_processes=self.max_processes or None)
        env = self.runner.job_env()
        wanted = self.opts.students
        for student, why in sorted(self.found.refused.items()):  # e.g. a submission folder that is a link
            if wanted is None or student in wanted:
                self.staged[student] = staging.Staged(student, problems=[why])
                self.fail(gb, student, [why])
        for i, (student, folder) in enumerate(self.chosen.items()):
            clock = time.perf_counter()
            dest = self.work / f"s{i:04d}"
            if dest.exists():
                shutil.rmtree(dest)
            staged = staging.stage_submission(student, folder, dest, self.definition)
            staged.problems[:0] = self.found.problems.get(student, [])  # what intake refused of theirs
            self.staged[student] = staged
            if not staged.gradable:
                self.fail(gb, student, staged.problems)
                continue
            job = GradeJob(
                assignment=self.assignment, student=student, submission=pack_tree(dest), config_text=config_text,
                source=source, gradebook=self.template, limits=limits, course_id=self.course_id,
                secret=self.secret.hex,
                prior=gradebook.prior_grades(gb, self.assignment, student), feedback=self.opts.feedback,
                sandbox=self.opts.sandbox, env=env)
            if not self.opts.work_dir:
                shutil.rmtree(dest, ignore_errors=True)
            self.checking[student] = time.perf_counter() - clock
            yield job
        self._mark("staged")

    def dispatch(self, jobs: Iterable[GradeJob] | None = None):
        """Run ``jobs`` (default ``self.jobs``); yield (job, result) in the order they finish."""
        jobs = self.jobs if jobs is None else jobs
        flying: list = []

        def submit(job: GradeJob):
            fut = self.runner.submit(job)
            flying.append(fut)
            return fut

        bar = _progress(len(self.chosen), self.assignment, self.opts.progress)
        bar.update(len(self.results))
        try:
            for job, fut in runners.in_finish_order(submit, jobs, self.runner.window, self.runner.stalled):
                result = self.runner.outcome(fut, job)
                yield job, result
                bar.set_postfix_str(f"{job.student}: {self.results[job.student].status}", refresh=False)
                bar.update(len(self.results) - bar.n)  # this one, and any refused while staging
            bar.update(len(self.results) - bar.n)
        except BaseException:  # Ctrl-C or a bug here: leave no grading process behind
            self.runner.abort([f for f in flying if not f.done()])
            raise
        finally:
            bar.close()

    def absorb(self, gb, job: GradeJob, raw: JobResult) -> None:
        """Merge one finished job into the course (this process is the only writer)."""
        from . import gradebook

        student = job.student
        staged = self.staged[student]
        if raw.network:
            self.network = raw.network
        problems = list(staged.problems) + [p for p in raw.problems if p not in staged.problems]
        if raw.status == "graded" and raw.grades:
            res = SubmissionResult(student, "graded", problems=problems, timed_out=raw.timed_out,
                                   seconds=raw.seconds)
            gradebook.merge_grades(gb, self.assignment, student, raw.grades)
            self._write_tree(raw.autograded, "autograded", student)
            self._write_tree(raw.feedback, "feedback", student)
            res.cells = gradebook.cell_scores(raw.grades)
            self.results[student] = res
            if raw.problems:
                self._keep_log(student, raw.log)
        else:
            self.fail(gb, student, problems or ["no grades recorded"], timed_out=raw.timed_out,
                      seconds=raw.seconds, log=raw.log)

    def fail(self, gb, student: str, problems: list[str], *, timed_out: bool = False, seconds: float = 0.0,
             log: str = "") -> None:
        """The one place a submission is recorded as failed: zero and flagged in the
        gradebook, earlier results removed, a page that says why, the grader's log kept."""
        from . import gradebook

        res = SubmissionResult(student, "failed", problems=list(problems), timed_out=timed_out, seconds=seconds)
        self.results[student] = res
        gradebook.record_failure(gb, self.assignment, student)
        self._write_tree(None, "autograded", student)
        self._write_tree(None, "feedback", student)
        if self.opts.feedback:
            _failure_page(self.course / "feedback" / student / self.assignment, self.assignment,
                          list(self.definition), res.reason or "it could not be read")
        self._keep_log(student, log)

    def totals(self, gb) -> None:
        """Scores as nbgrader export computes them, lateness, and zeros for failures."""
        from . import gradebook

        for student, res in self.results.items():
            res.score, res.max_score, _ = gradebook.submission_totals(gb, self.assignment, student)
            res.late = student in self.found.late
            if res.status == "failed":
                res.cells = {d.name: CellScore(0.0, d.points, d.grade and d.cell_type == "code" and not d.solution)
                             for cells in self.definition.values() for d in cells if d.grade}

    def finish(self) -> GradingRun:
        """The report files and the returned ``GradingRun``."""
        from . import export

        ordered = [self.results[s] for s in sorted(self.results)]
        files = dict(self.files)
        files["canvas_csv"] = export.canvas_csv(self.report_dir / f"canvas_{self.assignment}.csv", self.assignment,
                                                [(r.student, r.score, r.max_score) for r in ordered], self.roster)
        seconds = time.monotonic() - self.start
        summary = report.summarize(ordered)
        memory = self.memory_mb or None
        meta = {"workers": self.runner.workers, "runner": self.runner.where, "seconds": round(seconds, 2),
                "network": self.network,
                "protection": {"sandbox": self.protection, "network": self.network, "memory_cap_mb": memory,
                               "job_limits": self.job_limits, "max_processes": self.max_processes or None},
                "limits": {"timeout_s": self.timeout, "cell_timeout_s": self.opts.cell_timeout, "memory_mb": memory},
                "secret": {"fingerprint": self.secret.fingerprint, "path": str(self.secret.path),
                           "created": self.secret.created, "reseeded": bool(self.opts.reseed),
                           "previous": str(self.secret.previous) if self.secret.previous else None}}
        text = report.render_text(self.assignment, summary, ordered, self.found.unplaced, meta)
        files["report_txt"] = self.report_dir / "report.txt"
        files["report_txt"].write_text(text)
        files["report_json"] = report.write_json(self.report_dir / "report.json", self.assignment, summary, ordered,
                                                 self.found.unplaced, meta)
        files["plot_png"] = report.plot_summary(self.report_dir / "summary.png", self.assignment, summary, ordered)
        return GradingRun(self.assignment, ordered, summary, list(self.found.unplaced), self.report_dir, files,
                          text, time.monotonic() - self.start, self.runner.workers, self.network, self.protection,
                          self.runner.where)

    # ------------------------------------------------------------------ helpers

    def _mark(self, step: str) -> None:
        self._note_timings(None, None, step=step)

    def _note_timings(self, job: GradeJob | None, result: JobResult | None, *, step: str = "") -> None:
        """With COURSE_GRADE_TIMINGS=<file>: one JSON line per step and per job (seconds
        since the run started, the job's parts) for benchmarks/grading_speed.py."""
        path = os.environ.get("COURSE_GRADE_TIMINGS")
        if not path:
            return
        line = {"at": round(time.monotonic() - self.start, 4)}
        if step:
            line["step"] = step
        if result is not None:
            line.update(student=job.student, status=result.status, timings=result.timings)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def _write_tree(self, tree, kind: str, student: str) -> None:
        """Replace <kind>/<student>/<assignment>/ in the course with ``tree`` (None: remove)."""
        dest = self.course / kind / student / self.assignment
        if dest.exists():
            shutil.rmtree(dest)
        if tree:
            unpack_tree(tree, dest)

    def _keep_log(self, student: str, log: str) -> None:
        if log:  # keep the grader's log where the instructor will look
            (self.report_dir / "logs").mkdir(parents=True, exist_ok=True)
            (self.report_dir / "logs" / f"{student}.log").write_text(log, encoding="utf-8")


def _failure_page(folder: Path, assignment: str, notebooks: list[str], reason: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)}</title></head>"
            f"<body><h1>{html.escape(assignment)}: not graded automatically</h1>"
            f"<p>{html.escape(reason)}</p><p>Your instructor has been told.</p></body></html>\n")
    for name in notebooks:
        (folder / f"{name}.html").write_text(page, encoding="utf-8")


def _progress(total: int, assignment: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"grading {assignment}", unit="sub", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)
