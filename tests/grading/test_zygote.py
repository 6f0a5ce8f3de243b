"""Kernels forked from the preloaded zygote (coursectl/grading/zygote.py) into a job's own
bubblewrap sandbox see what a kernel that bwrap starts itself sees: the same ids, no
capabilities, the same namespaces' kinds (their own, not the host's nor another kernel's),
limits, control group, files, environment and sys.path. The sandbox ends with the kernel,
its exit code reaches jupyter_client, and whatever goes wrong before the kernel starts
falls back to the ordinary start. (The attack suites and test_warm_kernel.py run through
the zygote as well: `course grade` uses it.)"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import tempfile
import time

import pytest

from coursectl.grading import cgroups, sandbox, worker, zygote

pytestmark = pytest.mark.skipif(sandbox.unavailable() is not None or zygote.supported() is not None,
                                reason="needs bubblewrap and root")

PROBE = r'''
import json, os, sys, ctypes
st = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
info = {k: st[k].strip() for k in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                                   "NoNewPrivs", "Seccomp", "Umask")}
info["ns"] = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup")}
info["ppid"] = os.getppid()
info["cwd"] = os.getcwd()
info["root"] = sorted(os.listdir("/"))
info["home"] = sorted(os.listdir(os.path.expanduser("~")))
info["env"] = dict(os.environ)
info["path"] = sys.path
info["argv0"] = os.path.basename(sys.argv[0])
info["limits"] = open("/proc/self/limits").read()
info["cgroup"] = open("/proc/self/cgroup").read()
info["hostname"] = os.uname().nodename
info["interfaces"] = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None
info["preloaded"] = "torch" in sys.modules
info["ours"] = sorted(m for m in sys.modules if m.split(".")[0] in ("autograder", "coursectl", "sandbox", "zygote"))
libc = ctypes.CDLL(None, use_errno=True)
info["new_userns"] = libc.unshare(0x10000000)  # CLONE_NEWUSER: refused in both
info["setuid0"] = libc.setuid(0)
import pandas  # preloaded by the zygote: what it set as it was imported, then its default
info["pandas_max_columns"] = [pandas.get_option("display.max_columns")]
pandas.reset_option("display.max_columns")
info["pandas_max_columns"].append(pandas.get_option("display.max_columns"))
print("PROBE" + json.dumps(info))
'''


@pytest.fixture(scope="module")
def zygote_address():
    environ = dict(os.environ)
    opts = sandbox.plan(tempfile.gettempdir(), data_dir=sandbox.default_data_dir(environ))
    kernel_env = sandbox.kernel_env(environ, opts, f"{sandbox.HOME}/work")
    zygotes = zygote.Zygotes()
    address, pid = zygotes.address(["numpy", "torch", "pandas"], kernel_env, opts["home_files"])
    end = time.monotonic() + 120
    while time.monotonic() < end:  # until it listens (its imports done)
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(address)
            s.close()
            break
        except OSError:
            time.sleep(0.1)
    yield address, pid
    zygotes.stop()


class Kernel:
    """A kernel started by worker.SandboxedKernelManager with `course grade`'s sandbox
    settings (through the zygote at ``address``, or by bwrap itself without one)."""

    def __init__(self, tmp_path, address: tuple[str, int] | None, memory_mb: int = 4096):
        runtime = tempfile.mkdtemp(prefix="krt")
        self.saved = dict(worker.SANDBOX)
        worker.SANDBOX.clear()
        worker.SANDBOX.update(memory_mb=memory_mb, no_network=True, max_processes=256, runtime_dir=runtime,
                              status_file=str(tmp_path / "kernels.jsonl"))
        worker.SANDBOX.update(sandbox.plan(runtime), bwrap=sandbox.find_bwrap())
        if address:
            worker.SANDBOX["zygote"], worker.SANDBOX["zygote_pid"] = address
        self.env = dict(os.environ, JUPYTER_RUNTIME_DIR=runtime)
        self.km = worker.SandboxedKernelManager(kernel_name="python3")
        self.kc = None

    async def start(self):
        old = os.environ.get("JUPYTER_RUNTIME_DIR")
        os.environ["JUPYTER_RUNTIME_DIR"] = self.env["JUPYTER_RUNTIME_DIR"]
        try:
            await self.km.start_kernel(cwd=tempfile.gettempdir())
        finally:
            if old is None:
                os.environ.pop("JUPYTER_RUNTIME_DIR", None)
            else:
                os.environ["JUPYTER_RUNTIME_DIR"] = old
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=60)

    async def run(self, code: str, timeout: float = 60) -> str:
        out: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        await self.kc.execute_interactive(code, output_hook=hook, timeout=timeout)
        return "".join(out)

    async def probe(self) -> dict:
        text = await self.run(PROBE)
        return json.loads(text[text.index("PROBE") + 5:])

    async def stop(self):
        if self.kc is not None:
            self.kc.stop_channels()
        await self.km.shutdown_kernel(now=True)
        worker.SANDBOX.clear()
        worker.SANDBOX.update(self.saved)


def _run(coro):
    return asyncio.run(coro)


async def _probe_both(tmp_path, address):
    """Both kernels' probes, taken while both run: a namespace's id is an inode number that
    the kernel may give again once the namespace is gone, so ids of kernels that did not
    live at the same time could match by reuse."""
    out, started = {}, []
    try:
        for name, addr in (("forked", address), ("bwrap", None)):
            (tmp_path / name).mkdir()
            k = Kernel(tmp_path / name, addr)  # each stop() puts back the SANDBOX its __init__ found
            started.append(k)
            await k.start()
            out[name] = await k.probe()
            out[name]["forked_pid"] = k.km.forked_pid
            out[name]["group"] = k.km._group.folders if k.km._group else None
    finally:
        for k in reversed(started):
            await k.stop()
    return out


def test_forked_kernel_sees_what_a_bwrap_kernel_sees(tmp_path, zygote_address):
    got = _run(_probe_both(tmp_path, zygote_address))
    forked, plain = got["forked"], got["bwrap"]
    assert forked["forked_pid"] and not plain["forked_pid"]  # it did come from the zygote
    assert forked["preloaded"] and not plain["preloaded"]
    assert forked["ours"] == plain["ours"] == []  # nothing of the grader in either kernel
    for key in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp",
                "Umask", "ppid", "cwd", "root", "home", "path", "argv0", "limits", "cgroup", "hostname", "interfaces",
                "new_userns", "setuid0"):
        assert forked[key] == plain[key], key
    # pandas sets display.max_columns as it is imported from whether it runs in a kernel: the
    # zygote imported it out of one, and its kernels still get a kernel's default.
    assert forked["pandas_max_columns"] == plain["pandas_max_columns"] == [20, 20]
    assert forked["CapEff"] == forked["CapPrm"] == forked["CapAmb"] == "0000000000000000"
    assert forked["NoNewPrivs"] == "1" and forked["new_userns"] == -1 and forked["setuid0"] == -1
    # Each kernel in namespaces of its own: not the host's, not the other kernel's.
    host = {n: os.readlink(f"/proc/self/ns/{n}") for n in forked["ns"]}
    for n in forked["ns"]:
        assert len({forked["ns"][n], plain["ns"][n], host[n]}) == 3, n
    # The same environment, but for the kernel's own runtime folder and what torch's
    # preloaded import adds (a fresh kernel adds it at its own first import of torch._dynamo).
    own = ("JUPYTER_RUNTIME_DIR", "TORCHINDUCTOR_CACHE_DIR")
    assert {k: v for k, v in forked["env"].items() if k not in own} == \
        {k: v for k, v in plain["env"].items() if k not in own}


def test_forked_kernel_is_in_its_jobs_control_group(tmp_path, zygote_address):
    if cgroups.detect().kind == "none":
        pytest.skip("no control groups here")

    async def go():
        k = Kernel(tmp_path, zygote_address)
        await k.start()
        try:
            pid, group = k.km.forked_pid, k.km._group
            with open(f"/proc/{pid}/cgroup") as fh:
                lines = fh.read()
            return pid, group, lines
        finally:
            await k.stop()

    pid, group, lines = _run(go())
    assert pid and group is not None
    assert any(os.path.basename(folder) in lines for folder in group.folders), (lines, group.folders)


def test_exit_code_reaches_jupyter_client_and_the_sandbox_ends(tmp_path, zygote_address):
    marker = "31337"  # a process the kernel leaves behind must not outlive its sandbox

    async def go(address):
        k = Kernel(tmp_path, address)
        await k.start()
        proc = k.km.provisioner.process
        k.kc.execute(f"import subprocess, os\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                     "import time; time.sleep(0.5)\nos._exit(7)")
        end = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < end:
            await asyncio.sleep(0.05)
        code = proc.poll()
        await k.stop()
        return code

    for address in (zygote_address, None):
        assert _run(go(address)) == 7
        time.sleep(0.5)
        left = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if fh.read() == b"sleep\0" + marker.encode() + b"\0":
                        left.append(pid)
            except OSError:
                pass
        assert left == [], address


def test_falls_back_to_the_ordinary_start(tmp_path):
    async def go():
        k = Kernel(tmp_path, (str(tmp_path / "no-zygote-here"), None))
        await k.start()
        try:
            return k.km.forked_pid, (await k.probe())
        finally:
            await k.stop()

    forked_pid, info = _run(go())
    assert forked_pid is None and not info["preloaded"]
    assert info["CapEff"] == "0000000000000000" and info["Uid"].split()[0] == str(sandbox.KERNEL_UID)


def test_zygote_refuses_what_is_not_a_holder_or_its_environment(zygote_address):
    with pytest.raises(RuntimeError, match="not a sandbox's holder"):
        zygote.request_kernel(zygote_address[0], {"holder": os.getpid(), "argv": KERNEL_ARGV, "env": _zygote_env(),
                                               "cwd": "/", "uid": 1000, "gid": 1000})
    with pytest.raises(RuntimeError, match="environment is not this zygote's"):
        zygote.request_kernel(zygote_address[0], {"holder": os.getpid(), "argv": KERNEL_ARGV,
                                               "env": dict(_zygote_env(), OMP_NUM_THREADS="97"),
                                               "cwd": "/", "uid": 1000, "gid": 1000})


KERNEL_ARGV = [sys.executable, "-m", "ipykernel_launcher"]


def _zygote_env() -> dict:
    environ = dict(os.environ)
    opts = sandbox.plan(tempfile.gettempdir(), data_dir=sandbox.default_data_dir(environ))
    return sandbox.kernel_env(environ, opts, f"{sandbox.HOME}/work")


def test_preload_lists():
    nb = {"cells": [{"cell_type": "code", "source": ["import numpy as np\n", "from torch import nn\n"]},
                    {"cell_type": "code", "source": "import autograder\nimport matplotlib.pyplot as plt"},
                    {"cell_type": "code", "source": "from tqdm.auto import tqdm\nfrom coursekit.plots import seed_table"},
                    {"cell_type": "markdown", "source": "import pandas"}]}
    names = zygote.preload_modules([json.dumps(nb), "not json"])
    assert names == ["numpy", "torch", "matplotlib.pyplot", "coursekit.plots"]  # not tqdm (test_speedups)
    assert zygote.zygote_preload(names) == ["numpy", "torch", "matplotlib.pyplot", "coursekit.plots",
                                            "torch._dynamo", "matplotlib.backends.backend_agg", "pandas"]


def test_plain_nbgrader_can_fork_its_kernels(tmp_path):
    """`nbgrader autograde --SandboxedKernelManager.preloaded=True`: each submission's kernel
    comes from the zygote (torch is there before the notebook imports anything), with the
    scores of the ordinary start."""
    import nbformat
    from nbformat.v4 import new_code_cell

    from fixtures.grading import tiny
    from nbcourse import make_course, nbgrader, scores, submit

    course = tiny.make_course(tmp_path, generate=False)
    source = course / "source" / tiny.ASSIGNMENT / "tiny.ipynb"
    nb = nbformat.read(source, as_version=4)
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup").source = \
        "import math\nimport torch\nfrom coursekit import shrink"
    nbformat.write(nb, source)
    nbgrader(course, "generate_assignment", tiny.ASSIGNMENT, "--force")
    look = new_code_cell("import sys; print('TORCH-BEFORE', 'torch' in sys.modules)")
    for student in ("s1", "s2"):
        sub = tiny.good()
        sub.cells.insert(1, look)
        submit(course, student, tiny.ASSIGNMENT, sub, name="tiny.ipynb")
    seen = {}
    for flag in ("True", "False"):
        nbgrader(course, "autograde", tiny.ASSIGNMENT, "--force", f"--SandboxedKernelManager.preloaded={flag}")
        for student in ("s1", "s2"):
            out = nbformat.read(course / "autograded" / student / tiny.ASSIGNMENT / "tiny.ipynb", as_version=4)
            text = "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
            seen[flag, student] = ("TORCH-BEFORE True" in text, scores(course, tiny.ASSIGNMENT, student))
    assert all(seen["True", s][0] and not seen["False", s][0] for s in ("s1", "s2")), seen
    assert all(seen["True", s][1] == seen["False", s][1] for s in ("s1", "s2")), seen


def test_a_forked_child_starts_afresh_and_leaves_its_parents_zygotes_alone(tmp_path):
    """A process pool's worker forked from a process with zygotes must neither end them nor
    reuse their socket names (it once unlinked one, and the next kernels waited 30 s)."""
    zygotes = zygote.Zygotes()
    address, pid = zygotes.address([], _zygote_env(), [])
    end = time.monotonic() + 30
    while not os.path.exists(address) and time.monotonic() < end:  # bound as the zygote starts
        time.sleep(0.02)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        ok = zygotes._running == {} and zygotes._folder is None
        theirs = zygotes.address([], _zygote_env(), [])
        ok = ok and theirs is not None and theirs[0] != address and theirs[1] != pid
        zygotes.stop()  # its own only
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    got = os.read(read, 1)
    os.waitpid(child, 0)
    try:
        assert got == b"1"
        assert os.path.exists(address) and zygote._alive(pid)
    finally:
        zygotes.stop()
    assert not os.path.exists(address)


def test_course_no_zygote_turns_it_off():
    from coursectl.grading import jobs

    assert jobs._zygote_for({}, {"COURSE_NO_ZYGOTE": "1"}) is None


def test_the_pools_threads_parse_a_preload_list_once_and_one_at_a_time(monkeypatch):
    """Every job asks for its zygote from one of the pool's threads; the notebooks'
    imports are parsed once per run, never by two threads at once (CPython 3.11's ast
    module raced: a SystemError failed a demo submission)."""
    import threading

    from coursectl.grading import jobs

    active, most, calls = [0], [0], []
    real = zygote.preload_modules

    def counted(texts):
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.05)  # long enough for the other threads to arrive
        calls.append(texts)
        active[0] -= 1
        return real(texts)
    monkeypatch.setattr(zygote, "preload_modules", counted)
    monkeypatch.setattr(jobs, "_PRELOADS", {})
    texts = ['{"cells": [{"cell_type": "code", "source": "import numpy\\nimport torch"}]}']
    got = []
    threads = [threading.Thread(target=lambda: got.append(jobs._preload_for(texts))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and most[0] == 1
    assert got == [["numpy", "torch"]] * 8
    jobs._preload_for(texts + texts)  # another assignment's notebooks: parsed anew
    assert len(calls) == 2


def test_an_adopted_zygote_is_used_never_ended_and_replaced_once_gone(tmp_path, monkeypatch):
    """Zygotes.adopt (a LocalCluster's worker and the course process's zygote): the
    registry answers with it instead of starting one, leaves it running when it stops,
    and starts its own once the adopted one is gone."""
    import subprocess

    reg = zygote.Zygotes()
    started = []
    monkeypatch.setattr(reg, "_start", lambda *a: started.append(a) or (subprocess.Popen(["sleep", "60"]),
                                                                        str(tmp_path / "own")))
    env, preload = {"PATH": "/usr/bin"}, ["numpy"]
    lent = subprocess.Popen(["sleep", "60"])
    address = tmp_path / "lent"
    address.touch()
    try:
        reg.adopt(zygote.Zygotes.key(preload, env), str(address), lent.pid)
        assert reg.address(preload, env, []) == (str(address), lent.pid) and not started
        assert reg.address(["torch"], env, [])[0] == str(tmp_path / "own") and len(started) == 1  # other modules
        reg.stop()
        assert lent.poll() is None and address.exists()  # not ours to end
        reg.adopt(zygote.Zygotes.key(preload, env), str(address), lent.pid)
        lent.kill()
        lent.wait()
        assert reg.address(preload, env, [])[0] == str(tmp_path / "own") and len(started) == 2
        assert address.exists()  # the owner's socket: left alone
    finally:
        lent.kill()
        reg.stop()
