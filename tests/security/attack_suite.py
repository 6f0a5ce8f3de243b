"""Cheating submissions (tests/fixtures/attacks/a1_attacks.py) graded next to an honest one.

The tests are written once here and collected by two modules, one per way of grading
(``GRADE_BY``): test_attacks_course_grade.py (`course grade --workers 2`) and
test_attacks_nbgrader.py (plain `nbgrader autograde`), so the two grading runs can go to
different test processes. Both grade in the sandbox: every attack scores what the untouched release scores, the honest submission
keeps full marks, and nothing outside the attackers' own results changes (course files,
gradebook rows, host files, processes, the network).

These tests run hostile code (it walks the file system, deletes what it can reach, kills
processes): they refuse to start unless grading runs kernels in the sandbox.
"""
from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from fixtures.attacks.a1_attacks import ALL_ANSWERS, ANSWER_CELLS, ATTACKS, MARK
from fixtures.attacks.a1_from_scratch_attacks import EXPECTED, FROM_SCRATCH_ATTACKS
from nbcourse import BIN, REPO, cell_by_id, make_course, nbgrader, scores, submit

pytestmark = pytest.mark.slow
A = "a1_rnn_cells"
NAME = f"{A}.ipynb"
# What grading itself writes: results, and the course's grading secret (made on first grading).
OWN_OUTPUTS = ("autograded", "feedback", "reports", "gradebook.db", "submitted", ".course_secret")


def _require_sandbox():
    from coursectl.grading import sandbox

    problem = sandbox.unavailable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"the grading sandbox cannot start here: {problem}")
        pytest.skip(f"the grading sandbox cannot start here: {problem}")


def _attack_notebook(release: Path, attack: dict[str, str], port: int):
    nb = nbformat.read(release, as_version=4)
    for cell_id in ANSWER_CELLS:
        code = attack.get(cell_id, attack.get(ALL_ANSWERS))
        if code is not None:
            cell_by_id(nb, cell_id).source = code.replace('"SEQCOURSE_TEST_PORT", "0"', f'"_", "{port}"')
    return nb


def _held_honest():
    """The solution, timed with %time in the (ungraded) cell of the student's own choice:
    honest, but a magic that runs code holds a1's from-scratch units for review."""
    nb = nbformat.read(REPO / "source" / A / NAME, as_version=4)
    choose = next(c for c in nb.cells if c.get("id") == "choose")
    choose.source = "%time _ = 1 + 1\n" + choose.source
    return nb


def _snapshot(course: Path) -> dict[str, str]:
    out = {}
    for p in sorted(course.rglob("*")):
        rel = p.relative_to(course)
        if p.is_file() and rel.parts[0] not in OWN_OUTPUTS:
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _marks() -> list[str]:
    found = []
    for where in ("/tmp", os.path.expanduser("~"), str(REPO)):
        found += [str(p) for p in Path(where).glob(f"{MARK}*")]
    return found


def _processes_with_mark() -> list[str]:
    """Attack processes left in the host's PID namespace. (A process inside a sandbox that is
    still grading, say the other grading path's run in a parallel test process, is in a
    PID namespace of its own and dies with it.)"""
    found = []
    host_ns = os.readlink("/proc/self/ns/pid")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if os.readlink(entry / "ns" / "pid") != host_ns:
                    continue
            except OSError:
                continue
            if MARK in cmd and "pytest" not in cmd:
                found.append(f"{entry.name}: {cmd[:120]}")
    return found


