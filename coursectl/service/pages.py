"""The service's web pages: students upload and read verdicts, the instructor watches.

Server-rendered HTML (Jinja2, autoescaping on: whatever came from a notebook, a check's
message or a student id is text on the page, never markup); no script at all: a page that
waits for a verdict reloads itself every few seconds (``<meta http-equiv=refresh>``).

- ``/`` the student's page: an upload form per assignment and the history of their own
  attempts (instructors are sent to ``/instructor``);
- ``/attempts/{id}`` one attempt: the queue position while it waits, then the verdict per
  unit (check names, passed or failed, messages, points) as far as the assignment's
  visibility setting shows them, the same fields ``GET /api/attempts/{id}`` returns;
- ``/instructor`` the live queue, attempts per student, per-check pass rates over each
  student's latest graded attempt (which check trips the class), roster students without
  an attempt, and ``/instructor/attempts.svg``, attempts over time drawn by matplotlib;
- ``/login`` (a course token, kept in an HttpOnly cookie) and ``/logout``; behind
  JupyterHub the login page offers the Hub's OAuth instead (hub_auth.py).

Pages know people only by cookie: the course-token cookie or the Hub's OAuth session
cookie, never the API's ``Authorization`` header, so the API's clients and the browser
forms stay apart. Every form carries a CSRF token: an HMAC, under a key only this process
knows, of a random per-browser cookie; a POST whose token does not match is refused (403)
before anything else happens, so another site cannot make a logged-in browser upload or
log out.

The data comes from a ``PagesBackend`` (``app.state.pages``) that the service's app
provides: the pages never open the store themselves, and they submit through the same
path as the API, with the same checks and limits.
"""
from __future__ import annotations

import io
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import auth
from .hub_auth import SESSION_COOKIE as HUB_SESSION_COOKIE

HERE = Path(__file__).resolve().parent
TOKEN_COOKIE = "course-token"
CSRF_COOKIE = "course-csrf"
CSRF_FIELD = "csrf_token"
REFRESH_SECONDS = 2  # a waiting attempt's page reloads this often
INSTRUCTOR_REFRESH_SECONDS = 10

templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))


# ------------------------------------------------------------------ what the pages need


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a student id, and whether they teach the course."""

    student_id: str
    instructor: bool = False


@dataclass(frozen=True)
class AttemptRow:
    """One attempt as lists show it (no verdict details)."""

    attempt: int | str
    assignment: str
    student: str
    status: str  # queued | running | graded | failed
    submitted_at: datetime
    score: float | None = None
    max_score: float | None = None
    position: int | None = None  # place in the queue while queued


@dataclass
class Refusal(Exception):
    """The service would not take an upload: the API's status code and reason."""

    status: int
    reason: str
    retry_after: int | None = None


class PagesBackend(Protocol):
    """What the service gives its pages (app.state.pages)."""

    async def viewer_for_token(self, token: str) -> Viewer | None: ...
    def assignments(self) -> list[str]: ...
    def roster(self) -> list[str]: ...
    def attempts(self, *, student: str | None = None, assignment: str | None = None) -> list[AttemptRow]: ...
    def attempt_view(self, attempt: str, viewer: Viewer) -> dict[str, Any]:
        """The API's JSON for one attempt as ``viewer`` may see it; raises
        HTTPException 404 (none) or 403 (someone else's)."""
        ...
    async def submit(self, viewer: Viewer, assignment: str, filename: str, data: bytes) -> tuple[Any, int]:
        """Store and queue an upload: (attempt id, queue position); raises Refusal."""
        ...


async def _call(fn, *args, **kwargs):
    """A backend call (database reads, matplotlib) off the event loop, so the API stays
    responsive while a page is built."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)


def _backend(request: Request) -> PagesBackend:
    backend = getattr(request.app.state, "pages", None)
    if backend is None:
        raise HTTPException(503, "the service's pages are not set up (app.state.pages)")
    return backend


# ------------------------------------------------------------------ sessions and CSRF


def _csrf_key(request: Request) -> bytes:
    state = request.app.state
    key = getattr(state, "csrf_key", None)
    if key is None:
        # per process: a restart only makes open forms stale (the page is reloaded)
        key = state.csrf_key = secrets.token_bytes(32)
    return key


def _csrf_token(request: Request, browser: str) -> str:
    return auth.csrf_token(_csrf_key(request), browser)


def _check_csrf(request: Request, sent: str | None) -> None:
    if not auth.check_csrf(_csrf_key(request), request.cookies.get(CSRF_COOKIE, ""), sent):
        raise HTTPException(403, "the form's CSRF token is missing or stale; reload the page and try again")


def _base(request: Request) -> str:
    """The service's own URL path, with the Hub prefix when mounted behind JupyterHub."""
    return request.scope.get("root_path", "").rstrip("/") + "/"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


