"""`course attempts collect ASSIGNMENT --policy last|best [--deadline ISO]`: the chosen
attempt of each student becomes their nbgrader submission in
submitted/<student>/<assignment>/ (with the release's other files and a timestamp.txt),
so `course grade`, the formgrader, feedback and the LMS exports work as with
`nbgrader collect`.

* ``last``: the last attempt submitted (before the deadline, if given), whatever its verdict;
* ``best``: the graded attempt with the highest score (the later one on a tie).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import CourseError
from .grader import assignment_notebooks
from .store import Attempt, Store

POLICIES = ("last", "best")


@dataclass(frozen=True)
class Collected:
    student: str
    attempt: int
    score: float | None
    path: Path


def choose(attempts: list[Attempt], policy: str, deadline: datetime | None = None) -> dict[str, Attempt]:
    """Each student's chosen attempt under ``policy``."""
    if policy not in POLICIES:
        raise CourseError(f"--policy {policy!r}: say one of {', '.join(POLICIES)}")
    cutoff = deadline.timestamp() if deadline else None
    chosen: dict[str, Attempt] = {}
    for a in sorted(attempts, key=lambda a: (a.submitted_at, a.id)):
        if cutoff is not None and a.submitted_at > cutoff:
            continue
        if policy == "last":
            chosen[a.student] = a
        elif a.status == "graded":
            best = chosen.get(a.student)
            if best is None or (a.score or 0.0) >= (best.score or 0.0):
                chosen[a.student] = a
    return chosen


def collect(course: Path, store: Store, assignment: str, *, policy: str,
            deadline: datetime | None = None) -> list[Collected]:
    """Write the chosen attempts into submitted/ (each student's folder replaced)."""
    course = Path(course)
    names = assignment_notebooks(course, assignment)
    if not names:
        raise CourseError(f"no assignment {assignment!r} with notebooks in {course / 'source'}")
    release = course / "release" / assignment
    out = []
    for student, a in sorted(choose(store.attempts(assignment=assignment), policy, deadline).items()):
        dest = course / "submitted" / student / assignment
        if dest.is_symlink():
            raise CourseError(f"{dest} is a symbolic link: not writing through it")
        if dest.exists():
            shutil.rmtree(dest)
        if release.is_dir():  # the released files beside the notebook, as nbgrader collect leaves them
            shutil.copytree(release, dest, symlinks=True, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        dest.mkdir(parents=True, exist_ok=True)
        name = a.filename if a.filename in {f"{n}.ipynb" for n in names} else f"{names[0]}.ipynb"
        (dest / name).write_bytes(store.read_blob(a.sha256))
        stamp = datetime.fromtimestamp(a.submitted_at, timezone.utc)
        (dest / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        out.append(Collected(student, a.id, a.score, dest / name))
    return out
