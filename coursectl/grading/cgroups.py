"""Whole-job limits: one control group per sandboxed kernel, holding everything it starts.

The per-process address-space cap (sandbox.py, RLIMIT_AS) does not bound a submission:
each forked child gets its own cap, shared memory (memfd, /dev/shm) and tmpfs files are
not address space, and nothing bounds the number of processes. A control group does: the
memory controller charges every page the group's processes own, tmpfs and shared memory
included (a page is charged to the group that first writes it), and the pids controller
counts processes and threads together.

The kernel manager (worker.SandboxedKernelManager) makes one group per kernel start with
``create_job`` (memory cap, swap off, process cap), passes it to the launcher, which moves
itself in before it execs bubblewrap, so the kernel and all its descendants are inside;
``remove_job`` kills what is left and removes the group when the kernel is shut down.

Where groups can be made (``detect``): cgroup v2 (``memory.max``, ``memory.swap.max``,
``pids.max``) where the grader's own group may have the memory and pids controllers
enabled below it; else cgroup v1 (``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``
when the kernel accounts swap, ``pids.max``); else none, and the launcher falls back to
per-process limits (sandbox.py). Either needs write access to the grader's group (root,
or a group delegated to the grader's user, e.g. ``systemd-run --user --scope -p
Delegate=yes``).

Groups are named ``course-job-<grader pid>-<random>``: groups of a grader that died
without cleaning up (killed at its wall-clock limit) are removed by the next job made
on the machine (``sweep``).

Standard library only; paths are parameters so that tests can use fake trees.
"""
from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import asdict, dataclass, field

ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"
PREFIX = "course-job-"
DEFAULT_MAX_PROCESSES = 256   # processes and threads of one submission, together
CONTROLLERS = ("memory", "pids")


class CgroupError(OSError):
    """A job group could not be made or configured."""


@dataclass(frozen=True)
class Mechanism:
    """Where this machine lets the grader make job groups."""
    kind: str                                   # "cgroup v2", "cgroup v1" or "none"
    bases: dict[str, str] = field(default_factory=dict)  # controller -> the group to make job groups in
    swap: bool = False                          # swap can be capped (v1 memsw, v2 memory.swap.max)
    why: str = ""                               # what is missing (none, or a v1 without pids)

    @property
    def controllers(self) -> list[str]:
        return [c for c in CONTROLLERS if c in self.bases]

    def describe(self) -> str:
        if self.kind == "none":
            return f"no control groups ({self.why}): per-process limits only"
        ctl = " and ".join(self.controllers)
        text = f"{self.kind} ({ctl} controller{'s' if len(self.controllers) > 1 else ''})"
        return f"{text}; {self.why}" if self.why else text


@dataclass
class JobGroup:
    """One kernel's group: its folders (one per v1 hierarchy, one for v2) and limits."""
    kind: str                                   # "cgroup v2" or "cgroup v1"
    dirs: dict[str, str]                        # controller -> folder (the same folder twice for v2)
    memory_bytes: int | None = None
    max_processes: int | None = None
    swap_capped: bool = False

    @property
    def folders(self) -> list[str]:
        return list(dict.fromkeys(self.dirs.values()))

    def procs_files(self) -> list[str]:
        """The files the launcher writes its pid to."""
        return [os.path.join(d, "cgroup.procs") for d in self.folders]

    def describe(self) -> str:
        parts = []
        if self.memory_bytes and "memory" in self.dirs:
            swap = " (swap off)" if self.swap_capped else ""
            parts.append(f"memory {self.memory_bytes // 2**20} MB for the whole job{swap}")
        if self.max_processes and "pids" in self.dirs:
            parts.append(f"{self.max_processes} processes and threads")
        return f"{self.kind}: {', '.join(parts) or 'no limits'}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "JobGroup":
        return cls(**data)


# --------------------------------------------------------------------------- detection


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def _own_groups(proc_cgroup: str) -> tuple[str | None, dict[str, str]]:
    """(v2 path or None, v1 controller -> path) of this process, from /proc/self/cgroup."""
    v2, v1 = None, {}
    for line in _read(proc_cgroup).splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, names, path = parts
        if hid == "0" and names == "":
            v2 = path
        for name in names.split(","):
            if name:
                v1[name] = path
    return v2, v1


def _writable(folder: str) -> bool:
    return os.path.isdir(folder) and os.access(folder, os.W_OK)


