"""Intake that no file name can stop (issue 15, item 4): every entry of a Canvas zip and
every name in a submitted folder is either placed safely or refused with a reason, and
the other students are always taken in. Fast: intake and staging functions are called
directly (no kernels); the end-to-end `course grade --from` run is in test_links.py."""
from __future__ import annotations

import os
import stat
import struct
import tempfile
import unicodedata
import zipfile
import zlib
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbformat.v4 import new_notebook

from coursectl.errors import CourseError
from coursectl.grading import intake, safefs, staging

A = "tiny"
GOOD = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
HYPO = settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def raw_zip(path: Path, entries) -> Path:
    """A stored (uncompressed) zip written byte by byte, so names can be any bytes:
    entries are (name bytes, data, utf8 flag, unix mode or None[, declared size])."""
    out, central = bytearray(), bytearray()
    for entry in entries:
        name, data, utf8, mode = entry[:4]
        size = entry[4] if len(entry) > 4 else len(data)
        crc, flag = zlib.crc32(data), (0x800 if utf8 else 0)
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flag, 0, 0, 0, crc, size, size, len(name), 0)
        out += name + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", (3 << 8) | 20, 20, flag, 0, 0, 0, crc, size, size,
                               len(name), 0, 0, 0, 0, (mode or 0) << 16, offset) + name
    start = len(out)
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), start, 0)
    path.write_bytes(bytes(out))
    return path


def all_paths(root: Path) -> list[Path]:
    return [Path(d, n) for d, dirs, files in os.walk(root) for n in dirs + files]


def check_contained(course: Path) -> None:
    """Everything intake wrote is a regular file or folder inside submitted/<s>/<a>/."""
    for p in all_paths(course):
        rel = p.relative_to(course).parts
        assert rel[0] == "submitted", p
        assert not p.is_symlink(), p
        if len(rel) >= 4:
            assert rel[2] == A and stat.S_ISREG(os.lstat(p).st_mode), p


def reasons(found: intake.Intake) -> str:
    return "\n".join(f"{n}: {why}" for n, why in found.unplaced)


# --------------------------------------------------------------------------- a hostile archive


