"""Where submissions come from: nbgrader's submitted/ folder, or an LMS bulk download.

Canvas names each file of a bulk download ``<name>_<userid>_<submissionid>_<file>``, with
``_LATE`` after the name when it came in after the deadline (and ``-1``, ``-2`` added to
the file name for resubmissions). A roster CSV maps Canvas user ids to course student
ids; Canvas' own gradebook export (columns ``Student, ID, SIS User ID, SIS Login ID``)
works as a roster, and its ``Student`` column ("Last, First") or first/last name columns
give the names the formgrader shows. Files are unpacked into submitted/<student>/<assignment>/ as
``nbgrader zip_collect`` would; anything that cannot be placed is reported, not guessed.

No file name stops intake: only the last component of an entry's name is used (after
backslashes are read as separators and Unicode is NFC-normalised), names that are not
file names (``.``, ``..``, empty, control characters, more than 255 bytes), symbolic
links and other non-regular entries, encrypted or damaged entries, and entries past the
size and count bounds (``ZipLimits``) are refused one by one with a reason, and names
that collide once case and normalisation are ignored keep one file. An entry whose name
is flagged UTF-8 but is not is read as cp437, as the ZIP standard's default. Nothing is
written through a link: a student folder that is one is refused for that student.
"""
from __future__ import annotations

import csv
import io
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import safefs

CANVAS_NAME = re.compile(r"^(?P<name>[^_/]+?)(?P<late>_LATE)?_(?P<uid>\d+)_(?P<sub>\d+)_(?P<file>.+)$")

# Header names accepted in a roster (compared lower-case, spaces and dashes as "_").
LMS_ID_COLUMNS = ("canvas_id", "lms_id", "user_id", "id", "canvas_user_id")
STUDENT_COLUMNS = ("student_id", "nbgrader_id", "sis_login_id", "sis_user_id", "login_id", "login", "username")
NAME_COLUMNS = ("student", "name", "student_name", "full_name", "sortable_name")
FIRST_NAME_COLUMNS = ("first_name", "given_name", "first", "firstname")
LAST_NAME_COLUMNS = ("last_name", "family_name", "surname", "last", "lastname")
EMAIL_COLUMNS = ("email", "e_mail", "email_address")


@dataclass
class RosterEntry:
    student_id: str
    lms_id: str = ""
    name: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""

    def __post_init__(self):
        if self.name and not (self.first_name or self.last_name):
            self.first_name, self.last_name = split_name(self.name)
        elif not self.name:
            self.name = " ".join(n for n in (self.first_name, self.last_name) if n)


@dataclass
class Roster:
    entries: list[RosterEntry] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # header as read (an LMS export keeps its grade columns)

    def by_lms_id(self) -> dict[str, RosterEntry]:
        return {e.lms_id: e for e in self.entries if e.lms_id}

    def by_student(self) -> dict[str, RosterEntry]:
        return {e.student_id: e for e in self.entries}


