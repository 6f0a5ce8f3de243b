"""Kernels forked from a preloaded process (a zygote) into each job's own sandbox.

A sandboxed kernel that starts from nothing spends 2 to 3 s of CPU importing torch (and
the torch._dynamo that its first optimiser pulls in), numpy, matplotlib, ipykernel and the
course's packages, on every submission: on two cores, a third of what grading costs. So
`course grade`, where it runs as root, starts one zygote per assignment (and kernel
environment): this file run as a plain script (the standard library, nothing else of this
package), which imports those modules once and then forks one kernel per request. Nothing of a job ever enters the zygote: it accepts a connection and forks, and
only the child reads the request.

Each kernel still gets a sandbox of its own, made by the same launcher and bwrap command
as before (sandbox.py, with the job's control group and limits), except that bwrap runs a
tiny *holder* (HOLDER_CODE) as the sandbox's PID 1 (--as-pid-1) instead of the kernel.
The zygote's child then:

1. checks the request (the zygote's own kernel environment, an ipykernel command, a pid
   that runs exactly the holder's command line: bwrap exec's it once the sandbox is built);
2. applies the job's limits with the launcher's own function (sandbox.py's
   limit_this_process: its control group, RLIMIT_CORE and RLIMIT_AS) while it still sees
   the host;
3. joins the holder's IPC, UTS, network, cgroup, PID, mount and (last) user namespaces
   (setns: it is the host's root, which has rights over them all), checks that it sees the
   sandbox's files and not the host's, and forks twice: the first child is a process of
   the sandbox's PID namespace; it forks the kernel and exits, so the kernel, orphaned in
   that namespace, is adopted by the holder. The holder reaps it (and any orphan, as
   bwrap's init does) and exits with its exit code: the whole sandbox ends with the
   kernel, and jupyter_client sees the code, as when bwrap runs the kernel itself;
4. in the kernel process: a new session, /dev/null and the holder's stdout and stderr, no
   capabilities (effective, permitted, inheritable, ambient; the bounding set cut to the
   holder's), no new privileges, the sandbox's uid and gid, the holder's umask, every
   other file descriptor closed, the working folder, environment, ``sys.path`` and
   ``sys.argv`` that `python -m ipykernel_launcher` would have there; then ipykernel.

tests/grading/test_zygote.py compares what such a kernel sees with what a kernel started
by bwrap sees (ids, capabilities, namespaces, limits, files, environment, ``sys.path``),
and the attack suites run through it unchanged. Anything that goes wrong before the kernel
starts makes the kernel manager fall back to the ordinary start (worker.py).

What differs, knowingly: the kernel's pid (3, not 2: the holder is 1), it leads its own
session, the modules are imported before the kernel starts (as with worker.PRELOAD_CODE,
plus torch._dynamo), and their memory is shared copy-on-write with the zygote, so the
job's control group is not charged for pages the kernel never writes. A module that asks
IPython's builtin ``get_ipython()`` as it is imported whether it runs in a kernel (pandas,
for its display defaults) is told yes, as in a kernel; tqdm, which looks further, is left
to the kernel (PRELOAD_PACKAGES).

Run as ``python zygote.py SOCKET PRELOAD_JSON FONTS_JSON`` (by ``Zygotes``): the environment
it is started with is the kernel environment of its jobs (a request with another one is
refused); it exits when its standard input closes (the process that started it is gone).
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import socket
import struct
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
# In the order they are joined: the user namespace last. bwrap's other namespaces belong to
# its outer user namespace, the kernel's is one nested in it (--disable-userns), where
# nothing has rights over them: only the host's root has, until it joins.
NAMESPACES = (("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("net", CLONE_NEWNET), ("cgroup", CLONE_NEWCGROUP),
              ("pid", CLONE_NEWPID), ("mnt", CLONE_NEWNS), ("user", CLONE_NEWUSER))
# Only for the kernel's own variables: the rest of the request must equal the zygote's start.
PER_KERNEL_ENV = ("PWD", "JUPYTER_RUNTIME_DIR")
REPLY_TIMEOUT_S = 30.0
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}  # where the zygote is used (supported())

# What bwrap runs as PID 1 of a forked kernel's sandbox (--as-pid-1) instead of the kernel:
# wait for the kernel to arrive as its child (its first), reap whatever ends (orphans come
# here, as to bwrap's own init), and exit with the kernel's exit code when it ends, so that
# the whole sandbox ends and jupyter_client sees the code, as when bwrap runs the kernel.
HOLDER_CODE = """\
import os, time
kids = []
while not kids:
    try:
        with open('/proc/1/task/1/children') as fh:
            kids = fh.read().split()
    except OSError:
        pass
    time.sleep(0 if kids else 0.002)
