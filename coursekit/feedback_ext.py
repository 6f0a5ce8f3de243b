"""Jupyter Server extension behind JupyterLab's "Submit for feedback" command.

The JupyterLab extension (sources in labextension/, built into coursekit/labextension/)
asks this server, not the course's feedback service: the server reads the saved notebook,
sends it to the service (`course serve`'s pinned API) with the student's token, and
passes the answers back. So the browser needs no CORS and never sees the token.

Routes, below the Jupyter server's base URL (authenticated like every Jupyter API call):

    POST seqcourse-feedback/attempts        {"path": "a1_rnn_cells/a1_rnn_cells.ipynb"}
         -> 202 {"attempt", "position", "assignment"}       (the service's 202, and the name used)
    GET  seqcourse-feedback/attempts/{id}   -> the service's attempt JSON, unchanged

A refusal or failure answers {"status", "message", "retry_after"} with the service's
status (401, 403, 404, 413, 422, 429), 502 when the service cannot be reached or answers
something unexpected, 503 when no service is configured. ``message`` says what to do.

Where the service is (read on every request, so no restart is needed after editing):

1. ``COURSE_FEEDBACK_URL`` and ``COURSE_FEEDBACK_TOKEN`` in the environment of the
   Jupyter server, each overriding the file's value;
2. the JSON file ``COURSE_FEEDBACK_CONFIG`` names, else ``course_feedback.json`` in
   Jupyter's config folder (``~/.jupyter/course_feedback.json``, or
   ``$JUPYTER_CONFIG_DIR/course_feedback.json``): ``{"url": "http://host:8000", "token": "..."}``;
3. on JupyterHub, with no course token set, the Hub's token of the student's server
   (``JUPYTERHUB_API_TOKEN``, sent as ``Authorization: token ...``): the service, run as a
   Hub service, asks the Hub whose it is. The instructor then sets only the URL, e.g.
   ``c.Spawner.environment = {"COURSE_FEEDBACK_URL": "http://127.0.0.1:8000/services/feedback"}``.

The assignment is the notebook's folder (``a1_rnn_cells/a1_rnn_cells.ipynb`` ->
``a1_rnn_cells``, as in the release, the bundle and nbgrader's fetched copies); a notebook
at the top of the server's folder uses its own name. The token is never logged or echoed.

Enable it in an environment: ``python -m coursekit.feedback_ext install PREFIX`` (also
puts the prebuilt JupyterLab extension there); the student bundle's ``pip install .`` does
the same through its data files.
"""
from __future__ import annotations

import email.utils
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

ROUTE = "seqcourse-feedback"
EXTENSION = "coursekit.feedback_ext"
LAB_EXTENSION = "@seqcourse/feedback"  # labextension/package.json's name
LAB_BUILD = Path(__file__).resolve().parent / "labextension"  # committed prebuilt output
CONFIG_NAME = "course_feedback.json"
ENV_URL, ENV_TOKEN, ENV_CONFIG = "COURSE_FEEDBACK_URL", "COURSE_FEEDBACK_TOKEN", "COURSE_FEEDBACK_CONFIG"
ENV_HUB_TOKEN = "JUPYTERHUB_API_TOKEN"  # set by JupyterHub in every single-user server it spawns
# bundle path and install folder (below an environment's prefix) of the enabling file
SERVER_CONFIG_DIR = "etc/jupyter/jupyter_server_config.d"
SERVER_CONFIG_NAME = "seqcourse-feedback.json"
LAB_EXTENSIONS_DIR = "share/jupyter/labextensions"
CONNECT_TIMEOUT, REQUEST_TIMEOUT = 10.0, 120.0  # s; an upload of a large notebook may take a while
REASON_CHARS = 500  # the service's reason text, shortened for the dialog
# Above this size the upload waits for the service's "100 Continue": a service that refuses
# on the declared length (413) answers before the body is sent, instead of closing the
# connection under a half-sent body (which would read as "could not reach").
EXPECT_CONTINUE_BYTES = 64 * 1024


class FeedbackConfigError(Exception):
    """No usable service URL or token."""


