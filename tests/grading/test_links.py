"""Links are never followed out of a submission (issue 15, item 2), under `course grade`
(with a Canvas zip of hostile names, item 4) and under plain `nbgrader autograde`.

One class, built twice: links to the source notebook (the solution), the answer key, the
gradebook, /etc/passwd, another student's folder and a link loop, a FIFO, hard links, a
notebook that is itself a link, an assignment folder and a student folder that are links.
Each class is graded once (the real CLIs, real kernels): the solution never runs and is
never copied into autograded/ or feedback/, every score is that of the submission's own
files, the refused entries are named, and the course's files are unchanged."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import zipfile
from pathlib import Path

import nbformat
import pytest

from fixtures.grading import tiny
from nbcourse import BIN, nbgrader, scores, submit

slow = pytest.mark.slow  # the two grading runs; the unit tests at the end need no kernel

A = tiny.ASSIGNMENT
FULL = {"test_square": (2.0, 2.0), "test_cube": (3.0, 3.0)}
WRONG = {"test_square": (2.0, 2.0), "test_cube": (0.0, 3.0)}  # tiny.wrong_answer()
MARKER = "SOLUTION-FILE-7c1e"  # only in the instructor's source notebook
KEY = tiny.REPO / "autograder" / "a1_rnn_cells" / "abc_key.json"
KEY_TEXT = '"data": "offline synthetic stand-in"'
SECRETS = (MARKER.encode(), KEY_TEXT.encode(), b"root:x:0:0", b"SQLite format 3")
REFUSED = {"good": set(), "src_links": {"solution.ipynb", "key.json"},
           "odd_files": {"gradebook.db", "passwd", "peer", "loop", "pipe", "hard.txt"}}


def _course(root: Path) -> Path:
    """The tiny course, its solution carrying MARKER (stripped from the release)."""
    course = tiny.make_course(root, generate=False)
    src = course / "source" / A / f"{tiny.NOTEBOOK}.ipynb"
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "square":
            cell.source = cell.source.replace("    return x * x", f"    return x * x  # {MARKER}")
    nbformat.write(nb, src)
    nbgrader(course, "generate_assignment", A, "--force")
    return course


def _build_class(course: Path) -> None:
    sub = course / "submitted"
    submit(course, "good", A, tiny.good(), name="tiny.ipynb")

    folder = submit(course, "src_links", A, tiny.wrong_answer(), name="tiny.ipynb").parent
    os.symlink(f"../../../source/{A}/tiny.ipynb", folder / "solution.ipynb")
    os.symlink(KEY, folder / "key.json")

    folder = sub / "nb_link" / A
    folder.mkdir(parents=True)
    os.symlink(f"../../../source/{A}/tiny.ipynb", folder / "tiny.ipynb")

    folder = sub / "nb_hard" / A
    folder.mkdir(parents=True)
    os.link(course / "source" / A / "tiny.ipynb", folder / "tiny.ipynb")

    folder = submit(course, "odd_files", A, tiny.good(), name="tiny.ipynb").parent
    os.symlink("../../../gradebook.db", folder / "gradebook.db")
    os.symlink("/etc/passwd", folder / "passwd")
    os.symlink("../../good", folder / "peer")
    os.symlink("loop", folder / "loop")
    os.mkfifo(folder / "pipe")
    os.link(course / "source" / A / "notes.txt", folder / "hard.txt")

    (sub / "dir_link").mkdir()
    os.symlink(f"../good/{A}", sub / "dir_link" / A)
    os.symlink("good", sub / "alias")


def _digest(folder: Path) -> dict[str, str]:
    """Files (content), links (target) and other entries (kind), never opening a FIFO."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[str(p.relative_to(folder))] = "link:" + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif not stat.S_ISDIR(st.st_mode):
                out[str(p.relative_to(folder))] = oct(stat.S_IFMT(st.st_mode))
    return out


def _assert_clean(course: Path) -> None:
    """No link and no byte of the solution, the key, passwd or a gradebook in what
    grading wrote for students."""
    for kind in ("autograded", "feedback"):
        for root, dirs, files in os.walk(course / kind):
            for name in dirs + files:
                p = Path(root, name)
                st = os.lstat(p)
                assert stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode), p
                if stat.S_ISREG(st.st_mode):
                    data = p.read_bytes()
                    for secret in SECRETS:
                        assert secret not in data, (p, secret)


def _hostile_zip(path: Path) -> Path:
    link = zipfile.ZipInfo("eve_333_1_tiny.ipynb")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mallory_222_1_..", b"stops the class")
        zf.writestr("mallory_222_1_tiny.ipynb", tiny.notebook_bytes(tiny.good()))
        zf.writestr(link, f"../../../source/{A}/tiny.ipynb")
        zf.writestr("long_444_1_" + "x" * 300 + ".ipynb", tiny.notebook_bytes(tiny.good()))
    return path


