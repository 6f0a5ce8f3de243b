"""Attempts, kept so that none is lost: the notebook as a content-addressed file under
the course folder (attempts/blobs/<sha256[:2]>/<sha256>.ipynb, written and synced before
anything refers to it) and a database row, committed before the service answers 202.

SQLite (attempts/attempts.db) by default; a PostgreSQL URL when several service
instances share a course. Each row names the instance that accepted it (``owner``): on
start an instance queues again the rows it left queued or running, and only this
process moves a row from queued to running (``claim``), so no attempt is graded twice.
SQLAlchemy core, so both databases take the same statements.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

META = sa.MetaData()
ATTEMPTS = sa.Table(
    "service_attempts", META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("assignment", sa.String(200), nullable=False),
    sa.Column("student", sa.String(200), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("filename", sa.String(300), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("submitted_at", sa.Float, nullable=False),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),       # queued | running | graded | failed
    sa.Column("runs", sa.Integer, nullable=False, default=0),  # times grading started (a restart adds one)
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("score", sa.Float),
    sa.Column("max_score", sa.Float),
    sa.Column("verdict", sa.Text),                            # JSON: the units, complete
    sa.Column("reason", sa.Text),
    sa.Index("ix_service_attempts_who", "student", "assignment"),
    sa.Index("ix_service_attempts_status", "status", "owner"),
)
TOKENS = sa.Table(
    "service_tokens", META,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 of the token; the token is never kept
    sa.Column("student", sa.String(200)),                      # None for an instructor token
    sa.Column("role", sa.String(20), nullable=False),          # student | instructor
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
UNFINISHED = ("queued", "running")


@dataclass
class Attempt:
    id: int
    assignment: str
    student: str
    sha256: str
    filename: str
    size: int
    submitted_at: float
    owner: str
    status: str
    runs: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    score: float | None = None
    max_score: float | None = None
    units: list[dict] = field(default_factory=list)
    reason: str | None = None

    @classmethod
    def from_row(cls, row) -> "Attempt":
        m = dict(row._mapping)
        verdict = m.pop("verdict")
        return cls(**m, units=json.loads(verdict) if verdict else [])


def _sqlite_pragmas(dbapi_con, _record) -> None:
    dbapi_con.execute("PRAGMA journal_mode=WAL")   # readers do not wait for the writer
    dbapi_con.execute("PRAGMA synchronous=FULL")   # a committed row survives a crash
    dbapi_con.execute("PRAGMA busy_timeout=30000")


class Store:
    def __init__(self, state_dir: Path, db_url: str = ""):
        self.state_dir = Path(state_dir)
        self.blobs = self.state_dir / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)  # students' notebooks and the token hashes: the instructor's only
        self.url = db_url or f"sqlite:///{self.state_dir / 'attempts.db'}"
        if self.url.startswith("sqlite"):
            self.engine = sa.create_engine(self.url, connect_args={"check_same_thread": False, "timeout": 30})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(self.url, pool_pre_ping=True)
        META.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ files

    def blob_path(self, sha: str) -> Path:
        return self.blobs / sha[:2] / f"{sha}.ipynb"

    def put_blob(self, data: bytes) -> str:
        """Write ``data`` under its SHA-256 (once), synced to disk; the hash."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha)
        if path.exists() and path.stat().st_size == len(data):
            return sha
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)
        return sha

    def read_blob(self, sha: str) -> bytes:
        return self.blob_path(sha).read_bytes()

    # ------------------------------------------------------------ attempts

    def add_attempt(self, *, assignment: str, student: str, data: bytes, filename: str, owner: str,
                    now: float | None = None) -> Attempt:
        """Store the file, then the row (committed): the attempt exists from here on."""
        sha = self.put_blob(data)
        row = dict(assignment=assignment, student=student, sha256=sha, filename=filename, size=len(data),
                   submitted_at=time.time() if now is None else now, owner=owner, status="queued", runs=0)
        with self.engine.begin() as con:
            new_id = con.execute(ATTEMPTS.insert().values(**row)).inserted_primary_key[0]
        return self.get(int(new_id))

    def get(self, attempt_id: int) -> Attempt | None:
        with self.engine.connect() as con:
            row = con.execute(ATTEMPTS.select().where(ATTEMPTS.c.id == attempt_id)).first()
        return Attempt.from_row(row) if row else None

    def submission_times(self, student: str, assignment: str, since: float) -> list[float]:
        with self.engine.connect() as con:
            rows = con.execute(sa.select(ATTEMPTS.c.submitted_at).where(
                ATTEMPTS.c.student == student, ATTEMPTS.c.assignment == assignment,
                ATTEMPTS.c.submitted_at > since)).all()
        return [r[0] for r in rows]

    def claim(self, attempt_id: int, now: float | None = None) -> bool:
        """queued -> running; False if it is not queued (another instance took it)."""
        with self.engine.begin() as con:
            res = con.execute(ATTEMPTS.update().where(ATTEMPTS.c.id == attempt_id, ATTEMPTS.c.status == "queued")
                              .values(status="running", runs=ATTEMPTS.c.runs + 1,
                                      started_at=time.time() if now is None else now))
        return res.rowcount == 1

    def finish(self, attempt_id: int, *, status: str, score: float | None, max_score: float | None,
               units: list[dict], reason: str | None) -> bool:
        """running -> graded or failed, once: False if it was not running."""
        with self.engine.begin() as con:
            res = con.execute(ATTEMPTS.update().where(ATTEMPTS.c.id == attempt_id, ATTEMPTS.c.status == "running")
                              .values(status=status, score=score, max_score=max_score, reason=reason,
                                      verdict=json.dumps(units), finished_at=time.time()))
        return res.rowcount == 1

    def resume(self, owner: str) -> list[Attempt]:
        """This instance's attempts left queued or running (a crash, a restart), queued
        again, oldest first."""
        with self.engine.begin() as con:
            con.execute(ATTEMPTS.update().where(ATTEMPTS.c.owner == owner, ATTEMPTS.c.status == "running")
                        .values(status="queued"))
            rows = con.execute(ATTEMPTS.select().where(ATTEMPTS.c.owner == owner, ATTEMPTS.c.status == "queued")
                               .order_by(ATTEMPTS.c.id)).all()
        return [Attempt.from_row(r) for r in rows]

    def attempts(self, *, student: str | None = None, assignment: str | None = None,
                 status: str | None = None) -> list[Attempt]:
        """Attempts, oldest first, optionally of one student, assignment, status."""
        q = ATTEMPTS.select().order_by(ATTEMPTS.c.id)
        if student is not None:
            q = q.where(ATTEMPTS.c.student == student)
        if assignment is not None:
            q = q.where(ATTEMPTS.c.assignment == assignment)
        if status is not None:
            q = q.where(ATTEMPTS.c.status == status)
        with self.engine.connect() as con:
            return [Attempt.from_row(r) for r in con.execute(q).all()]

    def mean_grading_seconds(self, last: int = 20) -> float | None:
        with self.engine.connect() as con:
            rows = con.execute(sa.select(ATTEMPTS.c.started_at, ATTEMPTS.c.finished_at)
                               .where(ATTEMPTS.c.status == "graded", ATTEMPTS.c.started_at.is_not(None))
                               .order_by(ATTEMPTS.c.id.desc()).limit(last)).all()
        spans = [f - s for s, f in rows if f and s and f >= s]
        return sum(spans) / len(spans) if spans else None

    # ------------------------------------------------------------ tokens

    def add_token(self, token_hash: str, *, student: str | None, role: str, name: str) -> None:
        with self.engine.begin() as con:
            con.execute(TOKENS.insert().values(token_hash=token_hash, student=student, role=role, name=name,
                                               created_at=time.time()))

    def revoke(self, *, student: str | None = None, role: str | None = None) -> int:
        q = TOKENS.delete()
        if student is not None:
            q = q.where(TOKENS.c.student == student)
        if role is not None:
            q = q.where(TOKENS.c.role == role)
        with self.engine.begin() as con:
            return con.execute(q).rowcount

    def find_token(self, token_hash: str) -> tuple[str | None, str, str] | None:
        """(student, role, name) for a token's hash."""
        with self.engine.connect() as con:
            row = con.execute(sa.select(TOKENS.c.student, TOKENS.c.role, TOKENS.c.name)
                              .where(TOKENS.c.token_hash == token_hash)).first()
        return tuple(row) if row else None

    def students(self) -> list[str]:
        """Students holding a token: the class, for "who has not submitted"."""
        with self.engine.connect() as con:
            rows = con.execute(sa.select(TOKENS.c.student).where(TOKENS.c.role == "student").distinct()).all()
        return sorted(r[0] for r in rows)
