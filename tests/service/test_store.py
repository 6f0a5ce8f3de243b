"""Attempts are stored before they are acknowledged, graded once, resumed after a crash;
on SQLite and on a real PostgreSQL server shared by two instances."""
from __future__ import annotations

import hashlib
import threading

import pytest

from coursectl.service.store import Store
from grading.test_postgres import postgres_url  # noqa: F401 (the module's PostgreSQL server fixture)


def _exercise(store: Store, owner: str = "i1", other: str = "i2") -> None:
    a = store.add_attempt(assignment="a1", student="s", data=b'{"x": 1}', filename="a1.ipynb", owner=owner)
    b = store.add_attempt(assignment="a1", student="s", data=b'{"x": 1}', filename="a1.ipynb", owner=owner)
    c = store.add_attempt(assignment="a1", student="t", data=b"other", filename="n.ipynb", owner=other)
    sha = hashlib.sha256(b'{"x": 1}').hexdigest()
    assert a.sha256 == b.sha256 == sha and store.blob_path(sha).read_bytes() == b'{"x": 1}'
    assert store.get(a.id).status == "queued" and a.id != b.id
    assert store.claim(a.id) and not store.claim(a.id)  # only one taker
    assert store.finish(a.id, status="graded", score=1.0, max_score=2.0, units=[{"grade_id": "g"}], reason=None)
    assert not store.finish(a.id, status="graded", score=2.0, max_score=2.0, units=[], reason=None)  # once
    got = store.get(a.id)
    assert (got.status, got.score, got.units, got.runs) == ("graded", 1.0, [{"grade_id": "g"}], 1)
    assert store.claim(b.id)  # then the process dies while grading b
    resumed = store.resume(owner)
    assert [r.id for r in resumed] == [b.id] and store.get(b.id).status == "queued"
    assert store.get(c.id).status == "queued" and c.id not in [r.id for r in resumed]  # another instance's
    assert len(store.submission_times("s", "a1", 0)) == 2
    assert [x.id for x in store.attempts(student="s")] == [a.id, b.id]


def test_sqlite_store(tmp_path):
    store = Store(tmp_path / "attempts")
    _exercise(store)
    assert (tmp_path / "attempts" / "attempts.db").exists()
    assert (tmp_path / "attempts").stat().st_mode & 0o077 == 0  # the instructor's only


def test_rows_survive_a_new_process_view(tmp_path):
    store = Store(tmp_path / "st")
    a = store.add_attempt(assignment="a1", student="s", data=b"nb", filename="x.ipynb", owner="i")
    store.close()  # what a restart sees
    again = Store(tmp_path / "st")
    assert again.get(a.id).status == "queued" and [r.id for r in again.resume("i")] == [a.id]


def test_postgres_store_shared_by_two_instances(tmp_path, postgres_url):  # noqa: F811
    one = Store(tmp_path / "st", postgres_url)
    two = Store(tmp_path / "st", postgres_url)  # a second instance on the same course
    _exercise(one, owner="i1", other="i2")
    # the two instances race for the same queued rows: each row is claimed exactly once
    rows = [one.add_attempt(assignment="a2", student=f"s{i}", data=b"n", filename="n.ipynb", owner="i1")
            for i in range(20)]
    won = {1: [], 2: []}

    def take(k, store):
        for r in rows:
            if store.claim(r.id):
                won[k].append(r.id)

    threads = [threading.Thread(target=take, args=(1, one)), threading.Thread(target=take, args=(2, two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won[1] + won[2]) == [r.id for r in rows]


def test_a_store_that_cannot_be_reached_says_so(tmp_path):
    with pytest.raises(Exception):
        Store(tmp_path / "st", "postgresql://nobody@127.0.0.1:1/none")
