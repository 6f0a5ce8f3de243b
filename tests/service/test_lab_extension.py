"""JupyterLab's "Submit for feedback": the Jupyter Server extension (coursekit/feedback_ext.py)
in a real Jupyter server, against a fake feedback service that answers with the pinned JSON.

The fake is a tiny HTTP server started here; it records what it was sent, so the tests see
the Bearer token and the multipart field `notebook` exactly as `course serve` would. Every
refusal status of the pinned interface must reach the browser as a message that says what
to do (and Retry-After as seconds). Fast: one Jupyter server for the module, no kernels.
"""
from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

from coursekit import feedback_ext

TOKEN = "lab-ext-test-token"          # the Jupyter server's
STUDENT_TOKEN = "s3cret-student-token"  # the feedback service's, for one student
GRADED = {"attempt": 7, "assignment": "a1_rnn_cells", "student": "alice", "status": "graded", "score": 3.0,
          "max_score": 5.0, "reason": None,
          "units": [{"grade_id": "cell_rnn", "points": 3.0, "max_points": 3.0,
                     "checks": [{"name": "shape", "passed": True, "message": ""}]},
                    {"grade_id": "cell_lstm", "points": 0.0, "max_points": 2.0, "held": True,
                     "checks": [{"name": "gates", "passed": False, "message": "forget gate bias is off"}]}]}


@dataclass
class FakeService:
    """What the fake feedback service received, and its address."""
    url: str
    received: list[dict] = field(default_factory=list)
    polls: dict[int, int] = field(default_factory=dict)  # GETs of an attempt so far


class _Handler(BaseHTTPRequestHandler):
    """The pinned API, with refusals chosen by the assignment name (big, notnb, busy, ...)."""
    service: FakeService
    protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue" as a real server does

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {STUDENT_TOKEN}":
            self._send(401, {"detail": "invalid or missing token"})
            return False
        return True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body)
        parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
        self.service.received.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                      "fields": sorted(parts),
                                      "notebook": parts["notebook"].get_payload(decode=True) if "notebook" in parts
                                      else None,
                                      "filename": parts["notebook"].get_filename() if "notebook" in parts else None})
        if not self._authorized():
            return
        assignment = self.path.split("/")[3]
        if assignment == "big":
            return self._send(413, {"detail": "notebook larger than 2 MB"})
        if assignment == "notnb":
            return self._send(422, {"detail": "not a notebook: invalid JSON"})
        if assignment == "busy":
            return self._send(429, {"detail": "at most 10 attempts per hour"}, {"Retry-After": "30"})
        if assignment == "unknown":
            return self._send(404, {"detail": "no such assignment"})
        if assignment == "slow":  # attempt 9 waits in the queue for a few polls
            self.service.polls[9] = 0
            return self._send(202, {"attempt": 9, "position": 3})
        self._send(202, {"attempt": 7, "position": 3})

    def do_GET(self):
        self.service.received.append({"path": self.path, "authorization": self.headers.get("Authorization")})
        if not self._authorized():
            return
        if self.path == "/api/attempts/7":
            return self._send(200, GRADED)
        if self.path == "/api/attempts/9":
            self.service.polls[9] += 1
            if self.service.polls[9] <= 3:
                return self._send(200, {"attempt": 9, "status": "queued"})
            return self._send(200, dict(GRADED, attempt=9))
        if self.path == "/api/attempts/8":
            return self._send(403, {"detail": "not your attempt"})
        self._send(404, {"detail": "no such attempt"})


