"""`course held`: units held for review by a from-scratch policy, and releasing their points.

When a unit's policy (``autograder.from_scratch``) finds a construct that can reach code by
a computed name, the trusted chain (``coursectl.trusted``) gives the unit no automatic
points, marks its grade as needing manual grading, and keeps in the grade cell's metadata
of the *autograded* notebook (written by the grader after the kernel has gone) the score
the checks gave and what was found where. This module lists those cells and, once the
instructor has read the student's code, sets the unit's manual score in the gradebook to
the score the checks gave (what the formgrader would do by hand).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .errors import CourseError
from .trusted import HELD_KEY


@dataclass
class HeldUnit:
    """One grade cell held for review in one student's autograded notebook."""
    student: str
    notebook: str
    grade_id: str
    score: float                  # what the checks gave
    points: float
    findings: list[str] = field(default_factory=list)
    released: bool = False        # the gradebook already holds a manual score for it


def _gradebook(course: Path):
    from .grading import gradebook
    from .grading.pipeline import course_settings

    db_url, course_id = course_settings(course)
    return gradebook.open_gradebook(db_url, course_id)


def held_units(course: Path, assignment: str, student: str | None = None) -> list[HeldUnit]:
    """Every held unit of ``assignment`` (of ``student`` only, if given), from the
    autograded notebooks the gradebook knows (never from other files in those folders)."""
    from nbgrader.api import MissingEntry

    out = []
    with _gradebook(course) as gb:
        try:
            names = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            raise CourseError(f"the gradebook has no assignment {assignment!r}; run `course grade {assignment}`") from None
        folders = sorted(p for p in (course / "autograded").glob(f"*/{assignment}") if p.is_dir())
        for folder in folders:
            who = folder.parent.name
            if student is not None and who != student:
                continue
            for name in names:
                path = folder / f"{name}.ipynb"
                if not path.is_file() or path.is_symlink():
                    continue
                for cell in nbformat.read(path, as_version=4).cells:
                    held = cell.get("metadata", {}).get(HELD_KEY)
                    gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
                    if not isinstance(held, dict) or not gid:
                        continue
                    try:
                        grade = gb.find_grade(gid, name, assignment, who)
                    except MissingEntry:
                        continue
                    points = float(grade.max_score or 0)
                    score = min(max(float(held.get("score") or 0), 0.0), points)  # clamped to the cell
                    out.append(HeldUnit(who, name, gid, score, points,
                                        [str(f) for f in held.get("findings") or []][:20],
                                        released=grade.manual_score is not None))
    return out


def release(course: Path, assignment: str, student: str, grade_id: str | None = None) -> list[HeldUnit]:
    """Give ``student`` the points the checks gave for each held unit (``grade_id`` only,
    if given): the gradebook's manual score, no longer needing manual grading."""
    units = [u for u in held_units(course, assignment, student) if grade_id in (None, u.grade_id)]
    if not units:
        which = f" {grade_id}" if grade_id else ""
        raise CourseError(f"{student} has no unit{which} held for review in {assignment}")
    with _gradebook(course) as gb:
        for unit in units:
            grade = gb.find_grade(unit.grade_id, unit.notebook, assignment, student)
            grade.manual_score = unit.score
            grade.needs_manual_grade = False
            unit.released = True
        gb.db.commit()
    return units


def describe(units: list[HeldUnit]) -> str:
    if not units:
        return "no units held for review"
    lines = []
    for u in units:
        state = "released" if u.released else "HELD"
        lines.append(f"{u.student}  {u.grade_id}  {state}: the checks gave {u.score:g} of {u.points:g}")
        lines += [f"    {f}" for f in u.findings]
    return "\n".join(lines)