@pytest.fixture
def hostile(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    bomb = zipfile.ZipInfo("bomber_230_1_big.bin")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    link = zipfile.ZipInfo("linker_231_1_tiny.ipynb")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    fifo = zipfile.ZipInfo("piper_232_1_pipe")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("../../../escape.txt", b"x")
    zpath = tmp_path / "canvas.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("mallory_222_1_..", b"dotdot")
        zf.writestr("mallory_222_1_tiny.ipynb", GOOD)
        zf.writestr("dot_223_1_.", b"dot")
        zf.writestr("/etc/abs_224_1_tiny.ipynb", GOOD)
        zf.writestr("C:\\Users\\eve\\win_225_1_tiny.ipynb", GOOD)
        zf.writestr("long_226_1_" + "n" * 300 + ".ipynb", GOOD)
        zf.writestr("case_227_1_Tiny.ipynb", b"upper")
        zf.writestr("case_227_1_tiny.ipynb", GOOD)
        zf.writestr("nfc_228_1_caf\u00e9.py", b"nfc")
        zf.writestr("nfc_228_1_cafe\u0301.py", b"nfd")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("dup_229_1_tiny.ipynb", b"first")
            zf.writestr("dup_229_1_tiny.ipynb", GOOD)
        zf.writestr(bomb, b"\0" * (8 * 1024 * 1024))
        zf.writestr("nest_233_1_inner.zip", inner.read_bytes())
        zf.writestr(link, b"../../../source/tiny/tiny.ipynb")
        zf.writestr(fifo, b"")
        zf.writestr("ctl_234_1_a\x07b.ipynb", GOOD)
        zf.writestr("nl_236_1_a\nb.ipynb", GOOD)
        zf.writestr("good_235_1_tiny.ipynb", GOOD)
    limits = intake.ZipLimits(max_entry_bytes=1024 * 1024)
    found = intake.from_canvas_zip(zpath, course, A, None, limits=limits)
    return course, found


def test_every_hostile_entry_is_placed_safely_or_refused(hostile):
    course, found = hostile
    check_contained(course)
    sub = course / "submitted"
    text = reasons(found)
    assert (sub / "222" / A / "tiny.ipynb").read_bytes() == GOOD  # mallory's real notebook is placed
    assert "mallory_222_1_..: file name '..' is not a file name" in text
    assert "dot_223_1_.: file name '.' is not a file name" in text
    assert (sub / "224" / A / "tiny.ipynb").read_bytes() == GOOD  # an absolute path: its last part only
    assert (sub / "225" / A / "tiny.ipynb").read_bytes() == GOOD  # backslashes are separators
    assert "file name too long" in text and not (sub / "226").exists()
    assert [p.name for p in (sub / "227" / A).iterdir()] == ["tiny.ipynb"]  # case collision: one kept
    assert "once case and Unicode normalisation are ignored" in text
    assert len(list((sub / "228" / A).iterdir())) == 1  # NFC and NFD spellings: one file
    assert (sub / "229" / A / "tiny.ipynb").read_bytes() == GOOD  # duplicate entry: the last one
    assert "duplicate entry" in text
    assert "bomber_230_1_big.bin: 8388608 bytes once unpacked (at most 1048576)" in text
    assert not (sub / "230").exists()
    assert "linker_231_1_tiny.ipynb: a symbolic link entry" in text and not (sub / "231").exists()
    assert "piper_232_1_pipe: not a regular file" in text
    assert zipfile.is_zipfile(sub / "233" / A / "inner.zip")  # a nested zip is a file, never unpacked
    assert "control characters" in text and not (sub / "234").exists()
    assert "nl_236_1_a\\nb.ipynb: name is not" in text and not (sub / "236").exists()
    assert (sub / "235" / A / "tiny.ipynb").read_bytes() == GOOD
    # refusals reach the student's own problems, for the report's line about them
    assert any("'..' is not a file name" in p for p in found.problems["222"])


def test_names_that_are_not_utf8_do_not_stop_intake(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    zpath = raw_zip(tmp_path / "c.zip", [
        (b"latin_300_1_r\xe9sum\xe9.py", b"cp437", False, None),       # flag off: cp437, as ZIP says
        (b"liar_301_1_\xff\xfe.py", b"liar", True, None),               # flag on, but not UTF-8
        (b"nul_302_1_tiny.ipynb\x00../../x", GOOD, False, None),        # NUL: zipfile cuts the name there
        (b"good_303_1_tiny.ipynb", GOOD, False, None),
    ])
    with pytest.raises(UnicodeDecodeError):  # what stopped the whole class before
        zipfile.ZipFile(zpath)
    found = intake.from_canvas_zip(zpath, course, A, None)
    check_contained(course)
    assert [p.read_bytes() for p in (course / "submitted" / "300" / A).iterdir()] == [b"cp437"]
    assert [p.read_bytes() for p in (course / "submitted" / "301" / A).iterdir()] == [b"liar"]
    assert any("marked UTF-8 but is not" in p for p in found.problems["301"])
    assert (course / "submitted" / "302" / A / "tiny.ipynb").read_bytes() == GOOD
    assert (course / "submitted" / "303" / A / "tiny.ipynb").read_bytes() == GOOD


def test_bounds_on_entries_sizes_and_lying_headers(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    entries = [(f"s{i}_{400 + i}_1_f.py".encode(), b"x" * 100, False, None) for i in range(8)]
    entries.append((b"liar_500_1_f.py", b"y" * 5000, False, None, 10))  # header says 10 bytes
    zpath = raw_zip(tmp_path / "c.zip", entries)
    found = intake.from_canvas_zip(zpath, course, A, None, limits=intake.ZipLimits(max_entries=4))
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["400", "401", "402", "403"]
    assert "more than 4 entries" in reasons(found)

    course2 = tmp_path / "course2"
    course2.mkdir()
    found = intake.from_canvas_zip(zpath, course2, A, None,
                                   limits=intake.ZipLimits(max_total_bytes=350, max_student_bytes=10_000))
    assert len(list((course2 / "submitted").iterdir())) == 3
    assert "unpacks to more than 350 bytes" in reasons(found)
    assert "liar_500_1_f.py: cannot be unpacked" in reasons(found)  # CRC mismatch: refused, nobody else harmed
    check_contained(course2)


def test_an_unreadable_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "not.zip"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(CourseError, match="cannot read the archive"):
        intake.from_canvas_zip(bad, tmp_path, A, None)


def test_intake_never_writes_through_a_link(tmp_path):
    course = tmp_path / "course"
    (course / "submitted" / "600").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, course / "submitted" / "600" / A)  # a planted link where intake would write
    zpath = raw_zip(tmp_path / "c.zip", [(b"m_600_1_tiny.ipynb", GOOD, False, None),
                                         (b"g_601_1_tiny.ipynb", GOOD, False, None)])
    found = intake.from_canvas_zip(zpath, course, A, None)
    assert list(outside.iterdir()) == []
    assert "not written through" in reasons(found)
    assert (course / "submitted" / "601" / A / "tiny.ipynb").read_bytes() == GOOD


def test_roster_ids_that_are_not_folder_names_are_refused(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    roster = intake.Roster([intake.RosterEntry("..", "700"), intake.RosterEntry(".hidden", "701"),
                            intake.RosterEntry("ann", "702")])
    zpath = raw_zip(tmp_path / "c.zip", [(f"x_{u}_1_tiny.ipynb".encode(), GOOD, False, None) for u in (700, 701, 702)])
    found = intake.from_canvas_zip(zpath, course, A, roster)
    check_contained(course)
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["ann"]
    assert reasons(found).count("not usable as a folder name") == 2


# --------------------------------------------------------------------------- properties


_MODES = st.sampled_from([None, stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777, stat.S_IFIFO | 0o644,
                          stat.S_IFCHR | 0o600, stat.S_IFDIR | 0o755])
_ENTRY = st.tuples(st.binary(max_size=300), st.binary(max_size=64), st.booleans(), _MODES)


@HYPO
@given(st.lists(_ENTRY, max_size=6))
def test_property_any_zip_entry_name_is_placed_safely_or_refused(entries):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        course = tmp / "course"
        course.mkdir()
        raw = [(b"s_7_1_" + name, data, utf8, mode) for name, data, utf8, mode in entries]
        raw.append((b"good_8_1_tiny.ipynb", GOOD, False, None))
        zpath = raw_zip(tmp / "c.zip", raw)
        found = intake.from_canvas_zip(zpath, course, A, None)  # never raises
        check_contained(course)
        assert (course / "submitted" / "8" / A / "tiny.ipynb").read_bytes() == GOOD
        zf, _ = intake._open_zip(zpath)
        with zf:
            counted = [i for i in zf.infolist() if not i.filename.endswith("/")
                       and Path(i.filename.replace("\\", "/")).name not in (".DS_Store", "Thumbs.db")]
        assert len(found.placed) + len(found.unplaced) == len(counted), reasons(found)
        for p in (course / "submitted" / "7" / A).glob("*") if (course / "submitted" / "7").exists() else []:
            assert safefs.name_problem(p.name) is None
            assert unicodedata.normalize("NFC", p.name) == p.name


_DISK_NAME = st.binary(min_size=1, max_size=255).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..") and b != b"tiny.ipynb"
    and b != b".ipynb_checkpoints")
_KIND = st.sampled_from(["file", "link_out", "link_solution", "fifo", "hardlink", "loop", "dir_link"])


@HYPO
@given(st.dictionaries(_DISK_NAME, _KIND, max_size=6))
def test_property_any_name_in_a_submitted_folder_is_copied_or_named(files):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "submitted" / "s" / A
        src.mkdir(parents=True)
        (tmp / "solution.ipynb").write_bytes(b"SOLUTION")
        nbformat.write(new_notebook(), src / "tiny.ipynb")
        made = {}
        for raw, kind in files.items():
            path = os.path.join(os.fsencode(src), raw)
            if kind == "file":
                with open(path, "wb") as fh:
                    fh.write(raw)
            elif kind == "link_out":
                os.symlink(b"/etc/passwd", path)
            elif kind == "link_solution":
                os.symlink(b"../../../solution.ipynb", path)
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "hardlink":
                os.link(tmp / "solution.ipynb", path)
            elif kind == "loop":
                os.symlink(raw, path)
            else:
                os.symlink(b"..", path)
            made[os.fsdecode(raw)] = kind
        dest = tmp / "staged"
        staged = staging.stage_submission("s", src, dest, {"tiny": []})  # never raises
        assert staged.graded_notebooks == ["tiny"]
        problems = "\n".join(staged.problems)
        for name, kind in made.items():
            usable = kind == "file" and safefs.name_problem(name) is None
            target = os.path.join(os.fsencode(dest), os.fsencode(name))
            if usable:
                with open(target, "rb") as fh:
                    assert fh.read() == os.fsencode(name)
            else:
                assert not os.path.lexists(target), name
                assert safefs.shown(name) in problems, (name, kind, problems)
        for p in all_paths(dest):
            assert stat.S_ISREG(os.lstat(p).st_mode) or stat.S_ISDIR(os.lstat(p).st_mode), p
            if p.is_file():
                assert p.read_bytes() != b"SOLUTION"


@HYPO
@given(st.lists(_DISK_NAME, max_size=5, unique=True), st.booleans())
def test_property_any_student_folder_name_is_found_or_reported(names, as_links):
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        (course / "submitted" / "good" / A).mkdir(parents=True)
        for raw in names:
            if raw.startswith(b"."):
                continue
            folder = os.path.join(os.fsencode(course / "submitted"), raw)
            if raw == b"good":
                continue
            if as_links:
                os.symlink(b"good", folder)
            else:
                os.makedirs(os.path.join(folder, A.encode()))
        found = intake.find_submissions(course, A)
        assert "good" in found.students
        reported = {n for n, _ in found.unplaced}
        for raw in names:
            name = os.fsdecode(raw)
            if raw.startswith(b".") or raw == b"good":
                continue
            assert name in found.students or f"submitted/{safefs.shown(name)}" in reported, name
            if as_links:
                assert name not in found.students


@pytest.mark.parametrize("name", ['x"</script><script>alert(1)</script>', "o'neil", "a b", "<img>", "tab\tname"])
def test_student_folders_whose_name_could_not_be_printed_safely_are_refused(tmp_path, name):
    """A student id lands in pages (the formgrader prints it into JavaScript strings):
    course grade's intake and plain nbgrader's notebook list both refuse such a folder."""
    from coursectl.grading import nblinks

    course = tmp_path / "course"
    for student in ("good", name):
        (course / "submitted" / student / A).mkdir(parents=True)
    found = intake.find_submissions(course, A)
    assert set(found.students) == {"good"}
    assert any("not usable as a student id" in why or "control" in why for _, why in found.unplaced)
    assert nblinks._folder_problem(str(course / "submitted" / name / A))
    assert nblinks._folder_problem(str(course / "submitted" / "good" / A)) is None
