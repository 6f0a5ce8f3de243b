"""nbgrader gradebook work: assignment definitions, prior manual grades, and merging.

Each submission is graded against its own throw-away SQLite gradebook (a copy of the
assignment's definition); only the parent process writes the real gradebook, one merge at
a time. The merge sets exactly what nbgrader's autograde sets (auto scores, the
needs-manual-grade flags, "No response." comments, timestamps and late penalties) and
leaves manual grades alone, so SQLite and PostgreSQL gradebooks end up as after
``nbgrader autograde``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from .. import cells as nbcells
from ..nbg import path_with_tools
from .model import CellScore


@dataclass
class CellDef:
    """One nbgrader cell of the released assignment, as the gradebook knows it."""
    name: str
    cell_type: str
    locked: bool
    source: str
    checksum: str | None
    grade: bool = False
    solution: bool = False
    task: bool = False
    points: float = 0.0


def tools_on_path() -> None:
    """nbgrader creates a new gradebook by running the `alembic` command, found on PATH;
    make it the one beside this interpreter (`.venv/bin/course` runs unactivated)."""
    os.environ["PATH"] = path_with_tools(os.environ.get("PATH", ""))


def open_gradebook(db_url: str, course_id: str | None = None) -> Gradebook:
    tools_on_path()
    _stamp_new_sqlite(db_url)
    return Gradebook(db_url, course_id=course_id) if course_id else Gradebook(db_url)


@lru_cache(maxsize=1)
def head_version() -> str:
    """The schema version nbgrader stamps a new gradebook with: the head of its alembic
    migrations, read here from its scripts (nbgrader runs the `alembic` command for it,
    seconds per new gradebook)."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    heads = ScriptDirectory(ALEMBIC_DIR).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"nbgrader's migrations have {len(heads)} heads, expected one: {heads}")
    return heads[0]


def read_head_in_process() -> None:
    """Plain nbgrader, creating a gradebook, runs the `alembic heads` command for the version
    it stamps (a new interpreter importing alembic and sqlalchemy: about 1 s of CPU per new
    gradebook); nbgrader_config.py calls this so that it gets the same version, read here."""
    import nbgrader.api

    nbgrader.api.get_alembic_version = head_version


def _stamp_new_sqlite(db_url: str) -> None:
    """A SQLite gradebook about to be created gets the version table nbgrader would give
    it (then nbgrader creates the other tables and skips its `alembic heads` run); any
    other database is left to nbgrader."""
    prefix = "sqlite:///"
    if not db_url.startswith(prefix) or db_url == prefix + ":memory:":
        return
    path = Path(db_url[len(prefix):])
    if path.exists() or not path.parent.is_dir():
        return
    new_sqlite_gradebook_file(path, head_version())


def schema_version(gb: Gradebook) -> str:
    from sqlalchemy import text

    return gb.db.execute(text("SELECT version_num FROM alembic_version")).scalar()


def new_sqlite_gradebook(path: Path, version: str, course_id: str | None) -> Gradebook:
    """An empty SQLite gradebook stamped with ``version``. nbgrader would stamp a new
    database by running the `alembic` command (seconds); the version is known here."""
    path.unlink(missing_ok=True)
    new_sqlite_gradebook_file(path, version)
    return open_gradebook(f"sqlite:///{path}", course_id)


def new_sqlite_gradebook_file(path: Path, version: str) -> None:
    """A SQLite file holding only the alembic version table, stamped ``version``."""
    import sqlite3

    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        con.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (version,))
    con.close()


def has_assignment(gb: Gradebook, assignment: str) -> bool:
    try:
        return bool(gb.find_assignment(assignment).notebooks)
    except MissingEntry:
        return False


def copy_definition(src: Gradebook, dst: Gradebook, assignment: str) -> None:
    """Copy an assignment's notebooks and cells (not its submissions) between gradebooks."""
    a = src.find_assignment(assignment)
    dst.update_or_create_assignment(assignment, duedate=a.duedate)
    for nb in a.notebooks:
        dst.update_or_create_notebook(nb.name, assignment, kernelspec=nb.kernelspec)
        for c in nb.grade_cells:
            dst.update_or_create_grade_cell(c.name, nb.name, assignment, max_score=c.max_score, cell_type=c.cell_type)
        for c in nb.solution_cells:
            dst.update_or_create_solution_cell(c.name, nb.name, assignment)
        for c in nb.task_cells:
            dst.update_or_create_task_cell(c.name, nb.name, assignment, max_score=c.max_score, cell_type=c.cell_type)
        for c in nb.source_cells:
            dst.update_or_create_source_cell(c.name, nb.name, assignment, cell_type=c.cell_type,
                                             locked=c.locked, source=c.source, checksum=c.checksum)


