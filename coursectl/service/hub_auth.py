"""`course serve` as a JupyterHub service: who is asking, according to the Hub.

Most nbgrader courses run on JupyterHub. There the service is registered in
``jupyterhub_config.py`` (README, "Behind JupyterHub"); the Hub starts it with its own API
token, OAuth client id and URL prefix in the environment (``JUPYTERHUB_API_TOKEN``,
``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_SERVICE_PREFIX``, ...) and its proxy forwards
``/services/<name>/...`` to it. This module reads those and identifies people through the
Hub's own OAuth (JupyterHub's ``HubOAuth`` does the talking to the Hub):

- a browser without a session is sent to the Hub's authorize URL (with a state id in an
  HttpOnly cookie and a PKCE challenge); the Hub logs the person in and sends them back to
  ``<prefix>oauth_callback`` with a code; the service swaps the code for a Hub token and
  keeps it in an HttpOnly cookie. Each request asks the Hub whose token it is (cached for
  a few minutes by HubOAuth);
- a program may send a Hub token itself (``Authorization: token ...``), e.g. from the
  ``JUPYTERHUB_API_TOKEN`` of the student's single-user server, when that token carries
  the ``access:services!service=<name>`` scope.

The Hub user name is the student id (a mapping file may rename, ``COURSE_HUB_USER_MAP``:
CSV ``hub_user,student_id``); Hub admins and the members of the instructors' group
(``COURSE_HUB_INSTRUCTOR_GROUP``, default ``instructors``) are instructors.
"""
from __future__ import annotations

import csv
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

log = logging.getLogger(__name__)

ENV_INSTRUCTOR_GROUP = "COURSE_HUB_INSTRUCTOR_GROUP"
ENV_USER_MAP = "COURSE_HUB_USER_MAP"
SESSION_COOKIE = "course-hub-session"
STATE_COOKIE = "course-hub-oauth-state"


@dataclass(frozen=True)
class HubIdentity:
    """A person the Hub vouched for: their Hub name, the course's student id for them,
    and whether they teach the course."""

    hub_user: str
    student_id: str
    instructor: bool


def hub_configured(env: Mapping[str, str] | None = None) -> bool:
    """True when the Hub started this process as one of its services."""
    env = os.environ if env is None else env
    return bool(env.get("JUPYTERHUB_API_TOKEN") and env.get("JUPYTERHUB_CLIENT_ID"))


def read_user_map(path: Path) -> dict[str, str]:
    """``hub_user,student_id`` rows (a header row naming those two columns is skipped)."""
    names: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) < 2 or not row[0].strip() or row[0].strip() == "hub_user":
                continue
            names[row[0].strip()] = row[1].strip()
    return names