kernel = int(kids[0])
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        os._exit(1)
    if pid == kernel:
        code = os.waitstatus_to_exitcode(status)
        os._exit(code if code >= 0 else 128 - code)
"""


def holder_command() -> list[str]:
    return [sys.executable, "-I", "-S", "-c", HOLDER_CODE]


# --------------------------------------------------------------------------- grader side

# What the trusted start-up code imports in a kernel before the submission's first cell
# (worker.PRELOAD_CODE, or the zygote): each module of these packages that the
# instructor's source notebooks import (the hidden grader packages are never among them,
# and cannot be imported in the sandbox anyway).
# Not tqdm: tqdm.auto picks its bar (a notebook widget or text on stderr) as it is imported,
# from what it finds of a kernel, and ipywidgets (which its widget bar imports) registers its
# comm target with the running kernel as it is imported: imported in the zygote, neither
# would be what a kernel started afresh has.
PRELOAD_PACKAGES = ("numpy", "torch", "matplotlib", "pandas", "coursekit", "data_scripts")
PRELOAD_FIRST = ("numpy", "torch")  # first, where the notebooks import them at all
# Imported by the zygote only, after the list, for a module of the list: what using it
# imports on first use, which a kernel started afresh pays only if the notebook does that.
# torch's first optimiser imports torch._dynamo (1 s); the inline backend draws a notebook's
# first figure with Agg; a1's seed_table, called while graded, makes a pandas table (0.4 s
# of CPU in each kernel; pandas imported in a process without a kernel is the same module).
# tests/grading/test_speedups.py runs the helpers the graded notebooks call after these.
ZYGOTE_EXTRA = {"torch": ("torch._dynamo",), "matplotlib.pyplot": ("matplotlib.backends.backend_agg",),
                "coursekit.plots": ("pandas",)}
# What every kernel imports as it starts (IPKernelApp.initialize: the debugger with debugpy,
# the shell's history in SQLite, pdb), after the fork unless the zygote has them: 0.07 s of
# CPU per kernel. The same modules a kernel started afresh has before its first cell.
KERNEL_START_MODULES = ("ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger", "IPython.core.debugger",
                        "IPython.core.oinspect", "IPython.core.completerlib", "IPython.core.logger",
                        "IPython.extensions.storemagic", "sqlite3")


def preload_modules(notebook_texts: list) -> list:
    """The modules to preload for notebooks (their JSON texts): each module of
    PRELOAD_PACKAGES they import (absolute imports, in order; numpy and torch first)."""
    import ast

    names = []
    for text in notebook_texts:
        try:
            cells = json.loads(text).get("cells", [])
        except (ValueError, AttributeError):
            continue
        for cell in cells:
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            try:
                body = ast.parse("".join(source) if isinstance(source, list) else str(source))
            except (SyntaxError, ValueError):
                continue
            for node in ast.walk(body):
                found = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                         else [])
                names += [n for n in found if n.split(".")[0] in PRELOAD_PACKAGES]
    first = [n for n in PRELOAD_FIRST if any(m.split(".")[0] == n for m in names)]
    return list(dict.fromkeys(first + names))


def zygote_preload(preload: list) -> list:
    """What a zygote imports for kernels that preload ``preload``."""
    extra = [x for name in preload for x in ZYGOTE_EXTRA.get(name, ())]
    return list(dict.fromkeys(list(preload) + extra))


def _is_holder(pid: int) -> bool:
    """Whether ``pid`` runs HOLDER_CODE: bwrap has exec'd it, so its sandbox is complete.
    (bwrap's own processes carry the same words among their arguments: only an exact
    command line counts.)"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read() == b"\0".join(a.encode() for a in holder_command()) + b"\0"
    except OSError:
        return False


