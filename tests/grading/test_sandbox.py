"""The bubblewrap sandbox around a submission's kernel (coursectl/grading/sandbox.py).

Fast tests start bwrap directly and look at what a process inside can see. The slow test
grades hostile submissions of the tiny assignment next to an honest one, then checks the
world: course files, host /tmp, processes, the network listener and the gradebook."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest

from coursectl.grading import grade_assignment, sandbox
from coursectl.nbg import CourseError
from fixtures.grading import tiny
from nbcourse import BIN, REPO, nbgrader, scores, submit

FULL = {"test_square": (2.0, 2.0), "test_cube": (3.0, 3.0)}
TAG = f"sbx{os.getpid()}"            # marks what the attacks leave, so the test can look for it
SLEEP = "1000.375"                   # a detached `sleep` that must not outlive its submission
OWN_OUTPUTS = ("autograded", "feedback", "reports", "gradebook.db", ".course_secret")  # what grading writes

needs_bwrap = pytest.mark.skipif(sandbox.unavailable() is not None,
                                 reason=f"bubblewrap cannot start here: {sandbox.unavailable()}")


def _in_sandbox(code: str, environ) -> tuple[str, str]:
    """Run ``python -I -c code`` in the sandbox the way a kernel starts: (stdout, the
    runtime folder's name, which is the one host folder bound into /tmp)."""
    with tempfile.TemporaryDirectory(prefix="krt") as runtime:
        opts = dict(sandbox.plan(runtime), bwrap=sandbox.find_bwrap(), no_network=True)
        cmd = sandbox.bwrap_command(opts, [sys.executable, "-I", "-c", code], runtime, environ)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, close_fds=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, os.path.basename(runtime)


# ---------------------------------------------------------------- fast: what the sandbox shows


@needs_bwrap
def test_kernel_side_view_of_the_machine(tmp_path):
    secret = tmp_path / "course" / "gradebook.db"
    secret.parent.mkdir()
    secret.write_text("rows")
    code = (
        "import os, json, importlib.util as u\n"
        f"print(json.dumps({{'uid': os.getuid(), 'pids': [p for p in os.listdir('/proc') if p.isdigit()],\n"
        f"  'secret': os.path.exists({str(secret)!r}), 'repo': sorted(os.listdir({str(REPO)!r})),\n"
        "  'autograder': u.find_spec('autograder') is not None, 'coursectl': u.find_spec('coursectl') is not None,\n"
        "  'coursekit': u.find_spec('coursekit') is not None, 'env': sorted(os.environ),\n"
        "  'home': os.environ['HOME'], 'tmp': os.listdir('/tmp')}))")
    out, runtime = _in_sandbox(code, dict(os.environ, SECRET_TOKEN="x", COURSE_FOO="1"))
    seen = json.loads(out)
    assert seen["uid"] == sandbox.KERNEL_UID
    assert len(seen["pids"]) <= 3  # bwrap's init, python, maybe a reaper: no host process
    assert not seen["secret"]
    assert sorted(seen["repo"]) == sorted([".venv", "coursekit", "data_scripts"]), seen["repo"]
    assert not seen["autograder"] and not seen["coursectl"] and seen["coursekit"]
    assert "SECRET_TOKEN" not in seen["env"] and "COURSE_FOO" in seen["env"]
    # /tmp is the sandbox's own tmpfs: it holds the runtime folder and, when the checkout
    # itself lives under /tmp (a CI clone), the mount points of what is bound from there.
    bound_from_tmp = {Path(p).parts[2] for p in (str(REPO), os.environ.get("COURSE_DATA_DIR", ""))
                      if Path(p).is_absolute() and len(Path(p).parts) > 2 and Path(p).parts[1] == "tmp"}
    assert seen["home"] == sandbox.HOME and set(seen["tmp"]) - bound_from_tmp == {runtime}


@needs_bwrap
def test_an_installed_autograder_is_masked(tmp_path):
    site = tmp_path / "site"
    (site / "autograder").mkdir(parents=True)
    (site / "autograder" / "__init__.py").write_text("REFERENCE = 'leaked'\n")
    runtime = tmp_path / "rt"
    runtime.mkdir()
    opts = dict(sandbox.plan(str(runtime)), bwrap=sandbox.find_bwrap(), no_network=True)
    opts["ro"] = opts["ro"] + [str(site)]
    opts["hide"] = [str(site / "autograder")]
    code = f"import sys; sys.path.insert(0, {str(site)!r})\nimport autograder"
    cmd = sandbox.bwrap_command(opts, [sys.executable, "-I", "-c", code], str(runtime), os.environ)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, close_fds=False)
    assert proc.returncode != 0
    assert "autograder is not available while a submission is graded" in proc.stderr
    assert "leaked" not in proc.stdout + proc.stderr