async def _viewer(request: Request) -> Viewer | None:
    token = request.cookies.get(TOKEN_COOKIE)
    if token:
        who = await _backend(request).viewer_for_token(token)
        if who is not None:
            return who
    hub = getattr(request.app.state, "hub", None)
    hub_token = request.cookies.get(HUB_SESSION_COOKIE)
    if hub is not None and hub_token:
        ident = await hub.identity_for_token(hub_token)
        if ident is not None:
            return Viewer(student_id=ident.student_id, instructor=ident.instructor)
    return None


def _render(request: Request, name: str, *, status: int = 200, viewer: Viewer | None = None,
            **context) -> HTMLResponse:
    browser = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    html = templates.get_template(name).render(base=_base(request), who=viewer,
                                               csrf=_csrf_token(request, browser), **context)
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    if request.cookies.get(CSRF_COOKIE) != browser:
        response.set_cookie(CSRF_COOKIE, browser, httponly=True, samesite="strict", path=_base(request),
                            secure=_secure(request))
    return response


def _redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(_base(request) + path.lstrip("/"), status_code=303)


def _login_page(request: Request, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    hub = getattr(request.app.state, "hub", None)
    hub_login = f"{_base(request)}hub/login?next={_base(request)}" if hub is not None else None
    return _render(request, "login.html", status=status, error=error, hub_login=hub_login)


router = APIRouter(include_in_schema=False)


@router.get("/static/style.css")
async def stylesheet():
    return Response((HERE / "static" / "style.css").read_bytes(), media_type="text/css",
                    headers={"Cache-Control": "max-age=300"})


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request):
    return _login_page(request)


@router.post("/login")
async def login(request: Request, token: str = Form(""), csrf_token: str = Form("")):
    _check_csrf(request, csrf_token)
    who = await _backend(request).viewer_for_token(token.strip()) if token.strip() else None
    if who is None:
        return _login_page(request, error="That token is not valid for this course.", status=401)
    response = _redirect(request, "instructor" if who.instructor else "")
    response.set_cookie(TOKEN_COOKIE, token.strip(), httponly=True, samesite="lax", path=_base(request),
                        secure=_secure(request))
    return response


@router.post("/logout")
async def logout(request: Request, csrf_token: str = Form("")):
    _check_csrf(request, csrf_token)
    hub = getattr(request.app.state, "hub", None)
    response = hub.logout() if hub is not None and request.cookies.get(HUB_SESSION_COOKIE) else _redirect(request, "login")
    response.delete_cookie(TOKEN_COOKIE, path=_base(request))
    response.delete_cookie(CSRF_COOKIE, path=_base(request))  # a new browser id (and CSRF token) next time
    return response


async def _require(request: Request, *, instructor: bool = False) -> Viewer:
    who = await _viewer(request)
    if who is None:
        hub = getattr(request.app.state, "hub", None)
        if hub is not None and request.method == "GET":
            # behind the Hub a visit starts the Hub's login and comes back here
            raise _LoginNeeded(hub.login_redirect(str(request.url.path)))
        raise _LoginNeeded(_redirect(request, "login"))
    if instructor and not who.instructor:
        raise HTTPException(403, "this page is for the course's instructors")
    return who


class _LoginNeeded(Exception):
    def __init__(self, response: Response):
        self.response = response


def install(app) -> None:
    """Include the pages in ``app``: the router plus the handler that turns a visit
    without a session into the login redirect. With the service's state on the app
    (``app.state.service``, app.py) the pages read it through ServiceBackend, and sign
    CSRF tokens with the service's own key (stable across restarts and instances)."""
    svc = getattr(app.state, "service", None)
    if svc is not None and getattr(app.state, "pages", None) is None:
        app.state.pages = ServiceBackend(svc)
        app.state.csrf_key = svc.key
    app.include_router(router)

    @app.exception_handler(_LoginNeeded)
    async def _login_needed(request: Request, exc: _LoginNeeded):
        return exc.response


