"""nbgrader's own reads of a submission, made to follow no link out of it.

Plain ``nbgrader autograde`` reads submitted/<student>/<assignment>/ itself: it globs the
notebooks and opens them, copies the folder's other files into autograded/ (where the
kernel runs) and reads timestamp.txt, all through symbolic links. A link named like the
assignment's notebook to ``../../../source/<a>/<a>.ipynb`` would have the solution run
and a copy of it kept in autograded/. ``install()`` (called from the course's
nbgrader_config.py, so it holds for plain nbgrader and inside `course grade`'s grading
processes alike) changes three steps of nbgrader 0.9.6's ``Autograde``:

* ``init_notebooks``: a notebook that is not a single-named regular file in a real
  student and assignment folder is dropped with a warning; the notebook then scores 0,
  as a missing one does (a student left with no notebook is skipped, as nbgrader skips a
  student who submitted none);
* ``init_assignment`` (the copy into autograded/): only regular files are copied, read
  through safefs; links, hard links, devices, FIFOs and sockets are named and left out;
* ``CourseDirectory.get_existing_timestamp``: timestamp.txt is read only when it is a
  small regular file, and an unreadable one is a warning, not the end of the run;
* ``nbgrader collect`` (the default exchange's copy from the world-writable inbound
  folder into submitted/): only regular files and folders are copied, so a link planted
  in the exchange cannot turn the solution into a student's submitted file; and an
  inbound folder whose name carries no valid time stamp is collected as the oldest
  submission, with a warning, instead of ending `nbgrader collect` for everyone.

Everything else nbgrader does is unchanged.
"""
from __future__ import annotations

import datetime
import fnmatch
import os
import posixpath
import stat
from collections import defaultdict
from pathlib import Path

from . import safefs

_TIMESTAMP_MAX = 4096


def _folder_problem(folder: str) -> str | None:
    """Why the assignment folder (or the student folder holding it) may not be read."""
    student = os.path.basename(os.path.dirname(os.path.normpath(folder)))
    why = safefs.student_id_problem(student)
    if why:
        return f"student folder {safefs.shown(student)!r}: {why}"
    for path in (folder, os.path.dirname(os.path.normpath(folder))):
        try:
            st = os.lstat(path)
        except OSError as exc:
            return f"{path}: {exc.strerror}"
        if not stat.S_ISDIR(st.st_mode):
            return f"{safefs.shown(path)} is {safefs.kind_problem(st) or 'not a folder'}"
    return None


