"""Per-student bearer tokens for the standalone service (`course tokens`).

A token is 256 random bits; only its SHA-256 is stored (a token that random needs no slow
hash), so the database never holds one and nothing logs one. `course tokens create`
writes ``student_id,token`` for the roster's students (mode 0600), replacing their
earlier tokens; `course tokens instructor` makes the instructor's.
"""
from __future__ import annotations

import csv
import hashlib
import os
import secrets
from pathlib import Path

from ..errors import CourseError

PREFIX = "sc_"  # recognisable in a leaked file or a secret scanner


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def roster_students(roster: Path) -> list[str]:
    """Student ids from a roster CSV (the columns `course grade --roster` reads), checked
    as submission folder names are."""
    from ..grading.intake import read_roster
    from ..grading.safefs import student_id_problem

    ids = []
    for entry in read_roster(Path(roster)).entries:
        why = student_id_problem(entry.student_id)
        if why:
            raise CourseError(f"roster {roster}: student {entry.student_id!r}: {why}")
        ids.append(entry.student_id)
    if not ids:
        raise CourseError(f"roster {roster}: no students")
    return list(dict.fromkeys(ids))


def _write_private(path: Path, rows: list[tuple[str, str]], header: tuple[str, str]) -> None:
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def create_student_tokens(store, roster: Path, out: Path) -> int:
    """A new token for every student of ``roster`` (their old ones stop working), written
    to ``out`` as student_id,token; the count."""
    students = roster_students(roster)
    rows = []
    for student in students:
        token = new_token()
        store.revoke(student=student)
        store.add_token(token_hash(token), student=student, role="student", name=student)
        rows.append((student, token))
    _write_private(out, rows, ("student_id", "token"))
    return len(rows)


def create_instructor_token(store, out: Path, name: str = "instructor") -> None:
    """A new instructor token (sees every attempt and the queue), written to ``out``."""
    token = new_token()
    store.add_token(token_hash(token), student=None, role="instructor", name=name)
    _write_private(out, [(name, token)], ("instructor", "token"))
