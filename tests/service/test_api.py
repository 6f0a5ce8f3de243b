"""The pinned JSON API with a stand-in grader (no kernels): status codes, who sees what,
the checks made before anything is queued, visibility, tokens never logged."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from starlette.testclient import TestClient

from coursectl.service import tokens
from coursectl.service.app import create_app
from coursectl.service.config import AssignmentRules, load_settings
from coursectl.service.grader import Verdict
from coursectl.service.limits import RateLimits
from coursectl.service.store import Store
from coursectl.service.visibility import Visibility

UNITS = [{"grade_id": "test_a", "points": 1.0, "max_points": 2.0, "held": False,
          "checks": [{"name": "shape", "passed": True, "message": ""},
                     {"name": "values", "passed": False, "message": "values differ at step 3"}]}]


class FakeGrader:
    """Grades instantly (or when released), recording what it was asked."""
    slots = 1
    where = "fake"

    def __init__(self):
        self.graded: list[tuple[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def grade(self, *, assignment, student, notebook, filename):
        self.gate.wait(30)
        self.graded.append((student, filename))
        return Verdict("graded", 1.0, 2.0, [dict(u) for u in UNITS])

    def abort(self):
        self.gate.set()

    def close(self):
        pass


def _course(tmp: Path) -> Path:
    course = tmp / "course"
    (course / "source" / "hw").mkdir(parents=True)
    (course / "source" / "other").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), course / "source" / "hw" / "hw.ipynb")
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), course / "source" / "other" / "other.ipynb")
    return course


def _nb() -> bytes:
    return nbformat.writes(new_notebook(cells=[new_code_cell("x = 2")])).encode()


@pytest.fixture
def svc(tmp_path):
    course = _course(tmp_path)
    settings = load_settings(course, instance="test", max_upload_bytes=50_000, queued_per_student=2,
                             limits=RateLimits(attempts_per_hour=0, min_interval_s=0),
                             assignments={"other": AssignmentRules(
                                 visibility=Visibility(before="points", after="checks",
                                                       deadline=datetime.now(timezone.utc) + timedelta(days=1)),
                                 limits=RateLimits(attempts_per_hour=5, min_interval_s=60))})
    store = Store(settings.state_dir)
    (tmp_path / "r.csv").write_text("student_id\nann\nbob\n")
    tokens.create_student_tokens(store, tmp_path / "r.csv", tmp_path / "t.csv")
    tokens.create_instructor_token(store, tmp_path / "i.csv")
    toks = dict(line.split(",") for line in (tmp_path / "t.csv").read_text().split()[1:])
    toks["prof"] = (tmp_path / "i.csv").read_text().split()[1].split(",")[1]
    grader = FakeGrader()
    app = create_app(settings, grader=grader, store=store)
    with TestClient(app) as client:
        yield client, toks, grader, app


def _auth(tok):
    return {"Authorization": f"Bearer {tok}"}


def _post(client, tok, data=None, assignment="hw", name="hw.ipynb", **kw):
    return client.post(f"/api/assignments/{assignment}/attempts", headers=_auth(tok) if tok else {},
                       files={"notebook": (name, _nb() if data is None else data)}, **kw)


def _wait(client, tok, attempt):
    for _ in range(200):
        got = client.get(f"/api/attempts/{attempt}", headers=_auth(tok)).json()
        if got["status"] in ("graded", "failed"):
            return got
        time.sleep(0.05)
    raise AssertionError(got)


def test_submit_and_read_the_verdict(svc):
    client, toks, grader, _ = svc
    resp = _post(client, toks["ann"])
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert set(body) == {"attempt", "position"} and body["position"] >= 1
    got = _wait(client, toks["ann"], body["attempt"])
    assert got["student"] == "ann" and got["assignment"] == "hw" and got["score"] == 1.0
    assert got["units"] == UNITS and grader.graded == [("ann", "hw.ipynb")]
    assert client.get("/api/attempts", headers=_auth(toks["ann"])).json()[0]["attempt"] == body["attempt"]


def test_who_may_call_and_see(svc):
    client, toks, _grader, _ = svc
    assert _post(client, None).status_code == 401
    assert _post(client, "sc_not-a-token").status_code == 401
    assert client.get("/api/attempts/1", headers={"Authorization": "Basic x"}).status_code == 401
    attempt = _post(client, toks["ann"]).json()["attempt"]
    assert client.get(f"/api/attempts/{attempt}", headers=_auth(toks["bob"])).status_code == 403
    assert client.get("/api/attempts?student=ann", headers=_auth(toks["bob"])).status_code == 403
    assert client.get("/api/attempts", headers=_auth(toks["bob"])).json() == []
    assert client.get(f"/api/attempts/{attempt}", headers=_auth(toks["prof"])).status_code == 200
    assert [a["student"] for a in client.get("/api/attempts", headers=_auth(toks["prof"])).json()] == ["ann"]
    assert client.get("/api/queue", headers=_auth(toks["bob"])).status_code == 403
    assert client.get("/api/queue", headers=_auth(toks["prof"])).status_code == 200
    assert _post(client, toks["prof"]).status_code == 403  # the instructor does not submit
    assert client.get("/api/attempts/999", headers=_auth(toks["prof"])).status_code == 404
    assert _post(client, toks["ann"], assignment="nope").status_code == 404


def test_size_and_format_are_checked_before_queuing(svc):
    client, toks, grader, app = svc
    big = b'{"cells": [], "nbformat": 4, "x": "' + b"a" * 200_000 + b'"}'
    assert _post(client, toks["ann"], big).status_code == 413

    def chunks():  # no Content-Length: the server counts what arrives
        yield b"--b\r\nContent-Disposition: form-data; name=\"notebook\"; filename=\"hw.ipynb\"\r\n\r\n"
        for _ in range(100):
            yield b"a" * 10_000

    resp = client.post("/api/assignments/hw/attempts", content=chunks(),
                       headers={**_auth(toks["ann"]), "Content-Type": "multipart/form-data; boundary=b"})
    assert resp.status_code == 413
    for bad in (b"not json", b'{"cells": "no"}', json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                                               "cells": [{"cell_type": "bogus"}]}).encode(),
                "\udcff".encode("utf-8", "surrogatepass")):
        resp = _post(client, toks["ann"], bad)
        assert resp.status_code == 422 and "not a notebook" in resp.json()["reason"], resp.text
    assert app.state.service.store.attempts() == [] and grader.graded == []


def test_limits_answer_429_with_retry_after(svc):
    client, toks, grader, app = svc
    assert _post(client, toks["ann"], assignment="other", name="other.ipynb").status_code == 202
    resp = _post(client, toks["ann"], assignment="other", name="other.ipynb")
    assert resp.status_code == 429 and 55 <= int(resp.headers["Retry-After"]) <= 60
    assert "60 s" in resp.json()["reason"]
    bob = _post(client, toks["bob"], assignment="other", name="other.ipynb")
    assert bob.status_code == 202  # limits are per student
    _wait(client, toks["bob"], bob.json()["attempt"])
    # queued attempts per student (2 here): the third waits for a verdict
    grader.gate.clear()
    first = _post(client, toks["ann"])
    assert first.status_code == 202
    dispatcher = app.state.service.dispatcher
    for _ in range(200):  # until the grading thread has taken it
        if dispatcher.position(first.json()["attempt"]) == 0:
            break
        time.sleep(0.02)
    resps = [_post(client, toks["ann"]) for _ in range(3)]
    codes = [r.status_code for r in resps]
    assert codes == [202, 202, 429], [r.text for r in resps]  # one running, two queued, then refused
    grader.gate.set()


def test_visibility_before_and_after_the_deadline(svc):
    client, toks, _grader, app = svc
    a = _post(client, toks["ann"], assignment="other", name="other.ipynb").json()["attempt"]
    got = _wait(client, toks["ann"], a)
    assert got["visibility"] == "points" and got["units"][0]["checks"] == [] and got["units"][0]["points"] == 1.0
    assert "values differ" not in json.dumps(got)
    full = client.get(f"/api/attempts/{a}", headers=_auth(toks["prof"])).json()
    assert full["units"] == UNITS  # the instructor sees everything
    settings = app.state.service.settings
    rules = settings.assignments["other"]
    past = Visibility(before="points", after="checks", deadline=datetime.now(timezone.utc) - timedelta(seconds=1))
    settings.assignments["other"] = AssignmentRules(visibility=past, limits=rules.limits)
    got = client.get(f"/api/attempts/{a}", headers=_auth(toks["ann"])).json()
    assert got["visibility"] == "checks"
    assert got["units"][0]["checks"] == [{"name": "shape", "passed": True, "message": None},
                                         {"name": "values", "passed": False, "message": None}]


def test_tokens_never_reach_the_log(svc, caplog):
    client, toks, _grader, _ = svc
    with caplog.at_level(logging.DEBUG):
        a = _post(client, toks["ann"]).json()["attempt"]
        _wait(client, toks["ann"], a)
        _post(client, toks["ann"] + "x")
    assert caplog.records and not any(toks["ann"] in r.getMessage() for r in caplog.records)


def test_csrf_helper():
    from coursectl.service.auth import check_csrf, csrf_token

    key = b"k" * 32
    tok = csrf_token(key, "session-1")
    assert check_csrf(key, "session-1", tok)
    assert not check_csrf(key, "session-2", tok) and not check_csrf(key, "session-1", None)
    assert not check_csrf(b"j" * 32, "session-1", tok)


def test_listen_address_follows_the_flags_then_jupyterhub():
    from coursectl.service.commands import listen_address

    hub = {"JUPYTERHUB_SERVICE_URL": "http://10.0.0.5:10101"}
    assert listen_address(None, None, {}) == ("127.0.0.1", 8765)
    assert listen_address(None, None, hub) == ("10.0.0.5", 10101)
    assert listen_address("0.0.0.0", 9000, hub) == ("0.0.0.0", 9000)