@dataclass(frozen=True)
class FeedbackSettings:
    url: str       # the service's base URL, no trailing slash
    token: str
    source: str    # where they were read, for messages (never the token itself)
    scheme: str = "Bearer"  # "Bearer": a course token; "token": the Hub's token of the student's server

    @property
    def authorization(self) -> str:
        return f"{self.scheme} {self.token}"


@dataclass(frozen=True)
class Refusal:
    """What the browser is told when no attempt (or no verdict) came back."""
    status: int
    message: str
    retry_after: int | None = None

    def as_json(self) -> dict:
        return {"status": self.status, "message": self.message, "retry_after": self.retry_after}


def config_file(*, environ: dict | None = None) -> Path:
    """The settings file this server reads (it need not exist)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    from jupyter_core.paths import jupyter_config_dir

    return Path(jupyter_config_dir()) / CONFIG_NAME


def load_settings(*, environ: dict | None = None) -> FeedbackSettings:
    """The service's URL and the student's token: the environment over the file."""
    env = os.environ if environ is None else environ
    path = config_file(environ=env)
    data: dict = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as err:
            raise FeedbackConfigError(f"{path} is not valid JSON ({err}); it should hold "
                                      '{"url": "http://host:port", "token": "your token"}') from None
        if not isinstance(data, dict):
            raise FeedbackConfigError(f"{path} should hold a JSON object with \"url\" and \"token\"")
    url = str(env.get(ENV_URL) or data.get("url") or "").strip().rstrip("/")
    token = str(env.get(ENV_TOKEN) or data.get("token") or "").strip()
    scheme = "Bearer"
    if not token and env.get(ENV_HUB_TOKEN):
        # On JupyterHub with no course token: the Hub's token of this server identifies
        # the student to `course serve` when it runs as a Hub service (sent as "token ...")
        token, scheme = str(env[ENV_HUB_TOKEN]).strip(), "token"
    missing = [name for name, value in (("url", url), ("token", token)) if not value]
    if missing:
        raise FeedbackConfigError(
            f"No feedback service is configured ({' and '.join(missing)} missing). Write {path} as "
            '{"url": "http://host:port", "token": "the token your instructor gave you"}, '
            f"or set {ENV_URL} and {ENV_TOKEN} for JupyterLab, then submit again.")
    if not url.startswith(("http://", "https://")):
        raise FeedbackConfigError(f"The feedback service URL {url!r} (from {path} or {ENV_URL}) "
                                  "must start with http:// or https://")
    source = ", ".join(filter(None, [f"{path}" if data else "", ENV_URL if env.get(ENV_URL) else "",
                                     ENV_TOKEN if env.get(ENV_TOKEN) else "",
                                     f"JupyterHub's {ENV_HUB_TOKEN}" if scheme == "token" else ""]))
    return FeedbackSettings(url=url, token=token, source=source, scheme=scheme)


def assignment_of(path: str) -> str:
    """The assignment a notebook belongs to: its folder's name, else its own name."""
    p = PurePosixPath(path)
    return p.parent.name or p.stem


def retry_seconds(value: str | None, *, now: float | None = None) -> int | None:
    """Retry-After as whole seconds (it may be seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, round(when.timestamp() - (time.time() if now is None else now)))


def _reason(body: bytes) -> str:
    """The service's own explanation in a refusal body, if it gave one."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        text = body.decode("utf-8", errors="replace").strip()
        return text[:REASON_CHARS] if text and "<" not in text else ""
    if isinstance(data, dict):
        for key in ("reason", "detail", "message", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:REASON_CHARS]
            if value:  # e.g. FastAPI's list of validation errors
                return json.dumps(value)[:REASON_CHARS]
    return ""


