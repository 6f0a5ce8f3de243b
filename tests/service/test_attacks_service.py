"""The attack corpus (tests/fixtures/attacks/) submitted to `course serve` as students would,
graded on its Dask backend (`--cluster local:2`).

The expectations are the attack suite's (tests/security/attack_suite.py), which `course
grade` and plain nbgrader must meet too: each attack scores what the untouched release
scores (0) in every unit, the honest submission keeps full marks, the from-scratch attacks
are held for review or fail, and nothing outside the service's own attempts changes
(course files, host files, processes, the network). A verdict, what a student reads,
never holds the reference, the solution or the hidden code.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from fixtures.attacks.a1_attacks import ATTACKS
from fixtures.attacks.a1_from_scratch_attacks import EXPECTED, FROM_SCRATCH_ATTACKS
from nbcourse import REPO, make_course
from security.attack_suite import (A, CELL_TIMEOUT, NAME, OWN_OUTPUTS, _attack_notebook, _held_honest,
                                   _Listener, _marks, _processes_with_mark, _reference_lines, _require_sandbox,
                                   _snapshot, _solution_lines)
from service.serving import Server, make_tokens, post, wait_all

pytestmark = pytest.mark.slow
RELEASE = REPO / "release" / A / NAME


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    _require_sandbox()
    for stale in _marks():
        Path(stale).unlink()
    course = make_course(tmp_path_factory.mktemp("attacks_served"), A)
    (course / "service.toml").write_text("[limits]\nmin_interval_s = 0\n")
    listener = _Listener()
    notebooks = {"honest": nbformat.read(REPO / "source" / A / NAME, as_version=4),
                 "release": nbformat.read(RELEASE, as_version=4), "held_honest": _held_honest()}
    notebooks |= {f"attack_{n}": _attack_notebook(RELEASE, a, listener.port) for n, a in ATTACKS.items()}
    notebooks |= {f"scratch_{n}": _attack_notebook(RELEASE, a, listener.port) for n, a in FROM_SCRATCH_ATTACKS.items()}
    toks = make_tokens(course, sorted(notebooks))
    before = _snapshot(course)
    server = Server(course, "--cluster", "local:2", env={"COURSE_CELL_TIMEOUT": str(CELL_TIMEOUT)}).start()
    try:
        ids = {}
        for student, nb in notebooks.items():
            resp = post(server.url, toks[student], A, nbformat.writes(nb).encode(), NAME)
            assert resp.status_code == 202, (student, resp.status_code, resp.text)
            ids[student] = resp.json()["attempt"]
        wait_all(server.url, toks["instructor"], list(ids.values()), timeout=3000)
        # What each student reads (the default visibility: names and messages).
        import httpx

        seen = {s: httpx.get(f"{server.url}/api/attempts/{i}", headers={"Authorization": f"Bearer {toks[s]}"},
                             timeout=30).json() for s, i in ids.items()}
        time.sleep(2)  # anything left behind would write its marks by now
        yield course, before, listener, seen, server.log
    finally:
        server.stop()
        listener.close()


def _points(verdict) -> dict[str, float]:
    return {u["grade_id"]: u["points"] for u in verdict["units"]}


def test_graded_on_the_dask_backend_and_honest_keeps_full_marks(served):
    *_rest, seen, log = served
    assert "grading on Dask LocalCluster" in log.read_text()
    honest = seen["honest"]
    # every autograded point (the written answers wait for a hand grade)
    assert honest["status"] == "graded" and honest["score"] == sum(u["max_points"] for u in honest["units"]) > 0
    assert all(u["points"] == u["max_points"] and not u["held"] for u in honest["units"])


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_scores_what_the_release_scores_in_every_unit(served, name):
    *_rest, seen, _log = served
    release = _points(seen["release"])
    assert release and set(release.values()) == {0.0}
    got = seen[f"attack_{name}"]
    # graded with nothing (0 everywhere, as the release), or refused as a failed attempt
    assert got["status"] == "failed" or _points(got) == release, got


@pytest.mark.parametrize("name", list(FROM_SCRATCH_ATTACKS))
def test_from_scratch_attack_is_held_or_fails_and_scores_nothing(served, name):
    from autograder.a1_rnn_cells.checks import NO_BUILTINS

    *_rest, seen, _log = served
    got = seen[f"scratch_{name}"]
    assert got["status"] == "graded" and got["score"] == 0.0, got
    lstm = next(u for u in got["units"] if u["grade_id"] == "test_lstm_cell")
    if EXPECTED[name] == "held":
        assert lstm["held"], lstm
    else:
        assert not lstm["held"] and NO_BUILTINS in json.dumps(lstm), lstm


def test_held_honest_shows_its_units_held_with_zero_until_released(served):
    *_rest, seen, _log = served
    got = seen["held_honest"]
    units = {u["grade_id"]: u for u in got["units"]}
    assert units["test_lstm_cell"]["held"] and units["test_lstm_cell"]["points"] == 0.0
    assert all(c["passed"] for c in units["test_lstm_cell"]["checks"])  # the checks passed: only review waits
    assert units["test_abc_answers"]["points"] == units["test_abc_answers"]["max_points"] == 3.0
    assert got["score"] == 3.0


def test_nothing_outside_the_attempts_changed(served):
    course, before, listener, _seen, _log = served
    own = set(OWN_OUTPUTS) | {"attempts"}
    assert {k: v for k, v in _snapshot(course).items() if k.split("/")[0] not in own} == \
        {k: v for k, v in before.items() if k.split("/")[0] not in own}
    assert _marks() == []
    assert _processes_with_mark() == []
    assert listener.hits == 0


def test_verdicts_show_no_reference_solution_or_hidden_code(served):
    *_rest, seen, _log = served
    # (An attacker's own import of the hidden package may come back in its error message.)
    secrets = _reference_lines() + _solution_lines() + ["check_lstm_cell(", "BEGIN HIDDEN"]
    for student, verdict in seen.items():
        text = json.dumps(verdict)
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{student}: {leaked[:3]}"
