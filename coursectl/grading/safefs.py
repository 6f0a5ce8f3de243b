"""Reading a student's folder without ever leaving it.

A submission folder is untrusted input: besides files it may hold symbolic links (to the
source notebook, the answer key, the gradebook, /etc, another student's folder), hard
links to files elsewhere, devices, FIFOs and sockets, loops of links, and names no
program expects. Everything here opens paths one component at a time relative to an
already opened folder, with ``O_NOFOLLOW``, and checks what it opened with ``fstat``:
only regular files with a single name (``st_nlink == 1``) and real folders are accepted.
Anything else is *refused*: never opened for reading, never copied, and described in one
line (``Refusal``) for the job's problems and the report. A FIFO is opened with
``O_NONBLOCK`` only to be refused, so it cannot stall the grader.

Standard library only (staging, jobs and the nbgrader hook all use it).
"""
from __future__ import annotations

import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

NAME_MAX = 255           # bytes in one file name (Linux)
MAX_ENTRIES = 5000       # files and folders looked at in one submission
MAX_DEPTH = 32           # folder nesting in one submission
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Refused(OSError):
    """A path that is not a regular file (or folder) inside the folder it was looked up in."""


@dataclass(frozen=True)
class Refusal:
    """One thing in a submission that was not read, and why."""
    path: str      # relative to the submission folder, display-safe
    reason: str

    def line(self) -> str:
        return f"{self.path}: {self.reason}: not read"


@dataclass
class Listing:
    """What a submission folder holds: regular files and folders (relative POSIX paths)
    that may be read, and everything refused."""
    files: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    modes: dict[str, int] = field(default_factory=dict)   # file -> permission bits


def shown(name: str, limit: int = 160) -> str:
    """A name as the report may print it: undecodable bytes and control characters
    escaped, long names cut."""
    out = []
    for ch in name:
        if 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape").decode("ascii") if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def name_problem(name: str) -> str | None:
    """Why a single file name cannot be used as it is, or None when it can."""
    if name in ("", ".", ".."):
        return f"file name {name!r} is not a file name"
    if "/" in name or "\x00" in name:
        return "file name holds a path separator or NUL"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8"
    if len(encoded) > NAME_MAX:
        return f"file name too long ({len(encoded)} bytes, at most {NAME_MAX})"
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        return "file name holds control characters"
    return None


# A student id is also a folder name and is printed in pages (the formgrader puts it in
# JavaScript strings): letters, digits and _.@+- only, no leading dot.
STUDENT_ID = re.compile(r"[\w@+-][\w.@+-]{0,99}")


def student_id_problem(name: str) -> str | None:
    """Why ``name`` cannot be a student id, or None when it can."""
    why = name_problem(name)
    if why:
        return why
    if not STUDENT_ID.fullmatch(name):
        return "not usable as a student id (letters, digits and _ . @ + - only, not starting with a dot)"
    return None


def kind_problem(st: os.stat_result) -> str | None:
    """Why an ``lstat``/``fstat`` result is not something a submission may hold, or None
    for a single-named regular file or a folder."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return None
    if stat.S_ISREG(mode):
        return None if st.st_nlink <= 1 else f"a hard link (one of {st.st_nlink} names of the same file)"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file or folder"


def _link_note(name: str, dir_fd: int) -> str:
    try:
        return f" (to {shown(os.readlink(name, dir_fd=dir_fd))!r})"
    except OSError:
        return ""


def open_dir(path: Path | str) -> int:
    """A folder's descriptor; refused when ``path`` itself is a link or not a folder."""
    try:
        return os.open(path, _DIR_FLAGS)
    except OSError as exc:
        try:
            st = os.lstat(path)
        except OSError:
            raise Refused(f"cannot open {shown(str(path))}: {exc.strerror}") from None
        raise Refused(f"{shown(str(path))}: {kind_problem(st) or 'not a folder'}") from None


def _open_in(dir_fd: int, name: str, *, want_dir: bool) -> int:
    """Open one entry of an open folder without following it; Refused unless it is what
    was wanted (a folder, or a single-named regular file)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        raise Refused(f"cannot be looked at ({exc.strerror})") from None
    why = kind_problem(st)
    if why:
        raise Refused(why + (_link_note(name, dir_fd) if stat.S_ISLNK(st.st_mode) else ""))
    if stat.S_ISDIR(st.st_mode) != want_dir:
        raise Refused("a folder, not a file" if not want_dir else "a file, not a folder")
    try:
        fd = os.open(name, _DIR_FLAGS if want_dir else _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise Refused(f"cannot be opened ({exc.strerror})") from None
    # Checked again on what was opened: the entry may have been swapped since stat.
    why = kind_problem(os.fstat(fd))
    if why or stat.S_ISDIR(os.fstat(fd).st_mode) != want_dir:
        os.close(fd)
        raise Refused(why or "changed while it was read")
    return fd


def open_under(root: Path | str, rel: str) -> int:
    """Descriptor of the regular file ``rel`` under ``root``, each component opened
    without following links. Raises Refused for anything else."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise Refused(f"{shown(rel)!r} is not a path inside the folder")
    fd = open_dir(root)
    try:
        for part in parts[:-1]:
            nxt = _open_in(fd, part, want_dir=True)
            os.close(fd)
            fd = nxt
        return _open_in(fd, parts[-1], want_dir=False)
    finally:
        os.close(fd)


