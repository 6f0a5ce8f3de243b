"""Grade one attempt through exactly the chain `course grade` uses.

The pieces are `course grade`'s own (coursectl/grading/): the assignment's definition
from the course gradebook (made from source/ if missing) copied into a template
gradebook, ``staging.stage_submission`` (check and repair), a self-contained
``GradeJob`` with the course's config, secret and limits, and a runner (the local pool
of forked grading processes, or a Dask cluster) running ``jobs.grade_job``: nbgrader
autograde with the trusted verdict, the kernel in the bubblewrap sandbox. The verdict
comes back as data: per grade cell the points nbgrader recorded (what `course grade`
writes into the gradebook) and the checks the trusted chain judged (the grade cell's
``trusted.CHECKS_KEY`` metadata in the autograded notebook).

Unlike `course grade`, an attempt never writes the course's gradebook, autograded/ or
feedback/: `course attempts collect` turns chosen attempts into submissions for that.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CourseError
from .config import GraderOptions

MESSAGE_LIMIT = 1000   # characters of one check's message
REASON_LIMIT = 2000


@dataclass
class Verdict:
    """One attempt's outcome: ``status`` graded or failed, scores, the units (complete)."""
    status: str
    score: float | None = None
    max_score: float | None = None
    # {grade_id, points, max_points, held, checks: [{name, passed, message}]}
    units: list[dict] = field(default_factory=list)
    reason: str | None = None
    seconds: float = 0.0


@dataclass
class Prepared:
    """What every job of one assignment shares, read once."""
    definition: dict
    template: bytes
    source: dict
    config_text: str
    notebooks: list[str]


def assignment_notebooks(course: Path, assignment: str) -> list[str]:
    """The assignment's notebook names (without .ipynb), from source/."""
    return sorted(p.stem for p in (course / "source" / assignment).glob("*.ipynb"))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def verdict_from_result(result, definition: dict) -> Verdict:
    """A ``JobResult`` as a ``Verdict``: per autograded grade cell its points and checks."""
    from ..grading import gradebook
    from ..trusted import CHECKS_KEY

    if result.status != "graded" or not result.grades:
        return Verdict("failed", reason=_clip(result.reason or "no grades recorded", REASON_LIMIT),
                       seconds=result.seconds)
    checks: dict[str, list[dict]] = {}
    held: set[str] = set()  # units whose points wait for the instructor's review (trusted.HELD_KEY)
    for rel, (_mode, data) in (result.autograded or {}).items():
        if not rel.endswith(".ipynb") or "/" in rel:
            continue
        try:
            nb = json.loads(data)
        except ValueError:
            continue
        for cell in nb.get("cells", []):
            meta = cell.get("metadata") or {}
            gid = (meta.get("nbgrader") or {}).get("grade_id")
            found = meta.get(CHECKS_KEY)
            if gid and isinstance(found, dict):
                if found.get("held"):
                    held.add(gid)
                checks[gid] = [{"name": str(c.get("name", "")), "passed": bool(c.get("passed")),
                                "message": _clip(str(c.get("message", "")), MESSAGE_LIMIT)}
                               for c in found.get("checks", []) if isinstance(c, dict)]
    scores = gradebook.cell_scores(result.grades)
    order = [d.name for cells in definition.values() for d in cells if d.grade]
    units, total, max_total = [], 0.0, 0.0
    for gid in order + sorted(set(scores) - set(order)):
        cell = scores.get(gid)
        if cell is None:
            continue
        max_total += cell.max_score
        if cell.score is None:  # a written answer: graded by hand later
            continue
        total += cell.score
        units.append({"grade_id": gid, "points": round(cell.score, 4), "max_points": cell.max_score,
                      "held": gid in held, "checks": checks.get(gid, [])})
    reason = _clip("; ".join(result.problems), REASON_LIMIT) if result.problems else None
    return Verdict("graded", round(total, 4), max_total, units, reason, result.seconds)


