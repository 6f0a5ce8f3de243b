"""The service's web pages (coursectl/service/pages.py) through the ASGI test client, on a
stand-in backend: no grading, so fast. What a page shows, who may see it, CSRF on every
form, and that notebook-made text stays text. The real service behind them is exercised
in test_pages_browser.py and test_hub.py."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import FastAPI, HTTPException

from coursectl.service import pages
from coursectl.service.pages import AttemptRow, Refusal, Viewer

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
TOKENS = {"tok-alice": Viewer("alice"), "tok-bob": Viewer("bob"), "tok-prof": Viewer("prof", instructor=True)}
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"


class FakeBackend:
    """Attempts in memory, the API's JSON per attempt, and the refusals the API gives."""

    def __init__(self):
        self.rows: list[AttemptRow] = []
        self.views: dict[str, dict] = {}
        self.uploads: list[tuple[str, str, str, bytes]] = []
        self.refuse: Refusal | None = None

    async def viewer_for_token(self, token):
        return TOKENS.get(token)

    def assignments(self):
        return ["tiny", "a1_rnn_cells"]

    def roster(self):
        return ["alice", "bob", "carol"]

    def attempts(self, *, student=None, assignment=None):
        return [r for r in self.rows if (student is None or r.student == student)
                and (assignment is None or r.assignment == assignment)]

    def attempt_view(self, attempt, viewer):
        if attempt not in self.views:
            raise HTTPException(404, "no such attempt")
        view = self.views[attempt]
        if not viewer.instructor and view["student"] != viewer.student_id:
            raise HTTPException(403, "another student's attempt")
        return view

    async def submit(self, viewer, assignment, filename, data):
        if self.refuse:
            raise self.refuse
        self.uploads.append((viewer.student_id, assignment, filename, data))
        n = str(len(self.rows) + 1)
        self.add(n, viewer.student_id, assignment, status="queued", position=3)
        return n, 3

    def add(self, n, student, assignment="tiny", *, status="graded", minutes=0, units=None, position=None,
            score=None, reason=None):
        units = units if units is not None else []
        if score is None and status == "graded":
            score = sum(u["points"] for u in units)
        self.rows.append(AttemptRow(attempt=n, assignment=assignment, student=student, status=status,
                                    submitted_at=T0 + timedelta(minutes=minutes), score=score,
                                    max_score=5.0 if status == "graded" else None, position=position))
        self.views[n] = {"attempt": n, "assignment": assignment, "student": student, "status": status,
                         "score": score, "max_score": 5.0 if status == "graded" else None, "units": units,
                         "reason": reason}


def unit(grade_id, points, max_points, *checks):
    return {"grade_id": grade_id, "points": points, "max_points": max_points,
            "checks": [{"name": n, "passed": p, "message": m} for n, p, m in checks]}


@pytest.fixture
def backend():
    b = FakeBackend()
    b.add("1", "alice", units=[unit("test_square", 2, 2, ("square_neg", True, "")),
                               unit("test_cube", 0, 3, ("cube_neg", False, f"cube(-3) gave 9 {XSS}"))])
    b.add("2", "bob", minutes=3, units=[unit("test_square", 2, 2, ("square_neg", True, "")),
                                        unit("test_cube", 3, 3, ("cube_neg", True, ""))])
    return b


@pytest.fixture
def client(backend):
    from fastapi.testclient import TestClient

    app = FastAPI()
    app.state.pages = backend
    pages.install(app)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def csrf(client, path="/login") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)


