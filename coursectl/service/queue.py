"""A bounded queue that is fair across students: round-robin, one attempt per student
in turn, so one student's burst cannot starve the others. Plain data, no locking (the
dispatcher holds its lock around it); tested without a server."""
from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Full:
    """Why the queue takes no more now, and a guess of when it will (seconds)."""
    reason: str
    retry_after: int


class FairQueue:
    def __init__(self, *, capacity: int = 500, per_student: int = 3):
        self.capacity = capacity
        self.per_student = per_student
        self._ring: OrderedDict[str, deque[int]] = OrderedDict()  # student -> attempt ids, in turn order
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def refusal(self, student: str, *, seconds_per_attempt: float, slots: int) -> Full | None:
        """None if ``student`` may queue one more attempt now."""
        mine = len(self._ring.get(student, ()))
        if self.per_student and mine >= self.per_student:
            wait = math.ceil(seconds_per_attempt * max(1, self.position_of_last(student)) / max(1, slots))
            return Full(f"you already have {mine} attempts waiting; wait for their verdicts", max(1, wait))
        if self.capacity and self._size >= self.capacity:
            wait = math.ceil(seconds_per_attempt * (self._size - self.capacity + 1) / max(1, slots))
            return Full(f"the grading queue is full ({self._size} attempts waiting); try again later", max(1, wait))
        return None

    def push(self, attempt: int, student: str, *, force: bool = False) -> int:
        """Queue ``attempt``; its position (1: next). ``force``: past the bounds (resuming
        attempts already accepted)."""
        if not force and self.refusal(student, seconds_per_attempt=1, slots=1):
            raise OverflowError("queue full")
        self._ring.setdefault(student, deque()).append(attempt)
        self._size += 1
        return self.position(attempt)

    def pop(self) -> tuple[int, str] | None:
        """The next attempt in turn, as (attempt, student)."""
        if not self._ring:
            return None
        student, items = next(iter(self._ring.items()))
        attempt = items.popleft()
        self._ring.pop(student)
        if items:  # back of the line for the next round
            self._ring[student] = items
        self._size -= 1
        return attempt, student

    def remove(self, attempt: int) -> bool:
        for student, items in self._ring.items():
            if attempt in items:
                items.remove(attempt)
                self._size -= 1
                if not items:
                    self._ring.pop(student)
                return True
        return False

    def position(self, attempt: int) -> int | None:
        """1-based place in the order ``pop`` will take them if nothing else arrives:
        round k takes each student's k-th attempt, students in turn order."""
        for r, (student, items) in enumerate(self._ring.items()):
            if attempt in items:
                k = items.index(attempt)
                before = sum(min(len(other), k) for other in self._ring.values())
                before += sum(1 for i, other in enumerate(self._ring.values()) if i < r and len(other) > k)
                return before + 1
        return None

    def position_of_last(self, student: str) -> int:
        items = self._ring.get(student)
        return self.position(items[-1]) if items else 0

    def snapshot(self) -> list[tuple[int, str, int]]:
        """(attempt, student, position) for every waiting attempt, in the order they will run."""
        rows = [(a, s, self.position(a)) for s, items in self._ring.items() for a in items]
        return sorted(rows, key=lambda row: row[2])