def test_plan_masks_hidden_packages_installed_next_to_the_kernels(monkeypatch):
    site = os.path.join(os.path.realpath(sys.prefix), "lib", "site-packages")
    monkeypatch.setattr(sandbox, "_package_dir", lambda name: os.path.join(site, name))
    got = sandbox.plan("/tmp/rt")
    assert got["hide"] == [os.path.join(site, "autograder"), os.path.join(site, "coursectl")]
    assert not any(p.endswith(("autograder", "coursectl")) for p in got["ro"])


@needs_bwrap
def test_working_folder_holds_only_the_assignments_plain_files(tmp_path):
    graded = tmp_path / "autograded" / "alice" / "hw"
    (graded / "figs").mkdir(parents=True)
    (graded / "figs" / "plot.png").write_bytes(b"png")
    (graded / "hw.ipynb").write_text("{}")  # the notebook under grading: never bound
    (graded / "link.txt").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "outside.txt").write_text("secret")
    code = ("import os\nfor r, d, f in os.walk('.'):\n    print(*sorted(os.path.join(r, x) for x in f))\n"
            "open('figs/plot.png', 'ab')")
    runtime = tmp_path / "rt"
    runtime.mkdir()
    opts = dict(sandbox.plan(str(runtime), files_from=str(tmp_path / "autograded")), bwrap=sandbox.find_bwrap())
    cmd = sandbox.bwrap_command(opts, [sys.executable, "-I", "-c", code], str(graded), os.environ)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, close_fds=False)
    assert proc.stdout.split() == ["./figs/plot.png"]
    assert "Read-only file system" in proc.stderr
    # A kernel started anywhere else gets an empty working folder.
    cmd = sandbox.bwrap_command(opts, [sys.executable, "-I", "-c", code], str(tmp_path), os.environ)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, close_fds=False)
    assert proc.stdout.split() == []


# ---------------------------------------------------------------- refusing without bubblewrap


def _no_bwrap_path(tmp_path: Path) -> str:
    """A PATH with the venv's tools and the system's, minus bubblewrap."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for name in ("sh", "env", "python3"):
        if (Path("/usr/bin") / name).exists():
            (bare / name).symlink_to(Path("/usr/bin") / name)
    return f"{BIN}{os.pathsep}{bare}"


def test_grading_refuses_without_bubblewrap(tmp_path, monkeypatch):
    course = tiny.make_course(tmp_path, generate=False)
    submit(course, "a", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    monkeypatch.setenv("PATH", _no_bwrap_path(tmp_path))
    with pytest.raises(CourseError) as err:
        grade_assignment(course, tiny.ASSIGNMENT, progress=False)
    assert "bubblewrap (bwrap) is not installed" in str(err.value)
    assert "apt-get install bubblewrap" in str(err.value) and "--no-sandbox" in str(err.value)
    assert not (course / "gradebook.db").exists() and not (course / "reports").exists()
    proc = subprocess.run([str(BIN / "course"), "grade", tiny.ASSIGNMENT], cwd=course, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 2 and "refusing to grade without a sandbox" in proc.stderr


@pytest.mark.slow
def test_opting_out_grades_without_the_sandbox_and_says_so(tmp_path, monkeypatch):
    course = tiny.make_course(tmp_path)
    submit(course, "a", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    monkeypatch.setenv("PATH", _no_bwrap_path(tmp_path))
    run = grade_assignment(course, tiny.ASSIGNMENT, sandbox=False, progress=False)
    assert scores(course, tiny.ASSIGNMENT, "a") == FULL
    assert "sandbox: none (opted out with --no-sandbox" in run.text
    assert "limits: memory cap 4096 MB of address space per kernel, 1800 s per submission" in run.text
    data = json.loads(run.files["report_json"].read_text())
    assert data["protection"]["sandbox"].startswith("none (opted out")
    assert data["protection"]["memory_cap_mb"] == 4096


# ---------------------------------------------------------------- slow: hostile submissions


def _attacks(course: Path, port: int) -> dict[str, str]:
    """student -> one extra cell. Each prints LEAK:... for anything it got done, SAFE:...
    for anything it was refused, so the test sees that every attempt really ran."""
    src, db = course / "source" / tiny.ASSIGNMENT / "tiny.ipynb", course / "gradebook.db"
    cfg = course / "nbgrader_config.py"
    report = ("def report(what, fn):\n    try:\n        got = fn()\n    except Exception as exc:\n"
              "        print(f'SAFE:{what} ({type(exc).__name__})')\n    else:\n"
              "        print(f'LEAK:{what}' if got else f'SAFE:{what} (nothing)')\n")
    snoop = report + f"""import glob, os, sys