@dataclass
class Intake:
    """What intake did: students found, files placed, and files it could not place."""
    students: dict[str, Path] = field(default_factory=dict)       # student -> submitted/<s>/<a>
    placed: list[tuple[str, str, str]] = field(default_factory=list)  # (file, student, new|unchanged|replaced)
    unplaced: list[tuple[str, str]] = field(default_factory=list)     # (file, reason)
    late: set[str] = field(default_factory=set)                       # students Canvas marked late
    problems: dict[str, list[str]] = field(default_factory=dict)      # student -> what intake refused of theirs
    refused: dict[str, str] = field(default_factory=dict)             # student -> why they cannot be graded

    def refuse_file(self, name: str, reason: str, student: str | None = None) -> None:
        """An entry not placed; its student (when known) is told too."""
        self.unplaced.append((safefs.shown(name), reason))
        if student is not None:
            self.problems.setdefault(student, []).append(f"{safefs.shown(name)}: {reason}")


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on what one LMS download may unpack (a zip bomb stops here)."""
    max_entries: int = 20_000                  # entries looked at in the archive
    max_entry_bytes: int = 200 * 1024 * 1024   # one file (staging's own limit)
    max_student_bytes: int = 512 * 1024 * 1024  # all files of one student
    max_total_bytes: int = 4 * 1024 ** 3       # everything unpacked


def split_name(name: str) -> tuple[str, str]:
    """(first, last) from one name column: Canvas writes "Last, First"; otherwise the last
    word is taken as the family name. A single word is the family name."""
    name = " ".join(name.split())
    if "," in name:
        last, first = (part.strip() for part in name.split(",", 1))
        return first, last
    first, _, last = name.rpartition(" ")
    return first, last


def _key(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def read_roster(path: Path) -> Roster:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return Roster()
    header = rows[0]
    keys = [_key(h) for h in header]

    def col(names):
        return next((keys.index(n) for n in names if n in keys), None)

    lms, sid, name = col(LMS_ID_COLUMNS), col(STUDENT_COLUMNS), col(NAME_COLUMNS)
    sis_user, sis_login, section = col(("sis_user_id",)), col(("sis_login_id",)), col(("section",))
    first, last, email = col(FIRST_NAME_COLUMNS), col(LAST_NAME_COLUMNS), col(EMAIL_COLUMNS)
    if sid is None and lms is None:
        from ..errors import CourseError

        raise CourseError(f"roster {path}: no student id column (one of {', '.join(STUDENT_COLUMNS)})")
    roster = Roster(columns=header)
    for row in rows[1:]:
        get = lambda i: row[i].strip() if i is not None and i < len(row) else ""  # noqa: E731
        lms_id = get(lms)
        if lms is not None and not lms_id.isdigit():
            continue  # Canvas exports carry a "Points Possible" row and test students
        student = get(sid) or lms_id
        if student:
            roster.entries.append(RosterEntry(student, lms_id, get(name), get(sis_user), get(sis_login), get(section),
                                              get(first), get(last), get(email)))
    return roster


STUDENT_ID = safefs.STUDENT_ID
_student_name_problem = safefs.student_id_problem


def find_submissions(course: Path, assignment: str, intake: Intake | None = None) -> Intake:
    """Students with a submitted/<student>/<assignment>/ folder; stray files reported.
    Folders that are links (or hold unusable names) are refused, never followed."""
    intake = intake or Intake()
    root = course / "submitted"
    if not root.is_dir() or root.is_symlink():
        if root.is_symlink():
            intake.unplaced.append(("submitted", "a symbolic link: not followed"))
        return intake
    for sdir in sorted(root.iterdir()):
        if sdir.name.startswith("."):
            continue
        rel = f"submitted/{safefs.shown(sdir.name)}"
        why = _student_name_problem(sdir.name)
        if why:
            intake.unplaced.append((rel, f"student folder name: {why}"))
            continue
        st = os.lstat(sdir)
        if not stat.S_ISDIR(st.st_mode):
            if stat.S_ISREG(st.st_mode):
                intake.unplaced.append((rel, "file directly in submitted/, not in a student folder"))
            else:
                intake.unplaced.append((rel, f"{safefs.kind_problem(st)}, not a student folder: not followed"))
            continue
        adir = sdir / assignment
        if os.path.lexists(adir):
            ast = os.lstat(adir)
            if stat.S_ISDIR(ast.st_mode):
                intake.students[sdir.name] = adir
            else:
                note = f" (to {safefs.shown(os.readlink(adir))!r})" if stat.S_ISLNK(ast.st_mode) else ""
                intake.refused[sdir.name] = (f"submitted/{sdir.name}/{assignment} is "
                                             f"{safefs.kind_problem(ast) or 'a file'}{note}, "
                                             "not a folder: not followed (0 points)")
        for item in sdir.iterdir():
            if item.suffix.lower() in (".ipynb", ".json", ".zip", ".py") and not item.is_symlink() and item.is_file():
                intake.unplaced.append((f"{rel}/{safefs.shown(item.name)}",
                                        f"not inside submitted/{safefs.shown(sdir.name)}/<assignment>/"))
    return intake


class _FlagFixedFile(io.RawIOBase):
    """The archive's bytes with the UTF-8 flag cleared on central-directory entries whose
    names are not UTF-8, so zipfile reads them (as cp437) instead of refusing the whole
    archive. ``fixed``: the raw names that were patched."""

    def __init__(self, path: Path):
        super().__init__()
        self._fh = open(path, "rb")
        self._patch: dict[int, int] = {}
        self.fixed: set[bytes] = set()
        endrec = zipfile._EndRecData(self._fh)  # noqa: SLF001 (the reader zipfile itself uses)
        if not endrec:
            return
        size_cd, offset_cd = endrec[zipfile._ECD_SIZE], endrec[zipfile._ECD_OFFSET]
        start = endrec[zipfile._ECD_LOCATION] - size_cd
        if endrec[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
            start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
        self._fh.seek(start)
        data = self._fh.read(size_cd)
        pos = 0
        while pos + zipfile.sizeCentralDir <= len(data):
            rec = struct.unpack(zipfile.structCentralDir, data[pos:pos + zipfile.sizeCentralDir])
            if rec[zipfile._CD_SIGNATURE] != zipfile.stringCentralDir:
                break
            n = rec[zipfile._CD_FILENAME_LENGTH]
            name = data[pos + zipfile.sizeCentralDir:pos + zipfile.sizeCentralDir + n]
            if rec[zipfile._CD_FLAG_BITS] & 0x800:
                try:
                    name.decode("utf-8")
                except UnicodeDecodeError:
                    self._patch[start + pos + 9] = data[pos + 9] & ~0x08  # bit 11 of the flags
                    local = rec[zipfile._CD_LOCAL_HEADER_OFFSET] + start - offset_cd
                    if local >= 0:  # and in the entry's own header, which zipfile checks too
                        self._fh.seek(local + 7)
                        byte = self._fh.read(1)
                        if byte:
                            self._patch[local + 7] = byte[0] & ~0x08
                    self.fixed.add(name)
            pos += (zipfile.sizeCentralDir + n + rec[zipfile._CD_EXTRA_FIELD_LENGTH]
                    + rec[zipfile._CD_COMMENT_LENGTH])
        self._fh.seek(0)

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return self._fh.seek(offset, whence)

    def tell(self):
        return self._fh.tell()

    def read(self, n=-1):
        at = self._fh.tell()
        data = self._fh.read(n)
        hits = [k for k in self._patch if at <= k < at + len(data)]
        if hits:
            buf = bytearray(data)
            for k in hits:
                buf[k - at] = self._patch[k]
            data = bytes(buf)
        return data

    def close(self):
        self._fh.close()
        super().close()


def _open_zip(zip_path: Path) -> tuple[zipfile.ZipFile, set[bytes]]:
    """The archive, and the raw names that had a false UTF-8 flag."""
    from ..errors import CourseError

    try:
        try:
            return zipfile.ZipFile(zip_path), set()
        except UnicodeDecodeError:
            fixed = _FlagFixedFile(zip_path)
            return zipfile.ZipFile(fixed), fixed.fixed
    except (zipfile.BadZipFile, OSError, ValueError, struct.error, EOFError) as exc:
        raise CourseError(f"{zip_path}: cannot read the archive ({exc})") from None


def _entry_kind_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry is not a plain file, from its Unix mode bits and flags."""
    fmt = stat.S_IFMT(info.external_attr >> 16)
    if fmt == stat.S_IFLNK:
        return "a symbolic link entry"
    if fmt and fmt not in (stat.S_IFREG, stat.S_IFDIR):
        return "not a regular file (device, FIFO or socket entry)"
    if info.flag_bits & 0x1:
        return "encrypted"
    return None


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """An entry's bytes, never more than ``limit`` (whatever its header claims)."""
    out = bytearray()
    with zf.open(info) as fh:
        while chunk := fh.read(1 << 20):
            out += chunk
            if len(out) > limit:
                raise ValueError(f"more than {limit} bytes once unpacked")
    return bytes(out)