class _Listener:
    """A loopback TCP server that records whether anything connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.hits += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self._stop = True
        self.sock.close()


def _reference_lines() -> list[str]:
    text = (REPO / "autograder" / "a1_rnn_cells" / "reference.py").read_text()
    return [ln.strip() for ln in text.splitlines() if len(ln.strip()) > 45 and not ln.strip().startswith("#")]


def _solution_lines() -> list[str]:
    from coursectl import cells

    nb = nbformat.read(REPO / "source" / A / NAME, as_version=4)
    return [ln for c in nb.cells for ln in cells.solution_lines(cells.source_text(c)) if len(ln) > 30]


COURSE_GRADE, NBGRADER = "course grade", "nbgrader autograde"
# Per cell: the honest cells take a few seconds; an attack that breaks its kernel (the
# monkeypatch of builtins leaves later cells unanswered) costs the whole limit.
CELL_TIMEOUT = 30


@pytest.fixture(scope="module")
def attacked(request, tmp_path_factory):
    _require_sandbox()
    for stale in _marks():
        Path(stale).unlink()
    course = make_course(tmp_path_factory.mktemp("attacks"), A)
    nbgrader(course, "generate_assignment", A, "--force")
    listener = _Listener()
    submit(course, "honest", A, REPO / "source" / A / NAME, name=NAME)
    submit(course, "release", A, REPO / "release" / A / NAME)
    for name, attack in ATTACKS.items():
        submit(course, f"attack_{name}", A, _attack_notebook(REPO / "release" / A / NAME, attack, listener.port),
               name=NAME)
    for name, attack in FROM_SCRATCH_ATTACKS.items():  # torch's kernels behind obfuscation
        submit(course, f"scratch_{name}", A, _attack_notebook(REPO / "release" / A / NAME, attack, listener.port),
               name=NAME)
    submit(course, "held_honest", A, _held_honest(), name=NAME)
    before = _snapshot(course)
    grade_by = request.module.GRADE_BY
    assert grade_by in (COURSE_GRADE, NBGRADER), grade_by
    if grade_by == COURSE_GRADE:
        proc = subprocess.run([str(BIN / "course"), "grade", A, "--workers", "2", "--cell-timeout", str(CELL_TIMEOUT)],
                              cwd=course, capture_output=True, text=True, timeout=3000)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    else:
        # Plain nbgrader gives up on a submission whose kernel it cannot drive (it exits
        # non-zero at the end); that submission then has no grades, which is 0. Its
        # defaults (a kernel started afresh in the sandbox for each notebook) grade every
        # submission but the from-scratch attacks, which hide torch's kernels from the
        # trusted chain rather than escape the sandbox: how their kernel started changes
        # nothing the chain sees, so they get kernels forked preloaded (as `course grade`
        # starts them; the same sandbox, tests/grading/test_zygote.py), in a second run.
        scratch = [f"scratch_{name}" for name in FROM_SCRATCH_ATTACKS]
        env = {"COURSE_CELL_TIMEOUT": str(CELL_TIMEOUT)}  # nbgrader_config.py reads it
        nbgrader(course, "autograde", A, "--force", f"--CourseDirectory.student_id_exclude={','.join(scratch)}",
                 timeout=3000, check=False, env=env)
        nbgrader(course, "autograde", A, "--force", "--student=scratch_*", "--SandboxedKernelManager.preloaded=True",
                 timeout=3000, check=False, env=env)
        nbgrader(course, "generate_feedback", A, "--force", check=False)
    time.sleep(2)  # anything left behind would write its marks by now
    listener.close()
    return course, before, listener


def _total(course, student):
    from nbgrader.api import MissingEntry

    try:
        got = scores(course, A, student)
    except MissingEntry:  # not graded at all
        return 0.0
    return sum(s for s, _ in got.values() if s is not None)


def test_honest_submission_keeps_full_marks(attacked):
    course, *_ = attacked
    got = scores(course, A, "honest")
    assert all(s == m for s, m in got.values()), got


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_scores_no_more_than_the_release(attacked, name):
    course, *_ = attacked
    assert _total(course, f"attack_{name}") <= _total(course, "release") == 0.0


@pytest.mark.parametrize("name", list(FROM_SCRATCH_ATTACKS))
def test_from_scratch_attack_is_held_or_failed_and_scores_nothing(attacked, name):
    from autograder.a1_rnn_cells.checks import NO_BUILTINS
    from coursectl.trusted import HELD_KEY

    course, *_ = attacked
    student = f"scratch_{name}"
    assert _total(course, student) <= _total(course, "release") == 0.0
    nb = nbformat.read(course / "autograded" / student / A / NAME, as_version=4)
    cell = cell_by_id(nb, "test_lstm_cell")
    shown = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        needs_manual = gb.find_grade("test_lstm_cell", A, A, student).needs_manual_grade
    if EXPECTED[name] == "held":  # the formgrader shows it needing a hand grade, with what and where
        assert "[grader] HELD FOR REVIEW" in shown and "cell 9 (lstm-cell), line" in shown
        assert needs_manual and cell.metadata[HELD_KEY]["findings"]
    else:
        assert NO_BUILTINS in shown and HELD_KEY not in cell.metadata
    report = course / "reports" / A / "report.txt"
    if report.exists():  # `course grade` writes one; plain nbgrader does not
        line = next(ln for ln in report.read_text().splitlines() if ln.strip().startswith(student + " "))
        assert ("HELD FOR REVIEW" if EXPECTED[name] == "held" else NO_BUILTINS) in line, line


def test_held_points_are_released_by_one_command(attacked, tmp_path):
    import shutil

    course, *_ = attacked
    copy = tmp_path / "course"
    shutil.copytree(course, copy, symlinks=True)  # the attack tests read the original
    listed = subprocess.run([str(BIN / "course"), "held", A], cwd=copy, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    for name in sorted(n for n, e in EXPECTED.items() if e == "held"):
        # torch's kernel raised in the kernel's op guard: releasing gives nothing
        assert f"scratch_{name}  test_lstm_cell  HELD: the checks gave 0 of 4" in listed.stdout
    assert "held_honest  test_lstm_cell  HELD: the checks gave 4 of 4" in listed.stdout
    assert "the magic %time (it can run code) in cell 31 (choose), line 1" in listed.stdout
    assert not any(line.startswith(("honest ", "release ")) for line in listed.stdout.splitlines())
    before = scores(course, A, "held_honest")  # nothing counts before the instructor has read it
    assert before.pop("test_abc_answers") == (3.0, 3.0) and all(s == 0.0 for s, _ in before.values()), before

    def release(*unit):
        done = subprocess.run([str(BIN / "course"), "held", A, "--release", "held_honest", *unit],
                              cwd=copy, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    release("--unit", "test_lstm_cell")
    got = scores(copy, A, "held_honest")
    assert got["test_lstm_cell"] == (4.0, 4.0) and got["test_gru_cell"] == (0.0, 4.0)
    release()
    assert scores(copy, A, "held_honest") == scores(course, A, "honest")  # every unit, as the checks gave
    assert "held_honest  test_gru_cell  released" in subprocess.run(
        [str(BIN / "course"), "held", A], cwd=copy, capture_output=True, text=True).stdout


def test_nothing_outside_the_attackers_results_changed(attacked):
    course, before, listener = attacked
    assert _snapshot(course) == before
    assert _marks() == []
    assert _processes_with_mark() == []
    assert listener.hits == 0


def test_gradebook_holds_only_clamped_scores_and_no_triggers(attacked):
    course, *_ = attacked
    db = sqlite3.connect(course / "gradebook.db")
    try:
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == []
        for auto, cell in db.execute("SELECT grade.auto_score, grade_cells.max_score FROM grade "
                                     "JOIN grade_cells ON grade.cell_id = grade_cells.id"):
            assert auto is None or 0 <= auto <= cell
    finally:
        db.close()


def test_feedback_shows_no_reference_solution_or_hidden_code(attacked):
    course, *_ = attacked
    # (An attacker's own cell source comes back to it; what matters is the grader's code.)
    secrets = _reference_lines() + _solution_lines() + ["check_lstm_cell(", "BEGIN HIDDEN"]
    pages = sorted((course / "feedback").glob(f"attack_*/{A}/*.html"))
    assert len(pages) >= len(ATTACKS) - 2  # plain nbgrader writes none for a submission it gave up on
    for page in pages:
        html = page.read_text()
        leaked = [s for s in secrets if s in html]
        assert not leaked, f"{page.parent.parent.name}: {leaked[:3]}"
