"""hub_auth.py without a Hub (fast): who the Hub's user models become, the OAuth
callback's state check, and the open-redirect guard. The real Hub is in test_hub.py."""
from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI, HTTPException
from starlette.requests import Request

from coursectl.service import hub_auth
from coursectl.service.hub_auth import HubLogin

ENV = {"JUPYTERHUB_API_TOKEN": "service-secret", "JUPYTERHUB_CLIENT_ID": "service-course",
       "JUPYTERHUB_SERVICE_PREFIX": "/services/course/", "JUPYTERHUB_SERVICE_NAME": "course",
       "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api"}
ACCESS = ["access:services!service=course"]


@pytest.fixture
def login(tmp_path):
    users = tmp_path / "users.csv"
    users.write_text("hub_user,student_id\njdoe,u001\n")
    return HubLogin.from_env({**ENV, hub_auth.ENV_USER_MAP: str(users), hub_auth.ENV_INSTRUCTOR_GROUP: "staff"})


def test_not_configured_outside_the_hub():
    assert not hub_auth.hub_configured({})
    assert not hub_auth.hub_configured({"JUPYTERHUB_API_TOKEN": "x"})
    app = FastAPI()
    assert hub_auth.enable(app, {}) is None and not hasattr(app.state, "hub")
    with pytest.raises(RuntimeError, match="not started by JupyterHub"):
        HubLogin(env={})


def test_user_models_become_students_and_instructors(login):
    student = login.identity({"kind": "user", "name": "alice", "admin": False, "groups": [], "scopes": ACCESS})
    assert (student.student_id, student.instructor) == ("alice", False)
    assert login.identity({"name": "jdoe", "groups": [], "scopes": ACCESS}).student_id == "u001"  # mapped
    assert login.identity({"name": "root", "admin": True, "scopes": ACCESS}).instructor
    assert login.identity({"name": "ta", "groups": ["staff"], "scopes": ACCESS}).instructor
    assert not login.identity({"name": "x", "groups": ["instructors"], "scopes": ACCESS}).instructor  # not the group
    # no scope for this service (e.g. a server token without it), or a Hub service: nobody
    assert login.identity({"name": "alice", "scopes": ["access:services!service=other"]}) is None
    assert login.identity({"kind": "service", "name": "cull", "scopes": ACCESS}) is None
    p = hub_auth.principal(student)
    assert (p.student, p.instructor, p.via) == ("alice", False, "hub")
    assert hub_auth.principal(login.identity({"name": "root", "admin": True, "scopes": ACCESS})).instructor


def test_login_redirect_carries_state_and_pkce(login):
    r = login.login_redirect("/services/course/attempts/3")
    url = urlsplit(r.headers["location"])
    q = parse_qs(url.query)
    assert url.path == "/hub/api/oauth2/authorize"
    assert q["client_id"] == ["service-course"] and q["redirect_uri"] == ["/services/course/oauth_callback"]
    assert q["code_challenge_method"] == ["S256"] and q["code_challenge"][0]
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{hub_auth.STATE_COOKIE}={q['state'][0]};") and "HttpOnly" in cookie
    assert "Path=/services/course/" in cookie
    assert login.oauth.get_next_url(q["state"][0]) == "/services/course/attempts/3"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/hub/admin",
                                    "/services/course\\..\\x", ""])
def test_next_url_stays_inside_the_service(login, target):
    r = login.login_redirect(target)
    state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
    assert login.oauth.get_next_url(state) == "/services/course/"


def _request(query: str, cookie: str = "") -> Request:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    return Request({"type": "http", "method": "GET", "path": "/services/course/oauth_callback",
                    "query_string": query.encode(), "headers": headers})


def test_callback_refuses_a_state_this_browser_did_not_start(login):
    r = login.login_redirect("/services/course/")
    state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
    # another site's callback link (its own state) into this browser: refused before any
    # code is swapped (the Hub here is unreachable, so a swap would be a different error)
    with pytest.raises(HTTPException) as refused:
        asyncio.run(login.finish_login(_request(f"code=abc&state={state}", f"{hub_auth.STATE_COOKIE}=other")))
    assert refused.value.status_code == 403
    with pytest.raises(HTTPException) as refused:
        asyncio.run(login.finish_login(_request(f"code=abc&state={state}")))
    assert refused.value.status_code == 403
    with pytest.raises(HTTPException) as refused:
        asyncio.run(login.finish_login(_request("error=access_denied&error_description=no")))
    assert refused.value.status_code == 400


def test_api_source_reads_only_the_token_header(login):
    seen = []

    async def fake(token):
        seen.append(token)
        return None

    login.identity_for_token = fake
    source = hub_auth.HubSource(login)
    for headers in ([(b"cookie", f"{hub_auth.SESSION_COOKIE}=sess".encode())],
                    [(b"authorization", b"Bearer course-token")]):
        req = Request({"type": "http", "method": "GET", "path": "/api/me", "query_string": b"", "headers": headers})
        assert asyncio.run(source(req)) is None
    assert seen == []  # neither the OAuth cookie nor a course token goes to the Hub
    req = Request({"type": "http", "method": "GET", "path": "/api/me", "query_string": b"",
                   "headers": [(b"authorization", b"token hub-token")]})
    asyncio.run(source(req))
    assert seen == ["hub-token"]
