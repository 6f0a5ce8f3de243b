"""The fair queue without a server: round-robin across students, positions that match
the order attempts are taken, and the bounds that turn into 429."""
from __future__ import annotations

import random

from coursectl.service.queue import FairQueue


def _drain(q: FairQueue) -> list[int]:
    out = []
    while (item := q.pop()) is not None:
        out.append(item[0])
    return out


def test_one_students_burst_does_not_starve_the_others():
    q = FairQueue(capacity=100, per_student=0)
    for i in range(1, 6):
        q.push(i, "burst")
    q.push(10, "b")
    q.push(20, "c")
    # b and c each wait behind one of burst's attempts, not all five
    assert _drain(q) == [1, 10, 20, 2, 3, 4, 5]


def test_positions_are_the_order_pop_takes_them():
    rng = random.Random(7)
    q = FairQueue(capacity=0, per_student=0)
    for i in range(60):
        q.push(i, f"s{rng.randrange(6)}")
        if rng.random() < 0.2:
            q.pop()
    expected = {a: p for a, _s, p in q.snapshot()}
    order = _drain(q)
    assert [expected[a] for a in order] == list(range(1, len(order) + 1))


def test_bounds_refuse_with_a_wait():
    q = FairQueue(capacity=3, per_student=2)
    q.push(1, "a")
    q.push(2, "a")
    mine = q.refusal("a", seconds_per_attempt=10, slots=1)
    assert mine and "2 attempts waiting" in mine.reason and mine.retry_after >= 10
    assert q.refusal("b", seconds_per_attempt=10, slots=1) is None
    q.push(3, "b")
    full = q.refusal("c", seconds_per_attempt=10, slots=2)
    assert full and "full" in full.reason and full.retry_after == 5
    q.pop()
    assert q.refusal("c", seconds_per_attempt=10, slots=2) is None


def test_remove_and_position_of_unknown():
    q = FairQueue()
    q.push(1, "a")
    q.push(2, "b")
    assert q.remove(1) and not q.remove(1)
    assert q.position(2) == 1 and q.position(1) is None and len(q) == 1
