"""Kernel launcher that puts one submission's kernel under limits, then execs the kernel.

Run as a plain script (``python -I sandbox.py OPTIONS_JSON -- KERNEL_CMD...``) so that it
starts in milliseconds and imports nothing but the standard library. Because it execs,
the kernel keeps this process's pid, so jupyter_client's interrupt and kill still reach it.

OPTIONS_JSON keys: ``memory_mb`` (address-space limit), ``no_network`` (new network
namespace) and ``status_file`` (one JSON line per kernel start: pid and network state).
``python sandbox.py --probe`` prints what network isolation this machine allows.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


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


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--probe"]:
        print(isolate_network())
        return 0
    opts = json.loads(argv[1])
    cmd = argv[argv.index("--") + 1:]
    note = {"pid": os.getpid()}
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault must not leave a core file
    if opts.get("memory_mb"):
        apply_memory_limit(opts["memory_mb"])
    note["network"] = isolate_network() if opts.get("no_network") else "not isolated (switched off)"
    if opts.get("status_file"):
        with open(opts["status_file"], "a") as fh:
            fh.write(json.dumps(note) + "\n")
    os.execv(cmd[0], cmd)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
