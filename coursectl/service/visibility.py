"""What a student sees of a verdict, per assignment, before and after its deadline:

* ``points``: each unit's points only (no check names);
* ``checks``: also the checks' names and whether each passed;
* ``messages``: also each check's message (the default).

At every level a unit says whether its points are ``held`` for the instructor's review
(the from-scratch rule found something to read): its points stay 0 until released.

The stored verdict is complete; the filter applies when it is read, so the view of an
old attempt changes when the deadline passes. The instructor always sees everything.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

LEVELS = ("points", "checks", "messages")


@dataclass(frozen=True)
class Visibility:
    before: str = "messages"
    after: str = "messages"
    deadline: datetime | None = None

    def level(self, now: datetime | None = None) -> str:
        now = now or datetime.now(timezone.utc)
        if self.deadline is not None and now >= self.deadline:
            return self.after
        return self.before


def filter_units(units: list[dict], level: str) -> list[dict]:
    """The units as ``level`` allows; keys stay (empty or None) so clients read one shape."""
    if level not in LEVELS:
        raise ValueError(f"unknown visibility {level!r}")
    shown = []
    for unit in units:
        checks = []
        if level != "points":
            checks = [{"name": c["name"], "passed": c["passed"],
                       "message": c.get("message", "") if level == "messages" else None}
                      for c in unit.get("checks", [])]
        shown.append({"grade_id": unit["grade_id"], "points": unit["points"], "max_points": unit["max_points"],
                      "held": bool(unit.get("held")), "checks": checks})
    return shown
