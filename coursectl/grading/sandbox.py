"""Kernel launcher: puts one submission's kernel in a bubblewrap sandbox, under limits.

Run as a plain script (``python -I sandbox.py OPTIONS_JSON -- KERNEL_CMD...``) so that it
starts in milliseconds and imports nothing but the standard library. It moves itself into
the job's control group (made by the kernel manager, cgroups.py: one memory cap for all
the job's processes, tmpfs and shared memory, and one cap on its processes and threads;
without a group, RLIMIT_NPROC), sets the per-process limits, then execs ``bwrap``
(Debian's bubblewrap), which starts the kernel in new user,
mount, PID, IPC, UTS and network namespaces. jupyter_client sees the bwrap process: killing
it kills the sandbox's whole PID namespace (``--die-with-parent``), so nothing a cell
started survives its kernel.

What the kernel sees (see ``bwrap_command``): read-only system folders (/usr, the loader's
/etc files), the Python installation and venv, the package folders notebooks import
(``KERNEL_PACKAGES``) and the data folder; read-write only the job's runtime folder (its
connection file and ipc sockets) and size-capped tmpfs folders: /tmp, /dev/shm, HOME and
the working folder, which holds read-only binds of the assignment's non-notebook files.
``autograder`` and ``coursectl`` are never importable, the course folder, gradebooks,
other jobs and the host's processes are invisible, and what the kernel writes vanishes.

OPTIONS_JSON keys: ``memory_mb`` (address-space limit), ``no_network``, ``status_file``
(one JSON line per kernel start: pid, network state and whole-job limits), ``cgroup`` (the
job's control group, made by the kernel manager with cgroups.py: ``procs`` files the
launcher writes its pid to, so the kernel and all it starts are inside, and ``describe``),
``max_processes`` (without a group: the per-user process limit fallback) and, for the
sandbox, ``bwrap``
(path of the binary; without it the kernel runs unsandboxed, only capped and, with
``no_network``, in a new network namespace) plus what ``plan`` returns.
``python sandbox.py --probe`` prints what network isolation this machine allows without
the sandbox; ``probe_bwrap`` checks that the sandbox starts.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

KERNEL_UID = 1000               # not root inside the sandbox
HOME = "/home/student"
SCRATCH_MB = 256                # each of /tmp, HOME and the working folder; /dev/shm gets a quarter
MAX_BOUND_FILES = 500           # assignment files bound into the working folder
KERNEL_PACKAGES = ("coursekit", "data_scripts")   # this repo's packages that notebooks import
HIDDEN_PACKAGES = ("autograder", "coursectl")     # reference code and the grader: never importable
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "nsswitch.conf",
               "alternatives", "mime.types", "fonts", "os-release")
PASS_ENV = ("LANG", "LANGUAGE", "TZ", "PYTHONIOENCODING", "MPLBACKEND", "NBGRADER_EXECUTION",
            "PYDEVD_DISABLE_FILE_VALIDATION", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS")
PASS_PREFIXES = ("COURSE_", "LC_")
BLOCKER = "raise ImportError('{name} is not available while a submission is graded')\n"
NAMESPACES = "new user (uid 1000), mount, PID, IPC, UTS and network namespaces"


# --------------------------------------------------------------------------- without bubblewrap


def isolate_network() -> str:
    """Move this process into a fresh network namespace (no interfaces up, not even
    loopback). Root can do it directly; others may via a user namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) == 0:
        return "isolated (new network namespace)"
    first = ctypes.get_errno()
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        # Map our own ids so files keep their owner inside the namespace.
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            try:
                with open(f"/proc/self/{name}", "w") as fh:
                    fh.write(text)
            except OSError:
                pass
        return "isolated (new user and network namespace)"
    return f"not isolated: the OS refused a network namespace ({os.strerror(first)})"


def apply_memory_limit(memory_mb: int) -> None:
    limit = int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def join_job_group(procs_files: list[str]) -> None:
    """Move this process into the job's control group (one ``cgroup.procs`` per
    hierarchy); bwrap, the kernel and everything they start are then counted there."""
    for path in procs_files:
        with open(path, "w") as fh:
            fh.write(str(os.getpid()))