def login(client, token):
    r = client.post("/login", data={"token": token, "csrf_token": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r


def test_login_sets_httponly_cookie_and_bad_token_is_refused(client):
    r = client.post("/login", data={"token": "nope", "csrf_token": csrf(client)})
    assert r.status_code == 401 and "not valid" in r.text
    r = login(client, "tok-alice")
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("course-token="))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert r.headers["location"] == "/"
    assert "Signed in as <strong id=\"who\">alice</strong>" in client.get("/").text


def test_every_form_refuses_a_post_without_its_csrf_token(client, backend):
    # no token at all, a made-up one, and a real token from another browser: all 403
    r = client.post("/login", data={"token": "tok-alice"}, follow_redirects=False)
    assert r.status_code == 403 and "course-token" not in r.headers.get("set-cookie", "")
    login(client, "tok-alice")
    nb = {"notebook": ("tiny.ipynb", b"{}", "application/json")}
    assert client.post("/assignments/tiny/attempts", files=nb, data={"csrf_token": "0" * 64}).status_code == 403
    assert client.post("/assignments/tiny/attempts", files=nb).status_code == 403
    other = type(client)(client.app)
    foreign = csrf(other)
    assert client.post("/assignments/tiny/attempts", files=nb, data={"csrf_token": foreign}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert backend.uploads == []
    # and with this browser's token the same upload goes through
    token = csrf(client, "/")
    r = client.post("/assignments/tiny/attempts", files=nb, data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and backend.uploads == [("alice", "tiny", "tiny.ipynb", b"{}")]


def test_student_sees_own_history_and_verdict_escaped(client):
    login(client, "tok-alice")
    home = client.get("/")
    assert "#1" in home.text and "#2" not in home.text  # bob's attempt is not listed
    page = client.get("/attempts/1")
    assert page.status_code == 200
    assert "cube_neg" in page.text and "failed" in page.text and "square_neg" in page.text
    # the check's message (which may quote student output) is text, never markup
    assert "<script>" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/attempts/2").status_code == 403
    assert client.get("/attempts/99").status_code == 404
    assert client.get("/instructor").status_code == 403
    assert client.get("/instructor/attempts.svg").status_code == 403


def test_without_a_session_pages_send_to_login(client):
    for path in ("/", "/attempts/1", "/instructor"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path


def test_visibility_is_the_backends_fields_only(client, backend):
    # points only: the backend left out checks; names only: no messages
    backend.add("3", "alice", units=[{"grade_id": "test_cube", "points": 0, "max_points": 3}])
    backend.add("4", "alice", units=[{"grade_id": "test_cube", "points": 0, "max_points": 3,
                                       "checks": [{"name": "cube_neg", "passed": False}]}])
    backend.views["3"]["visibility"], backend.views["4"]["visibility"] = "points", "checks"
    login(client, "tok-alice")
    points_only = client.get("/attempts/3").text
    assert "test_cube" in points_only and "cube_neg" not in points_only and "points per unit only" in points_only
    names_only = client.get("/attempts/4").text
    assert "cube_neg" in names_only and "<th>Message</th>" not in names_only and "without their messages" in names_only


def test_waiting_attempt_shows_position_and_refreshes(client, backend):
    login(client, "tok-alice")
    r = client.post("/assignments/tiny/attempts", files={"notebook": ("t.ipynb", b"{}", "application/json")},
                    data={"csrf_token": csrf(client, "/")})
    page = r.text  # followed the redirect to the attempt's page
    assert str(r.url).endswith("/attempts/3")
    assert 'id="position">3<' in page and 'http-equiv="refresh"' in page
    assert 'http-equiv="refresh"' not in client.get("/attempts/1").text  # graded: no reloading


def test_refusals_come_back_with_status_and_retry_after(client, backend):
    login(client, "tok-alice")
    backend.refuse = Refusal(429, "Too many attempts for tiny in the last hour.", retry_after=120)
    r = client.post("/assignments/tiny/attempts", files={"notebook": ("t.ipynb", b"{}", "application/json")},
                    data={"csrf_token": csrf(client, "/")})
    assert r.status_code == 429 and r.headers["retry-after"] == "120"
    assert "Too many attempts" in r.text and "Try again in 120 s" in r.text
    backend.refuse = Refusal(422, "Not a notebook: <b>bad</b> JSON")
    r = client.post("/assignments/tiny/attempts", files={"notebook": ("t.ipynb", b"x", "text/plain")},
                    data={"csrf_token": csrf(client, "/")})
    assert r.status_code == 422 and "&lt;b&gt;bad&lt;/b&gt;" in r.text


def test_instructor_page(client, backend):
    backend.add("3", "bob", minutes=5, status="queued", position=1)
    backend.add("4", f"eve{XSS}", minutes=6, status="running")
    r = login(client, "tok-prof")
    assert r.headers["location"] == "/instructor"
    page = client.get("/instructor").text
    queue = page.split('id="queue"')[1].split("</table>")[0]
    assert "#3" in queue and "#4" in queue and "#1" not in queue
    # carol never submitted; alice and bob did
    missing = page.split('id="missing"')[1].split("</ul>")[0]
    assert "carol" in missing and "alice" not in missing and "bob" not in missing
    # cube_neg: one of two students' latest graded attempts passes; it comes first
    rates = page.split('id="rates"')[1].split("</table>")[0]
    assert rates.index("cube_neg") < rates.index("square_neg")
    assert "1 / 2 (50%)" in rates and "2 / 2 (100%)" in rates
    students = page.split('id="students"')[1].split("</table>")[0]
    assert re.search(r"<td>bob</td><td>2</td><td>1</td><td>5</td>", students)
    assert "<script>" not in page and "eve&lt;script&gt;" in page
    svg = client.get("/instructor/attempts.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content and b"<script" not in svg.content and b"tiny" in svg.content
    # another assignment's filter: nothing there yet
    only_a1 = client.get("/instructor", params={"assignment": "a1_rnn_cells"}).text
    assert "0 attempts" in only_a1 and "carol" in only_a1 and "alice" in only_a1.split('id="missing"')[1]


def test_plot_bins_follow_the_span():
    rows = [AttemptRow(i, "tiny", "s", "graded", T0 + timedelta(seconds=20 * i)) for i in range(30)]
    svg = pages.attempts_svg(rows).decode()
    assert "attempts per min" in svg
    rows = [AttemptRow(i, "tiny", "s", "graded", T0 + timedelta(days=i)) for i in range(30)]
    assert "attempts per day" in pages.attempts_svg(rows).decode()
    assert "no attempts yet" in pages.attempts_svg([]).decode()


def test_logout_forgets_the_session(client):
    login(client, "tok-alice")
    r = client.post("/logout", data={"csrf_token": csrf(client, "/")}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


# ------------------------------------------------------------------ on the service's own app


class StandInGrader:
    """Grades instantly: test_cube fails when the notebook says so (no kernels here)."""

    slots = 1
    where = "stand-in"

    def grade(self, *, assignment, student, notebook, filename):
        from coursectl.service.grader import Verdict

        cube_ok = b"x * x * abs(x)" not in notebook
        units = [unit("test_square", 2, 2, ("square_neg", True, "")),
                 unit("test_cube", 3 if cube_ok else 0, 3, ("cube_neg", cube_ok, "" if cube_ok else "cube(-3) != -27"))]
        return Verdict("graded", score=sum(u["points"] for u in units), max_score=5.0, units=units)

    def abort(self):
        pass

    def close(self):
        pass


@pytest.fixture
def service(tmp_path):
    """create_app on a tiny course, with a stand-in grader, a roster and course tokens."""
    from fastapi.testclient import TestClient

    from coursectl.service.app import create_app
    from coursectl.service.config import load_settings
    from coursectl.service.tokens import token_hash
    from fixtures.grading import tiny

    course = tiny.make_course(tmp_path, generate=False)
    (course / "roster.csv").write_text("student_id\nalice\nbob\ncarol\n")
    settings = load_settings(course)
    app = create_app(settings, grader=StandInGrader())
    store = app.state.service.store
    for student in ("alice", "bob"):
        store.add_token(token_hash(f"tok-{student}"), student=student, role="student", name=student)
    store.add_token(token_hash("tok-prof"), student=None, role="instructor", name="prof")
    with TestClient(app) as c:
        yield c


def _wait_graded(client, url, timeout=30):
    import time

    deadline = time.monotonic() + timeout
    while True:
        page = client.get(url)
        if 'id="status">graded<' in page.text or time.monotonic() > deadline:
            return page
        time.sleep(0.1)


def test_service_upload_verdict_and_instructor_view(service):
    from fixtures.grading import tiny

    login(service, "tok-alice")
    # without the form's CSRF token: refused, nothing stored
    r = service.post("/assignments/tiny/attempts",
                     files={"notebook": ("tiny.ipynb", tiny.notebook_bytes(tiny.good()), "application/json")})
    assert r.status_code == 403
    assert service.get("/api/attempts", headers={"Authorization": "Bearer tok-alice"}).json() == []
    r = service.post("/assignments/tiny/attempts", data={"csrf_token": csrf(service, "/")},
                     files={"notebook": ("sub/dir/tiny\x1b.ipynb", tiny.notebook_bytes(tiny.wrong_answer()),
                                         "application/json")})
    assert r.status_code == 200 and re.search(r"/attempts/\d+$", str(r.url)), r.text[:500]
    page = _wait_graded(service, str(r.url))
    assert re.search(r'id="score">Score: <strong>2</strong> / 5', page.text), page.text
    assert "cube(-3) != -27" in page.text
    attempt = str(r.url).rsplit("/", 1)[1]
    # the same attempt through the API, with the same token as a Bearer header
    api = service.get(f"/api/attempts/{attempt}", headers={"Authorization": "Bearer tok-alice"})
    assert api.status_code == 200, api.text
    api = api.json()
    assert api["score"] == 2 and api["student"] == "alice"
    stored = service.app.state.service.store.get(int(attempt))
    assert stored.filename == "tiny.ipynb"  # path and control characters dropped, as the API does
    # the API takes no cookie: the page's session does not open it
    assert service.get(f"/api/attempts/{attempt}").status_code == 401
    # not a notebook: refused with the API's status, nothing stored
    r = service.post("/assignments/tiny/attempts", data={"csrf_token": csrf(service, "/")},
                     files={"notebook": ("x.ipynb", b"{not json", "application/json")})
    assert r.status_code == 422 and "not valid JSON" in r.text
    r = service.post("/assignments/tiny/attempts", data={"csrf_token": csrf(service, "/")},
                     files={"notebook": ("x.ipynb", b"x" * (6 * 1024 * 1024), "application/json")})
    assert r.status_code == 413
    assert len(service.get("/api/attempts", headers={"Authorization": "Bearer tok-alice"}).json()) == 1
    # bob: not his
    service.cookies.clear()
    login(service, "tok-bob")
    assert service.get(f"/attempts/{attempt}").status_code == 403
    # the instructor: the attempt, carol missing, the check that trips the class
    service.cookies.clear()
    login(service, "tok-prof")
    page = service.get("/instructor").text
    assert "carol" in page.split('id="missing"')[1] and "bob" in page.split('id="missing"')[1]
    assert "alice" not in page.split('id="missing"')[1].split("</ul>")[0]
    assert "0 / 1 (0%)" in page.split('id="rates"')[1]
    assert service.get(f"/attempts/{attempt}").status_code == 200
    assert b"<svg" in service.get("/instructor/attempts.svg").content


def test_behind_the_hub_the_app_answers_below_its_prefix_and_starts_up(tmp_path):
    """mounted_for_hub: routes and links below /services/course/, lifespan passed on (the
    service's grading threads start in it)."""
    from fastapi.testclient import TestClient

    from coursectl.service.hub_auth import mounted_for_hub

    started = []
    app = FastAPI(lifespan=_recording_lifespan(started))
    app.state.pages = FakeBackend()
    pages.install(app)
    env = {"JUPYTERHUB_API_TOKEN": "x", "JUPYTERHUB_CLIENT_ID": "service-course",
           "JUPYTERHUB_SERVICE_PREFIX": "/services/course/"}
    assert mounted_for_hub(app, {}) is app
    with TestClient(mounted_for_hub(app, env)) as c:
        assert started == ["up"]
        page = c.get("/services/course/login")
        assert page.status_code == 200 and 'action="/services/course/login"' in page.text
        assert 'href="/services/course/static/style.css"' in page.text
        assert c.get("/services/course/static/style.css").status_code == 200
        assert c.get("/login").status_code == 404
        r = c.get("/services/course/", follow_redirects=False)
        assert r.headers["location"] == "/services/course/login"
    assert started == ["up", "down"]


def _recording_lifespan(events):
    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app):
        events.append("up")
        yield
        events.append("down")

    return lifespan
