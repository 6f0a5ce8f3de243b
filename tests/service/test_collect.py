"""`course attempts collect`: last or best attempt per student, before a deadline, placed
in submitted/ as nbgrader collect would (no kernels)."""
from __future__ import annotations

import subprocess
from datetime import datetime, timezone

import pytest

from coursectl.errors import CourseError
from coursectl.service.collect import choose, collect
from coursectl.service.store import Store
from nbcourse import BIN


def _graded(store, student, data, at, score, status="graded"):
    a = store.add_attempt(assignment="hw", student=student, data=data, filename="whatever.ipynb", owner="i", now=at)
    store.claim(a.id)
    store.finish(a.id, status=status, score=score, max_score=10.0, units=[], reason=None)
    return store.get(a.id)


@pytest.fixture
def course(tmp_path):
    course = tmp_path / "course"
    (course / "source" / "hw").mkdir(parents=True)
    (course / "source" / "hw" / "hw.ipynb").write_text("{}")
    (course / "release" / "hw").mkdir(parents=True)
    (course / "release" / "hw" / "hw.ipynb").write_text("{}")
    (course / "release" / "hw" / "figure.png").write_bytes(b"png")
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    store = Store(course / "attempts")
    _graded(store, "ann", b"ann-1", 100.0, 9.0)
    _graded(store, "ann", b"ann-2", 200.0, 4.0)
    _graded(store, "ann", b"ann-3", 300.0, None, status="failed")
    _graded(store, "bob", b"bob-1", 150.0, 7.0)
    _graded(store, "bob", b"bob-2", 250.0, 7.0)
    store.add_attempt(assignment="other", student="cat", data=b"x", filename="o.ipynb", owner="i", now=1.0)
    return course, store


def _when(ts):
    return datetime.fromtimestamp(ts, timezone.utc)


def test_policies(course):
    _course, store = course
    attempts = store.attempts(assignment="hw")
    pick = lambda policy, deadline=None: {s: a.sha256 for s, a in choose(attempts, policy, deadline).items()}  # noqa: E731
    by_data = {a.sha256: a.id for a in attempts}
    assert {s: by_data[h] for s, h in pick("last").items()} == {"ann": 3, "bob": 5}
    assert {s: by_data[h] for s, h in pick("best").items()} == {"ann": 1, "bob": 5}  # a tie: the later
    assert {s: by_data[h] for s, h in pick("last", _when(220)).items()} == {"ann": 2, "bob": 4}
    assert {s: by_data[h] for s, h in pick("best", _when(120)).items()} == {"ann": 1}
    with pytest.raises(CourseError):
        choose(attempts, "first")


def test_collect_places_submissions(course):
    course, store = course
    (course / "submitted" / "ann" / "hw").mkdir(parents=True)
    (course / "submitted" / "ann" / "hw" / "stale.ipynb").write_text("old")
    done = collect(course, store, "hw", policy="best")
    assert [(c.student, c.score) for c in done] == [("ann", 9.0), ("bob", 7.0)]
    ann = course / "submitted" / "ann" / "hw"
    assert sorted(p.name for p in ann.iterdir()) == ["figure.png", "hw.ipynb", "timestamp.txt"]
    assert (ann / "hw.ipynb").read_bytes() == b"ann-1"
    assert (ann / "timestamp.txt").read_text().startswith("1970-01-01 00:01:40")
    assert not (course / "submitted" / "cat").exists()


def test_collect_command(course):
    course, store = course
    store.close()
    proc = subprocess.run([str(BIN / "course"), "attempts", "collect", "hw", "--policy", "last",
                           "--deadline", "1970-01-01T00:04:00"], cwd=course, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "ann: attempt 2 (4)" in proc.stdout and "bob: attempt 4 (7)" in proc.stdout
    assert (course / "submitted" / "bob" / "hw" / "hw.ipynb").read_bytes() == b"bob-1"
