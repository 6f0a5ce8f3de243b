"""The service's settings: command-line flags over ``service.toml`` in the course folder.

``service.toml`` (all optional)::

    [service]
    queue_capacity = 500          # attempts waiting, all students together (then 429)
    queued_per_student = 3        # attempts one student may have waiting (then 429)
    max_upload_kb = 5120          # a notebook larger than this is refused (413)
    db_url = "postgresql://..."   # several instances sharing a course (default: SQLite)

    [limits]                      # per student and assignment; 0 switches a limit off
    attempts_per_hour = 20
    min_interval_s = 30

    [assignments.a1_rnn_cells]
    deadline = "2026-12-20T23:59:00+00:00"
    before = "messages"           # points | checks | messages (what a student sees)
    after = "messages"
    attempts_per_hour = 10        # this assignment's own limits
    min_interval_s = 60
"""
from __future__ import annotations

import socket
import tomllib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from ..errors import CourseError
from .limits import RateLimits
from .visibility import LEVELS, Visibility

CONFIG_FILE = "service.toml"
STATE_DIR = "attempts"   # under the course folder: attempt files, the SQLite database, the service's key


@dataclass(frozen=True)
class GraderOptions:
    """How attempts are graded: the same knobs as `course grade`."""
    workers: int | None = None          # local pool (default: one per core)
    cluster: str | None = None          # "local:N" or "tcp://host:port": a Dask cluster
    timeout: float | None = None        # wall clock per attempt, s (default: course grade's)
    cell_timeout: int | None = None
    memory_mb: int | None = None
    max_processes: int | None = None
    sandbox: bool = True


@dataclass(frozen=True)
class AssignmentRules:
    visibility: Visibility = Visibility()
    limits: RateLimits = RateLimits()


@dataclass(frozen=True)
class ServiceSettings:
    """Everything ``create_app`` needs. Build with ``load_settings``."""
    course: Path
    db_url: str = ""                    # attempts database (default: SQLite under attempts/)
    instance: str = ""                  # this instance's name: it resumes the attempts it accepted
    queue_capacity: int = 500
    queued_per_student: int = 3
    max_upload_bytes: int = 5 * 1024 * 1024
    limits: RateLimits = RateLimits()
    assignments: dict[str, AssignmentRules] = field(default_factory=dict)
    grading: GraderOptions = GraderOptions()
    grade_seconds_guess: float = 15.0   # for Retry-After before any attempt was graded

    @property
    def state_dir(self) -> Path:
        return self.course / STATE_DIR

    def rules(self, assignment: str) -> AssignmentRules:
        return self.assignments.get(assignment) or AssignmentRules(limits=self.limits)


def _deadline(value, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        stamp = value
    else:
        try:
            stamp = datetime.fromisoformat(str(value))
        except ValueError:
            raise CourseError(f"{where}: deadline {value!r} is not an ISO date and time") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)  # naive: UTC


def _level(value, where: str) -> str:
    if value not in LEVELS:
        raise CourseError(f"{where}: {value!r} is not one of {', '.join(LEVELS)}")
    return value


def _limits(table: dict, base: RateLimits, where: str) -> RateLimits:
    try:
        return RateLimits(attempts_per_hour=int(table.get("attempts_per_hour", base.attempts_per_hour)),
                          min_interval_s=float(table.get("min_interval_s", base.min_interval_s)))
    except (TypeError, ValueError) as exc:
        raise CourseError(f"{where}: {exc}") from None


def load_settings(course: Path, *, workers: int | None = None, cluster: str | None = None,
                  db_url: str | None = None, instance: str | None = None, port: int = 0,
                  sandbox: bool = True, timeout: float | None = None, **overrides) -> ServiceSettings:
    """Settings for the course folder ``course``: service.toml, then these arguments."""
    course = Path(course).resolve()
    path = course / CONFIG_FILE
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise CourseError(f"{path}: {exc}") from None
    svc = data.get("service", {})
    limits = _limits(data.get("limits", {}), RateLimits(), f"{path} [limits]")
    rules = {}
    for name, table in (data.get("assignments") or {}).items():
        where = f"{path} [assignments.{name}]"
        vis = Visibility(before=_level(table.get("before", "messages"), where),
                         after=_level(table.get("after", "messages"), where),
                         deadline=_deadline(table.get("deadline"), where))
        rules[name] = AssignmentRules(visibility=vis, limits=_limits(table, limits, where))
    settings = ServiceSettings(
        course=course, db_url=db_url or svc.get("db_url", ""),
        instance=instance or svc.get("instance") or f"{socket.gethostname()}:{port}",
        queue_capacity=int(svc.get("queue_capacity", 500)),
        queued_per_student=int(svc.get("queued_per_student", 3)),
        max_upload_bytes=int(svc.get("max_upload_kb", 5120)) * 1024,
        limits=limits, assignments=rules,
        grading=GraderOptions(workers=workers, cluster=cluster, sandbox=sandbox, timeout=timeout))
    return replace(settings, **overrides) if overrides else settings