# ------------------------------------------------------------------ student


@router.get("/", response_class=HTMLResponse)
async def home(request: Request):
    who = await _require(request)
    if who.instructor:
        return _redirect(request, "instructor")
    return await _student_page(request, who)


async def _student_page(request: Request, who: Viewer, *, error: str | None = None,
                        status: int = 200) -> HTMLResponse:
    backend = _backend(request)
    rows = await _call(backend.attempts, student=who.student_id)
    mine = sorted(rows, key=lambda r: r.submitted_at, reverse=True)
    by_assignment: dict[str, list[AttemptRow]] = defaultdict(list)
    for row in mine:
        by_assignment[row.assignment].append(row)
    waiting = any(r.status in ("queued", "running") for r in mine)
    return _render(request, "student.html", viewer=who, status=status, error=error,
                   assignments=backend.assignments(), attempts=by_assignment,
                   refresh=REFRESH_SECONDS if waiting else None)


@router.post("/assignments/{assignment}/attempts")
async def upload(request: Request, assignment: str):
    # The body is read here, not by FastAPI's form parsing: that would take any size
    # before this handler runs, while the API refuses past the service's upload limit.
    form = await _read_form(request, getattr(_backend(request), "max_upload_bytes", DEFAULT_MAX_UPLOAD))
    if isinstance(form, Refusal):
        # nothing was taken, so no CSRF check is needed to say why (the field was not read)
        who = await _require(request)
        return await _student_page(request, who, error=form.reason, status=form.status)
    fields, notebook = form
    _check_csrf(request, fields.get(CSRF_FIELD))
    who = await _require(request)
    if notebook is None or not notebook[0]:
        return await _student_page(request, who, error="Choose a notebook (.ipynb) to upload.", status=422)
    filename, data = notebook
    try:
        attempt, _position = await _backend(request).submit(who, assignment, filename, data)
    except Refusal as refused:
        message = refused.reason
        if refused.retry_after:
            message += f" Try again in {refused.retry_after} s."
        response = await _student_page(request, who, error=message, status=refused.status)
        if refused.retry_after:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    return _redirect(request, f"attempts/{attempt}")


DEFAULT_MAX_UPLOAD = 5 * 1024 * 1024
FORM_SLACK = 64 * 1024  # the multipart envelope and the CSRF field


async def _read_form(request: Request, limit: int):
    """(text fields, (file name, bytes) of ``notebook`` or None) from a multipart body of
    at most ``limit`` bytes (plus the envelope); a Refusal past it or when malformed."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    too_big = Refusal(413, f"The notebook is larger than {limit // 1024} KB.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_SLACK:
        return too_big
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return Refusal(422, "Send the form as multipart/form-data.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + FORM_SLACK:
            return too_big
        chunks.append(chunk)
    body = b"".join(chunks)

    async def replay():
        yield body

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=2, max_fields=10).parse()
    except MultiPartException as exc:
        return Refusal(422, f"Not a multipart upload: {exc.message}")
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    upload = form.get("notebook")
    notebook = None
    if upload is not None and not isinstance(upload, str):
        data = await upload.read()
        await upload.close()
        if len(data) > limit:
            return too_big
        notebook = (Path((upload.filename or "").replace("\\", "/")).name, data)
    return fields, notebook


@router.get("/attempts/{attempt}", response_class=HTMLResponse)
async def attempt_page(request: Request, attempt: str):
    who = await _require(request)
    backend = _backend(request)
    view = await _call(backend.attempt_view, attempt, who)  # 404 / 403 from the backend
    position = view.get("position")
    if view.get("status") == "queued" and position is None:
        for row in await _call(backend.attempts, student=view.get("student"), assignment=view.get("assignment")):
            if str(row.attempt) == str(view.get("attempt")):
                position = row.position
    waiting = view.get("status") in ("queued", "running")
    return _render(request, "attempt.html", viewer=who, view=view, position=position,
                   refresh=REFRESH_SECONDS if waiting else None)


# ------------------------------------------------------------------ instructor


@dataclass
class CheckRate:
    """How many students' latest graded attempt passed one check."""

    grade_id: str
    name: str
    passed: int = 0
    total: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * self.passed / self.total if self.total else 0.0


