"""Load on `course serve`: N simulated students (default 100) each submit an assignment's
solution notebook (default a1_rnn_cells) at a random moment within a window (default
60 s) to a real `course serve` started here on a fresh copy of the course, then poll for
their verdict as `course submit` does (every 2 s). Meanwhile an "instructor" asks for one
attempt's status every 0.5 s, to see whether the service stays responsive while it grades.

Prints the machine, date and load, then: every attempt answered (202), none lost (every
stored attempt graded), none duplicated (one stored row per submission, graded once),
the time to verdict (p50, p95, max; from the POST to the first poll that sees it graded),
throughput, the status request's latency (p50, p95, max) while grading, and the scores.

    python benchmarks/service_load.py [--students 100] [--window 60] [--workers 2]
                                      [--assignment a1_rnn_cells] [--keep DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile, linearly interpolated between the two nearest ranks."""
    values = sorted(values)
    if not values:
        return float("nan")
    pos = q / 100 * (len(values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_course(root: Path, assignment: str, students: int) -> tuple[Path, dict[str, str]]:
    course = root / "course"
    (course / "source").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(REPO / "source" / assignment, course / "source" / assignment)
    (course / "service.toml").write_text("[service]\nqueue_capacity = 1000\n")
    ids = [f"s{i:03d}" for i in range(students)]
    (root / "roster.csv").write_text("student_id\n" + "".join(f"{s}\n" for s in ids))
    for args in (["create", "--roster", str(root / "roster.csv"), "--out", str(root / "tokens.csv")],
                 ["instructor", "--out", str(root / "instructor.csv")]):
        subprocess.run([str(BIN / "course"), "tokens", *args], cwd=course, check=True, capture_output=True)
    toks = {r["student_id"]: r["token"] for r in csv.DictReader((root / "tokens.csv").open())}
    toks["instructor"] = next(csv.DictReader((root / "instructor.csv").open()))["token"]
    return course, toks


async def student(http: httpx.AsyncClient, url: str, token: str, assignment: str, data: bytes, delay: float,
                  out: dict) -> None:
    await asyncio.sleep(delay)
    headers = {"Authorization": f"Bearer {token}"}
    sent = time.monotonic()
    resp = await http.post(f"{url}/api/assignments/{assignment}/attempts", headers=headers,
                           files={"notebook": (f"{assignment}.ipynb", data)})
    out["code"] = resp.status_code
    out["accept_s"] = time.monotonic() - sent
    if resp.status_code != 202:
        out["reason"] = resp.text
        return
    out["attempt"] = resp.json()["attempt"]
    while True:
        await asyncio.sleep(2.0)
        try:
            got = (await http.get(f"{url}/api/attempts/{out['attempt']}", headers=headers)).json()
        except httpx.TransportError:  # a dropped keep-alive connection: ask again, as a client would
            out["retries"] = out.get("retries", 0) + 1
            continue
        if got["status"] in ("graded", "failed"):
            out.update(status=got["status"], score=got["score"], verdict_s=time.monotonic() - sent)
            return


async def prober(http: httpx.AsyncClient, url: str, token: str, results: list[dict], lat: list[float],
                 errors: list[float], stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        target = next((r["attempt"] for r in results if "attempt" in r), None)
        if target is not None:
            t = time.monotonic()
            try:
                resp = await http.get(f"{url}/api/attempts/{target}", headers=headers)
            except httpx.TransportError:
                errors.append(time.monotonic() - t)
                continue
            lat.append(time.monotonic() - t)
            assert resp.status_code == 200, resp.text
        await asyncio.sleep(0.5)


async def run_load(url: str, toks: dict[str, str], assignment: str, data: bytes, window: float, seed: int):
    rng = random.Random(seed)
    students = sorted(s for s in toks if s != "instructor")
    results = [{"student": s} for s in students]
    lat: list[float] = []
    errors: list[float] = []
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        probe = asyncio.create_task(prober(http, url, toks["instructor"], results, lat, errors, stop))
        await asyncio.gather(*(student(http, url, toks[s], assignment, data, rng.uniform(0, window), r)
                               for s, r in zip(students, results)))
        stop.set()
        await probe
    return results, lat, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=100)
    ap.add_argument("--window", type=float, default=60.0, help="seconds over which the students submit")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--assignment", default="a1_rnn_cells")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--keep", type=Path, default=None, help="build the course here and keep it")
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="service-load-"))
    root.mkdir(parents=True, exist_ok=True)
    course, toks = make_course(root, args.assignment, args.students)
    data = (REPO / "source" / args.assignment / f"{args.assignment}.ipynb").read_bytes()
    port = _port()
    url = f"http://127.0.0.1:{port}"
    print(f"service_load: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()} "
          f"({platform.machine()}, {os.cpu_count()} cores), load average {_load()}")
    print(f"  {args.students} students submit {args.assignment} (the solution) within {args.window:g} s; "
          f"course serve --workers {args.workers}")
    log = open(root / "serve.log", "ab")
    proc = subprocess.Popen([str(BIN / "course"), "serve", "--port", str(port), "--workers", str(args.workers)],
                            cwd=course, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        started = time.monotonic()
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() - started > 180:
                print((root / "serve.log").read_text()[-3000:])
                return 1
            time.sleep(0.3)
        print(f"  service up in {time.monotonic() - started:.1f} s")
        t0 = time.monotonic()
        results, lat, errors = asyncio.run(run_load(url, toks, args.assignment, data, args.window, args.seed))
        wall = time.monotonic() - t0
        load_after = _load()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    con = sqlite3.connect(course / "attempts" / "attempts.db")
    rows = con.execute("SELECT student, status, runs FROM service_attempts").fetchall()
    reasons = [r[0] for r in con.execute("SELECT DISTINCT substr(reason, 1, 300) FROM service_attempts "
                                         "WHERE status = 'failed' LIMIT 3")]
    accepted = [r for r in results if r.get("code") == 202]
    verdicts = [r["verdict_s"] for r in accepted if "verdict_s" in r]
    per_student = {}
    for s, _status, _runs in rows:
        per_student[s] = per_student.get(s, 0) + 1
    print(f"  answered: {len(accepted)}/{len(results)} accepted (202)"
          + "".join(f"; {r['student']}: {r.get('code')} {r.get('reason', '')[:100]}" for r in results
                    if r.get("code") != 202))
    print(f"  stored: {len(rows)} attempts, graded {sum(1 for r in rows if r[1] == 'graded')}, "
          f"failed {sum(1 for r in rows if r[1] == 'failed')}, lost (not finished) "
          f"{sum(1 for r in rows if r[1] in ('queued', 'running'))}; duplicated (a student with two rows) "
          f"{sum(1 for n in per_student.values() if n > 1)}; graded more than once {sum(1 for r in rows if r[2] > 1)}")
    if len(verdicts) <= 10:
        print("  verdict times:", ", ".join(f"{v:.1f}" for v in sorted(verdicts)))
    print(f"  time to verdict: p50 {_pct(verdicts, 50):.1f} s, p95 {_pct(verdicts, 95):.1f} s, "
          f"max {max(verdicts):.1f} s; accept (202) p95 {_pct([r['accept_s'] for r in accepted], 95) * 1000:.0f} ms")
    print(f"  throughput: {len(verdicts)} verdicts in {wall:.1f} s ({60 * len(verdicts) / wall:.1f} per minute)")
    print(f"  status request while grading: p50 {_pct(lat, 50) * 1000:.0f} ms, p95 {_pct(lat, 95) * 1000:.0f} ms, "
          f"max {max(lat) * 1000:.0f} ms ({len(lat)} requests); connection errors: {len(errors)} status, "
          f"{sum(r.get('retries', 0) for r in results)} student polls (asked again)")
    scores = [r["score"] for r in accepted if r.get("score") is not None]
    print(f"  scores: {statistics.mean(scores):g} mean, min {min(scores):g}, max {max(scores):g}; "
          f"load average after {load_after}")
    for why in reasons:
        print(f"  failed because: {why}")
    ok = len(accepted) == len(results) == len(rows) and all(r[1] == "graded" and r[2] == 1 for r in rows)
    if ok and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    elif not ok:
        print(f"  kept for a look: {root} (serve.log, course/attempts/)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
