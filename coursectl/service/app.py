"""The ASGI app of `course serve` (FastAPI on uvicorn). The JSON API (pinned; clients rely on it):

* ``POST /api/assignments/{assignment}/attempts`` (``Authorization: Bearer TOKEN``, the
  notebook as multipart field ``notebook``) -> 202 ``{"attempt": ID, "position": N}``;
  401 no valid token, 404 no such assignment, 413 too large (the declared length first,
  then the bytes as they arrive), 422 not a notebook (nbformat validation), 429 with
  ``Retry-After`` past a limit or when the queue is full. Nothing is queued before all
  of these pass; the attempt is stored before the 202.
* ``GET /api/attempts/{ID}`` -> ``{"attempt", "assignment", "student", "status",
  "position", "submitted_at", "score", "max_score", "units", "reason", "visibility"}``,
  units as the assignment's visibility allows a student (the instructor sees all);
  403 for another student's attempt.
* ``GET /api/attempts[?assignment=A&student=S]``: the caller's attempts (instructor: all).
* ``GET /api/assignments``: the assignments, their deadline, visibility and limits.
* ``GET /api/queue`` (instructor): the live queue. ``GET /api/me``: who the caller is.
* ``GET /api/health``: no token; the service is up.
"""
from __future__ import annotations

import contextlib
import json
import logging
from datetime import datetime, timezone

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from .auth import BearerSource, Principal, require_principal, service_key
from .config import ServiceSettings
from .dispatch import Accepted, Dispatcher
from .grader import assignment_notebooks
from .store import Attempt, Store

log = logging.getLogger("coursectl.service")
MULTIPART_SLACK = 64 * 1024   # the multipart envelope around the notebook


class Service:
    """What the app's handlers share (``app.state.service``)."""

    def __init__(self, settings: ServiceSettings, grader, store: Store | None = None):
        self.settings = settings
        self.store = store or Store(settings.state_dir, settings.db_url)
        self.grader = grader
        self.dispatcher = Dispatcher(self.store, grader, settings)
        self.key = service_key(settings.state_dir)   # CSRF tokens of the HTML forms (auth.csrf_token)
        self.assignments = sorted(p.name for p in (settings.course / "source").iterdir()
                                  if p.is_dir() and any(p.glob("*.ipynb")))

    def view(self, attempt: Attempt, who: Principal) -> dict:
        """An attempt as ``who`` may see it."""
        from .visibility import filter_units

        level = "messages" if who.instructor else self.settings.rules(attempt.assignment).visibility.level()
        position = self.dispatcher.position(attempt.id) if attempt.status in ("queued", "running") else None
        return {"attempt": attempt.id, "assignment": attempt.assignment, "student": attempt.student,
                "status": attempt.status, "position": position,
                "submitted_at": datetime.fromtimestamp(attempt.submitted_at, timezone.utc).isoformat(),
                "score": attempt.score, "max_score": attempt.max_score,
                "units": filter_units(attempt.units, level), "reason": attempt.reason, "visibility": level}


def _refuse(status: int, reason: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"detail": reason, "reason": reason}, status_code=status, headers=headers)


def check_notebook(data: bytes) -> str | None:
    """None for a valid Jupyter notebook (nbformat 4), else why not."""
    import nbformat

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not a notebook: the file is not UTF-8 text"
    try:
        raw = json.loads(text)
    except ValueError as exc:
        return f"not a notebook: not valid JSON ({exc})"
    if not isinstance(raw, dict) or "cells" not in raw or "nbformat" not in raw:
        return "not a notebook: no cells or nbformat version"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several kinds
        return f"not a notebook: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    return None