def find_holder(launcher_pid: int, timeout: float = 30.0) -> int:
    """The host pid of the holder that bwrap (exec'd by the launcher ``launcher_pid``)
    runs in its sandbox, once it runs HOLDER_CODE."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not os.path.exists(f"/proc/{launcher_pid}"):
            raise RuntimeError("the sandbox's launcher ended before its holder started")
        level = [launcher_pid]
        for _ in range(3):  # bwrap, its init in the sandbox, the holder
            kids = []
            for pid in level:
                try:
                    with open(f"/proc/{pid}/task/{pid}/children") as fh:
                        kids += [int(k) for k in fh.read().split()]
                except OSError:
                    continue
            for kid in kids:
                if _is_holder(kid):
                    return kid
            level = kids
        time.sleep(0.003)
    raise RuntimeError(f"no sandbox holder after {timeout:.0f} s")


def request_kernel(address: str, request: dict, timeout: float = REPLY_TIMEOUT_S, pid: int | None = None) -> None:
    """Ask the zygote at ``address`` (process ``pid``) for a kernel in the sandbox of
    ``request['holder']``; once this returns, the kernel is the holder's child.
    RuntimeError (why) if the zygote is not there or refused."""
    sock = _connect(address, timeout, pid)
    try:
        body = json.dumps(request).encode()
        sock.sendall(struct.pack("!I", len(body)) + body)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    except OSError as exc:
        raise RuntimeError(f"the preloaded kernel process did not answer ({exc})") from None
    finally:
        sock.close()
    answer = json.loads(reply or b'{"error": "no answer"}')
    if not answer.get("ok"):
        raise RuntimeError(answer.get("error", "refused"))


def kernel_of(holder: int, timeout: float = 5.0) -> int | None:
    """The host pid of the kernel the holder ``holder`` adopted (its first child)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{holder}/task/{holder}/children") as fh:
                kids = fh.read().split()
        except OSError:
            return None
        if kids:
            return int(kids[0])
        time.sleep(0.005)
    return None


def _connect(address: str, timeout: float, pid: int | None = None) -> socket.socket:
    """A connection to the zygote; while it is still importing (its socket is bound but
    not listening) wait for it, up to ``timeout``, while its process ``pid`` lives: the
    modules are faster to get there than to import again beside it."""
    end = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except (ConnectionRefusedError, FileNotFoundError) as exc:  # not listening yet, or not bound yet
            sock.close()
            if isinstance(exc, FileNotFoundError) and pid is None:
                raise RuntimeError(f"no preloaded kernel process ({exc.strerror})") from None
            if time.monotonic() > end:
                raise RuntimeError(f"the preloaded kernel process was not ready after {timeout:.0f} s") from None
            if pid is not None and not _alive(pid):
                raise RuntimeError("the preloaded kernel process has ended") from None
            time.sleep(0.02)
        except OSError as exc:  # gone (its socket with it) or never there
            sock.close()
            raise RuntimeError(f"no preloaded kernel process ({exc.strerror or exc})") from None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def supported() -> str | None:
    """None where kernels can be forked from a zygote here, else why not."""
    if os.geteuid() != 0:
        return "the grader does not run as root (setns into the sandbox needs it)"
    if os.uname().machine not in SYS_CAPSET:
        return f"not on {os.uname().machine}"
    if not os.path.exists("/proc/self/task/%d/children" % os.getpid()):
        return "/proc has no children lists"
    return None


def zygote_env(kernel_env: dict) -> dict:
    """The part of a kernel's environment a zygote is started with (and checks)."""
    return {k: v for k, v in kernel_env.items() if k not in PER_KERNEL_ENV}


