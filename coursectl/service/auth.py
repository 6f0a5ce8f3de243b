"""Who is calling: every request is resolved to a ``Principal`` (a student, or the
instructor) by one dependency, ``require_principal``, that asks each auth source in turn.

A source is ``async (request) -> Principal | None``. The service registers
``BearerSource`` (per-student tokens, `course tokens`); the JupyterHub OAuth login adds
its own with ``add_auth_source(app, source)`` (first source that knows the caller wins).
Bearer tokens come only from the Authorization header, never the query string or a
cookie, so the JSON API needs no CSRF protection; cookie-based forms use ``csrf_token``
and ``check_csrf`` below.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from starlette.requests import Request

from .tokens import token_hash


@dataclass(frozen=True)
class Principal:
    """The caller: a student (``student`` set) or the instructor."""
    name: str
    student: str | None = None
    instructor: bool = False
    via: str = "token"   # which source knew them

    def may_see(self, student: str) -> bool:
        return self.instructor or self.student == student


AuthSource = Callable[[object], Awaitable["Principal | None"]]


class BearerSource:
    """``Authorization: Bearer TOKEN``, looked up by the token's hash."""

    def __init__(self, store):
        self.store = store

    async def __call__(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        from starlette.concurrency import run_in_threadpool

        found = await run_in_threadpool(self.store.find_token, token_hash(token.strip()))
        if not found:
            return None
        student, role, name = found
        if role == "instructor":
            return Principal(name=name, instructor=True)
        return Principal(name=name, student=student)


def add_auth_source(app, source: AuthSource) -> None:
    """Let ``source`` identify callers too (after the ones already there)."""
    app.state.auth_sources.append(source)


async def current_principal(request: Request) -> Principal | None:
    for source in request.app.state.auth_sources:
        who = await source(request)
        if who is not None:
            return who
    return None


async def require_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, or 401."""
    from fastapi import HTTPException

    who = await current_principal(request)
    if who is None:
        raise HTTPException(401, "a valid token is needed (Authorization: Bearer TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})
    return who


# ---------------------------------------------------------------- CSRF for cookie-based forms

def service_key(state_dir: Path) -> bytes:
    """The service's own random key (attempts/service.key, 0600), made on first use."""
    path = Path(state_dir) / "service.key"
    if not path.exists():
        import os

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def csrf_token(key: bytes, session: str) -> str:
    """The token a form must send back, bound to the caller's session (cookie value)."""
    return hmac.new(key, b"csrf:" + session.encode("utf-8"), hashlib.sha256).hexdigest()


def check_csrf(key: bytes, session: str, sent: str | None) -> bool:
    return bool(sent) and bool(session) and hmac.compare_digest(csrf_token(key, session), str(sent))