def refusal_for(status: int, body: bytes, headers: dict, *, assignment: str = "", attempt: str = "",
                settings: FeedbackSettings | None = None) -> Refusal:
    """A student-facing message for a refusal status of the service."""
    reason = _reason(body)
    why = f" The service says: {reason}" if reason else ""
    where = settings.source if settings and settings.source else "your feedback settings"
    if status == 401:
        return Refusal(401, "The feedback service did not accept your token (401). Check the token in "
                            f"{where}: it must be the one your instructor gave you.{why}")
    if status == 403:
        return Refusal(403, f"The feedback service refused access (403): attempt {attempt or '?'} is not yours."
                            f"{why}")
    if status == 404:
        what = (f"attempt {attempt}" if attempt else
                f"assignment '{assignment}' (the notebook's folder name is taken as the assignment)")
        return Refusal(404, f"The feedback service does not know {what} (404).{why}")
    if status == 413:
        return Refusal(413, "The notebook is too large for the feedback service (413). Clear big outputs "
                            "(Edit > Clear Outputs of All Cells), save, and submit again." + why)
    if status == 422:
        return Refusal(422, f"The feedback service did not accept the file as a notebook (422).{why}")
    if status == 429:
        wait = retry_seconds(headers.get("Retry-After"))
        when = f"in {wait} s" if wait is not None else "later"
        return Refusal(429, f"Too many attempts for now (429): submit again {when}.{why}", retry_after=wait)
    return Refusal(502, f"The feedback service answered {status} unexpectedly.{why}")


def multipart(field: str, filename: str, data: bytes, content_type: str) -> tuple[str, bytes]:
    """(Content-Type header, body) of a one-file multipart/form-data upload."""
    boundary = uuid.uuid4().hex
    safe_name = "".join(c for c in filename if c not in '"\\\r\n') or "notebook.ipynb"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{safe_name}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return f"multipart/form-data; boundary={boundary}", head + data + f"\r\n--{boundary}--\r\n".encode()


async def _fetch(settings: FeedbackSettings, method: str, path: str, *, body: bytes | None = None,
                 content_type: str | None = None):
    """One request to the service: the tornado response (any status), or a Refusal when it cannot be reached."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

    headers = {"Authorization": settings.authorization, "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    request = HTTPRequest(f"{settings.url}{path}", method=method, headers=headers, body=body,
                          connect_timeout=CONNECT_TIMEOUT, request_timeout=REQUEST_TIMEOUT, follow_redirects=False,
                          expect_100_continue=body is not None and len(body) > EXPECT_CONTINUE_BYTES)
    try:
        return await AsyncHTTPClient().fetch(request, raise_error=False)
    except (OSError, HTTPClientError) as err:  # refused, unknown host, timeout (599)
        return Refusal(502, f"Could not reach the feedback service at {settings.url} ({err}). Is the URL in "
                            f"{settings.source or 'your feedback settings'} right, and is the service running?")


def _json_body(response) -> dict | None:
    try:
        data = json.loads(response.body or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def submit(settings: FeedbackSettings, assignment: str, filename: str, data: bytes) -> tuple[int, dict]:
    """POST the notebook; (status, JSON for the browser)."""
    content_type, body = multipart("notebook", filename, data, "application/x-ipynb+json")
    response = await _fetch(settings, "POST", f"/api/assignments/{quote(assignment, safe='')}/attempts",
                            body=body, content_type=content_type)
    if isinstance(response, Refusal):
        return response.status, response.as_json()
    reply = _json_body(response)
    if response.code in (200, 201, 202) and reply is not None and "attempt" in reply:
        return 202, {"attempt": reply["attempt"], "position": reply.get("position"), "assignment": assignment}
    if response.code < 400:
        refusal = Refusal(502, f"The feedback service answered {response.code} without an attempt number.")
    else:
        refusal = refusal_for(response.code, response.body, response.headers, assignment=assignment,
                              settings=settings)
    return refusal.status, refusal.as_json()


async def attempt_status(settings: FeedbackSettings, attempt: str) -> tuple[int, dict]:
    """GET one attempt; (status, JSON for the browser)."""
    response = await _fetch(settings, "GET", f"/api/attempts/{quote(attempt, safe='')}")
    if isinstance(response, Refusal):
        return response.status, response.as_json()
    reply = _json_body(response)
    if response.code == 200 and reply is not None and "status" in reply:
        return 200, reply
    if response.code < 400:
        refusal = Refusal(502, f"The feedback service answered {response.code} without an attempt's status.")
    else:
        refusal = refusal_for(response.code, response.body, response.headers, attempt=attempt, settings=settings)
    return refusal.status, refusal.as_json()


# ------------------------------------------------------------------ Jupyter Server


def _handlers():
    """The tornado handlers (built on first load: jupyter_server is imported only then)."""
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.utils import ensure_async
    from tornado import web

    class _Base(APIHandler):
        def reply(self, status: int, data: dict) -> None:
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(data))

        def settings_or_refusal(self) -> FeedbackSettings | None:
            try:
                return load_settings()
            except FeedbackConfigError as err:
                self.reply(503, Refusal(503, str(err)).as_json())
                return None

    class SubmitHandler(_Base):
        @web.authenticated
        async def post(self):
            try:
                path = str(json.loads(self.request.body or b"{}")["path"]).strip("/")
            except (ValueError, KeyError, TypeError):
                return self.reply(400, Refusal(400, 'expected a JSON body {"path": "folder/notebook.ipynb"}').as_json())
            if not path.endswith(".ipynb"):
                return self.reply(422, Refusal(422, f"{path} is not a notebook (.ipynb)").as_json())
            settings = self.settings_or_refusal()
            if settings is None:
                return
            try:  # through the contents manager: the server's own view of its files and its access rules
                model = await ensure_async(self.contents_manager.get(path, content=True, type="file", format="text"))
            except web.HTTPError as err:
                return self.reply(err.status_code, Refusal(err.status_code, f"cannot read {path}: {err.log_message}")
                                  .as_json())
            data = model["content"].encode("utf-8")
            assignment = assignment_of(path)
            status, reply = await submit(settings, assignment, PurePosixPath(path).name, data)
            self.log.info("feedback: %s for %s -> %s", path, assignment, status)  # never the token
            self.reply(status, reply)

    class AttemptHandler(_Base):
        @web.authenticated
        async def get(self, attempt: str):
            settings = self.settings_or_refusal()
            if settings is None:
                return
            status, reply = await attempt_status(settings, attempt)
            self.reply(status, reply)

    return [(f"{ROUTE}/attempts", SubmitHandler), (f"{ROUTE}/attempts/([^/]+)", AttemptHandler)]


def _jupyter_server_extension_points():
    return [{"module": EXTENSION}]


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join

    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base, route), handler) for route, handler in _handlers()])
    serverapp.log.info("Submit for feedback: %s/%s (settings: %s)", base.rstrip("/"), ROUTE, config_file())


# ------------------------------------------------------------------ installing


def server_config() -> dict:
    """The file that enables this extension in an environment's jupyter_server_config.d."""
    return {"ServerApp": {"jpserver_extensions": {EXTENSION: True}}}