def _folder_problem(path: Path) -> str | None:
    """Why intake may not write inside ``path`` (a link, a file), None when it is a
    real folder or does not exist yet."""
    if not os.path.lexists(path):
        return None
    st = os.lstat(path)
    return None if stat.S_ISDIR(st.st_mode) else f"{path.name} is {safefs.kind_problem(st) or 'a file'}"


def _place(dest: Path, data: bytes) -> str:
    """Write ``data`` at ``dest`` (never through a link); new, unchanged or replaced."""
    state = "new"
    if os.path.lexists(dest):
        st = os.lstat(dest)
        if stat.S_ISDIR(st.st_mode):
            raise ValueError("a folder of that name is already there")
        state = "replaced"
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_size == len(data):
            try:
                if safefs.read_under(dest.parent, dest.name) == data:
                    return "unchanged"
            except safefs.Refused:
                pass
    tmp = dest.with_name(f".intake-{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)  # replaces a link there, never writes through it
    return state


def from_canvas_zip(zip_path: Path, course: Path, assignment: str, roster: Roster | None,
                    *, limits: ZipLimits = ZipLimits()) -> Intake:
    """Unpack a Canvas bulk download into submitted/. Only file names are used from the
    archive (no folders), so an entry cannot write outside its student's folder; each
    entry that cannot be placed is refused with a reason (see the module docstring)."""
    intake = Intake()
    ids = roster.by_lms_id() if roster else {}
    # (student, folded file name) -> (submission id, order, info, file name, late)
    newest: dict[tuple[str, str], tuple[int, int, zipfile.ZipInfo, str, bool]] = {}
    zf, fixed = _open_zip(zip_path)
    with zf:
        for order, info in enumerate(zf.infolist()):
            raw = info.filename
            if order >= limits.max_entries:
                intake.refuse_file(f"({len(zf.infolist()) - order} entries)",
                                   f"the archive has more than {limits.max_entries} entries; the rest are not read")
                break
            if raw.startswith("__MACOSX/") or raw.endswith("/"):
                continue
            base = unicodedata.normalize("NFC", PurePosixPath(raw.replace("\\", "/")).name)
            if base in (".DS_Store", "Thumbs.db"):
                continue
            m = CANVAS_NAME.match(base)
            if not m or base.startswith("."):
                intake.refuse_file(raw, "name is not <name>_<userid>_<submissionid>_<file>")
                continue
            uid = m["uid"]
            if roster is not None:
                if uid not in ids:
                    intake.refuse_file(raw, f"Canvas user id {uid} is not in the roster")
                    continue
                student = ids[uid].student_id
            else:
                student = uid  # without a roster, the Canvas id is the student id
            if not STUDENT_ID.fullmatch(student):
                intake.refuse_file(raw, f"student id {safefs.shown(student)!r} is not usable as a folder name")
                continue
            fname = m["file"]
            why = safefs.name_problem(fname) or _entry_kind_problem(info)
            if not why and fname.startswith("."):
                why = "hidden file name (starts with a dot)"
            if not why and info.file_size > limits.max_entry_bytes:
                why = f"{info.file_size} bytes once unpacked (at most {limits.max_entry_bytes})"
            if why:
                intake.refuse_file(raw, why, student)
                continue
            key = (student, fname.casefold())
            sub = int(m["sub"])
            if key in newest:
                old_sub, _, old_info, old_name, _ = newest[key]
                if sub < old_sub:
                    intake.refuse_file(raw, "older copy of the same file (kept the newest submission)")
                    continue
                if sub > old_sub:
                    reason = "older copy of the same file (kept the newest submission)"
                elif old_name == fname:
                    reason = "duplicate entry of the same name (kept the last one)"
                else:
                    reason = (f"same name as {safefs.shown(fname)!r} once case and Unicode normalisation "
                              "are ignored (kept the last one)")
                intake.refuse_file(old_info.filename, reason, None if sub > old_sub else student)
            newest[key] = (sub, order, info, fname, bool(m["late"]))

        per_student: dict[str, int] = {}
        total = 0
        for (student, _), (_, _, info, fname, late) in sorted(newest.items(), key=lambda kv: kv[1][1]):
            raw = info.filename
            folder = course / "submitted" / student / assignment
            why = (_folder_problem(course / "submitted") or _folder_problem(folder.parent)
                   or _folder_problem(folder))
            if why:
                intake.refuse_file(raw, f"{why}: not written through", student)
                continue
            if per_student.get(student, 0) + info.file_size > limits.max_student_bytes:
                intake.refuse_file(raw, f"this student's files exceed {limits.max_student_bytes} bytes", student)
                continue
            if total + info.file_size > limits.max_total_bytes:
                intake.refuse_file(raw, f"the archive unpacks to more than {limits.max_total_bytes} bytes", student)
                continue
            try:
                data = _read_entry(zf, info, min(limits.max_entry_bytes, info.file_size))
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError, NotImplementedError,
                    zlib.error) as exc:
                intake.refuse_file(raw, f"cannot be unpacked ({type(exc).__name__}: {exc})"[:300], student)
                continue
            per_student[student] = per_student.get(student, 0) + len(data)
            total += len(data)
            folder.mkdir(parents=True, exist_ok=True)
            try:
                state = _place(folder / fname, data)
            except (ValueError, OSError) as exc:
                intake.refuse_file(raw, f"cannot be placed ({exc})", student)
                continue
            if fixed and not info.flag_bits & 0x800 and info.orig_filename.encode("cp437", "replace") in fixed:
                intake.problems.setdefault(student, []).append(
                    f"{safefs.shown(raw)}: name marked UTF-8 but is not "
                    f"(read as cp437, placed as {safefs.shown(fname)!r})")
            intake.placed.append((raw, student, state))
            if late:
                intake.late.add(student)
    return intake