@dataclass
class HubLogin:
    """The Hub's OAuth for one service process. ``HubOAuth`` reads its settings from the
    environment the Hub gives the service; ``env`` overrides it in tests."""

    instructor_group: str = "instructors"
    user_map: dict[str, str] = field(default_factory=dict)
    env: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        from jupyterhub.services.auth import HubOAuth

        env = dict(os.environ if self.env is None else self.env)
        if not hub_configured(env):
            raise RuntimeError("not started by JupyterHub: JUPYTERHUB_API_TOKEN and JUPYTERHUB_CLIENT_ID are unset")
        settings = {"api_token": env["JUPYTERHUB_API_TOKEN"], "oauth_client_id": env["JUPYTERHUB_CLIENT_ID"]}
        if env.get("JUPYTERHUB_API_URL"):
            settings["api_url"] = env["JUPYTERHUB_API_URL"]
        settings["base_url"] = env.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
        if env.get("JUPYTERHUB_OAUTH_CALLBACK_URL"):
            settings["oauth_redirect_uri"] = env["JUPYTERHUB_OAUTH_CALLBACK_URL"]
        if env.get("JUPYTERHUB_BASE_URL"):
            settings["hub_prefix"] = env["JUPYTERHUB_BASE_URL"].rstrip("/") + "/hub/"
        if env.get("JUPYTERHUB_SERVICE_NAME") and not env.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES"):
            settings["access_scopes"] = {f"access:services!service={env['JUPYTERHUB_SERVICE_NAME']}"}
        self.oauth = HubOAuth(**settings)
        self.base_url = self.oauth.base_url  # "/services/<name>/", always with both slashes
        self.secure = urlsplit(env.get("JUPYTERHUB_PUBLIC_URL", "")).scheme == "https"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HubLogin:
        env = os.environ if env is None else env
        user_map = read_user_map(Path(env[ENV_USER_MAP])) if env.get(ENV_USER_MAP) else {}
        return cls(instructor_group=env.get(ENV_INSTRUCTOR_GROUP) or "instructors", user_map=user_map, env=env)

    # ------------------------------------------------------------------ who is it

    def identity(self, model: dict) -> HubIdentity | None:
        """The course's view of a Hub user model; None for Hub services and for tokens
        without the scope to reach this service."""
        from jupyterhub.services.auth import check_scopes

        if model.get("kind", "user") != "user":
            return None
        if self.oauth.access_scopes and not check_scopes(self.oauth.access_scopes, model.get("scopes", [])):
            log.warning("Hub user %s has no access scope for this service", model.get("name"))
            return None
        name = model["name"]
        instructor = bool(model.get("admin")) or self.instructor_group in (model.get("groups") or [])
        return HubIdentity(hub_user=name, student_id=self.user_map.get(name, name), instructor=instructor)

    async def identity_for_token(self, token: str) -> HubIdentity | None:
        """Ask the Hub (or HubOAuth's few-minute cache) whose token this is."""
        if not token:
            return None
        try:
            model = await self.oauth.user_for_token(token, sync=False)
        except Exception as exc:  # the Hub unreachable or refusing us: nobody, said in the log
            log.warning("could not ask the Hub who owns a token: %s", exc)
            return None
        return self.identity(model) if model else None

    async def identity_for_request(self, request: Request) -> HubIdentity | None:
        """The person behind a request: the OAuth session cookie, else a Hub token sent
        as ``Authorization: token ...`` (not ``Bearer``: that is the course's own token)."""
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            header = request.headers.get("authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "token":
                token = value.strip()
        return await self.identity_for_token(token)

    # ------------------------------------------------------------------ OAuth handshake

    def login_redirect(self, next_url: str) -> RedirectResponse:
        """Send the browser to the Hub's authorize page; it comes back to the callback."""
        verifier, challenge, method = self.oauth.generate_pkce_code_challenge()
        state = self.oauth.generate_state(self._local(next_url), code_verifier=verifier)
        params = {"client_id": self.oauth.oauth_client_id, "redirect_uri": self.oauth.oauth_redirect_uri,
                  "response_type": "code", "state": state, "code_challenge": challenge,
                  "code_challenge_method": method}
        response = RedirectResponse(f"{self.oauth.oauth_authorization_url}?{urlencode(params)}", status_code=302)
        response.set_cookie(STATE_COOKIE, state, max_age=600, path=self.base_url, httponly=True,
                            secure=self.secure, samesite="lax")
        return response

    async def finish_login(self, request: Request) -> RedirectResponse:
        """The OAuth callback: state checked against the cookie set at the redirect (so
        another site cannot log a browser in as someone else), code swapped for a token."""
        params = request.query_params
        if params.get("error"):
            raise HTTPException(400, f"the Hub refused the login: {params.get('error_description') or params['error']}")
        code, state = params.get("code"), params.get("state")
        if not code or not state:
            raise HTTPException(400, "OAuth callback without a code or state; log in again")
        cookie_state = request.cookies.get(STATE_COOKIE, "")
        if not secrets.compare_digest(cookie_state, state):
            raise HTTPException(403, "OAuth state does not match this browser's; log in again")
        next_url = self.oauth.get_next_url(state)
        verifier = self.oauth.get_code_verifier(state)
        self.oauth.clear_oauth_state(state)
        token = await self.oauth.token_for_code(code, code_verifier=verifier, sync=False)
        who = await self.identity_for_token(token)
        if who is None:
            raise HTTPException(403, "the Hub did not vouch for this login (no access to this service)")
        log.info("Hub user %s logged in (student id %s, instructor %s)", who.hub_user, who.student_id, who.instructor)
        response = RedirectResponse(self._local(next_url), status_code=302)
        response.delete_cookie(STATE_COOKIE, path=self.base_url)
        response.set_cookie(SESSION_COOKIE, token, path=self.base_url, httponly=True, secure=self.secure,
                            samesite="lax")
        return response

    def logout(self) -> RedirectResponse:
        """Forget the session here, then log out of the Hub too (else the next visit
        would come straight back logged in)."""
        response = RedirectResponse(self.oauth.hub_prefix + "logout", status_code=302)
        response.delete_cookie(SESSION_COOKIE, path=self.base_url)
        return response

    def _local(self, url: str | None) -> str:
        """Only paths inside this service: a ``next`` URL naming another site (an open
        redirect after login) becomes the service's start page."""
        if not url or not url.startswith(self.base_url) or url.startswith("//") or "\\" in url:
            return self.base_url
        return url


class HubSource:
    """An auth source for the JSON API (auth.add_auth_source): a Hub token sent as
    ``Authorization: token ...`` (the student's single-user server's JUPYTERHUB_API_TOKEN,
    which the JupyterLab extension sends). Never the OAuth cookie: the API takes no
    cookies, so it needs no CSRF protection."""

    def __init__(self, login: HubLogin):
        self.login = login

    async def __call__(self, request):
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "token" or not token.strip():
            return None
        who = await self.login.identity_for_token(token.strip())
        return principal(who) if who is not None else None


def principal(who: HubIdentity):
    """The service's Principal for a person the Hub vouched for."""
    from .auth import Principal

    if who.instructor:
        return Principal(name=who.hub_user, instructor=True, via="hub")
    return Principal(name=who.hub_user, student=who.student_id, via="hub")


def enable(app, env: Mapping[str, str] | None = None) -> HubLogin | None:
    """When the Hub started this process: the OAuth routes, the API's Hub-token source,
    and ``app.state.hub`` for the pages. Returns the HubLogin, or None outside the Hub."""
    if not hub_configured(env):
        return None
    from .auth import add_auth_source

    login = HubLogin.from_env(env)
    app.state.hub = login
    app.include_router(hub_router(login))
    add_auth_source(app, HubSource(login))
    return login


def mounted_for_hub(app, env: Mapping[str, str] | None = None):
    """The ASGI app to serve behind the Hub: ``app`` answering below the service prefix.

    The Hub's proxy forwards ``/services/<name>/...`` unchanged, so the routes must match
    below the prefix and the links the pages build must carry it: requests there get the
    prefix as their ``root_path`` (Starlette routes on the rest). uvicorn's own
    ``root_path`` is not the same: it prepends the prefix to paths the proxy already sent
    with it. Lifespan events pass straight through (a Starlette Mount would drop them,
    and with them the app's start-up: its grading threads). Outside the Hub, ``app``."""
    env = os.environ if env is None else env
    prefix = (env.get("JUPYTERHUB_SERVICE_PREFIX") or "").rstrip("/")
    if not hub_configured(env) or not prefix:
        return app
    return HubPrefix(app, prefix)


class HubPrefix:
    """ASGI wrapper: requests under ``prefix`` reach ``app`` with it as their root_path,
    others get 404; everything else (lifespan) passes unchanged."""

    def __init__(self, app, prefix: str):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            path = scope["path"]
            if not (path == self.prefix or path.startswith(self.prefix + "/")):
                from starlette.responses import PlainTextResponse

                if scope["type"] == "http":
                    await PlainTextResponse(f"not found: this service answers below {self.prefix}/",
                                            status_code=404)(scope, receive, send)
                return
            scope = dict(scope, root_path=scope.get("root_path", "") + self.prefix)
        await self.app(scope, receive, send)


def hub_router(login: HubLogin) -> APIRouter:
    """The two routes the Hub's OAuth needs, at ``<prefix>oauth_callback`` (what the Hub
    registered as this service's redirect URI) and ``<prefix>hub/login``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/oauth_callback")
    async def oauth_callback(request: Request):
        return await login.finish_login(request)

    @router.get("/hub/login")
    async def hub_login(request: Request, next: str = ""):
        return login.login_redirect(next)

    @router.get("/hub/logout")
    async def hub_logout():
        return login.logout()

    return router
