"""Test helpers: a real `course serve` in a subprocess on a temporary course, its tokens,
and a small client. Shared by the service's slow tests and the load benchmark."""
from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tokens(course: Path, students: list[str]) -> dict[str, str]:
    """Student tokens (and 'instructor') made with the real `course tokens`."""
    roster = course.parent / "roster.csv"
    roster.write_text("student_id\n" + "".join(f"{s}\n" for s in students))
    for args in (["create", "--roster", str(roster), "--out", str(course.parent / "tokens.csv")],
                 ["instructor", "--out", str(course.parent / "instructor.csv")]):
        subprocess.run([str(BIN / "course"), "tokens", *args], cwd=course, check=True, capture_output=True)
    toks = {r["student_id"]: r["token"] for r in csv.DictReader((course.parent / "tokens.csv").open())}
    toks["instructor"] = next(csv.DictReader((course.parent / "instructor.csv").open()))["token"]
    return toks


class Server:
    """`course serve` on a free port, in its own process group (so a test can kill -9
    all of it, grading processes included, as a crash would)."""

    def __init__(self, course: Path, *args: str, log: Path | None = None, env: dict[str, str] | None = None):
        self.course, self.args, self.env = course, args, env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or course.parent / f"serve-{self.port}.log"
        self.proc = None

    def start(self, timeout: float = 120) -> "Server":
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        self.proc = subprocess.Popen([str(BIN / "course"), "serve", "--port", str(self.port), "--instance", "test",
                                      *self.args], cwd=self.course, env=env, start_new_session=True,
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"course serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"course serve did not answer in {timeout} s: {self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def interrupt(self) -> None:
        """Ctrl-C in the terminal: SIGINT to the whole process group; wait for the exit."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(60)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def post(url: str, token: str, assignment: str, data: bytes, name: str) -> httpx.Response:
    return httpx.post(f"{url}/api/assignments/{assignment}/attempts", headers={"Authorization": f"Bearer {token}"},
                      files={"notebook": (name, data)}, timeout=60)


def wait_all(url: str, token: str, attempts: list[int], timeout: float = 600) -> dict[int, dict]:
    """Each attempt's verdict once every one is graded or failed."""
    end, done = time.monotonic() + timeout, {}
    while time.monotonic() < end:
        for a in attempts:
            if a not in done:
                got = httpx.get(f"{url}/api/attempts/{a}", headers={"Authorization": f"Bearer {token}"},
                                timeout=30).json()
                if got["status"] in ("graded", "failed"):
                    done[a] = got
        if len(done) == len(attempts):
            return done
        time.sleep(0.5)
    raise AssertionError(f"not finished in {timeout} s: {sorted(set(attempts) - set(done))}")
