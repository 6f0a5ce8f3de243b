"""Where submissions come from: nbgrader's submitted/ folder, or an LMS bulk download.

Canvas names each file of a bulk download ``<name>_<userid>_<submissionid>_<file>``, with
``_LATE`` after the name when it came in after the deadline (and ``-1``, ``-2`` added to
the file name for resubmissions). A roster CSV maps Canvas user ids to course student
ids; Canvas' own gradebook export (columns ``Student, ID, SIS User ID, SIS Login ID``)
works as a roster, and its ``Student`` column ("Last, First") or first/last name columns
give the names the formgrader shows. Files are unpacked into submitted/<student>/<assignment>/ as
``nbgrader zip_collect`` would; anything that cannot be placed is reported, not guessed.
"""
from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

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


def find_submissions(course: Path, assignment: str, intake: Intake | None = None) -> Intake:
    """Students with a submitted/<student>/<assignment>/ folder; stray files reported."""
    intake = intake or Intake()
    root = course / "submitted"
    if not root.is_dir():
        return intake
    for sdir in sorted(root.iterdir()):
        if sdir.name.startswith("."):
            continue
        if not sdir.is_dir():
            intake.unplaced.append((str(sdir.relative_to(course)), "file directly in submitted/, not in a student folder"))
            continue
        adir = sdir / assignment
        if adir.is_dir():
            intake.students[sdir.name] = adir
        for item in sdir.iterdir():
            if item.is_file() and item.suffix.lower() in (".ipynb", ".json", ".zip", ".py"):
                intake.unplaced.append((str(item.relative_to(course)),
                                        f"not inside submitted/{sdir.name}/<assignment>/"))
    return intake


def from_canvas_zip(zip_path: Path, course: Path, assignment: str, roster: Roster | None) -> Intake:
    """Unpack a Canvas bulk download into submitted/. Only file names are used from the
    archive (no folders), so an entry cannot write outside its student's folder."""
    intake = Intake()
    ids = roster.by_lms_id() if roster else {}
    newest: dict[tuple[str, str], tuple[int, zipfile.ZipInfo, bool]] = {}
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            base = PurePosixPath(info.filename.replace("\\", "/")).name
            if base.startswith(".") or info.filename.startswith("__MACOSX/"):
                continue
            m = CANVAS_NAME.match(base)
            if not m:
                intake.unplaced.append((info.filename, "name is not <name>_<userid>_<submissionid>_<file>"))
                continue
            uid = m["uid"]
            if roster is not None:
                if uid not in ids:
                    intake.unplaced.append((info.filename, f"Canvas user id {uid} is not in the roster"))
                    continue
                student = ids[uid].student_id
            else:
                student = uid  # without a roster, the Canvas id is the student id
            key = (student, m["file"])
            sub = int(m["sub"])
            if key in newest:
                older = min(sub, newest[key][0])
                intake.unplaced.append((info.filename if sub == older else newest[key][1].filename,
                                        "older copy of the same file (kept the newest submission)"))
                if sub < newest[key][0]:
                    continue
            newest[key] = (sub, info, bool(m["late"]))
        for (student, fname), (_, info, late) in sorted(newest.items()):
            if not re.fullmatch(r"[\w.@+-]+", student):
                intake.unplaced.append((info.filename, f"student id {student!r} is not usable as a folder name"))
                continue
            dest = course / "submitted" / student / assignment / fname
            data = zf.read(info)
            state = "new"
            if dest.exists():
                state = "unchanged" if dest.read_bytes() == data else "replaced"
            if state != "unchanged":
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            intake.placed.append((info.filename, student, state))
            if late:
                intake.late.add(student)
    return intake