@dataclass
class StudentSummary:
    student: str
    attempts: int = 0
    graded: int = 0
    best: float | None = None
    latest: AttemptRow | None = None
    assignments: set[str] = field(default_factory=set)


def check_rates(backend: PagesBackend, rows: list[AttemptRow], viewer: Viewer) -> list[CheckRate]:
    """Per check, over each student's latest graded attempt of the assignment(s): the
    checks that trip most students come first."""
    latest: dict[tuple[str, str], AttemptRow] = {}
    for row in sorted(rows, key=lambda r: r.submitted_at):
        if row.status == "graded":
            latest[(row.student, row.assignment)] = row
    rates: dict[tuple[str, str, str], CheckRate] = {}
    for row in latest.values():
        view = backend.attempt_view(str(row.attempt), viewer)
        for unit in view.get("units") or []:
            for check in unit.get("checks") or []:
                key = (row.assignment, unit.get("grade_id", ""), check.get("name", ""))
                rate = rates.setdefault(key, CheckRate(grade_id=f"{row.assignment}/{key[1]}", name=key[2]))
                rate.total += 1
                rate.passed += bool(check.get("passed"))
    return sorted(rates.values(), key=lambda r: (r.percent, r.grade_id, r.name))


def summaries(rows: list[AttemptRow]) -> list[StudentSummary]:
    people: dict[str, StudentSummary] = {}
    for row in sorted(rows, key=lambda r: r.submitted_at):
        s = people.setdefault(row.student, StudentSummary(student=row.student))
        s.attempts += 1
        s.assignments.add(row.assignment)
        s.latest = row
        if row.status == "graded" and row.score is not None:
            s.graded += 1
            s.best = row.score if s.best is None else max(s.best, row.score)
    return sorted(people.values(), key=lambda s: s.student)


@router.get("/instructor", response_class=HTMLResponse)
async def instructor_page(request: Request, assignment: str = ""):
    who = await _require(request, instructor=True)
    backend = _backend(request)
    assignments = backend.assignments()
    chosen = assignment if assignment in assignments else ""
    rows = await _call(backend.attempts, assignment=chosen or None)
    queue = sorted((r for r in rows if r.status in ("queued", "running")),
                   key=lambda r: (r.status != "running", r.position if r.position is not None else 1 << 30))
    seen = {r.student for r in rows}
    missing = [s for s in await _call(backend.roster) if s not in seen]
    rates = await _call(check_rates, backend, rows, who)
    return _render(request, "instructor.html", viewer=who, assignments=assignments, chosen=chosen,
                   queue=queue, students=summaries(rows), rates=rates,
                   missing=missing, total=len(rows), refresh=INSTRUCTOR_REFRESH_SECONDS)