def read_under(root: Path | str, rel: str, limit: int | None = None) -> bytes:
    """The bytes of regular file ``rel`` under ``root`` (Refused if it is anything else
    or, with ``limit``, larger than that)."""
    fd = open_under(root, rel)
    with os.fdopen(fd, "rb") as fh:
        if limit is not None and os.fstat(fh.fileno()).st_size > limit:
            raise Refused(f"larger than {limit} bytes")
        data = fh.read() if limit is None else fh.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise Refused(f"larger than {limit} bytes")
    return data


def scan(root: Path | str, *, skip=lambda name: False, max_entries: int = MAX_ENTRIES,
         max_depth: int = MAX_DEPTH) -> Listing:
    """Everything under ``root`` (which must be a real folder: Refused otherwise),
    without following links; ``skip(name)`` leaves names out silently."""
    listing = Listing()
    count = 0

    def walk(dir_fd: int, prefix: str, depth: int) -> None:
        nonlocal count
        try:
            names = sorted(os.listdir(dir_fd))
        except OSError as exc:
            listing.refused.append(Refusal(shown(prefix or "."), f"folder cannot be listed ({exc.strerror})"))
            return
        for name in names:
            if skip(name):
                continue
            rel = prefix + name
            count += 1
            if count > max_entries:
                listing.refused.append(Refusal(shown(prefix or "."), f"more than {max_entries} entries; the rest"))
                return
            bad_name = name_problem(name)
            if bad_name:
                listing.refused.append(Refusal(shown(rel), bad_name))
                continue
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as exc:
                listing.refused.append(Refusal(shown(rel), f"cannot be looked at ({exc.strerror})"))
                continue
            why = kind_problem(st)
            if why:
                note = _link_note(name, dir_fd) if stat.S_ISLNK(st.st_mode) else ""
                listing.refused.append(Refusal(shown(rel), why + note))
            elif stat.S_ISDIR(st.st_mode):
                if depth >= max_depth:
                    listing.refused.append(Refusal(shown(rel), f"folders nested deeper than {max_depth}"))
                    continue
                try:
                    sub = _open_in(dir_fd, name, want_dir=True)
                except Refused as exc:
                    listing.refused.append(Refusal(shown(rel), str(exc)))
                    continue
                listing.dirs.append(rel)
                try:
                    walk(sub, rel + "/", depth + 1)
                finally:
                    os.close(sub)
            else:
                listing.files.append(rel)
                listing.modes[rel] = st.st_mode & 0o777

    top = open_dir(root)
    try:
        walk(top, "", 0)
    finally:
        os.close(top)
    return listing


def copy_under(root: Path | str, rel: str, dest: Path) -> None:
    """Copy regular file ``rel`` under ``root`` to ``dest`` (bytes, permission bits and
    times, as shutil.copy2 would), reading it through ``open_under``."""
    fd = open_under(root, rel)
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(src.fileno())
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name[:200]}.{os.getpid()}.part")
        with open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.chmod(tmp, st.st_mode & 0o777)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dest)  # replaces a link at dest rather than writing through it


def copy_tree(root: Path | str, dest: Path, *, skip=lambda name: False, exclude=frozenset()) -> Listing:
    """Copy the readable part of ``root`` into ``dest``; returns what was seen, with
    the refused entries (and files that turned bad while copying) in ``refused``.
    ``exclude``: relative paths not to copy (they are still listed)."""
    listing = scan(root, skip=skip)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in listing.dirs:
        (dest / rel).mkdir(parents=True, exist_ok=True)
    for rel in list(listing.files):
        if rel in exclude:
            continue
        try:
            copy_under(root, rel, dest / rel)
        except Refused as exc:
            listing.files.remove(rel)
            listing.refused.append(Refusal(shown(rel), str(exc)))
    return listing


def pack(root: Path | str, *, skip=lambda name: False) -> tuple[dict[str, tuple[int, bytes]], list[Refusal]]:
    """(model.Tree of the regular files under ``root``, refused entries). A missing
    folder packs as nothing."""
    if not os.path.lexists(root):
        return {}, []
    listing = scan(root, skip=skip)
    tree: dict[str, tuple[int, bytes]] = {}
    for rel in listing.files:
        try:
            tree[rel] = (listing.modes[rel], read_under(root, rel))
        except Refused as exc:
            listing.refused.append(Refusal(shown(rel), str(exc)))
    return tree, listing.refused