report('source', lambda: open({str(src)!r}).read())
report('gradebook', lambda: open({str(db)!r}, 'rb').read())
report('config', lambda: open({str(cfg)!r}).read())
report('other_jobs', lambda: [p for p in glob.glob('/tmp/grade-*') + glob.glob('/tmp/krt*')
                              if p != os.environ['JUPYTER_RUNTIME_DIR']])
report('repo_autograder', lambda: os.listdir({str(REPO / 'autograder')!r}))
def imp():
    sys.path[:0] = [{str(REPO)!r}, '.']
    import autograder
    return True
report('import_autograder', imp)
def procs():
    mine = {{str(os.getpid()), '1', 'self', 'thread-self'}}
    return [open(f'/proc/{{p}}/cmdline').read() for p in os.listdir('/proc') if p.isdigit() and p not in mine
            and 'bwrap' not in open(f'/proc/{{p}}/cmdline').read()]
report('processes', procs)
"""
    vandal = report + f"""import os, signal, time
report('write_config', lambda: open({str(cfg)!r}, 'a').write('\\nprint("{TAG}")\\n'))
report('write_gradebook', lambda: open({str(db)!r}, 'ab').write(b'{TAG}'))
report('write_course', lambda: open({str(course / TAG)!r}, 'w').write('x'))
report('overwrite_asset', lambda: open('notes.txt', 'w').write('{TAG}'))
open('/tmp/{TAG}', 'w').write('x'); open(os.path.expanduser('~/{TAG}'), 'w').write('x')
print('RUNTIME', os.environ['JUPYTER_RUNTIME_DIR'])
report('kill_host_pid', lambda: os.kill({os.getpid()}, signal.SIGTERM) or True)
def kill_parent():
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(0.5)
    return False  # printed only if this kernel survived its parent's kill
report('kill_parent', kill_parent)
"""
    lingerer = f"""import os, subprocess, time
subprocess.Popen('setsid nohup sleep {SLEEP} >/dev/null 2>&1 &', shell=True)
time.sleep(0.5)
print('STARTED' if any('{SLEEP}' in open(f'/proc/{{p}}/cmdline').read() for p in os.listdir('/proc') if p.isdigit())
      else 'NOT-STARTED')
"""
    net = report + f"""import socket
report('internet', lambda: socket.create_connection(('1.1.1.1', 53), timeout=3))
report('host_loopback', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=3))
"""
    return {"snoop": snoop, "vandal": vandal, "lingerer": lingerer, "net": net}


def _digest(course: Path) -> dict[str, str]:
    return {str(p.relative_to(course)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(course.rglob("*")) if p.is_file() and p.relative_to(course).parts[0] not in OWN_OUTPUTS}


def _outputs(course: Path, student: str) -> str:
    nb = nbformat.read(course / "autograded" / student / tiny.ASSIGNMENT / "tiny.ipynb", as_version=4)
    return "\n".join(str(o.get("text", "")) + str(o.get("evalue", "")) for c in nb.cells for o in c.get("outputs", []))


class _Listener:
    """A TCP server on the host's loopback that counts connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port, self.hits, self._stop = self.sock.getsockname()[1], 0, False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def close(self):
        self._stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    if sandbox.unavailable():
        pytest.skip(f"bubblewrap cannot start here: {sandbox.unavailable()}")
    course = tiny.make_course(tmp_path_factory.mktemp("sandbox"))
    listener = _Listener()
    attacks = _attacks(course, listener.port)
    submit(course, "honest", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    for student, cell in attacks.items():
        submit(course, student, tiny.ASSIGNMENT, tiny.with_cell(cell), name="tiny.ipynb")
    before = _digest(course)
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=2, cell_timeout=30, progress=False)
    time.sleep(1)  # anything left behind would show by now
    listener.close()
    yield course, run, before, listener
    subprocess.run(["pkill", "-f", f"sleep {SLEEP}"], capture_output=True)  # only if the test failed