def generate_definition(course: Path, assignment: str, db_url: str, course_id: str | None) -> None:
    """Put the assignment into the gradebook the way `nbgrader generate_assignment` does,
    without touching the course's release/ folder (it runs in a scratch copy)."""
    with tempfile.TemporaryDirectory(prefix="gen-") as tmp:
        scratch = Path(tmp)
        shutil.copy(course / "nbgrader_config.py", scratch / "nbgrader_config.py")
        shutil.copytree(course / "source" / assignment, scratch / "source" / assignment)
        scratch_db = f"sqlite:///{scratch / 'gradebook.db'}"
        new_sqlite_gradebook_file(scratch / "gradebook.db", head_version())  # no `alembic` run in nbgrader
        generate_here(scratch, assignment, scratch_db)
        with open_gradebook(scratch_db, course_id) as src, open_gradebook(db_url, course_id) as dst:
            copy_definition(src, dst, assignment)


def generate_here(course: Path, assignment: str, db_url: str) -> None:
    """`nbgrader generate_assignment ASSIGNMENT --force --db DB_URL` in ``course``, run in
    this process: nbgrader's own app with the course's configuration, without starting an
    interpreter and importing nbgrader again (seconds). Raises CourseError with its log."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log
    from traitlets.config.loader import PyFileConfigLoader

    from ..errors import CourseError

    tools_on_path()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    app = GenerateAssignment(coursedir=coursedir, config=config)
    app.force = True
    outcome = capture_log(app)
    if not outcome["success"]:
        raise CourseError(f"`nbgrader generate_assignment {assignment}` failed:\n{outcome['log'][-4000:]}"
                          f"{(outcome.get('error') or '')[-4000:]}")


def read_definition(gb: Gradebook, assignment: str, source_dir: Path) -> dict[str, list[CellDef]]:
    """Notebook name -> its nbgrader cells, in the order the source notebook has them."""
    out: dict[str, list[CellDef]] = {}
    for nb in gb.find_assignment(assignment).notebooks:
        grades = {c.name: c for c in nb.grade_cells}
        tasks = {c.name: c for c in nb.task_cells}
        solutions = {c.name for c in nb.solution_cells}
        cells = {}
        for c in nb.source_cells:
            graded = grades.get(c.name) or tasks.get(c.name)
            cells[c.name] = CellDef(c.name, c.cell_type, bool(c.locked), c.source, c.checksum,
                                    grade=c.name in grades, solution=c.name in solutions, task=c.name in tasks,
                                    points=float(graded.max_score) if graded else 0.0)
        order = _source_order(source_dir / f"{nb.name}.ipynb")
        ranked = sorted(cells.values(), key=lambda d: order.get(d.name, len(order)))
        out[nb.name] = ranked
    return out


def _source_order(path: Path) -> dict[str, int]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    ids = [nbcells.grade_id(c) for c in nb.get("cells", [])]
    return {gid: i for i, gid in enumerate(ids) if gid}


def add_student_names(gb: Gradebook, roster) -> int:
    """Give the gradebook's students the names (and e-mail) from a roster, so the formgrader
    lists "Last, First" instead of "None, None". Students missing from the gradebook are
    added (nbgrader lists enrolled students without submissions too); a blank roster field
    never erases a name already there. Returns how many students were written."""
    count = 0
    for entry in roster.entries:
        fields = {k: v for k, v in (("first_name", entry.first_name), ("last_name", entry.last_name),
                                    ("email", entry.email)) if v}
        if fields:
            gb.update_or_create_student(entry.student_id, **fields)
            count += 1
    return count


# ------------------------------------------------------------------ per submission


def prior_grades(gb: Gradebook, assignment: str, student: str) -> dict:
    """Manual work already in the gradebook for this submission (kept across regrading)."""
    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        return {}
    out = {}
    for nb in sub.notebooks:
        grades = {g.name: {"manual_score": g.manual_score, "extra_credit": g.extra_credit}
                  for g in nb.grades if g.manual_score is not None or g.extra_credit is not None}
        comments = {c.name: c.manual_comment for c in nb.comments if c.manual_comment}
        if grades or comments:
            out[nb.name] = {"grades": grades, "comments": comments}
    return out


def seed_prior(gb: Gradebook, assignment: str, student: str, prior: dict) -> None:
    """Give a scratch gradebook the manual grades the real one has, so that nbgrader
    computes the same flags and the feedback shows them."""
    gb.update_or_create_student(student)
    sub = gb.update_or_create_submission(assignment, student)
    for nb in sub.notebooks:
        mine = prior.get(nb.name, {})
        for g in nb.grades:
            if g.name in mine.get("grades", {}):
                g.manual_score = mine["grades"][g.name]["manual_score"]
                g.extra_credit = mine["grades"][g.name]["extra_credit"]
        for c in nb.comments:
            if c.name in mine.get("comments", {}):
                c.manual_comment = mine["comments"][c.name]
    gb.db.commit()


def collect_grades(gb: Gradebook, assignment: str, student: str) -> dict:
    """What autograde wrote for one submission, as plain JSON-able data."""
    sub = gb.find_submission(assignment, student)
    notebooks = {}
    for nb in sub.notebooks:
        notebooks[nb.name] = {
            "late_penalty": nb.late_submission_penalty,
            "grades": {g.name: {"auto_score": g.auto_score, "manual_score": g.manual_score,
                                "extra_credit": g.extra_credit, "max_score": g.max_score,
                                "needs_manual_grade": bool(g.needs_manual_grade),
                                "cell_type": g.cell.cell_type, "autograded": g.auto_score is not None}
                       for g in nb.grades},
            "comments": {c.name: c.auto_comment for c in nb.comments},
        }
    return {"timestamp": sub.timestamp.isoformat() if sub.timestamp else None, "notebooks": notebooks}


def merge_grades(gb: Gradebook, assignment: str, student: str, grades: dict) -> None:
    """Write one graded submission into the real gradebook (the single writer)."""
    gb.update_or_create_student(student)
    if grades.get("timestamp"):
        sub = gb.update_or_create_submission(assignment, student, timestamp=grades["timestamp"])
    else:
        sub = gb.update_or_create_submission(assignment, student)
    for nb in sub.notebooks:
        mine = grades["notebooks"].get(nb.name)
        if mine is None:
            continue
        nb.late_submission_penalty = mine["late_penalty"]
        nb.flagged = False
        for g in nb.grades:
            rec = mine["grades"].get(g.name)
            if rec is not None:
                g.auto_score = rec["auto_score"]
                g.needs_manual_grade = rec["needs_manual_grade"]
                if not g.max_score and rec.get("extra_credit") is not None:  # autograded extra credit
                    g.extra_credit = rec["extra_credit"]                     # (coursectl/extra_credit.py)
        for c in nb.comments:
            if c.name in mine["comments"]:
                c.auto_comment = mine["comments"][c.name]
    gb.db.commit()


def record_failure(gb: Gradebook, assignment: str, student: str) -> None:
    """A submission that could not be graded at all: zero auto scores (as nbgrader does
    for a missing notebook) and a flag, so it stands out in the formgrader."""
    gb.update_or_create_student(student)
    sub = gb.update_or_create_submission(assignment, student)
    for nb in sub.notebooks:
        nb.flagged = True
        for g in nb.grades:
            g.auto_score = 0.0
            g.needs_manual_grade = g.manual_score is not None
    gb.db.commit()


def cell_scores(grades: dict | None) -> dict[str, CellScore]:
    """grade_id -> (score, max score, autograded) over all notebooks; manual scores win."""
    out = {}
    for nb in (grades or {}).get("notebooks", {}).values():
        for name, g in nb["grades"].items():
            score = g["manual_score"] if g["manual_score"] is not None else g["auto_score"]
            if score is not None and g.get("extra_credit"):
                score += g["extra_credit"]
            out[name] = CellScore(score, float(g["max_score"]), bool(g["autograded"]) and g["cell_type"] == "code")
    return out


def submission_totals(gb: Gradebook, assignment: str, student: str) -> tuple[float, float, float]:
    """(score after late penalty, max score, late penalty) as nbgrader export computes them."""
    sub = gb.find_submission(assignment, student)
    penalty = float(sub.late_submission_penalty or 0.0)
    return float(sub.score) - penalty, float(sub.max_score), penalty