def _v1_mount(root: str, controller: str) -> str | None:
    """The v1 hierarchy holding ``controller``: a folder of ``root`` named after it alone
    or together with others (``cpu,cpuacct``)."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return None
    for name in names:
        folder = os.path.join(root, name)
        if controller in name.split(",") and os.path.isfile(os.path.join(folder, "cgroup.procs")) \
                and not os.path.islink(folder):
            return folder
    return None


def _v2_base(root: str, own: str) -> tuple[str | None, str]:
    """(the group to make job groups in, or None and why). Controllers can be enabled
    below a group only while no process lives in it ("no internal processes"), except in
    the root: so the grader's own group when it is the root or already passes memory and
    pids down, else its parent (job groups as siblings of the grader's group) when the
    parent gives the grader's group both and the grader may write there."""
    available = set(_read(os.path.join(own, "cgroup.controllers")).split())
    missing = [c for c in CONTROLLERS if c not in available]
    if missing:
        return None, (f"cgroup v2 without the {' and '.join(missing)} controller in {own} "
                      "(not delegated to the grader)")
    enabled = set(_read(os.path.join(own, "cgroup.subtree_control")).split())
    if own == root or all(c in enabled for c in CONTROLLERS):
        if _writable(own):
            return own, ""
        return None, f"cgroup v2 group {own} is not writable by the grader (run as root or in a delegated group)"
    parent = os.path.dirname(own)
    if _writable(parent):
        return parent, ""
    return None, (f"cgroup v2: the grader's group {own} holds processes, so no controller can be enabled "
                  f"below it, and its parent {parent} is not writable by the grader (run as root, or start the "
                  "grader in a delegated group with memory and pids enabled below it)")


def detect(root: str = ROOT, proc_cgroup: str = PROC_CGROUP) -> Mechanism:
    """How job groups can be made here: v2, else v1, else none (with the reason)."""
    v2_path, v1_paths = _own_groups(proc_cgroup)
    if os.path.isfile(os.path.join(root, "cgroup.controllers")):  # the unified hierarchy alone
        if v2_path is None:
            return Mechanism("none", why="cgroup v2 is mounted but this process's group is unknown")
        own = os.path.normpath(os.path.join(root, v2_path.lstrip("/")))
        base, why = _v2_base(os.path.normpath(root), own)
        if base is None:
            return Mechanism("none", why=why)
        swap = os.path.isfile(os.path.join(base, "memory.swap.max")) or os.path.isfile(
            os.path.join(own, "memory.swap.max")) or base == os.path.normpath(root)
        return Mechanism("cgroup v2", {c: base for c in CONTROLLERS}, swap=swap)
    bases, missing = {}, []
    for ctl in CONTROLLERS:
        mount = _v1_mount(root, ctl)
        if mount is None or ctl not in v1_paths:
            missing.append(f"no {ctl} hierarchy")
            continue
        base = os.path.normpath(os.path.join(mount, v1_paths[ctl].lstrip("/")))
        if not os.path.isdir(base):  # a container that sees its own group as the root
            base = mount
        if not _writable(base):
            missing.append(f"{base} not writable by the grader")
            continue
        bases[ctl] = base
    if not bases:
        return Mechanism("none", why="; ".join(missing) or "no cgroup file system")
    swap = "memory" in bases and os.path.isfile(os.path.join(bases["memory"], "memory.memsw.limit_in_bytes"))
    return Mechanism("cgroup v1", bases, swap=swap, why="; ".join(missing))


# --------------------------------------------------------------------------- one job's group


def _write(folder: str, name: str, value: str) -> None:
    path = os.path.join(folder, name)
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError as exc:
        raise CgroupError(exc.errno, f"cannot write {value!r} to {path}: {exc.strerror}") from None


def _enable_v2_controllers(base: str) -> None:
    """Let the job groups below ``base`` use the memory and pids controllers. The kernel
    refuses it while processes live in ``base`` itself (other than in the root group):
    then the grader needs a group of its own (a systemd scope with Delegate=yes)."""
    enabled = set(_read(os.path.join(base, "cgroup.subtree_control")).split())
    wanted = [c for c in CONTROLLERS if c not in enabled]
    if wanted:
        _write(base, "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))


def create_job(memory_mb: int | None, max_processes: int | None, *, mechanism: Mechanism | None = None,
               owner: int | None = None) -> JobGroup:
    """Make and configure one kernel's group (before the kernel starts). Raises
    CgroupError when the machine refuses; stale groups of dead graders go first."""
    mech = mechanism or detect()
    if mech.kind == "none":
        raise CgroupError(errno.ENOTSUP, mech.describe())
    sweep(mech)
    name = f"{PREFIX}{owner or os.getpid()}-{os.urandom(4).hex()}"
    job = JobGroup(mech.kind, {c: os.path.join(base, name) for c, base in mech.bases.items()},
                   memory_bytes=int(memory_mb) * 2**20 if memory_mb else None,
                   max_processes=int(max_processes) if max_processes else None)
    try:
        if mech.kind == "cgroup v2":
            _enable_v2_controllers(mech.bases["memory"])
        for folder in job.folders:
            os.mkdir(folder)
        _configure(job, mech)
    except OSError as exc:
        remove_job(job, timeout=1.0)
        if isinstance(exc, CgroupError):
            raise
        raise CgroupError(exc.errno, f"cannot make a job group: {exc}") from None
    return job


def _configure(job: JobGroup, mech: Mechanism) -> None:
    mem, pids = job.dirs.get("memory"), job.dirs.get("pids")
    if job.memory_bytes and mem:
        if job.kind == "cgroup v2":
            _write(mem, "memory.max", str(job.memory_bytes))
            if mech.swap and os.path.isfile(os.path.join(mem, "memory.swap.max")):
                _write(mem, "memory.swap.max", "0")
                job.swap_capped = True
        else:
            _write(mem, "memory.limit_in_bytes", str(job.memory_bytes))
            if mech.swap:  # memory and swap together: no escape into swap (set after the plain limit)
                _write(mem, "memory.memsw.limit_in_bytes", str(job.memory_bytes))
                job.swap_capped = True
    if job.max_processes and pids:
        _write(pids, "pids.max", str(job.max_processes))


def join(job: JobGroup | dict, pid: int | None = None) -> None:
    """Move ``pid`` (default: this process) into the job's group; its children follow."""
    group = JobGroup.from_dict(job) if isinstance(job, dict) else job
    for folder in group.folders:
        _write(folder, "cgroup.procs", str(pid or os.getpid()))


def members(job: JobGroup) -> list[int]:
    pids: set[int] = set()
    for folder in job.folders:
        pids.update(int(p) for p in _read(os.path.join(folder, "cgroup.procs")).split() if p.isdigit())
    return sorted(pids)


def events(job: JobGroup) -> dict[str, int]:
    """What the limits stopped: ``oom_kill`` (processes killed at the memory cap) and
    ``pids_max`` (process or thread starts refused at the process cap)."""
    out = {"oom_kill": 0, "pids_max": 0}
    mem, pids = job.dirs.get("memory"), job.dirs.get("pids")
    if mem:
        name = "memory.events" if job.kind == "cgroup v2" else "memory.oom_control"
        for line in _read(os.path.join(mem, name)).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                out["oom_kill"] = int(value)
    if pids:
        for line in _read(os.path.join(pids, "pids.events")).splitlines():
            key, _, value = line.partition(" ")
            if key == "max" and value.strip().isdigit():
                out["pids_max"] = int(value)
    return out


def remove_job(job: JobGroup, timeout: float = 5.0) -> bool:
    """Kill every process left in the job's group, then remove it. True when gone."""
    deadline = time.monotonic() + timeout
    for folder in job.folders:
        if os.path.isfile(os.path.join(folder, "cgroup.kill")):
            try:
                _write(folder, "cgroup.kill", "1")  # v2: the whole group at once, forks included
            except OSError:
                pass
    while True:
        left = members(job)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        gone = True
        for folder in job.folders:
            try:
                os.rmdir(folder)
            except FileNotFoundError:
                pass
            except OSError:
                gone = False
        if gone or time.monotonic() >= deadline:
            return gone
        time.sleep(0.05)


def sweep(mech: Mechanism) -> list[str]:
    """Remove the groups of graders that are no longer running; returns their folders."""
    removed = []
    for ctl, base in mech.bases.items():
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            if not name.startswith(PREFIX):
                continue
            owner = name[len(PREFIX):].split("-", 1)[0]
            if not owner.isdigit() or _alive(int(owner)):
                continue
            folder = os.path.join(base, name)
            if remove_job(JobGroup(mech.kind, {ctl: folder}), timeout=1.0):
                removed.append(folder)
    return removed


def sweep_here() -> list[str]:
    """``sweep`` on this machine, if it makes job groups: after a run, the groups of
    grading processes killed at their wall-clock limit (they never removed theirs)."""
    mech = detect()
    return sweep(mech) if mech.kind != "none" else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(mech: Mechanism | None = None) -> list[str]:
    """Job groups present on this machine (for tests and checks)."""
    mech = mech or detect()
    out = []
    for base in dict.fromkeys(mech.bases.values()):
        try:
            out += [os.path.join(base, n) for n in sorted(os.listdir(base)) if n.startswith(PREFIX)]
        except OSError:
            pass
    return out