def _user_tasks(uid: int) -> int:
    """Processes and threads of ``uid`` on this machine (what RLIMIT_NPROC counts)."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1 0").split()[0]) == uid:
            total += int(fields.get("Threads", "1").strip() or 1)
    return total


def apply_process_limit(max_processes: int) -> str:
    """The fallback without a control group: RLIMIT_NPROC. It counts every process and
    thread of the grader's user, so the cap is what the user runs now plus the job's
    share; it does not bind root (nor processes with CAP_SYS_RESOURCE)."""
    uid = os.getuid()
    if uid == 0:
        return "no process limit (RLIMIT_NPROC does not bind root)"
    used = _user_tasks(uid)
    limit = used + int(max_processes)
    _, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    return f"RLIMIT_NPROC {limit} for the grader's user ({used} tasks already running + {max_processes})"


def apply_job_limits(opts: dict, *, strict: bool = False) -> str:
    """Put this launcher (and so the whole sandbox) under the job's limits; one line
    saying which were applied. ``strict``: a control group that cannot be joined raises
    instead of falling back to the per-process limits."""
    group = opts.get("cgroup")
    why = opts.get("cgroup_why") or "no control group"
    if group:
        try:
            join_job_group(group["procs"])
            return group["describe"]
        except OSError as exc:
            if strict:
                raise
            why = f"could not join the job's control group ({exc})"
    line = f"per-process limits only ({why})"
    if opts.get("max_processes"):
        line += "; " + apply_process_limit(opts["max_processes"])
    return line


def limit_this_process(opts: dict, *, strict: bool = False) -> str:
    """Every limit a process that becomes a job's kernel takes while it still sees the host:
    no core files, the job's control group (``apply_job_limits``) and the address-space cap.
    The launcher applies them to itself before bwrap; a kernel forked from a zygote
    (zygote.py, ``strict``) before it joins the sandbox."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault must not leave a core file
    line = apply_job_limits(opts, strict=strict)  # before bwrap: its whole PID namespace inherits the group
    if opts.get("memory_mb"):
        apply_memory_limit(opts["memory_mb"])  # kept: a cap per process as well
    return line


# --------------------------------------------------------------------------- the plan (grader side)


def _inside(path: str, folders) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _package_dir(name: str) -> str | None:
    """Folder of a top-level package, found the way the kernel would (editable installs
    included), without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(getattr(spec, "submodule_search_locations", None) or []) if spec else []
    return os.path.realpath(locations[0]) if locations else None


def default_data_dir(environ=None) -> str:
    """The course's data folder as coursekit.paths finds it (without importing it)."""
    root = (os.environ if environ is None else environ).get("COURSE_DATA_DIR")
    return os.path.realpath(os.path.expanduser(root) if root else os.path.expanduser("~/.cache/seqcourse"))


def plan(runtime_dir: str, files_from: str | None = None, data_dir: str | None = None) -> dict:
    """What the sandbox binds, computed in the grading process (which has the same
    interpreter and packages as the kernel): the part of OPTIONS_JSON for bwrap."""
    prefixes = []
    for p in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))):
        p = os.path.realpath(p)
        if not _inside(p, SYSTEM_DIRS + tuple(prefixes)):
            prefixes.append(p)
    bound = list(SYSTEM_DIRS) + prefixes
    ro = list(prefixes)
    for name in KERNEL_PACKAGES:
        folder = _package_dir(name)
        if folder and not _inside(folder, bound):
            ro.append(folder)  # an editable install: only the package folder, never the repo
    hide = []
    for name in HIDDEN_PACKAGES:
        folder = _package_dir(name)
        if folder and _inside(folder, bound):
            hide.append(folder)  # installed next to the kernel's packages: mask it
    data = os.path.realpath(data_dir) if data_dir else default_data_dir()
    return {"ro": ro, "hide": hide, "runtime_dir": os.path.realpath(runtime_dir),
            "files_from": os.path.realpath(files_from) if files_from else None,
            "data_dir": data if os.path.isdir(data) else None, "scratch_mb": SCRATCH_MB,
            "home_files": _font_cache()}


def _font_cache() -> list[tuple[str, str]]:
    """matplotlib's font list, read-only in the kernel's HOME: without it every kernel
    rebuilds it (0.3 s). (host path, path under HOME)."""
    folder = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib")
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith("fontlist-") and n.endswith(".json"))
    except OSError:
        return []
    return [(os.path.join(folder, n), f".cache/matplotlib/{n}") for n in names]