@pytest.mark.slow
def test_attacks_get_nothing_done_and_the_honest_student_keeps_full_marks(attacked):
    course, run, before, listener = attacked
    assert run.sandbox.startswith("bubblewrap") and "sandbox: bubblewrap" in run.text
    assert scores(course, tiny.ASSIGNMENT, "honest") == FULL
    assert {r.student: r.status for r in run.results} == dict.fromkeys(
        ["honest", "lingerer", "net", "snoop", "vandal"], "graded")
    seen = {s: _outputs(course, s) for s in ("snoop", "vandal", "net", "lingerer")}
    for student, text in seen.items():
        assert "LEAK:" not in text, (student, text)
        assert not any(m in text for m in tiny.HIDDEN_MARKERS), student
    assert seen["snoop"].count("SAFE:") == 7 and seen["vandal"].count("SAFE:") == 6
    assert seen["net"].count("SAFE:") == 2 and listener.hits == 0
    assert "STARTED" in seen["lingerer"] and "NOT-STARTED" not in seen["lingerer"]


@pytest.mark.slow
def test_nothing_outside_each_students_own_results_changed(attacked):
    course, run, before, _ = attacked
    assert _digest(course) == before  # source, release, submitted, nbgrader_config.py
    assert not Path(f"/tmp/{TAG}").exists() and not (Path.home() / TAG).exists()
    asset = course / "autograded" / "vandal" / tiny.ASSIGNMENT / "notes.txt"
    assert asset.read_text() == "an asset students get\n"
    runtime = _outputs(course, "vandal").split("RUNTIME ", 1)[1].split()[0]
    assert not Path(runtime).exists()  # the kernel's only writable host folder is gone
    leftover = subprocess.run(["pgrep", "-f", f"sleep {SLEEP}"], capture_output=True, text=True).stdout
    assert leftover.strip() == "", "a detached process outlived its submission"
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        subs = [(s.student.id, s.assignment.name) for s in gb.find_assignment(tiny.ASSIGNMENT).submissions]
        assert sorted(subs) == sorted((s, tiny.ASSIGNMENT) for s in ("honest", "lingerer", "net", "snoop", "vandal"))
        assert [a.name for a in gb.assignments] == [tiny.ASSIGNMENT]


@pytest.mark.slow
def test_plain_nbgrader_autograde_runs_kernels_in_the_sandbox(tmp_path, monkeypatch):
    if sandbox.unavailable():
        pytest.skip(f"bubblewrap cannot start here: {sandbox.unavailable()}")
    course = tiny.make_course(tmp_path)
    src = course / "source" / tiny.ASSIGNMENT / "tiny.ipynb"
    cell = f"import os\nprint('UID', os.getuid(), 'SOURCE', os.path.exists({str(src)!r}), sorted(os.listdir('.')))"
    submit(course, "a", tiny.ASSIGNMENT, tiny.with_cell(cell), name="tiny.ipynb")
    nbgrader(course, "autograde", tiny.ASSIGNMENT, "--force")
    assert scores(course, tiny.ASSIGNMENT, "a") == FULL
    assert f"UID {sandbox.KERNEL_UID} SOURCE False ['notes.txt']" in _outputs(course, "a")
    # Without bubblewrap the kernel refuses to start, and says why.
    monkeypatch.setenv("PATH", _no_bwrap_path(tmp_path))
    proc = nbgrader(course, "autograde", tiny.ASSIGNMENT, "--force", check=False)
    assert "refusing to run a submission's kernel without the sandbox" in proc.stdout + proc.stderr