class AttemptGrader:
    """Grades attempts of one course; thread-safe (``grade`` is called from several threads)."""

    def __init__(self, course: Path, options: GraderOptions = GraderOptions()):
        from ..grading import pipeline, runners
        from .. import secret

        self.course = Path(course).resolve()
        self.options = options
        try:
            self.runner = runners.open_runner(cluster=options.cluster, workers=options.workers)
        except runners.ClusterError as exc:
            raise CourseError(str(exc)) from None
        try:
            self.protection = self._check_sandbox()
            self.db_url, self.course_id = pipeline.course_settings(self.course)
            self.secret = secret.load_or_create(self.course)
        except BaseException:
            self.runner.close()
            raise
        self.timeout = float(options.timeout or pipeline.DEFAULT_TIMEOUT_S)
        self.memory_mb = pipeline.DEFAULT_MEMORY_MB if options.memory_mb is None else options.memory_mb
        self.max_processes = (pipeline.DEFAULT_MAX_PROCESSES if options.max_processes is None
                              else options.max_processes)
        self._prepared: dict[str, Prepared] = {}
        self._lock = threading.Lock()

    @property
    def slots(self) -> int:
        """Attempts handed to the runner at once: the cluster's threads; on the local pool
        two per worker, as `course grade` keeps it busy (the next job starts its kernel
        ahead while the current one runs its cells; at most ``workers`` run cells)."""
        window = getattr(self.runner, "window", None)
        if callable(window):
            return max(1, window())
        ahead = getattr(self.runner, "slots", None) is not None  # runners.LocalRunner's own pool
        return max(1, self.runner.workers * (2 if ahead else 1))

    @property
    def where(self) -> str:
        return self.runner.where

    def _check_sandbox(self) -> str:
        if not self.options.sandbox:
            return "none (opted out with --no-sandbox: kernels run unsandboxed)"
        from ..grading.pipeline import SANDBOX_HELP

        bwrap, line = self.runner.probe_sandbox(True)
        if not bwrap:
            raise CourseError(f"refusing to grade without a sandbox: {line}. {SANDBOX_HELP}")
        return line

    def prepare(self, assignment: str) -> Prepared:
        """The assignment's definition and files, read once (as `course grade`'s intake does)."""
        with self._lock:
            if assignment in self._prepared:
                return self._prepared[assignment]
            from ..folders import check_assignment
            from ..grading import gradebook
            from ..grading.model import pack_tree

            check_assignment(self.course, assignment)
            with gradebook.open_gradebook(self.db_url, self.course_id) as gb:
                if not gradebook.has_assignment(gb, assignment):
                    gradebook.generate_definition(self.course, assignment, self.db_url, self.course_id)
                    gb.db.expire_all()
                definition = gradebook.read_definition(gb, assignment, self.course / "source" / assignment)
                if not definition:
                    raise CourseError(f"assignment {assignment!r} has no notebooks in the gradebook")
                with tempfile.TemporaryDirectory(prefix="serve-def-") as tmp:
                    path = Path(tmp) / "template.db"
                    with gradebook.new_sqlite_gradebook(path, gradebook.schema_version(gb), self.course_id) as tgb:
                        gradebook.copy_definition(gb, tgb, assignment)
                    template = path.read_bytes()
            prepared = Prepared(definition, template, pack_tree(self.course / "source" / assignment),
                                (self.course / "nbgrader_config.py").read_text(encoding="utf-8"),
                                list(definition))
            self._prepared[assignment] = prepared
            if self.options.sandbox:  # the assignment's kernels' zygote (zygote.py), kept for the service's life
                self.runner.warm(prepared.source, self.runner.job_env())
            return prepared

    def grade(self, *, assignment: str, student: str, notebook: bytes, filename: str) -> Verdict:
        """Grade one notebook of ``student`` for ``assignment`` (blocking)."""
        from ..grading import staging
        from ..grading.model import GradeJob, Limits, pack_tree

        prep = self.prepare(assignment)
        name = filename if filename in {f"{n}.ipynb" for n in prep.notebooks} else f"{prep.notebooks[0]}.ipynb"
        work = Path(tempfile.mkdtemp(prefix="serve-attempt-"))
        try:
            src, dest = work / "submitted", work / "staged"
            src.mkdir()
            (src / name).write_bytes(notebook)
            staged = staging.stage_submission(student, src, dest, prep.definition)
            if not staged.gradable:
                return Verdict("failed", reason=_clip("; ".join(staged.problems) or "nothing to grade", REASON_LIMIT))
            limits = Limits(timeout=self.timeout, cell_timeout=self.options.cell_timeout,
                            memory_mb=self.memory_mb or None, no_network=True,
                            max_processes=self.max_processes or None)
            job = GradeJob(assignment=assignment, student=student, submission=pack_tree(dest),
                           config_text=prep.config_text, source=prep.source, gradebook=prep.template,
                           limits=limits, course_id=self.course_id, secret=self.secret.hex, prior={},
                           feedback=False, sandbox=self.options.sandbox, env=self.runner.job_env())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        fut = self.runner.submit(job)
        result = self.runner.outcome(fut, job)
        if staged.problems:  # what staging repaired, as `course grade`'s report says it
            result.problems[:0] = [p for p in staged.problems if p not in result.problems]
        return verdict_from_result(result, prep.definition)

    def abort(self) -> None:
        """Stop every grading process now (the attempts stay running in the store and are
        graded again on the next start)."""
        from ..grading import jobs

        jobs.stop_all()

    def close(self) -> None:
        self.runner.close()