def _notebook_problem(path: str) -> str | None:
    why = safefs.name_problem(os.path.basename(path))
    if why:
        return why
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot be looked at ({exc.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "a folder, not a notebook"
    return safefs.kind_problem(st)


def copy_submission(src: str, dest: str, ignore, log) -> None:
    """shutil.copytree(src, dest, ignore=ignore) for regular files and folders only;
    everything else is named in a warning and left out."""
    listing = safefs.scan(src)  # Refused when src itself is a link
    for bad in listing.refused:
        log.warning("Not collecting %s/%s", safefs.shown(src), bad.line())
    folders = set(listing.dirs)
    children = defaultdict(list)
    for rel in listing.dirs + listing.files:
        children[posixpath.dirname(rel)].append(rel)
    root = Path(dest)

    def visit(folder: str) -> None:
        (root / folder).mkdir(parents=True, exist_ok=True)
        names = [posixpath.basename(rel) for rel in children[folder]]
        skipped = set(ignore(os.path.join(src, folder), names)) if ignore else set()
        for rel in children[folder]:
            if posixpath.basename(rel) in skipped:
                continue
            if rel in folders:
                visit(rel)
            else:
                try:
                    safefs.copy_under(src, rel, root / rel)
                except safefs.Refused as exc:
                    log.warning("Not collecting %s/%s: %s", safefs.shown(src), safefs.shown(rel), exc)

    visit("")


def install() -> None:
    """Patch nbgrader's Autograde (once per process); see the module docstring."""
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde
    from nbgrader.converters.base import BaseConverter, NbGraderException
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default.collect import ExchangeCollect
    from nbgrader.utils import ignore_patterns, parse_utc

    if getattr(Autograde, "_course_links_guarded", False):
        return
    Autograde._course_links_guarded = True
    plain_init_notebooks = Autograde.init_notebooks
    plain_base_init_assignment = BaseConverter.init_assignment
    plain_autograde_init_assignment = Autograde.init_assignment

    def init_notebooks(self) -> None:
        plain_init_notebooks(self)
        self._course_refused = {}
        for folder, found in list(self.assignments.items()):
            keep, refused = [], []
            folder_why = _folder_problem(folder)
            for nb in sorted(found):
                why = folder_why or _notebook_problem(nb)
                if why:
                    self.log.warning("Not reading %s: %s (0 points for it)", safefs.shown(nb), why)
                    refused.append(nb)
                else:
                    keep.append(nb)
            self._course_refused[os.path.normpath(folder)] = refused
            if keep:
                self.assignments[folder] = keep
            else:
                self.log.error("No notebook of %s can be read; not graded", safefs.shown(folder))
                del self.assignments[folder]
        if not self.assignments:
            raise NbGraderException("No readable notebooks were matched (links and other non-files are not read)")

    def base_init_assignment(self, assignment_id: str, student_id: str) -> None:
        if not isinstance(self, Autograde) or not self._sanitizing:
            return plain_base_init_assignment(self, assignment_id, student_id)
        source = self._format_source(assignment_id, student_id)
        dest = Path(self._format_dest(assignment_id, student_id))
        ignore = list(self.coursedir.ignore) + ["*.ipynb"]
        try:
            listing = safefs.scan(source, skip=lambda name: any(fnmatch.fnmatch(name, p) for p in ignore))
        except safefs.Refused as exc:
            self.log.warning("Not copying %s: %s", safefs.shown(source), exc)
            return
        for bad in listing.refused:
            self.log.warning("Not copying %s/%s", safefs.shown(source), bad.line())
        for rel in listing.files:
            target = dest / rel
            if os.path.lexists(target):
                os.remove(target)
            self.log.info("Copying %s/%s -> %s", safefs.shown(source), safefs.shown(rel), safefs.shown(str(target)))
            try:
                safefs.copy_under(source, rel, target)
            except safefs.Refused as exc:
                self.log.warning("Not copying %s/%s: %s", safefs.shown(source), safefs.shown(rel), exc)

    def autograde_init_assignment(self, assignment_id: str, student_id: str) -> None:
        plain_autograde_init_assignment(self, assignment_id, student_id)
        folder = os.path.normpath(self._format_source(assignment_id, student_id))
        refused = getattr(self, "_course_refused", {}).get(folder, [])
        if not refused:
            return
        # nbgrader zeroes a missing notebook; a refused one (which exists) is zeroed the same way.
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            for path in refused:
                name = os.path.splitext(os.path.basename(path))[0]
                try:
                    nb = gb.find_submission_notebook(name, assignment_id, student_id)
                except Exception:  # not one of the assignment's notebooks
                    continue
                for grade in nb.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                nb.flagged = True
            gb.db.commit()

    def get_existing_timestamp(self, dest_path: str):
        try:
            text = safefs.read_under(dest_path, "timestamp.txt", limit=_TIMESTAMP_MAX).decode("utf-8", "replace")
        except safefs.Refused as exc:
            if os.path.lexists(os.path.join(dest_path, "timestamp.txt")):
                self.log.warning("Not reading %s/timestamp.txt: %s", safefs.shown(dest_path), exc)
            return None
        text = text.strip()
        if not text:
            self.log.warning("Empty timestamp file: %s/timestamp.txt", safefs.shown(dest_path))
            return None
        try:
            return parse_utc(text)
        except (ValueError, OverflowError, TypeError):
            self.log.warning("Invalid timestamp in %s/timestamp.txt; graded as on time", safefs.shown(dest_path))
            return None

    def collect_do_copy(self, src, dest, log=None):
        size = self.get_size(src)
        if size > 1000 * self.coursedir.max_dir_size:
            self.log.error("Directory size is too big")
            raise RuntimeError(f"Directory size is too big. Size is {size}, maximum size is "
                               f"{1000 * self.coursedir.max_dir_size}")
        ignore = ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                                 max_file_size=self.coursedir.max_file_size, log=self.log)
        try:
            copy_submission(src, dest, ignore, self.log)
        except safefs.Refused as exc:
            self.log.warning("Not collecting %s: %s", safefs.shown(src), exc)
            return
        if self.coursedir.groupshared:  # as nbgrader does: group read-write
            for dirname, _, filenames in os.walk(dest):
                for path, bits, mask in [(dirname, 0o2770, 0o2777)] + [
                        (os.path.join(dirname, f), 0o660, 0o777) for f in filenames]:
                    mode = os.stat(path).st_mode
                    if mode & bits != bits:
                        try:
                            os.chmod(path, (mode | bits) & mask)
                        except PermissionError:
                            self.log.warning("Could not update permissions of %s to make it groupshared", path)

    plain_path_to_record = ExchangeCollect._path_to_record

    def path_to_record(self, path):
        parts = os.path.split(path)[1].rsplit("+", 3)
        try:
            if len(parts) >= 3:
                parse_utc(parts[2])
        except (ValueError, OverflowError, TypeError):
            self.log.warning("No valid time stamp in the name %s: collected as the oldest submission",
                             safefs.shown(path))
            return {"username": parts[0], "filename": os.path.split(path)[1], "timestamp": datetime.datetime.min}
        return plain_path_to_record(self, path)

    ExchangeCollect.do_copy = collect_do_copy
    ExchangeCollect._path_to_record = path_to_record
    Autograde.init_notebooks = init_notebooks
    BaseConverter.init_assignment = base_init_assignment
    Autograde.init_assignment = autograde_init_assignment
    CourseDirectory.get_existing_timestamp = get_existing_timestamp