class Zygotes:
    """The zygotes of this process (the one that runs jobs.grade_job): one per preload
    list and kernel environment, started on first use, in the background (kernels wait
    for it: _connect), at most MAX_ZYGOTES at once (the least recently used goes). They
    end with this process."""

    MAX_ZYGOTES = 3  # each holds torch and the rest in memory (about 0.5 GB)

    def __init__(self):
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """A fresh registry: in a forked child (a process pool's worker, say) the parent's
        zygotes are the parent's, never to be ended or named again from here."""
        import threading

        self._lock = threading.Lock()
        self._running: dict = {}  # key -> (process, address), least recently used first
        self._folder: str | None = None
        self._started = 0

    @staticmethod
    def key(preload: list, env: dict) -> str:
        """What a zygote is for: its modules and its kernels' environment."""
        return json.dumps([preload, sorted(zygote_env(env).items())])

    def adopt(self, key: str, address: str, pid: int) -> None:
        """Use for ``key`` the zygote (``address``, ``pid``) another process of this machine
        started, as a LocalCluster's workers use the one of the `course grade` process that
        started them: one zygote's imports instead of one per worker. It stays that
        process's: never ended from here; once gone, this process starts its own."""
        with self._lock:
            self._running.setdefault(key, (_Borrowed(pid, address), address))

    def address(self, preload: list, env: dict, font_files: list) -> tuple[str, int] | None:
        """(socket, pid) of the zygote for these modules and environment (starting it if
        needed), or None where zygotes cannot be used here."""
        if supported() is not None:
            return None
        key = self.key(preload, env)
        with self._lock:
            proc, address = self._running.pop(key, (None, None))
            if proc is None or proc.poll() is not None:
                if proc is not None:
                    self._end(proc, address)
                while len(self._running) >= self.MAX_ZYGOTES:
                    self._end(*self._running.pop(next(iter(self._running))))
                proc, address = self._start(preload, env, font_files)
            self._running[key] = (proc, address)
            return address, proc.pid

    def _start(self, preload: list, env: dict, font_files: list):
        import subprocess
        import tempfile

        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="zyg")  # 0700: no kernel can reach it
            import atexit

            atexit.register(self.stop)
        self._started += 1
        address = os.path.join(self._folder, f"z{self._started}")
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), address, json.dumps(preload),
                                 json.dumps(font_files)], stdin=subprocess.PIPE, env=zygote_env(env),
                                cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return proc, address

    @staticmethod
    def _end(proc, address: str) -> None:
        if isinstance(proc, _Borrowed):  # its owner ends it
            return
        try:
            proc.stdin.close()
            proc.kill()
            proc.wait(timeout=5)
        except Exception:
            pass
        try:
            os.unlink(address)  # a kernel manager still asking falls back at once
        except OSError:
            pass

    def stop(self) -> None:
        with self._lock:
            for proc, address in self._running.values():
                self._end(proc, address)
            self._running.clear()
            if self._folder:
                import shutil

                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None


class _Borrowed:
    """An adopted zygote (Zygotes.adopt), in the registry's place of a Popen."""

    def __init__(self, pid: int, address: str):
        self.pid, self.address = pid, address

    def poll(self) -> int | None:
        return None if _alive(self.pid) and os.path.exists(self.address) else 1


ZYGOTES = Zygotes()


# --------------------------------------------------------------------------- the zygote


