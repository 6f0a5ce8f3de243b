"""`course tokens`: one token per roster student, stored hashed only, replaced on re-run."""
from __future__ import annotations

import csv
import stat

import pytest

from coursectl.errors import CourseError
from coursectl.service import tokens
from coursectl.service.store import Store


def _roster(path, *ids):
    path.write_text("student_id,name\n" + "".join(f"{i},Name {i}\n" for i in ids))
    return path


def test_tokens_from_roster_are_hashed_and_private(tmp_path):
    store = Store(tmp_path / "st")
    out = tmp_path / "tokens.csv"
    assert tokens.create_student_tokens(store, _roster(tmp_path / "r.csv", "ann", "bo.b", "ann"), out) == 2
    rows = list(csv.DictReader(out.open()))
    assert [r["student_id"] for r in rows] == ["ann", "bo.b"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    for r in rows:
        assert store.find_token(tokens.token_hash(r["token"]))[:2] == (r["student_id"], "student")
    store.close()
    db = (tmp_path / "st" / "attempts.db").read_bytes() + b"".join(
        p.read_bytes() for p in (tmp_path / "st").glob("attempts.db*"))
    assert not any(r["token"].encode() in db for r in rows)  # only hashes were written
    assert all(tokens.token_hash(r["token"]).encode() in db for r in rows)


def test_new_tokens_replace_old_ones_and_instructor(tmp_path):
    store = Store(tmp_path / "st")
    roster = _roster(tmp_path / "r.csv", "ann")
    tokens.create_student_tokens(store, roster, tmp_path / "t1.csv")
    old = next(csv.DictReader((tmp_path / "t1.csv").open()))["token"]
    tokens.create_student_tokens(store, roster, tmp_path / "t2.csv")
    new = next(csv.DictReader((tmp_path / "t2.csv").open()))["token"]
    assert old != new and store.find_token(tokens.token_hash(old)) is None
    tokens.create_instructor_token(store, tmp_path / "i.csv", name="prof")
    tok = next(csv.DictReader((tmp_path / "i.csv").open()))["token"]
    assert store.find_token(tokens.token_hash(tok)) == (None, "instructor", "prof")
    assert store.students() == ["ann"]


def test_unusable_student_id_is_refused(tmp_path):
    store = Store(tmp_path / "st")
    with pytest.raises(CourseError, match="../evil"):
        tokens.create_student_tokens(store, _roster(tmp_path / "r.csv", "ok", "../evil"), tmp_path / "t.csv")
