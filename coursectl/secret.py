"""The course's grading secret: one per course; every check's inputs are drawn from it.

A check's inputs come from HMAC-SHA256(secret, "<assignment>/<grade id>/<check>")
(``autograder.harness.Draws``), so a submission gets the same inputs, hence the same
per-cell scores, whenever and however it is graded: plain ``nbgrader autograde``, ``course
grade`` on a local pool or a Dask cluster, a regrade after a deadline extension. Students
cannot predict the inputs because they never see the secret.

The secret is made on first grading (by either path) as ``<course>/.course_secret``: 64 hex
digits, mode 0600, beside the gradebook. It stays out of reach:

* git ignores it (.gitignore); ``course release`` and student bundles are built from
  source/<a>, release/<a> and the student packages, never the course root;
* kernels never read it: the sandbox binds neither the course folder nor dot-files of the
  assignment folder (grading/sandbox.py), and ``course grade`` hands it to the grading
  process inside the job, in memory (GradeJob.secret -> the InjectProbes config), never in a
  file of the job's scratch course.

``course grade --reseed`` draws a new one (after a leak, say) and keeps the previous one as
``.course_secret.old``; every later grading then draws other inputs.
"""
from __future__ import annotations

import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import CourseError

SECRET_FILE = ".course_secret"
OLD_SUFFIX = ".old"
SECRET_BYTES = 32


@dataclass(frozen=True)
class CourseSecret:
    """A course's secret and where it lives."""
    value: bytes
    path: Path
    created: bool = False             # made by this call (first grading or --reseed)
    previous: Path | None = None      # --reseed: where the replaced secret was kept

    @property
    def hex(self) -> str:
        return self.value.hex()

    @property
    def fingerprint(self) -> str:
        """A short public name of the secret (for reports): it tells two secrets apart and
        gives nothing of the value away."""
        import hashlib

        return hashlib.sha256(b"seqcourse secret fingerprint:" + self.value).hexdigest()[:12]


def secret_path(course: str | Path) -> Path:
    return Path(course) / SECRET_FILE


def parse(text: str, where: str = "the course secret") -> bytes:
    """The secret's bytes from its hex text; a clear error for anything else."""
    text = text.strip()
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != SECRET_BYTES:
        raise CourseError(f"{where} is not {2 * SECRET_BYTES} hex digits; it was changed by hand? Restore it "
                          f"(grades depend on it) or draw a new one with `course grade --reseed`")
    return value


def load(course: str | Path) -> CourseSecret | None:
    """The course's secret, or None if it has none yet. A secret others could read is
    made private (mode 0600) first."""
    path = secret_path(course)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(mode):
        raise CourseError(f"{path} is not a regular file")
    if mode & 0o077:
        os.chmod(path, 0o600)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CourseError(f"cannot read the course secret {path}: {exc}") from None
    return CourseSecret(parse(text, str(path)), path)


def load_or_create(course: str | Path) -> CourseSecret:
    """The course's secret, made now (mode 0600) if it has none."""
    found = load(course)
    if found is not None:
        return found
    path = secret_path(course)
    value = secrets.token_bytes(SECRET_BYTES)
    if _publish(path, value):
        return CourseSecret(value, path, created=True)
    return load(course)  # another grading process made it first: use theirs


def reseed(course: str | Path) -> CourseSecret:
    """Draw a new secret; the previous one (if any) is kept as ``.course_secret.old``."""
    path = secret_path(course)
    old = path.with_name(path.name + OLD_SUFFIX)
    previous = None
    if load(course) is not None:
        os.replace(path, old)
        os.chmod(old, 0o600)
        previous = old
    value = secrets.token_bytes(SECRET_BYTES)
    if not _publish(path, value):
        raise CourseError(f"{path} appeared while drawing a new secret (is another grading running?)")
    return CourseSecret(value, path, created=True, previous=previous)


def _publish(path: Path, value: bytes) -> bool:
    """Write the secret to ``path`` only if nothing is there, never half-written: written
    to a private temporary file, then linked into place (atomic, fails if it exists)."""
    fd, tmp = tempfile.mkstemp(prefix=".course_secret-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (value.hex() + "\n").encode("ascii"))
        os.fsync(fd)
        os.close(fd)
        fd = -1
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(tmp)
