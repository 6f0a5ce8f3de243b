"""`course serve` behind a REAL JupyterHub (the pip package, configurable-http-proxy from
npm, DummyAuthenticator; nobody's server is spawned): the README's jupyterhub_config.py
snippet registers the service, students log in at the Hub and reach the service through
the Hub's proxy by the Hub's OAuth, submit from its page, and read their verdict; another
student cannot see it, the instructor (in the Hub's instructors group) can. The API
takes the student's Hub token too (what the JupyterLab extension sends on the Hub).

One Hub and one service for the module. Slow: the attempt is graded by the real chain.
Needs configurable-http-proxy (`make setup` runs tests/install_chp.sh); skipped without
it, except under CI=true, where its absence fails.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fixtures.grading import tiny
from nbcourse import BIN, REPO

pytestmark = pytest.mark.slow

A = tiny.ASSIGNMENT
PASSWORD = "hub-test-password"
SNIPPET_START = "# jupyterhub_config.py: course serve as a JupyterHub service"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readme_snippet() -> str:
    """The README's jupyterhub_config.py snippet, as instructors copy it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SNIPPET_START)
    return text[start:text.index("```", start)]


@pytest.fixture(scope="module")
def proxy() -> str:
    found = shutil.which("configurable-http-proxy", path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    if not found:
        reason = "needs configurable-http-proxy (npm); make setup installs it (tests/install_chp.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def hub(proxy, tmp_path_factory):
    """JupyterHub on a free port, configured by the README's snippet plus the test's own
    settings (ports, dummy logins, state files in a temporary folder); yields its URL."""
    root = tmp_path_factory.mktemp("hub")
    course = tiny.make_course(root)
    hub_port, api_port, proxy_api_port, service_port = (_free_port() for _ in range(4))
    config = root / "jupyterhub_config.py"
    config.write_text("\n".join([
        "c = get_config()  # noqa",
        readme_snippet(),
        "# ---- the test's own settings",
        "c.JupyterHub.ip = '127.0.0.1'",
        f"c.JupyterHub.port = {hub_port}",
        f"c.JupyterHub.hub_port = {api_port}",
        "c.JupyterHub.authenticator_class = 'dummy'",
        f"c.DummyAuthenticator.password = {PASSWORD!r}",
        "c.Authenticator.allow_all = True",
        "c.JupyterHub.load_groups = {'instructors': {'users': ['prof']}}",
        f"c.JupyterHub.db_url = 'sqlite:///{root / 'hub.sqlite'}'",
        f"c.JupyterHub.cookie_secret_file = {str(root / 'cookie_secret')!r}",
        f"c.ConfigurableHTTPProxy.pid_file = {str(root / 'proxy.pid')!r}",
        f"c.ConfigurableHTTPProxy.command = [{proxy!r}]",
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{proxy_api_port}'",
        "course = c.JupyterHub.services[0]",
        f"course['url'] = 'http://127.0.0.1:{service_port}'",
        f"course['command'] = [{str(BIN / 'course')!r}, 'serve', '--host', '127.0.0.1', '--port', "
        f"'{service_port}', '--workers', '1']",
        f"course['cwd'] = {str(course)!r}",
        f"course['environment']['PATH'] = {f'{BIN}{os.pathsep}' + os.environ['PATH']!r}",
    ]) + "\n")
    log = root / "hub.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(config)], cwd=root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{hub_port}"
    try:
        _wait_until(lambda: _answers(f"{base}/services/course/login"), proc, log, what="the Hub and course serve")
        yield base, course, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _answers(url: str) -> bool:
    """The service's login page through the proxy (a 404 until the Hub adds the route)."""
    import requests

    try:
        return requests.get(url, timeout=5, allow_redirects=False).status_code == 200
    except requests.RequestException:
        return False


def _wait_until(test, proc, log: Path, *, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not test():
        if proc.poll() is not None:
            pytest.fail(f"JupyterHub exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer within {timeout} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)


def hub_login(base: str, user: str):
    """A browser-like session logged in at the Hub, then at the service by the Hub's
    OAuth (following the redirects: service -> Hub authorize -> service callback)."""
    import requests

    s = requests.Session()
    s.get(f"{base}/hub/login", timeout=30)
    r = s.post(f"{base}/hub/login", params={"next": "/services/course/"}, timeout=60,
               data={"username": user, "password": PASSWORD, "_xsrf": s.cookies.get("_xsrf", "")})
    assert r.status_code == 200, f"{user}: {r.status_code} {r.url}\n{r.text[:2000]}"
    assert r.url == f"{base}/services/course/" or r.url.startswith(f"{base}/services/course/instructor"), r.url
    hops = [h.url for h in r.history]
    assert any("/hub/api/oauth2/authorize" in u for u in hops), hops
    assert any("/services/course/oauth_callback" in u for u in hops), hops
    return s, r


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


@pytest.fixture(scope="module")
def alice_attempt(hub):
    """alice submits tiny (cube wrong) from the service's page through the Hub's proxy
    and waits for the verdict page."""
    base, _course, log = hub
    s, home = hub_login(base, "alice")
    assert 'id="who">alice<' in home.text
    r = s.post(f"{base}/services/course/assignments/{A}/attempts", timeout=60,
               data={"csrf_token": _csrf(home.text)},
               files={"notebook": ("tiny.ipynb", tiny.notebook_bytes(tiny.wrong_answer()), "application/json")})
    assert r.status_code == 200, r.text[:2000]
    m = re.search(r"/services/course/attempts/(\d+)$", r.url)
    assert m, r.url
    attempt = m.group(1)
    deadline = time.monotonic() + 240
    while 'id="status">graded<' not in r.text:
        assert 'id="status">failed<' not in r.text, r.text
        assert time.monotonic() < deadline, f"no verdict in 240 s:\n{r.text[:2000]}\n{log.read_text()[-3000:]}"
        time.sleep(1)
        r = s.get(f"{base}/services/course/attempts/{attempt}", timeout=30)
    return s, attempt, r.text


def test_student_reads_verdict_through_the_hub(alice_attempt):
    _s, _attempt, page = alice_attempt
    # square right, cube wrong: 2 of the 5 autograded points (7 with the written answer);
    # tiny's tests are plain asserts, so units without named checks; no hidden test text
    assert re.search(r'id="score">Score: <strong>2</strong> / 7<', page), page
    assert "test_square &middot; 2 / 2 points" in page and "test_cube &middot; 0 / 3 points" in page
    for marker in tiny.HIDDEN_MARKERS:
        assert marker not in page


def test_another_student_cannot_see_it(hub, alice_attempt):
    base, _course, _log = hub
    _s, attempt, _page = alice_attempt
    bob, home = hub_login(base, "bob")
    assert 'id="who">bob<' in home.text and f"#{attempt}" not in home.text
    assert bob.get(f"{base}/services/course/attempts/{attempt}", timeout=30).status_code == 403
    assert bob.get(f"{base}/services/course/instructor", timeout=30).status_code == 403


def test_instructor_sees_it(hub, alice_attempt):
    base, _course, _log = hub
    _s, attempt, _page = alice_attempt
    prof, page = hub_login(base, "prof")
    assert "/instructor" in page.url and "alice" in page.text
    r = prof.get(f"{base}/services/course/attempts/{attempt}", timeout=30)
    assert r.status_code == 200 and 'id="status">graded<' in r.text


def test_api_takes_the_students_hub_token(hub, alice_attempt):
    """The student's own Hub token (the one their single-user server holds) reaches the
    API through the proxy; another student's token does not open alice's attempt."""
    import requests

    base, _course, _log = hub
    s, attempt, _page = alice_attempt
    tokens = {}
    for user in ("alice", "bob"):
        sess = s if user == "alice" else hub_login(base, user)[0]
        r = sess.post(f"{base}/hub/api/users/{user}/tokens", json={"note": "test", "expires_in": 600},
                      headers={"X-XSRFToken": sess.cookies.get("_xsrf", "")}, timeout=30)
        assert r.status_code in (200, 201), r.text
        tokens[user] = r.json()["token"]
    url = f"{base}/services/course/api/attempts/{attempt}"
    mine = requests.get(url, headers={"Authorization": f"token {tokens['alice']}"}, timeout=30)
    assert mine.status_code == 200, mine.text
    assert mine.json()["student"] == "alice" and mine.json()["status"] == "graded"
    assert mine.json()["score"] == 2 and mine.json()["max_score"] == 7
    other = requests.get(url, headers={"Authorization": f"token {tokens['bob']}"}, timeout=30)
    assert other.status_code == 403
    assert requests.get(url, headers={"Authorization": "token not-a-hub-token"}, timeout=30).status_code == 401