@pytest.fixture(scope="module")
def course_grade(tmp_path_factory):
    root = tmp_path_factory.mktemp("links_cg")
    course = _course(root)
    _build_class(course)
    before = {d: _digest(course / d) for d in ("source", "submitted")}
    key_before = KEY.read_bytes()
    zpath = _hostile_zip(root / "canvas.zip")
    proc = subprocess.run([str(BIN / "course"), "grade", A, "--from", str(zpath), "--workers", "2",
                           "--cell-timeout", "20"], cwd=course, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((course / "reports" / A / "report.json").read_text())
    return course, proc.stdout, report, before, key_before


@pytest.fixture(scope="module")
def plain_nbgrader(tmp_path_factory):
    course = _course(tmp_path_factory.mktemp("links_nbg"))
    _build_class(course)
    before = {d: _digest(course / d) for d in ("source", "submitted")}
    auto = nbgrader(course, "autograde", A, "--force", check=False)
    fb = nbgrader(course, "generate_feedback", A, "--force", check=False)
    return course, auto.stdout + auto.stderr, fb, before


def _result(report: dict, student: str) -> dict:
    return next(r for r in report["submissions"] if r["student"] == student)


@slow
def test_course_grade_scores_only_the_submissions_own_files(course_grade):
    course, _, report, _, _ = course_grade
    assert scores(course, A, "good") == FULL
    assert scores(course, A, "odd_files") == FULL
    assert scores(course, A, "src_links") == WRONG  # its own (wrong) notebook, not the linked solution
    for student in ("nb_link", "nb_hard", "dir_link"):  # the notebook (or folder) is a link: 0
        got = scores(course, A, student)
        assert (got["test_square"][0], got["test_cube"][0]) == (0.0, 0.0), student
        assert _result(report, student)["status"] == "failed"


@slow
def test_course_grade_names_every_refused_entry(course_grade):
    course, stdout, report, _, _ = course_grade
    for student, names in REFUSED.items():
        problems = "\n".join(_result(report, student)["problems"])
        for name in names:
            assert f"{name}: a " in problems, (student, name, problems)
        assert "not read" in problems or not names
    assert "tiny.ipynb: a symbolic link (to '../../../source/tiny/tiny.ipynb'): not read (0 points for it)" in \
        "\n".join(_result(report, "nb_link")["problems"])
    assert "tiny.ipynb: a hard link" in "\n".join(_result(report, "nb_hard")["problems"])
    assert "submitted/dir_link/tiny is a symbolic link" in "\n".join(_result(report, "dir_link")["problems"])
    unplaced = {u["file"]: u["reason"] for u in report["unplaced"]}
    assert "not a student folder" in unplaced["submitted/alias"]
    assert "alias" not in {r["student"] for r in report["submissions"]}
    assert "submitted/dir_link/tiny is a symbolic link" in stdout


@slow
def test_course_grade_takes_in_a_zip_of_hostile_names(course_grade):
    course, stdout, report, _, _ = course_grade
    assert scores(course, A, "222") == FULL  # mallory's `..` entry did not stop anyone
    unplaced = {u["file"]: u["reason"] for u in report["unplaced"]}
    assert unplaced["mallory_222_1_.."] == "file name '..' is not a file name"
    assert unplaced["eve_333_1_tiny.ipynb"] == "a symbolic link entry"
    assert any("file name too long" in why for why in unplaced.values())
    assert "'..' is not a file name" in "\n".join(_result(report, "222")["problems"])


@slow
def test_course_grade_leaves_no_solution_and_changes_no_course_file(course_grade):
    course, _, _, before, key_before = course_grade
    _assert_clean(course)
    assert not (course / "autograded" / "nb_link").exists()
    assert _digest(course / "source") == before["source"]
    after = _digest(course / "submitted")
    assert {k: v for k, v in after.items() if not k.startswith(("222", "444"))} == before["submitted"]
    assert KEY.read_bytes() == key_before


@slow
def test_plain_nbgrader_scores_only_the_submissions_own_files(plain_nbgrader):
    course, log, _, _ = plain_nbgrader
    assert scores(course, A, "good") == FULL
    assert scores(course, A, "odd_files") == FULL
    assert scores(course, A, "src_links") == WRONG
    for student in ("nb_link", "nb_hard", "dir_link", "alias"):
        assert not (course / "autograded" / student).exists(), student
    assert "Not reading" in log
    for name in ("solution.ipynb", "nb_link/tiny/tiny.ipynb", "nb_hard/tiny/tiny.ipynb"):
        assert name in log, name
    for name in REFUSED["odd_files"] | {"key.json"}:
        assert f"{name}: a " in log, name


@slow
def test_plain_nbgrader_leaves_no_solution_and_changes_no_course_file(plain_nbgrader):
    course, _, fb, before = plain_nbgrader
    assert (course / "feedback" / "good" / A / "tiny.html").exists(), fb.stdout[-2000:] + fb.stderr[-2000:]
    _assert_clean(course)
    assert _digest(course / "source") == before["source"]
    assert _digest(course / "submitted") == before["submitted"]


# --------------------------------------------------------------------------- no kernel


def test_sandbox_binds_skip_links_and_hard_links(tmp_path):
    from coursectl.grading import sandbox

    folder = tmp_path / "autograded" / "s" / A
    folder.mkdir(parents=True)
    (folder / "plot.png").write_bytes(b"png")
    (tmp_path / "solution.txt").write_text("solution")
    os.link(tmp_path / "solution.txt", folder / "hard.txt")
    os.symlink(tmp_path / "solution.txt", folder / "soft.txt")
    os.mkfifo(folder / "pipe")
    assert [rel for _, rel in sandbox._assignment_files(str(folder))] == ["plot.png"]


def test_job_results_come_back_without_following_links(tmp_path):
    from coursectl.grading import jobs
    from coursectl.grading.model import GradeJob, Limits

    course = tmp_path / "course"
    folder = course / "autograded" / "s" / A
    folder.mkdir(parents=True)
    (folder / "tiny.ipynb").write_text("{}")
    (course / "source").mkdir()
    (course / "source" / "solution.ipynb").write_text(MARKER)
    os.symlink("../../../source/solution.ipynb", folder / "copy.ipynb")  # what an unsandboxed kernel could leave
    job = GradeJob(assignment=A, student="s", submission={}, config_text="", source={}, gradebook=b"",
                   limits=Limits(timeout=1))
    problems: list[str] = []
    tree = jobs._pack_back(course, "autograded", job, problems)
    assert list(tree) == ["tiny.ipynb"]
    assert problems == ["autograded/copy.ipynb: a symbolic link (to '../../../source/solution.ipynb'): not read"]


def test_nbgrader_reads_no_fifo_or_link_as_timestamp(tmp_path):
    from nbgrader.coursedir import CourseDirectory

    from coursectl.grading import nblinks

    nblinks.install()
    os.mkfifo(tmp_path / "timestamp.txt")  # nbgrader's own open() would block here forever
    assert CourseDirectory().get_existing_timestamp(str(tmp_path)) is None
    os.unlink(tmp_path / "timestamp.txt")
    os.symlink("/etc/hostname", tmp_path / "timestamp.txt")
    assert CourseDirectory().get_existing_timestamp(str(tmp_path)) is None
    os.unlink(tmp_path / "timestamp.txt")
    (tmp_path / "timestamp.txt").write_text("2026-01-02 03:04:05.000000 UTC")
    assert CourseDirectory().get_existing_timestamp(str(tmp_path)).year == 2026


@slow
def test_nbgrader_collect_copies_no_link_and_no_name_stops_it(tmp_path):
    """`nbgrader collect` reads the exchange's inbound folder, which every student can
    write: a planted link is not collected, and a folder name without a valid time
    stamp is collected with a warning instead of ending the collection."""
    course = _course(tmp_path)
    inbound = course / "exchange" / "seqcourse" / "inbound"
    ts = "2026-01-02 03:04:05.000000 UTC"
    for student, name in (("linker", f"linker+{A}+{ts}+r1"), ("good", f"good+{A}+{ts}+r2"),
                          ("stamp", f"stamp+{A}+not a time+r3")):
        folder = inbound / name
        folder.mkdir(parents=True)
        nbformat.write(tiny.good(), folder / "tiny.ipynb")
        (folder / "timestamp.txt").write_text(ts)
    (inbound / f"linker+{A}+{ts}+r1" / "tiny.ipynb").unlink()
    os.symlink(course / "source" / A / "tiny.ipynb", inbound / f"linker+{A}+{ts}+r1" / "tiny.ipynb")
    os.symlink(KEY, inbound / f"linker+{A}+{ts}+r1" / "key.json")
    proc = nbgrader(course, "collect", A)
    sub = course / "submitted"
    assert (sub / "good" / A / "tiny.ipynb").exists()
    assert (sub / "stamp" / A / "tiny.ipynb").exists()
    assert "No valid time stamp" in proc.stdout + proc.stderr
    assert sorted(p.name for p in (sub / "linker" / A).iterdir()) == ["timestamp.txt"]
    assert "Not collecting" in proc.stdout + proc.stderr
