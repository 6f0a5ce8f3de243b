"""Shortcuts the grading processes take must behave exactly as what they replace
(no kernels): nbgrader's metadata check with a cached schema validator, new SQLite
gradebooks stamped with nbgrader's alembic head without running `alembic`, and a fork
server (prefork.py) whose imports leave no first-use import to each job's planning."""
from __future__ import annotations

import os
import sqlite3
import subprocess

import jsonschema
import pytest
from nbformat.v4 import new_code_cell

from coursectl.grading import cell_schema, gradebook, zygote
from coursectl.nbg import path_with_tools
from nbcourse import BIN, REPO, make_course


def _cell(**meta):
    base = {"grade": True, "grade_id": "t", "locked": True, "points": 1, "schema_version": 3,
            "solution": False, "task": False}
    return new_code_cell("x = 1", metadata={"nbgrader": dict(base, **meta)})


@pytest.mark.parametrize("meta", [{}, {"points": "many"}, {"grade_id": 3}, {"locked": "yes", "points": -1}])
def test_cached_schema_check_matches_jsonschema(meta):
    from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

    schema = MetadataValidatorV3().schema
    instance = _cell(**meta).metadata["nbgrader"]
    try:
        jsonschema.validate(instance, schema)
        want = None
    except jsonschema.ValidationError as exc:
        want = (exc.message, list(exc.path))
    for _ in range(2):  # built, then cached
        try:
            cell_schema.validate_against(instance, schema)
            got = None
        except jsonschema.ValidationError as exc:
            got = (exc.message, list(exc.path))
        assert got == want
    assert (want is None) == (meta == {})


def test_patched_nbgrader_still_refuses_bad_metadata(monkeypatch):
    from nbgrader.nbgraderformat import common
    from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

    monkeypatch.setattr(common, "jsonschema", common.jsonschema)  # undone after the test
    cell_schema.install()
    assert common.jsonschema.validate is cell_schema.validate_against
    MetadataValidatorV3().validate_cell(_cell())
    with pytest.raises(jsonschema.ValidationError):
        MetadataValidatorV3().validate_cell(_cell(points="many"))