async def _read_upload(request: Request, limit: int) -> tuple[bytes, str] | JSONResponse:
    """The multipart field ``notebook`` (bytes, file name), reading no more than ``limit``
    bytes of the body; or the refusal."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit + MULTIPART_SLACK:
                return _refuse(413, f"the notebook is larger than {limit // 1024} KB")
        except ValueError:
            return _refuse(400, "bad Content-Length")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _refuse(422, "send the notebook as multipart/form-data, field 'notebook'")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + MULTIPART_SLACK:  # a body without (or lying about) its length
            return _refuse(413, f"the notebook is larger than {limit // 1024} KB")
        chunks.append(chunk)
    body = b"".join(chunks)

    async def replay():
        yield body

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=2, max_fields=10).parse()
    except MultiPartException as exc:
        return _refuse(422, f"not a multipart upload: {exc.message}")
    upload = form.get("notebook")
    if upload is None or isinstance(upload, str):
        return _refuse(422, "no file in the multipart field 'notebook'")
    data = await upload.read()
    await upload.close()
    if len(data) > limit:
        return _refuse(413, f"the notebook is larger than {limit // 1024} KB")
    from pathlib import PurePosixPath

    name = PurePosixPath((upload.filename or "").replace("\\", "/")).name or "notebook.ipynb"
    name = "".join(ch for ch in name if ch.isprintable())[-200:] or "notebook.ipynb"  # kept in the database
    return data, name


def create_app(settings: ServiceSettings, *, grader=None, store: Store | None = None) -> FastAPI:
    """The service's app for ``settings``. ``grader``: an ``AttemptGrader`` (made here if
    None; tests pass a stand-in). The grading threads start and stop with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        svc: Service = app.state.service
        resumed = svc.dispatcher.start()
        log.info("serving %s: %d assignment(s), grading on %s, %d resumed", settings.course,
                 len(svc.assignments), getattr(svc.grader, "where", "?"), resumed)
        try:
            yield
        finally:
            svc.dispatcher.stop()
            with contextlib.suppress(Exception):
                svc.grader.close()
            svc.store.close()

    if grader is None:
        from .grader import AttemptGrader

        grader = AttemptGrader(settings.course, settings.grading)
    app = FastAPI(title="course serve: instant feedback", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    svc = Service(settings, grader, store)
    app.state.service = svc
    app.state.auth_sources = [BearerSource(svc.store)]

    @app.get("/api/health")
    def health():
        return {"ok": True, "queued": len(svc.dispatcher.queue)}

    @app.get("/api/me")
    def me(who: Principal = Depends(require_principal)):
        return {"name": who.name, "student": who.student, "instructor": who.instructor}

    @app.get("/api/assignments")
    def assignments(who: Principal = Depends(require_principal)):
        out = []
        for name in svc.assignments:
            rules = settings.rules(name)
            vis = rules.visibility
            out.append({"assignment": name, "notebooks": assignment_notebooks(settings.course, name),
                        "deadline": vis.deadline.isoformat() if vis.deadline else None,
                        "visibility": vis.level(), "before": vis.before, "after": vis.after,
                        "attempts_per_hour": rules.limits.attempts_per_hour,
                        "min_interval_s": rules.limits.min_interval_s})
        return out

    @app.post("/api/assignments/{assignment}/attempts", status_code=202)
    async def submit(assignment: str, request: Request, who: Principal = Depends(require_principal)):
        from starlette.concurrency import run_in_threadpool

        if assignment not in svc.assignments:
            return _refuse(404, f"no assignment {assignment!r} (have: {', '.join(svc.assignments)})")
        if who.student is None:
            return _refuse(403, "only students submit attempts")
        upload = await _read_upload(request, settings.max_upload_bytes)
        if isinstance(upload, JSONResponse):
            return upload
        data, filename = upload
        why = await run_in_threadpool(check_notebook, data)
        if why:
            return _refuse(422, why)
        outcome = await run_in_threadpool(lambda: svc.dispatcher.accept(
            assignment=assignment, student=who.student, data=data, filename=filename))
        if not isinstance(outcome, Accepted):
            return _refuse(429, outcome.reason, outcome.retry_after)
        return JSONResponse({"attempt": outcome.attempt.id, "position": outcome.position}, status_code=202,
                            headers={"Location": f"/api/attempts/{outcome.attempt.id}"})

    @app.get("/api/attempts/{attempt_id}")
    def attempt(attempt_id: int, who: Principal = Depends(require_principal)):
        found = svc.store.get(attempt_id)
        if found is None:
            raise HTTPException(404, f"no attempt {attempt_id}")
        if not who.may_see(found.student):
            raise HTTPException(403, "this attempt is another student's")
        return svc.view(found, who)

    @app.get("/api/attempts")
    def attempts(assignment: str | None = None, student: str | None = None,
                 who: Principal = Depends(require_principal)):
        if not who.instructor:
            if student not in (None, who.student):
                raise HTTPException(403, "a student sees only their own attempts")
            student = who.student
        return [svc.view(a, who) for a in svc.store.attempts(student=student, assignment=assignment)]

    @app.get("/api/queue")
    def queue(who: Principal = Depends(require_principal)):
        if not who.instructor:
            raise HTTPException(403, "the queue is the instructor's to see")
        return svc.dispatcher.snapshot()

    from . import hub_auth, pages

    hub_auth.enable(app)  # run by JupyterHub: its OAuth login, and Hub tokens for the API
    pages.install(app)    # the students' and the instructor's HTML pages (pages.py)
    return app


def serve(settings: ServiceSettings, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the service in this process until interrupted (`course serve`)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    # The access log names method, path and status only; tokens travel in a header it never prints.
    from .hub_auth import mounted_for_hub

    # behind JupyterHub the proxy forwards /services/<name>/...: the app is mounted there
    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            # First of all: the grading processes got the same signal, and what they
            # return now must not be stored as the attempts' verdicts (dispatch.py).
            app.state.service.dispatcher.begin_stop()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(mounted_for_hub(app), host=host, port=port, log_level="info",
                            timeout_graceful_shutdown=5, timeout_keep_alive=30)
    Server(config).run()
