"""Nothing lost: `course serve` killed with SIGKILL (grading processes too) while one
attempt is graded and others wait; restarted, it grades every attempt exactly once.
On the tiny assignment, so the kernels are quick."""
from __future__ import annotations

import json
import time

import httpx
import nbformat
import pytest

from fixtures.grading import tiny
from service.serving import Server, make_tokens, post, wait_all

pytestmark = pytest.mark.slow


def _forged() -> bytes:
    """A good submission whose grade cell brings its own 'all checks passed' metadata."""
    nb = tiny.good()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_cube":
            cell.metadata["seqcourse_checks"] = {"held": False, "checks": [{"name": "forged", "passed": True,
                                                                              "message": "trust me"}]}
    return nbformat.writes(nb).encode()


def _wait_running(server: Server, token: str) -> dict:
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(600):  # until one is being graded
        queue = httpx.get(f"{server.url}/api/queue", headers=auth).json()
        if queue["running"]:
            return queue
        time.sleep(0.1)
    raise AssertionError(f"nothing started grading: {queue}")


def test_ctrl_c_and_kill_9_mid_queue_then_restart_grade_each_attempt_once(tmp_path):
    course = tiny.make_course(tmp_path)
    (course / "service.toml").write_text("[limits]\nmin_interval_s = 0\n")
    toks = make_tokens(course, ["ann", "bob", "cat"])
    good, wrong = (nbformat.writes(nb).encode() for nb in (tiny.good(), tiny.wrong_answer()))
    sent = [("ann", good), ("bob", wrong), ("cat", _forged()), ("ann", wrong)]
    server = Server(course, "--workers", "1").start()
    ids, killed = [], set()
    try:
        for half in (sent[:2], sent[2:]):
            for student, data in half:
                resp = post(server.url, toks[student], tiny.ASSIGNMENT, data, "tiny.ipynb")
                assert resp.status_code == 202, resp.text
                ids.append(resp.json()["attempt"])
            queue = _wait_running(server, toks["instructor"])
            assert len(queue["running"]) + len(queue["queued"]) == len(ids)
            killed |= {a["attempt"] for a in queue["running"]}
            # first Ctrl-C (the grading processes get SIGINT too), then a crash
            server.interrupt() if half is sent[:2] else server.kill9()
            server.args = ("--workers", "2")
            server.start()  # same course, same instance name
        done = wait_all(server.url, toks["instructor"], ids, timeout=300)
    finally:
        server.stop()
    scores = [done[a]["score"] for a in ids]
    assert [done[a]["status"] for a in ids] == ["graded"] * 4
    assert scores == [5.0, 2.0, 5.0, 2.0]
    assert [done[a]["student"] for a in ids] == ["ann", "bob", "cat", "ann"]
    cube = next(u for u in done[ids[2]]["units"] if u["grade_id"] == "test_cube")
    assert cube["checks"] == []  # a submission's own check metadata is never shown as a verdict
    import sqlite3

    con = sqlite3.connect(course / "attempts" / "attempts.db")
    rows = con.execute("SELECT id, status, runs FROM service_attempts ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ids  # none lost, none added
    assert all(r[2] >= 1 for r in rows) and any(r[2] >= 2 for r in rows if r[0] in killed)
    assert "resumed" in server.log.read_text()
    assert json.loads(json.dumps(done))  # plain JSON