def test_the_course_config_checks_each_schema_once_in_every_nbgrader_process(tmp_path):
    """nbgrader_config.py installs cell_schema for plain nbgrader commands and `course` alike."""
    code = ("import sys; from traitlets.config.loader import PyFileConfigLoader\n"
            f"PyFileConfigLoader('nbgrader_config.py', path={str(REPO)!r}).load_config()\n"
            "from nbgrader.nbgraderformat import common\n"
            "print(common.jsonschema.validate.__module__)")
    out = subprocess.run([str(BIN / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "coursectl.grading.cell_schema", out.stderr[-2000:]


def _alembic_heads() -> str:
    """What nbgrader's own get_alembic_version reads, from the `alembic heads` command (the
    function itself is swapped wherever the course's nbgrader_config.py was loaded)."""
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
        out = subprocess.run([str(BIN / "alembic"), "-c", ini, "heads"], capture_output=True, text=True,
                             check=True).stdout
    return out.split("\n")[0].split(" ")[0]


def test_new_gradebook_stamped_like_nbgrader(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", path_with_tools(""))
    assert gradebook.head_version() == _alembic_heads()  # what nbgrader gets from `alembic heads`
    with gradebook.open_gradebook(f"sqlite:///{tmp_path / 'new.db'}") as gb:
        gb.update_or_create_student("s")
        assert gradebook.schema_version(gb) == gradebook.head_version()
    with sqlite3.connect(tmp_path / "new.db") as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"alembic_version", "student", "assignment", "grade", "notebook"} <= tables


def _definition_dump(db_url: str, assignment: str) -> dict:
    """Everything generate_assignment writes for an assignment, read through nbgrader's API."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        a = gb.find_assignment(assignment)
        out = {"duedate": a.duedate}
        for nb in a.notebooks:
            out[nb.name] = {
                "kernelspec": nb.kernelspec,
                "grade": sorted((c.name, c.max_score, c.cell_type) for c in nb.grade_cells),
                "solution": sorted(c.name for c in nb.solution_cells),
                "task": sorted((c.name, c.max_score, c.cell_type) for c in nb.task_cells),
                "source": sorted((c.name, c.cell_type, c.locked, c.source, c.checksum) for c in nb.source_cells)}
    return out


def test_definition_in_process_matches_generate_assignment(tmp_path, monkeypatch):
    """The definition a fresh gradebook gets (generate_here, no subprocess) is the one the
    `nbgrader generate_assignment` command writes."""
    from fixtures.grading import tiny

    monkeypatch.setenv("PATH", path_with_tools(""))
    course = tiny.make_course(tmp_path)  # the real command filled course/gradebook.db
    theirs = _definition_dump(f"sqlite:///{course / 'gradebook.db'}", tiny.ASSIGNMENT)
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    gradebook.generate_definition(course, tiny.ASSIGNMENT, fresh, None)
    ours = _definition_dump(fresh, tiny.ASSIGNMENT)
    assert ours == theirs
    assert theirs["tiny"]["grade"] and theirs["tiny"]["source"]  # not trivially equal
    (course / "source" / tiny.ASSIGNMENT / "tiny.ipynb").write_text("{not json")
    from coursectl.errors import CourseError

    with pytest.raises(CourseError, match="generate_assignment"):
        gradebook.generate_definition(course, tiny.ASSIGNMENT, f"sqlite:///{tmp_path / 'bad.db'}", None)


PLAN_IMPORTS = """
import os
import sys
import nbformat
from multiprocessing import forkserver
from coursectl.grading import jobs

a = sys.argv[1]  # the fork server's preload list and environment, as `course grade A` sets them (no server started)
started = []
jobs._context = lambda: None
forkserver.ensure_running = lambda: started.append(os.environ[jobs.CHECKS_VAR])
jobs.start_fork_server([a])
os.environ[jobs.CHECKS_VAR] = started[0]
for name in jobs._PRELOAD:
    __import__(name)
from coursectl import trusted

before = set(sys.modules)
nb = nbformat.read(f"source/{a}/{a}.ipynb", as_version=4)
trusted.InjectProbes(secret="ab" * 32).preprocess(nb, {"nbgrader": {"assignment": a}})
assert sum(c.metadata.get(trusted.PROBE_TAG) is not None for c in nb.cells) >= 3, a  # it planned
print(" ".join(sorted(set(sys.modules) - before)))
"""

GRADED_CHECKS = """
import os, sys
os.environ["{var}"] = "{value}"
import coursectl.grading.graded_checks
print(sorted(m for m in sys.modules if m.startswith("autograder.") and m.endswith(".checks")), "torch" in sys.modules,
      "{var}" in os.environ)
"""


@pytest.mark.slow
def test_fork_server_imports_what_planning_each_assignment_loads(monkeypatch, tmp_path):
    """Each job plans its checks (InjectProbes runs the reference implementations); a
    module they import on first use would be imported by every job again (torch._dynamo
    with sympy, pulled in by torch's first optimiser, cost a2 and a3 0.8 s per job). The
    fork server that `course grade A` starts imports A's AssignmentSpec.grader_imports
    first: one process per assignment, so that one's imports never hide another's. It
    imports A's checks module, and no other assignment's (one with none: no torch at all);
    a server for any assignment imports every one."""
    import subprocess
    import sys

    from coursectl.assignments import ASSIGNMENTS
    from coursectl.grading import jobs

    procs = {a: subprocess.Popen([sys.executable, "-c", PLAN_IMPORTS, a], cwd=REPO, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for a in ASSIGNMENTS}
    for a, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        heavy = [m for m in out.split() if m.split(".")[0] in ("torch", "sympy", "mpmath", "tensorboard", "pandas")]
        assert len(heavy) <= 1, (a, heavy[:20])  # (torch's profiler stub for CUPTI is one small module)
    # ... and that list goes ahead of prefork (whose gc.freeze then covers it) in the fork
    # server's, for the graded assignments only (a1's jobs import none of it).
    from multiprocessing import forkserver

    monkeypatch.setattr(jobs, "_PRELOAD", ["coursectl.grading.graded_checks", "coursectl.grading.prefork"])
    monkeypatch.setattr(jobs, "_context", lambda: None)  # the list only: no server starts here
    started = []
    monkeypatch.setattr(forkserver, "ensure_running", lambda: started.append(os.environ.get(jobs.CHECKS_VAR)))
    jobs.start_fork_server(["a3_char_lm", "no_such_assignment"])
    assert jobs._PRELOAD == ["torch._dynamo", "torch.utils.flop_counter", "coursectl.grading.graded_checks",
                             "coursectl.grading.prefork"]
    jobs.start_fork_server(["a1_rnn_cells"])  # a1's references import nothing on first use
    assert jobs._PRELOAD == ["torch._dynamo", "torch.utils.flop_counter", "coursectl.grading.graded_checks",
                             "coursectl.grading.prefork"]
    jobs.start_fork_server(["tiny"])  # an assignment with no checks module
    jobs.start_fork_server()  # the service's: any assignment
    assert started == ["a3_char_lm,no_such_assignment", "a1_rnn_cells", "tiny", "*"]
    assert jobs.CHECKS_VAR not in os.environ
    # What the fork server imports for each: that assignment's checks, every one's, or none (and no torch).
    a1, every = ["autograder.a1_rnn_cells.checks"], [f"autograder.{a}.checks" for a in sorted(ASSIGNMENTS)]
    for value, expected in (("a1_rnn_cells", f"{a1} True False"), ("*", f"{every} True False"),
                            ("tiny,no_such_assignment", "[] False False")):
        out = subprocess.run([sys.executable, "-c", GRADED_CHECKS.format(var=jobs.CHECKS_VAR, value=value)],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        assert out == expected, (value, out)
    # A checks module that raises as it is imported leaves the fork server running (each job
    # then imports it again and fails with its error).
    (tmp_path / "autograder" / "broken").mkdir(parents=True)
    (tmp_path / "autograder" / "__init__.py").write_text("")
    (tmp_path / "autograder" / "broken" / "__init__.py").write_text("")
    (tmp_path / "autograder" / "broken" / "checks.py").write_text(
        "open('imported', 'w').close()\nraise RuntimeError('a bug in the checks')\n")
    out = subprocess.run([sys.executable, "-c", GRADED_CHECKS.format(var=jobs.CHECKS_VAR, value="broken")],
                         cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path)), capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[] False False" and (tmp_path / "imported").exists(), out


# A kernel forked from the zygote: the modules zygote.zygote_preload gives an assignment's
# kernels, then what its graded notebook calls of the course's helpers (sys.argv[2]); the
# modules that call imports are printed.
HELPER_IMPORTS = """
import os, sys
os.environ.update(NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg")
from pathlib import Path
from coursectl.grading import zygote
a = sys.argv[1]
text = Path("source", a, a + ".ipynb").read_text()
for name in zygote.zygote_preload(zygote.preload_modules([text])):
    __import__(name)
before = set(sys.modules)
exec(sys.argv[2])
print(" ".join(sorted(set(sys.modules) - before)))
"""
HELPER_CALLS = {
    "a1_rnn_cells": "from coursekit.plots import results_table, seed_table\n"
                    "from coursekit.training import History\n"
                    "h = History(); h.best_val_acc = h.test_acc_at_best = 0.5; h.seconds = 1.0\n"
                    "seed_table({'m': [h, h]}); results_table({'m': h})",
    "a4_visualizing": "import torch\nfrom coursekit.vision import train\n"
                      "model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))\n"
                      "x, y = torch.zeros(8, 1, 2, 2), torch.zeros(8, dtype=torch.long)\n"
                      "train(model, x, y, x[:4], y[:4], epochs=1, batch_size=4)",
}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", sorted(HELPER_CALLS))
def test_zygote_has_what_the_course_helpers_import_while_graded(assignment):
    """a1's seed_table imports pandas (0.4 s of CPU) the first time it runs: in every
    kernel, unless the zygote has imported it (zygote.ZYGOTE_EXTRA); nor may a4's train
    leave one to each kernel (torch._dynamo with sympy, through its optimiser). tqdm.auto,
    which train imports, is left to the kernel: it picks its bar from the kernel it runs in."""
    out = subprocess.run([str(BIN / "python"), "-c", HELPER_IMPORTS, assignment, HELPER_CALLS[assignment]],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    heavy = [m for m in out.stdout.split() if m.split(".")[0] in ("pandas", "matplotlib", "sympy")]
    assert not heavy, heavy[:20]
    assert assignment != "a4_visualizing" or "tqdm.auto" in out.stdout.split()  # the kernel's own import


def test_zygote_leaves_tqdm_to_the_kernel():
    """tqdm.auto chooses its bar class as it is imported, from what it finds of a kernel (a
    widget in a notebook, text on stderr outside one), and ipywidgets registers its comm
    target with the running kernel as it is imported: a zygote that imported either would
    give its kernels what a kernel started afresh does not have. a2 imports tqdm.auto itself."""
    from coursectl.assignments import ASSIGNMENTS
    from coursectl.grading import worker

    assert "from tqdm.auto import tqdm" in (REPO / "source" / "a2_sentiment" / "a2_sentiment.ipynb").read_text()
    for a in ASSIGNMENTS:
        preload = zygote.zygote_preload(worker.preload_modules(REPO / "source" / a))
        assert not [m for m in preload if m.split(".")[0] in ("tqdm", "ipywidgets")], (a, preload)


def test_planning_and_judging_run_on_one_torch_thread():
    """The trusted chain's references run on one torch thread (two, on cores the kernels
    use, made a4's planning 20 times slower), and the caller's setting comes back."""
    import torch

    from coursectl import trusted

    seen = []
    step = trusted._on_one_torch_thread(lambda: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        step()
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    for step in (trusted.InjectProbes.preprocess, trusted.CollectVerdicts.preprocess):
        assert hasattr(step, "__wrapped__"), step  # both steps that run references or judges


def test_dask_workers_warm_up_for_the_runs_assignments(monkeypatch):
    """A Dask worker's fork server makes the first-use imports of the run's assignments
    only (a local cluster, a scheduler's address or a caller's client alike); the service,
    which grades any assignment, leaves them all in."""
    distributed = pytest.importorskip("distributed")
    from coursectl.grading import dask_plugin, jobs, runners

    seen = []
    monkeypatch.setattr(jobs, "start_fork_server", lambda assignments=None: seen.append(assignments))
    dask_plugin.WarmUp().setup(None)
    assert seen == [None]
    # in-process workers, so that the stub above is what their plugin calls
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        runner = runners.open_runner(executor=client, assignments=("a3_char_lm",))
        client.run(lambda: None)  # the plugin's set-up has run on the worker
        assert seen[1:] == [("a3_char_lm",)]
        runner.close()


def test_the_first_job_starts_before_the_rest_of_the_class_is_staged(tmp_path, monkeypatch):
    """Jobs go to the runner as they are staged: the first one after its own submission,
    not after the whole class (staging is about 0.1 s a submission: 30 s for 300)."""
    from concurrent.futures import Future

    from coursectl.grading import grade_assignment, staging
    from coursectl.grading.model import JobResult
    from fixtures.grading import tiny
    from nbcourse import submit

    course = tiny.make_course(tmp_path)
    for i in range(5):
        submit(course, f"s{i}", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    staged, seen = [], []
    real = staging.stage_submission
    monkeypatch.setattr(staging, "stage_submission", lambda student, *a: staged.append(student) or real(student, *a))

    class Recorder:  # an executor that grades nothing: it notes how much was staged at each hand-over
        def submit(self, fn, job, **kw):
            seen.append((job.student, list(staged)))
            fut = Future()
            fut.set_result(JobResult.failed(job.student, "not graded here"))
            return fut

    run = grade_assignment(course, tiny.ASSIGNMENT, executor=Recorder(), sandbox=False, progress=False)
    assert seen[0] == ("s0", ["s0"])
    assert [student for student, _ in seen] == staged == [f"s{i}" for i in range(5)]
    assert {r.student: r.status for r in run.results} == {f"s{i}": "failed" for i in range(5)}


def test_plain_nbgrader_stamps_a_new_gradebook_without_running_alembic(tmp_path):
    """The course's nbgrader_config.py gives nbgrader the version in process: a new
    gradebook made by a plain `nbgrader` command, with an `alembic` on PATH that refuses
    to run, is stamped with the head all the same."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "alembic").write_text("#!/bin/sh\ntouch \"$0.ran\"\nexit 3\n")
    (fake / "alembic").chmod(0o755)
    course = make_course(tmp_path)  # the course's nbgrader_config.py, nothing else
    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run([str(BIN / "nbgrader"), "db", "student", "add", "s1"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (fake / "alembic.ran").exists()
    with sqlite3.connect(course / "gradebook.db") as con:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(gradebook.head_version(),)]
        assert con.execute("SELECT id FROM student").fetchall() == [("s1",)]
