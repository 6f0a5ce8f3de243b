"""Kernels started ahead (jobs.CellSlots) and the trusted start-up code's imports
(worker.PRELOAD_CODE): every submission still gets a fresh kernel, and what one
submission does to its kernel, its files or the preloaded modules is never seen by the
next submission graded on the same worker.

One grading run (one worker, so every job after the first is started ahead on that
worker while the one before runs its cells) of four submissions: two tamper with their
kernel, two only look. Each looks once before any of its own imports and, the tampering
ones, once more after tampering: that second look must see the tampering, so the look
itself can fail."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from coursectl.grading import grade_assignment, jobs, worker
from fixtures.grading import tiny
from nbcourse import submit

LOOK = r'''
def __look(label):
    import builtins, json, os, sys
    files = [f for f in ("/tmp", os.path.expanduser("~"), "/dev/shm", os.getcwd())
             if os.path.exists(os.path.join(f, "course_leak"))]
    seen = {"preloaded": sorted(m for m in ("numpy", "torch") if m in sys.modules),
            "builtins": hasattr(builtins, "COURSE_LEAK"), "env": "COURSE_LEAK" in os.environ,
            "module": "course_leak" in sys.modules, "files": files, "names": "leaked_name" in globals()}
    if "numpy" in sys.modules:
        np = sys.modules["numpy"]
        seen["numpy"] = hasattr(np, "COURSE_LEAK") or int(np.sum([1, 2])) != 3
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        seen["torch"] = (hasattr(torch, "COURSE_LEAK")
                         or float(torch.nn.functional.relu(torch.tensor([-1.0]))[0]) != 0.0)
    print(label, json.dumps(seen, sort_keys=True))
'''

TAMPER = r'''
import builtins, os, sys, types
import numpy, torch
builtins.COURSE_LEAK = numpy.COURSE_LEAK = torch.COURSE_LEAK = "x"
numpy.sum = lambda *a, **k: 42
torch.nn.functional.relu = lambda x: x
os.environ["COURSE_LEAK"] = "x"
sys.modules["course_leak"] = types.ModuleType("course_leak")
leaked_name = "x"
for folder in ("/tmp", os.path.expanduser("~"), "/dev/shm", os.getcwd()):
    try:
        with open(os.path.join(folder, "course_leak"), "w") as fh:
            fh.write("x")
    except OSError:
        pass
wrote = []
for module in (numpy, torch):  # the preloaded modules' own files: read-only in the sandbox
    try:
        with open(module.__file__, "a") as fh:
            fh.write("\nCOURSE_LEAK = 1\n")
        wrote.append(module.__name__)
    except OSError:
        pass
print("WROTE", wrote)
'''


SETUP = "import math\nimport numpy, torch\nfrom coursekit import shrink"  # so both are preloaded


def _with_setup(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup").source = SETUP
    return nb


def _submission(tamper: bool) -> nbformat.NotebookNode:
    nb = _with_setup(tiny.good())
    cells = [new_code_cell(LOOK + "__look('BEFORE')")]  # before the notebook's own imports
    if tamper:
        cells.append(new_code_cell(TAMPER + "__look('AFTER')"))
    nb.cells[1:1] = cells
    return nb


STUDENTS = {"a_tamper": True, "b_look": False, "c_tamper": True, "d_look": False}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm")
    course = tiny.make_course(root, generate=False)
    source = course / "source" / tiny.ASSIGNMENT / "tiny.ipynb"
    nbformat.write(_with_setup(nbformat.read(source, as_version=4)), source)
    for student, tamper in STUDENTS.items():
        submit(course, student, tiny.ASSIGNMENT, _submission(tamper), name="tiny.ipynb")
    log = root / "timings.jsonl"
    old = os.environ.get("COURSE_GRADE_TIMINGS")
    os.environ["COURSE_GRADE_TIMINGS"] = str(log)
    try:
        run = grade_assignment(course, tiny.ASSIGNMENT, workers=1, progress=False)
    finally:
        if old is None:
            os.environ.pop("COURSE_GRADE_TIMINGS", None)
        else:
            os.environ["COURSE_GRADE_TIMINGS"] = old
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    timings = {ln["student"]: dict(ln["timings"], at=ln["at"]) for ln in lines if "student" in ln}
    return course, run, timings


def _looks(course, student) -> dict[str, dict]:
    nb = nbformat.read(course / "autograded" / student / tiny.ASSIGNMENT / "tiny.ipynb", as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            for line in o.get("text", "").splitlines():
                label, _, rest = line.partition(" ")
                if label in ("BEFORE", "AFTER"):
                    out[label] = json.loads(rest)
                if label == "WROTE":
                    out[label] = rest
    return out


CLEAN = {"builtins": False, "env": False, "module": False, "files": [], "names": False, "numpy": False,
         "torch": False, "preloaded": ["numpy", "torch"]}


@pytest.mark.slow
def test_kernels_started_ahead_on_one_worker(graded):
    _, run, timings = graded
    assert {r.student: r.score for r in run.results} == dict.fromkeys(STUDENTS, 5.0)
    assert set(timings) == set(STUDENTS)
    assert all(t.get("preload", 0) > 0 for t in timings.values()), timings
    # The course process's own share of each submission (what bounds how many workers it feeds).
    assert all(t.get("checking", 0) > 0 and t.get("writing", 0) > 0 for t in timings.values()), timings
    # With one worker, each later job started (kernel, preload) while the one before ran:
    # the jobs' times add up to more than the time from the first start to the last end.
    assert all(t.get("ahead", 0) > 0 for t in timings.values()), timings
    first_start = min(t["at"] - t["job"] - t["writing"] for t in timings.values())
    last_end = max(t["at"] for t in timings.values())
    assert sum(t["job"] for t in timings.values()) > (last_end - first_start) + 1.0, timings


@pytest.mark.slow
def test_each_submission_sees_a_fresh_kernel(graded):
    course, _, _ = graded
    for student, tamper in STUDENTS.items():
        looks = _looks(course, student)
        # The preloaded modules are there before the notebook imports anything, untouched.
        assert looks["BEFORE"] == CLEAN, (student, looks)
        if tamper:  # the same look sees the tampering in the kernel that did it
            after = looks["AFTER"]
            assert after["builtins"] and after["env"] and after["module"] and after["names"], after
            assert after["numpy"] and after["torch"] and after["files"], after
            assert looks["WROTE"] == "[]", looks  # the modules' files cannot be changed


def test_preload_list_from_the_source_notebooks(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        new_code_cell("import os, math\nimport matplotlib.pyplot as plt\nfrom coursekit.plots import x"),
        new_code_cell("from torch import nn\nfrom . import rel\nimport autograder.a1_rnn_cells.checks\nimport pandas"),
        new_code_cell("def f(:\n  pass")])  # a syntax error is skipped
    nbformat.write(nb, tmp_path / "a.ipynb")
    assert worker.preload_modules(tmp_path) == ["torch", "matplotlib.pyplot", "coursekit.plots", "pandas"]
    nbformat.write(nbformat.v4.new_notebook(cells=[new_code_cell("import os")]), tmp_path / "a.ipynb")
    assert worker.preload_modules(tmp_path) == []  # nothing the notebook does not import


def test_preload_code_leaves_no_names():
    ns: dict = {}
    exec(worker.PRELOAD_CODE.format(names=("json", "no_such_module_here")), ns)
    assert set(ns) == {"__builtins__"}


def test_cell_slots_bound_the_jobs_in_cells():
    slots = jobs.CellSlots(1)
    assert slots.try_hold() and not slots.try_hold()
    started = threading.Event()

    def ahead():  # the worker's next job: waits until the first runs cells, then for its slot
        slots.wait_for_cells(timeout=10)
        started.set()
        assert slots.hold(lambda: True)
        slots.started_cells()
        slots.release(in_cells=True)

    t = threading.Thread(target=ahead)
    t.start()
    time.sleep(0.2)
    assert not started.is_set()  # nobody runs cells yet: it does not start its kernel
    slots.started_cells()
    assert started.wait(5)
    time.sleep(0.2)
    assert t.is_alive()  # its kernel is ready, the slot is still taken
    slots.release(in_cells=True)
    t.join(5)
    assert not t.is_alive()
    assert slots.try_hold()
    assert not slots.hold(lambda: False)  # a grading process that died stops waiting


# ------------------------------------------------------------------ the kernel client

def test_sandboxed_kernels_get_the_ready_client():
    km = worker.SandboxedKernelManager(kernel_name="python3")
    assert isinstance(km.client(), worker.ReadyKernelClient)


class _Recording(worker.ReadyKernelClient):
    info = None

    def _handle_kernel_info_reply(self, msg):
        self.info = msg
        super()._handle_kernel_info_reply(msg)


async def _plain_kernel():
    from jupyter_client.manager import AsyncKernelManager

    km = AsyncKernelManager(kernel_name="python3", client_factory=_Recording)
    await km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kc = km.client()
    kc.start_channels()
    return km, kc


def test_ready_client_waits_for_the_kernel_and_its_first_cell_reads_only_its_own_output():
    import asyncio

    async def run():
        km, kc = await _plain_kernel()
        try:
            await kc.wait_for_ready(timeout=60)
            assert kc.info["msg_type"] == "kernel_info_reply"  # ready means it answered
            out = []
            reply = await kc.execute_interactive("print('first')", timeout=60, output_hook=lambda m: out.append(m))
            return reply["content"]["status"], [(m["msg_type"], m["content"].get("text")) for m in out
                                                if m["msg_type"] in ("stream", "error", "execute_result")]
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    assert asyncio.run(run()) == ("ok", [("stream", "first\n")])


def test_ready_client_says_so_when_the_kernel_died_before_answering():
    import asyncio

    async def run():
        km, kc = await _plain_kernel()
        try:
            await km.shutdown_kernel(now=True)  # gone before it could answer
            with pytest.raises(RuntimeError, match="died before replying"):
                await kc.wait_for_ready(timeout=30)
        finally:
            kc.stop_channels()

    asyncio.run(run())
