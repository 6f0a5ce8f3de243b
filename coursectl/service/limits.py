"""Limits per student and assignment: attempts per hour (a sliding hour) and a minimum
interval between two attempts. Pure functions over the times of earlier accepted
attempts, so they are tested without a server; refused attempts never count."""
from __future__ import annotations

import math
from dataclasses import dataclass

HOUR_S = 3600.0


@dataclass(frozen=True)
class RateLimits:
    attempts_per_hour: int = 20       # 0: no limit
    min_interval_s: float = 30.0      # 0: no limit


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is refused now, and when to come back (seconds, for Retry-After)."""
    reason: str
    retry_after: int


def check_rate(limits: RateLimits, now: float, earlier: list[float]) -> Refusal | None:
    """None if a new attempt at ``now`` is within ``limits``, given the submission times
    (epoch seconds) of this student's earlier attempts at this assignment."""
    if limits.min_interval_s > 0 and earlier:
        wait = max(earlier) + limits.min_interval_s - now
        if wait > 0:
            return Refusal(f"one attempt every {limits.min_interval_s:g} s: try again in {math.ceil(wait)} s",
                           max(1, math.ceil(wait)))
    if limits.attempts_per_hour > 0:
        window = sorted(t for t in earlier if t > now - HOUR_S)
        if len(window) >= limits.attempts_per_hour:
            # the attempt that leaves the window first frees a place
            wait = window[len(window) - limits.attempts_per_hour] + HOUR_S - now
            return Refusal(f"{limits.attempts_per_hour} attempts per hour: try again in {math.ceil(wait)} s",
                           max(1, math.ceil(wait)))
    return None