@pytest.fixture(scope="module")
def fake_service():
    service = FakeService(url="")
    handler = type("Handler", (_Handler,), {"service": service})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield service
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    base: str
    root: Path
    settings: Path   # the course_feedback.json the server reads (COURSE_FEEDBACK_CONFIG)
    log: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory, fake_service):
    """A Jupyter server with only this extension added, its folder holding notebooks in
    assignment folders."""
    root = tmp_path_factory.mktemp("lab-root")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    for folder in ("a1_rnn_cells", "big", "notnb", "busy", "unknown"):
        (root / folder).mkdir()
        nbformat.write(nb, root / folder / "work.ipynb")
    settings = root.parent / "course_feedback.json"
    log = root.parent / "server.log"
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}"]
    config_dir = root.parent / "jupyter-config"  # enables the extension whatever the environment's files say
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(feedback_ext.server_config()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "COURSE_FEEDBACK"))}
    env.update(JUPYTER_CONFIG_DIR=str(config_dir), COURSE_FEEDBACK_CONFIG=str(settings))
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
        yield Lab(base=base, root=root, settings=settings, log=log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _call(lab: Lab, method: str, path: str, body: dict | None = None) -> tuple[int, dict, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{lab.base}/seqcourse-feedback/{path}", data=data, method=method,
                                 headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw), raw.decode()
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw), raw.decode()


def _configure(lab: Lab, url: str, token: str = STUDENT_TOKEN) -> None:
    lab.settings.write_text(json.dumps({"url": url, "token": token}))


def test_submit_sends_the_saved_notebook_with_the_token_and_polls_the_verdict(lab, fake_service):
    _configure(lab, fake_service.url + "/")
    fake_service.received.clear()
    status, reply, _ = _call(lab, "POST", "attempts", {"path": "a1_rnn_cells/work.ipynb"})
    assert (status, reply) == (202, {"attempt": 7, "position": 3, "assignment": "a1_rnn_cells"})
    (sent,) = fake_service.received
    assert sent["path"] == "/api/assignments/a1_rnn_cells/attempts"
    assert sent["authorization"] == f"Bearer {STUDENT_TOKEN}"
    assert sent["fields"] == ["notebook"] and sent["filename"] == "work.ipynb"
    assert sent["notebook"] == (lab.root / "a1_rnn_cells" / "work.ipynb").read_bytes()  # the file as saved

    status, verdict, _ = _call(lab, "GET", "attempts/7")
    assert (status, verdict) == (200, GRADED)  # passed through unchanged


@pytest.mark.parametrize("folder, status, says, retry_after", [
    ("big", 413, "too large", None),
    ("notnb", 422, "not a notebook: invalid JSON", None),
    ("busy", 429, "submit again in 30 s", 30),
    ("unknown", 404, "does not know assignment 'unknown'", None),
])
def test_refusals_become_messages(lab, fake_service, folder, status, says, retry_after):
    _configure(lab, fake_service.url)
    got, reply, _ = _call(lab, "POST", "attempts", {"path": f"{folder}/work.ipynb"})
    assert got == status == reply["status"]
    assert says in reply["message"], reply
    assert reply["retry_after"] == retry_after


def test_a_wrong_token_is_a_401_that_names_where_the_token_comes_from(lab, fake_service):
    _configure(lab, fake_service.url, token="wrong-token")
    status, reply, raw = _call(lab, "POST", "attempts", {"path": "a1_rnn_cells/work.ipynb"})
    assert status == 401 and "did not accept your token" in reply["message"]
    assert str(lab.settings) in reply["message"]
    assert "wrong-token" not in raw  # the token is never echoed


def test_another_students_attempt_is_a_403(lab, fake_service):
    _configure(lab, fake_service.url)
    status, reply, _ = _call(lab, "GET", "attempts/8")
    assert status == 403 and "not yours" in reply["message"]


