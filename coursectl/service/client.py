"""`course submit ASSIGNMENT NOTEBOOK --server URL --token TOKEN [--json]`: submit one
notebook to `course serve`, wait showing the queue position, print the verdict.

Exit status: 0 graded, 2 refused (the server's reason: no valid token, too large, not a
notebook, a limit, ...), 1 when the attempt could not be graded or the server could not
be reached.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

GRADED, FAILED_GRADING, REFUSED = 0, 1, 2


def _reason(resp) -> str:
    try:
        body = resp.json()
        why = body.get("reason") or body.get("detail")
    except ValueError:
        why = resp.text[:300]
    extra = f" (retry after {resp.headers['retry-after']} s)" if "retry-after" in resp.headers else ""
    return f"{resp.status_code}: {why}{extra}"


def render(verdict: dict) -> str:
    """The verdict as text, one unit a line and its checks below."""
    lines = [f"attempt {verdict['attempt']} ({verdict['assignment']}, {verdict['student']}): {verdict['status']}"]
    if verdict.get("score") is not None:
        lines.append(f"score: {verdict['score']:g} / {verdict['max_score']:g}")
    for unit in verdict.get("units", []):
        held = " (held for your instructor's review)" if unit.get("held") else ""
        lines.append(f"  {unit['grade_id']}: {unit['points']:g} / {unit['max_points']:g}{held}")
        for c in unit.get("checks", []):
            mark = "PASS" if c["passed"] else "FAIL"
            msg = f": {c['message']}" if c.get("message") else ""
            lines.append(f"    {mark} {c['name']}{msg}")
    if verdict.get("reason"):
        lines.append(f"note: {verdict['reason']}")
    return "\n".join(lines)


def submit(assignment: str, notebook: Path, *, server: str, token: str, as_json: bool = False,
           poll_s: float = 1.0, wait_s: float = 3600.0, out=sys.stdout, err=sys.stderr) -> int:
    """Submit and wait; the exit status."""
    import httpx

    notebook = Path(notebook)
    try:
        data = notebook.read_bytes()
    except OSError as exc:
        print(f"course submit: cannot read {notebook}: {exc.strerror}", file=err)
        return REFUSED
    base = server.rstrip("/")
    token = token.strip()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            resp = http.post(f"/api/assignments/{assignment}/attempts",
                             files={"notebook": (notebook.name, data, "application/x-ipynb+json")})
            if resp.status_code != 202:
                print(f"course submit: refused: {_reason(resp)}", file=err)
                return REFUSED if 400 <= resp.status_code < 500 else FAILED_GRADING
            attempt = resp.json()["attempt"]
            shown = None
            deadline = time.monotonic() + wait_s
            dropped = 0
            while True:
                try:
                    resp = http.get(f"/api/attempts/{attempt}")
                except httpx.TransportError:  # a dropped connection: ask again a few times
                    dropped += 1
                    if dropped > 5:
                        raise
                    time.sleep(poll_s)
                    continue
                if resp.status_code != 200:
                    print(f"course submit: attempt {attempt}: {_reason(resp)}", file=err)
                    return FAILED_GRADING
                verdict = resp.json()
                status = verdict["status"]
                if status in ("graded", "failed"):
                    break
                line = (f"attempt {attempt}: grading" if status == "running" or verdict.get("position") == 0
                        else f"attempt {attempt}: queued, position {verdict.get('position')}")
                if line != shown:
                    print(line, file=err, flush=True)
                    shown = line
                if time.monotonic() > deadline:
                    print(f"course submit: attempt {attempt} still {status} after {wait_s:.0f} s; "
                          f"see {base}/api/attempts/{attempt}", file=err)
                    return FAILED_GRADING
                time.sleep(poll_s)
    except httpx.HTTPError as exc:
        why = str(exc).replace(token, "<token>") if token else str(exc)  # never print the token
        print(f"course submit: cannot reach {base}: {why}", file=err)
        return FAILED_GRADING
    print(json.dumps(verdict, indent=2) if as_json else render(verdict), file=out)
    return GRADED if status == "graded" else FAILED_GRADING