_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _private_home(home: str, font_files: list) -> None:
    """Give the zygote its own mount namespace with an empty HOME (a kernel's, so
    that what modules note at import, matplotlib's folders say, holds in the sandbox too)
    without touching the host's folders."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(mount)")
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    parent = os.path.dirname(home)
    if not os.path.isdir(parent):
        raise RuntimeError(f"no {parent} to hold a private {home}")
    _check(_libc.mount(b"tmpfs", parent.encode(), b"tmpfs", 0, b"size=67108864"), f"mount tmpfs {parent}")
    os.makedirs(home, exist_ok=True)
    for host, rel in font_files:
        dest = os.path.join(home, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(host, "rb") as src, open(dest, "wb") as out:
            out.write(src.read())


class _KernelShellStandIn:
    """What a module imported by the zygote finds when it asks IPython's builtin
    ``get_ipython()`` whether it runs in a kernel: a shell with a kernel, as the trusted
    start-up code and the notebook's imports find in a kernel started afresh. pandas sets
    the default of display.max_columns from it as it is imported (20 in a kernel, 0, fit
    the terminal, outside one). Nothing else is there: a module that wants more of the
    shell fails to import here and is imported by the kernel itself."""

    kernel = None


@contextlib.contextmanager
def _kernel_in_sight():
    import builtins

    if hasattr(builtins, "get_ipython"):
        yield
        return
    builtins.get_ipython = _KernelShellStandIn
    try:
        yield
    finally:
        del builtins.get_ipython


def _preload(names: list) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # the notebook's own import will say why
            pass


def serve(address: str, preload: list, font_files: list, own_path: str) -> None:
    # Bound now, listening once the modules are in (a connection is refused until then);
    # the socket goes if the zygote cannot serve, so that no one waits for it.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    try:
        _prepare(preload, font_files, own_path)
    except BaseException:
        os.unlink(address)
        raise
    listener.listen(16)  # ready: whoever connects now gets a preloaded kernel
    _serve(listener)


def _prepare(preload: list, font_files: list, own_path: str) -> None:
    home = os.environ.get("HOME", "/home/student")
    _private_home(home, font_files)
    os.chdir(home)
    # What ipykernel sets before any cell (kernelapp.init_gui_pylab), so that matplotlib,
    # imported here, picks the same backend as in a kernel started afresh.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    with _kernel_in_sight():
        _preload(zygote_preload(preload))
    import ipykernel.kernelapp  # noqa: F401  (the kernel itself, imported once)

    _preload(list(KERNEL_START_MODULES))

    # Every module this package's own files brought in goes: a kernel must not find them.
    for name in [n for n, m in sys.modules.items() if getattr(m, "__file__", None) == own_path]:
        del sys.modules[name]
    import gc

    gc.collect()
    gc.freeze()


def _serve(listener: socket.socket) -> None:
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [], 1.0)
        while True:  # reap the children that handed their kernel over
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1):
            try:  # whoever started us is gone: our socket goes, and its folder once empty
                os.unlink(listener.getsockname())
                os.rmdir(os.path.dirname(listener.getsockname()))
            except OSError:
                pass
            os._exit(0)
        if listener in ready:
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                _child(conn)  # never returns
            conn.close()


def _recv_request(conn: socket.socket) -> dict:
    conn.settimeout(REPLY_TIMEOUT_S)
    head = b""
    while len(head) < 4:
        chunk = conn.recv(4 - len(head))
        if not chunk:
            raise RuntimeError("no request")
        head += chunk
    size, body = struct.unpack("!I", head)[0], b""
    while len(body) < size:
        chunk = conn.recv(min(65536, size - len(body)))
        if not chunk:
            raise RuntimeError("request cut short")
        body += chunk
    return json.loads(body)


def _child(conn: socket.socket) -> None:
    """One request: a kernel in the sandbox of request['holder'] (module docstring)."""
    try:
        req = _recv_request(conn)
        want, have = zygote_env(req["env"]), zygote_env(START_ENV)
        if want != have:
            keys = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
            raise RuntimeError(f"the kernel's environment is not this zygote's ({', '.join(keys)[:200]})")
        argv = req["argv"]
        if argv[:3] != [sys.executable, "-m", "ipykernel_launcher"]:
            raise RuntimeError("not an ipykernel command")
        holder = int(req["holder"])
        if not _is_holder(holder):
            raise RuntimeError(f"process {holder} is not a sandbox's holder")
        fds = {name: os.open(f"/proc/{holder}/ns/{name}", os.O_RDONLY) for name, _ in NAMESPACES}
        stdout, stderr = (os.open(f"/proc/{holder}/fd/{i}", os.O_WRONLY) for i in (1, 2))
        umask, bounding = _umask_of(holder), _bounding_set_of(holder)
        _SANDBOX.limit_this_process(req, strict=True)  # as the launcher did to the holder
        for name, flag in NAMESPACES:
            _check(_libc.setns(fds[name], flag), f"setns({name})")
            os.close(fds[name])
        os.chroot("/")  # the sandbox's root (setns into a mount namespace set it)
        if os.path.exists(os.path.abspath(__file__)) or not os.path.isdir(req["cwd"]):
            raise RuntimeError("the sandbox's files are not what bwrap makes")  # never the host's
        first = os.fork()  # in the sandbox's PID namespace, unlike this process
        if first == 0:
            # Fork the kernel and go: orphaned inside the namespace, it is adopted by the
            # holder (PID 1), which reaps it as bwrap's init reaps a kernel bwrap started.
            conn.close()
            if os.fork() == 0:
                _kernel_process(req, (stdout, stderr), umask, bounding)
            os._exit(0)
        os.waitpid(first, 0)
        conn.sendall(b'{"ok": true}\n')
    except BaseException as exc:
        try:
            conn.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:300]}).encode() + b"\n")
        except OSError:
            pass
    os._exit(0)


def _kernel_process(req: dict, stdio: tuple, umask: int, bounding: int) -> None:
    while os.getppid() != 1:  # adopted by the holder before anything else runs here
        time.sleep(0.001)
    try:
        _become_kernel(req, stdio, umask, bounding)
    except BaseException:
        import traceback

        traceback.print_exc()  # into the kernel's stderr: the grader's log
        sys.stderr.flush()
        os._exit(70)
    os._exit(0)


def _bounding_set_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return 0


def _umask_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _drop_privileges(uid: int, gid: int, bounding: int) -> None:
    """The sandbox's ids, no capabilities (effective, permitted, inheritable, ambient),
    a bounding set no larger than ``bounding`` (what bwrap leaves its command), and no way
    to gain privileges. The bounding set goes first: dropping from it needs CAP_SETPCAP."""
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        if not bounding >> cap & 1:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    if _can_setgroups():
        os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    header = struct.pack("II", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = ctypes.create_string_buffer(24)     # two all-zero __user_cap_data_struct
    _check(_libc.syscall(SYS_CAPSET[os.uname().machine], ctypes.c_char_p(header), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _can_setgroups() -> bool:
    try:
        with open("/proc/self/setgroups") as fh:
            return fh.read().strip() == "allow"
    except OSError:
        return False


def _become_kernel(req: dict, stdio: tuple, umask: int, bounding: int) -> None:
    os.setsid()  # no terminal, no session shared with the host (as bwrap --new-session)
    null = os.open("/dev/null", os.O_RDONLY)  # the sandbox's /dev
    for i, fd in enumerate((null,) + tuple(stdio)):
        os.dup2(fd, i)
    os.closerange(3, 65536)
    os.umask(umask)
    _drop_privileges(int(req["uid"]), int(req["gid"]), bounding)
    os.chdir(req["cwd"])
    # The kernel's environment, plus what the preloaded imports set in it (as they would).
    added = {k: v for k, v in os.environ.items() if k not in START_ENV}
    os.environ.clear()
    os.environ.update(req["env"])
    os.environ.update(added)
    import importlib
    import random

    importlib.invalidate_caches()
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()  # fresh entropy, as a fresh process would have
    # What `python -m ipykernel_launcher ARGS` has: its sys.path without the working folder
    # (the launcher takes it out; IPython adds "" back), its own path as argv[0].
    import ipykernel_launcher

    sys.argv = [ipykernel_launcher.__file__] + list(req["argv"][3:])
    import gc

    gc.unfreeze()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


START_ENV: dict = {}  # the environment this zygote started with, before any import


# The launcher's limits (sandbox.limit_this_process), loaded from its file when the zygote
# starts: never imported by name, so a kernel cannot find the module in sys.modules.
_SANDBOX = None


def _load_launcher(path: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_course_sandbox_launcher", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _forget_start_up_line() -> None:
    """The course environment's start-up line (coursectl/lazy_iri.py, a .pth file) ran in
    this interpreter before this file: it imported coursectl.lazy_iri and put a stand-in for
    rfc3987_syntax. A kernel started afresh in the sandbox has neither (coursectl is out of
    its sight), so a kernel forked from here must not have them either."""
    for name in [n for n in sys.modules if n == "coursectl" or n.startswith("coursectl.")]:
        del sys.modules[name]
    if type(sys.modules.get("rfc3987_syntax")).__name__ == "_StandIn":
        del sys.modules["rfc3987_syntax"]


def main(argv: list) -> int:
    _forget_start_up_line()
    START_ENV.update(os.environ)
    # sys.path[0] is this package's folder: nothing may be imported from it.
    here = os.path.dirname(os.path.abspath(__file__))
    global _SANDBOX
    _SANDBOX = _load_launcher(os.path.join(here, "sandbox.py"))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    address, preload = argv[1], json.loads(argv[2])
    fonts = json.loads(argv[3]) if len(argv) > 3 else []
    serve(address, preload, fonts, os.path.abspath(__file__))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