@router.get("/instructor/attempts.svg")
async def attempts_plot(request: Request, assignment: str = ""):
    await _require(request, instructor=True)
    backend = _backend(request)
    rows = await _call(backend.attempts, assignment=assignment or None)
    return Response(await _call(attempts_svg, rows), media_type="image/svg+xml",
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def attempts_svg(rows: list[AttemptRow]) -> bytes:
    """Attempts per time bin as stacked bars, one colour per assignment, as an SVG drawn
    server-side. The bin width follows the span (a minute for a busy hour, a day for a
    term); bins start on whole minutes, hours or days."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), dpi=96)
    ax = fig.subplots()
    if rows:
        times = [_utc(r.submitted_at) for r in rows]
        span = (max(times) - min(times)).total_seconds()
        width = next((w for w in BIN_SECONDS if span / w <= 60), BIN_SECONDS[-1])
        epoch = datetime(2000, 1, 3, tzinfo=timezone.utc)  # a Monday: week bins start on Mondays
        def bin_of(t: datetime) -> int:
            return int((t - epoch).total_seconds() // width)
        first, last = bin_of(min(times)), bin_of(max(times))
        bins = list(range(first - 1, last + 2))  # an empty bin either side frames the bars
        lefts = [mdates.date2num(epoch + timedelta(seconds=b * width)) for b in bins]
        bottom = [0] * len(bins)
        for name in sorted({r.assignment for r in rows}):
            counts = Counter(bin_of(_utc(r.submitted_at)) for r in rows if r.assignment == name)
            heights = [counts.get(b, 0) for b in bins]
            ax.bar(lefts, heights, width=0.9 * width / 86400, align="edge", bottom=bottom, label=name)
            bottom = [b + h for b, h in zip(bottom, heights)]
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper left", fontsize="small")
        ax.set_ylabel(f"attempts per {_duration(width)}")
    else:
        ax.text(0.5, 0.5, "no attempts yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Attempts over time (UTC)")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


BIN_SECONDS = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _duration(seconds: float) -> str:
    for unit, size in (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds:.0f} s"


# ------------------------------------------------------------------ the real service


class ServiceBackend:
    """The pages' view of app.py's ``Service``: its store, dispatcher and settings. An
    upload goes through the API's own checks in the API's order (assignment, who,
    notebook format, then the dispatcher's limits and queue, which store it first)."""

    def __init__(self, service):
        self.svc = service
        self.max_upload_bytes = service.settings.max_upload_bytes

    @staticmethod
    def _principal(viewer: Viewer):
        from .auth import Principal

        if viewer.instructor:
            return Principal(name=viewer.student_id, instructor=True, via="page")
        return Principal(name=viewer.student_id, student=viewer.student_id, via="page")

    async def viewer_for_token(self, token: str) -> Viewer | None:
        from .tokens import token_hash

        found = await _call(self.svc.store.find_token, token_hash(token))
        if not found:
            return None
        student, role, name = found
        if role == "instructor":
            return Viewer(student_id=name, instructor=True)
        return Viewer(student_id=student)

    def assignments(self) -> list[str]:
        return list(self.svc.assignments)

    def roster(self) -> list[str]:
        """The class: students holding a course token, and those in the course's
        roster.csv when there is one (behind the Hub nobody needs a token)."""
        students = set(self.svc.store.students())
        roster = self.svc.settings.course / "roster.csv"
        if roster.is_file():
            from .tokens import roster_students

            try:
                students.update(roster_students(roster))
            except Exception:  # a roster the pages cannot read leaves the token holders
                pass
        return sorted(students)

    def attempts(self, *, student: str | None = None, assignment: str | None = None) -> list[AttemptRow]:
        rows = []
        for a in self.svc.store.attempts(student=student, assignment=assignment):
            waiting = a.status in ("queued", "running")
            rows.append(AttemptRow(attempt=a.id, assignment=a.assignment, student=a.student, status=a.status,
                                   submitted_at=datetime.fromtimestamp(a.submitted_at, timezone.utc),
                                   score=a.score, max_score=a.max_score,
                                   position=self.svc.dispatcher.position(a.id) if waiting else None))
        return rows

    def attempt_view(self, attempt: str, viewer: Viewer) -> dict[str, Any]:
        found = self.svc.store.get(int(attempt)) if str(attempt).isdigit() else None
        if found is None:
            raise HTTPException(404, f"no attempt {attempt}")
        who = self._principal(viewer)
        if not who.may_see(found.student):
            raise HTTPException(403, "this attempt is another student's")
        return self.svc.view(found, who)

    async def submit(self, viewer: Viewer, assignment: str, filename: str, data: bytes) -> tuple[Any, int]:
        from .app import check_notebook
        from .dispatch import Accepted

        if assignment not in self.svc.assignments:
            raise Refusal(404, f"No assignment {assignment!r}.")
        if viewer.instructor:
            raise Refusal(403, "Only students submit attempts.")
        if len(data) > self.max_upload_bytes:
            raise Refusal(413, f"The notebook is larger than {self.max_upload_bytes // 1024} KB.")
        why = await _call(check_notebook, data)
        if why:
            raise Refusal(422, why[0].upper() + why[1:] + ".")
        # the file name as the API keeps it: printable, at most 200 characters
        filename = "".join(ch for ch in Path(filename.replace("\\", "/")).name if ch.isprintable())[-200:]
        outcome = await _call(lambda: self.svc.dispatcher.accept(
            assignment=assignment, student=viewer.student_id, data=data, filename=filename or "notebook.ipynb"))
        if not isinstance(outcome, Accepted):
            raise Refusal(429, outcome.reason, outcome.retry_after)
        return outcome.attempt.id, outcome.position