# --------------------------------------------------------------------------- the bwrap command


def _data_fd(text: str) -> str:
    """An inheritable in-memory file holding ``text``, for bwrap's --ro-bind-data."""
    fd = os.memfd_create("sandbox-data", 0)
    os.write(fd, text.encode())
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return str(fd)


def _system_mounts() -> list[str]:
    args = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for name in ETC_ENTRIES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for name in sorted(os.listdir("/etc")):  # Debian's python3.X site customisation
        if name.startswith("python3"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    user = f"student:x:{KERNEL_UID}:{KERNEL_UID}:student:{HOME}:/bin/sh\n"
    args += ["--ro-bind-data", _data_fd("root:x:0:0:root:/root:/bin/sh\n" + user), "/etc/passwd",
             "--ro-bind-data", _data_fd(f"root:x:0:\nstudent:x:{KERNEL_UID}:\n"), "/etc/group",
             "--ro-bind-data", _data_fd("127.0.0.1 localhost grading\n::1 localhost\n"), "/etc/hosts",
             "--proc", "/proc", "--dev", "/dev"]
    # CPU topology for torch's and OpenMP's thread choices; nothing else of /sys.
    args += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    return args


def _assignment_files(folder: str) -> list[tuple[str, str]]:
    """(path, relative path) of the regular non-notebook files under ``folder``: figures
    and other assets a notebook opens. Links are skipped: they could point anywhere; so
    are hard links (a second name of a file elsewhere), devices, FIFOs and sockets."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(root, d)))
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith(".ipynb") or name.startswith("."):
                continue
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                out.append((path, os.path.relpath(path, folder)))
            if len(out) >= MAX_BOUND_FILES:
                return out
    return out


def kernel_env(environ, opts: dict, workdir: str) -> dict[str, str]:
    """The kernel's whole environment: a short allow-list, nothing else of the grader's."""
    env = {k: v for k, v in environ.items() if k in PASS_ENV or k.startswith(PASS_PREFIXES)}
    bin_dirs = [os.path.dirname(sys.executable)] + [os.path.join(p, "bin") for p in opts.get("ro", [])]
    path = [d for d in dict.fromkeys(bin_dirs) if os.path.isdir(d)] + ["/usr/local/bin", "/usr/bin", "/bin"]
    env.update(PATH=":".join(path), HOME=HOME, USER="student", LOGNAME="student", TMPDIR="/tmp",
               PYTHONDONTWRITEBYTECODE="1", PWD=workdir)
    env.setdefault("LANG", "C.UTF-8")
    if environ.get("JUPYTER_RUNTIME_DIR"):
        env["JUPYTER_RUNTIME_DIR"] = opts["runtime_dir"]
    # The data folder, read-only; without one a kernel builds what it needs in its own tmpfs.
    env["COURSE_DATA_DIR"] = opts.get("data_dir") or f"{HOME}/.cache/seqcourse"
    return env


def _workdir(opts: dict, cwd: str) -> tuple[bool, str]:
    """(whether the kernel gets ``cwd``'s files, the kernel's working folder)."""
    files_from = opts.get("files_from")
    real_cwd = os.path.realpath(cwd)
    allowed = bool(files_from) and _inside(real_cwd, [files_from]) and real_cwd != files_from
    return allowed, f"{HOME}/{os.path.basename(real_cwd) if allowed else 'work'}"


def kernel_place(opts: dict, cwd: str, environ) -> tuple[str, dict[str, str]]:
    """The working folder and environment ``bwrap_command`` gives a kernel started in
    ``cwd`` with ``environ`` (a kernel forked by zygote.py gets the same)."""
    workdir = _workdir(opts, cwd)[1]
    return workdir, kernel_env(environ, opts, workdir)


def bwrap_command(opts: dict, cmd: list[str], cwd: str, environ) -> list[str]:
    """The bwrap command line that runs ``cmd`` in the sandbox described by ``opts``."""
    size = str(int(opts.get("scratch_mb") or SCRATCH_MB) * 1024 * 1024)
    args = [opts["bwrap"], "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", str(KERNEL_UID), "--gid", str(KERNEL_UID), "--hostname", "grading",
            "--die-with-parent", "--new-session"]
    if not opts.get("no_network"):
        args.append("--share-net")
    args += _system_mounts()
    args += ["--size", str(int(size) // 4), "--tmpfs", "/dev/shm", "--size", size, "--tmpfs", "/tmp"]
    for folder in opts.get("ro", []):
        args += ["--ro-bind", folder, folder]
    for folder in opts.get("hide", []):
        name = os.path.basename(folder)
        args += ["--size", "65536", "--tmpfs", folder,
                 "--ro-bind-data", _data_fd(BLOCKER.format(name=name)), f"{folder}/__init__.py"]
    if opts.get("data_dir"):
        args += ["--ro-bind", opts["data_dir"], opts["data_dir"]]
    args += ["--bind", opts["runtime_dir"], opts["runtime_dir"], "--size", size, "--tmpfs", HOME]
    for path, rel in opts.get("home_files", []):
        args += ["--ro-bind-try", path, f"{HOME}/{rel}"]
    # The working folder: a tmpfs named like the assignment, holding its files read-only.
    real_cwd = os.path.realpath(cwd)
    allowed, workdir = _workdir(opts, cwd)
    args += ["--size", size, "--tmpfs", workdir]
    if allowed:
        for path, rel in _assignment_files(real_cwd):
            args += ["--ro-bind", path, f"{workdir}/{rel}"]
    if opts.get("as_pid_1"):
        args.append("--as-pid-1")  # zygote.py's holder: the forked kernel's parent, as bwrap's init is
    args += ["--chdir", workdir, "--clearenv"]
    for key, value in sorted(kernel_env(environ, opts, workdir).items()):
        args += ["--setenv", key, value]
    return args + ["--", *cmd]


# --------------------------------------------------------------------------- probing


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def probe_bwrap(bwrap: str | None = None, no_network: bool = True) -> tuple[bool, str]:
    """(works, one line): start this interpreter in the sandbox the way a kernel starts."""
    bwrap = bwrap or find_bwrap()
    if not bwrap:
        return False, "bubblewrap (bwrap) is not installed or not on PATH"
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        with tempfile.TemporaryDirectory(prefix="krt") as runtime:
            opts = dict(plan(runtime), bwrap=bwrap, no_network=no_network)
            code = "import os; print(os.getuid())"
            cmd = bwrap_command(opts, [sys.executable, "-I", "-c", code], runtime, os.environ)
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, close_fds=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bubblewrap could not start: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != str(KERNEL_UID):
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1][:300]
        return False, f"bubblewrap could not start a sandbox: {why}"
    line = f"{version or 'bubblewrap'} ({NAMESPACES if no_network else NAMESPACES.replace(' and network', '')})"
    return True, line + JOB_LIMITS_SEP + probe_job_limits()


JOB_LIMITS_SEP = "; whole-job limits: "  # splits probe_bwrap's line (pipeline.py)


def probe_job_limits() -> str:
    """How this machine caps a whole job (one line): make and remove a test group."""
    from . import cgroups

    mech = cgroups.detect()
    if mech.kind == "none":
        return mech.describe()
    try:
        cgroups.remove_job(cgroups.create_job(64, 16, mechanism=mech))
    except OSError as exc:
        return f"no control groups ({exc}): per-process limits only"
    return mech.describe()


def unavailable() -> str | None:
    """None where kernels can run in the sandbox, else why not (one line)."""
    ok, line = probe_bwrap()
    return None if ok else line


# --------------------------------------------------------------------------- launcher


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--probe"]:
        print(isolate_network())
        return 0
    opts = json.loads(argv[1])
    cmd = argv[argv.index("--") + 1:]
    note = {"pid": os.getpid()}
    note["limits"] = limit_this_process(opts)
    if opts.get("bwrap"):
        cmd = bwrap_command(opts, cmd, os.getcwd(), os.environ)
        note["sandbox"] = "bubblewrap"
        note["network"] = ("isolated (new network namespace, bubblewrap)" if opts.get("no_network")
                           else "not isolated (switched off)")
    else:
        note["network"] = isolate_network() if opts.get("no_network") else "not isolated (switched off)"
    if opts.get("status_file"):
        with open(opts["status_file"], "a") as fh:
            fh.write(json.dumps(note) + "\n")
    os.execv(cmd[0], cmd)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
