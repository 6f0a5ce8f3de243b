"""The service's `course` subcommands: serve, tokens, submit, attempts. ``add_parsers``
is called by coursectl/cli.py."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import CourseError


def _course(args) -> Path:
    from ..folders import find_course_root

    return find_course_root(args.course_dir)


def _store(course: Path, db_url: str | None):
    from .config import load_settings
    from .store import Store

    settings = load_settings(course, db_url=db_url)
    return Store(settings.state_dir, settings.db_url)


def listen_address(host: str | None, port: int | None, env=None) -> tuple[str, int]:
    """Where to listen: the flags, else the address JupyterHub gave this service
    (JUPYTERHUB_SERVICE_URL), else 127.0.0.1:8765."""
    import os
    from urllib.parse import urlsplit

    env = os.environ if env is None else env
    hub = urlsplit(env.get("JUPYTERHUB_SERVICE_URL") or "")
    return (host or hub.hostname or "127.0.0.1", port or hub.port or 8765)


def _cmd_serve(args) -> None:
    from .app import serve
    from .config import load_settings

    host, port = listen_address(args.host, args.port)
    settings = load_settings(_course(args), workers=args.workers, cluster=args.cluster, db_url=args.db_url,
                             instance=args.instance, port=port, sandbox=not args.no_sandbox,
                             timeout=args.timeout)
    serve(settings, host=host, port=port)


def _cmd_tokens(args) -> None:
    from . import tokens

    store = _store(_course(args), args.db_url)
    try:
        if args.action == "create":
            if not args.roster:
                raise CourseError("course tokens create needs --roster roster.csv")
            n = tokens.create_student_tokens(store, args.roster, args.out)
            print(f"{n} student token(s) -> {args.out} (student_id,token; give each student theirs; "
                  f"their earlier tokens no longer work)")
        else:
            tokens.create_instructor_token(store, args.out, name=args.name)
            print(f"instructor token -> {args.out}")
    finally:
        store.close()


def _cmd_submit(args) -> None:
    from .client import REFUSED, submit

    code = submit(args.assignment, args.notebook, server=args.server, token=args.token, as_json=args.json)
    if code == REFUSED:
        sys.exit(REFUSED)  # the reason is printed already
    if code:
        sys.exit(code)


def _cmd_attempts(args) -> None:
    from .collect import collect
    from .config import _deadline

    course = _course(args)
    store = _store(course, args.db_url)
    try:
        deadline = _deadline(args.deadline, "--deadline")
        done = collect(course, store, args.assignment, policy=args.policy, deadline=deadline)
    finally:
        store.close()
    for c in done:
        score = "not graded" if c.score is None else f"{c.score:g}"
        print(f"{c.student}: attempt {c.attempt} ({score}) -> {c.path}")
    print(f"{len(done)} submission(s) placed in submitted/; now `course grade {args.assignment}`")


def add_parsers(sub) -> None:
    s = sub.add_parser("serve", help="instant feedback: a web service that grades students' attempts "
                                     "as `course grade` does and returns the verdict per unit")
    s.add_argument("--host", default=None,
                   help="address to listen on (default: JupyterHub's JUPYTERHUB_SERVICE_URL if set, else 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port (default: JupyterHub's, else 8765)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, default=None, help="attempts graded at once here (default: one per core)")
    g.add_argument("--cluster", default=None, metavar="local:N|tcp://HOST:PORT",
                   help="grade on Dask, as `course grade --cluster`")
    s.add_argument("--db-url", default=None,
                   help="attempts database (default: SQLite in attempts/; postgresql://... when several "
                        "instances share the course)")
    s.add_argument("--instance", default=None,
                   help="this instance's name (default HOST:PORT): on start it resumes the attempts it accepted")
    s.add_argument("--timeout", type=float, default=None, help="wall-clock limit per attempt, seconds")
    s.add_argument("--no-sandbox", action="store_true", help="grade without bubblewrap (at your own risk)")
    s.set_defaults(func=_cmd_serve)

    t = sub.add_parser("tokens", help="bearer tokens for `course serve`: one per student, or the instructor's")
    t.add_argument("action", choices=["create", "instructor"])
    t.add_argument("--roster", type=Path, default=None, help="roster CSV (a student_id column, as course grade reads)")
    t.add_argument("--out", type=Path, required=True, help="where to write the tokens (mode 0600)")
    t.add_argument("--name", default="instructor", help="instructor: a name for the token")
    t.add_argument("--db-url", default=None, help="attempts database, if not the default")
    t.set_defaults(func=_cmd_tokens)

    sb = sub.add_parser("submit", help="submit a notebook to `course serve` and print the verdict")
    sb.add_argument("assignment")
    sb.add_argument("notebook", type=Path)
    sb.add_argument("--server", required=True, help="the service's URL, e.g. http://127.0.0.1:8765")
    sb.add_argument("--token", required=True, help="your token (from your instructor)")
    sb.add_argument("--json", action="store_true", help="print the verdict as JSON")
    sb.set_defaults(func=_cmd_submit)

    at = sub.add_parser("attempts", help="turn `course serve` attempts into nbgrader submissions")
    at_sub = at.add_subparsers(dest="action", required=True)
    c = at_sub.add_parser("collect", help="each student's chosen attempt -> submitted/<student>/ASSIGNMENT/")
    c.add_argument("assignment")
    c.add_argument("--policy", choices=["last", "best"], default="last")
    c.add_argument("--deadline", default=None, help="ISO date and time: only attempts submitted by then")
    c.add_argument("--db-url", default=None, help="attempts database, if not the default")
    c.set_defaults(func=_cmd_attempts)