def lab_files() -> list[tuple[str, Path]]:
    """(install folder below an environment's prefix, file) for every file of the prebuilt extension."""
    if not (LAB_BUILD / "package.json").is_file():
        raise FileNotFoundError(f"{LAB_BUILD} has no prebuilt extension; build it: cd labextension && npm run build")
    out = []
    for path in sorted(LAB_BUILD.rglob("*")):
        if path.is_file():
            rel = path.parent.relative_to(LAB_BUILD).as_posix()
            dest = f"{LAB_EXTENSIONS_DIR}/{LAB_EXTENSION}" + ("" if rel == "." else f"/{rel}")
            out.append((dest, path))
    return out


def install(prefix: Path) -> list[Path]:
    """Put the prebuilt JupyterLab extension and the server extension's enabling file into
    the environment at ``prefix`` (what a student bundle's `pip install .` does; for the
    course's own editable install, whose data files pip does not place)."""
    prefix = Path(prefix)
    target = prefix / LAB_EXTENSIONS_DIR / LAB_EXTENSION
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)  # an older build's hashed file names would linger
    written = []
    for dest, path in lab_files():
        (prefix / dest).mkdir(parents=True, exist_ok=True)
        written.append(Path(shutil.copy2(path, prefix / dest / path.name)))
    config = prefix / SERVER_CONFIG_DIR / SERVER_CONFIG_NAME
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(server_config(), indent=2) + "\n")
    return [*written, config]


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "install":
        sys.exit("usage: python -m coursekit.feedback_ext install PREFIX")
    files = install(Path(sys.argv[2]))
    print(f"Submit for feedback: {len(files)} files -> {Path(sys.argv[2]).resolve()}")