def test_unreachable_or_unconfigured_service(lab, fake_service):
    _configure(lab, f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    status, reply, _ = _call(lab, "POST", "attempts", {"path": "a1_rnn_cells/work.ipynb"})
    assert status == 502 and "Could not reach the feedback service" in reply["message"]
    lab.settings.unlink()
    status, reply, _ = _call(lab, "POST", "attempts", {"path": "a1_rnn_cells/work.ipynb"})
    assert status == 503 and "No feedback service is configured" in reply["message"]
    assert feedback_ext.ENV_TOKEN in reply["message"]


def test_only_the_servers_own_notebooks_and_the_token_stays_out_of_the_log(lab, fake_service):
    _configure(lab, fake_service.url)
    status, reply, _ = _call(lab, "POST", "attempts", {"path": "../course_feedback.json"})
    assert status == 422  # not a notebook: nothing read, nothing sent
    status, reply, _ = _call(lab, "POST", "attempts", {"path": "../outside.ipynb"})
    assert status in (403, 404), reply  # the contents manager keeps to its root
    assert STUDENT_TOKEN not in lab.log.read_text()


def test_settings_from_the_environment_override_the_file(tmp_path):
    path = tmp_path / "course_feedback.json"
    path.write_text(json.dumps({"url": "http://file:1/", "token": "from-file"}))
    env = {feedback_ext.ENV_CONFIG: str(path)}
    assert feedback_ext.load_settings(environ=env).url == "http://file:1"
    got = feedback_ext.load_settings(environ={**env, feedback_ext.ENV_URL: "https://env:2",
                                              feedback_ext.ENV_TOKEN: "from-env"})
    assert (got.url, got.token) == ("https://env:2", "from-env")
    with pytest.raises(feedback_ext.FeedbackConfigError, match="http:// or https://"):
        feedback_ext.load_settings(environ={**env, feedback_ext.ENV_URL: "file:///etc/passwd"})


def test_retry_after_as_seconds_or_date_and_the_assignment_from_the_folder():
    assert feedback_ext.retry_seconds("30") == 30
    assert feedback_ext.retry_seconds("Sun, 06 Dec 2026 05:00:30 GMT", now=1796533200.0) == 30
    assert feedback_ext.retry_seconds("soon") is None and feedback_ext.retry_seconds(None) is None
    assert feedback_ext.assignment_of("a2_sentiment/a2_sentiment.ipynb") == "a2_sentiment"
    assert feedback_ext.assignment_of("course/a3_char_lm/a3_char_lm.ipynb") == "a3_char_lm"
    assert feedback_ext.assignment_of("a4_visualizing.ipynb") == "a4_visualizing"


def test_on_jupyterhub_the_servers_hub_token_is_sent_when_no_course_token_is_set(tmp_path, fake_service):
    """`course serve` as a Hub service tells students apart by the Hub token of their
    server, sent as `Authorization: token ...` (Bearer stays the course's own tokens)."""
    import asyncio

    env = {feedback_ext.ENV_CONFIG: str(tmp_path / "none.json"), feedback_ext.ENV_URL: fake_service.url,
           feedback_ext.ENV_HUB_TOKEN: "hub-token-of-alices-server"}
    settings = feedback_ext.load_settings(environ=env)
    assert (settings.scheme, settings.token) == ("token", "hub-token-of-alices-server")
    fake_service.received.clear()
    status, reply = asyncio.run(feedback_ext.submit(settings, "a1_rnn_cells", "a1.ipynb", b"{}"))
    assert fake_service.received[-1]["authorization"] == "token hub-token-of-alices-server"
    assert status == 401 and "did not accept your token" in reply["message"]  # the fake knows no Hub
    # a course token, where given, wins
    course = feedback_ext.load_settings(environ={**env, feedback_ext.ENV_TOKEN: STUDENT_TOKEN})
    assert course.authorization == f"Bearer {STUDENT_TOKEN}"
    assert asyncio.run(feedback_ext.submit(course, "a1_rnn_cells", "a1.ipynb", b"{}"))[0] == 202


def test_a_large_notebook_arrives_whole(lab, fake_service):
    """Above EXPECT_CONTINUE_BYTES the upload waits for the service's 100 Continue; the
    notebook must still arrive byte for byte."""
    _configure(lab, fake_service.url)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="z" * (3 * feedback_ext.EXPECT_CONTINUE_BYTES))])])
    nbformat.write(nb, lab.root / "a1_rnn_cells" / "large.ipynb")
    fake_service.received.clear()
    status, reply, _ = _call(lab, "POST", "attempts", {"path": "a1_rnn_cells/large.ipynb"})
    assert status == 202, reply
    assert fake_service.received[-1]["notebook"] == (lab.root / "a1_rnn_cells" / "large.ipynb").read_bytes()
