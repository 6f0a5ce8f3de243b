"""End to end on a1 with a real `course serve`: students submit with `course submit`
(the solution, a partially wrong template-style notebook, a solution whose LSTM cell
forges torch's own kernel), the service's per-unit points equal what `course grade`
gives the same notebooks after `course attempts collect`, the verdict names the checks
and never carries hidden code or solution text, and refusals exit 2 with the reason."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from fixtures.attacks.a1_attacks import ATTACKS
from mutants import load_cells
from nbcourse import BIN, REPO, cell_by_id, make_course, scores
from service.serving import Server, make_tokens

pytestmark = pytest.mark.slow
A = "a1_rnn_cells"
NAME = f"{A}.ipynb"
SOURCE = REPO / "source" / A / NAME
TEMPLATE = Path(__file__).parents[1] / "fixtures" / "a1" / "template_style_student.py"


def _notebooks(tmp: Path) -> dict[str, Path]:
    out = {"sol": tmp / "sol" / NAME, "tmpl": tmp / "tmpl" / NAME, "forge": tmp / "forge" / NAME}
    for p in out.values():
        p.parent.mkdir()
    nb = nbformat.read(SOURCE, as_version=4)
    nbformat.write(nb, out["sol"])
    cells, _loses = load_cells(TEMPLATE)
    for gid, source in cells.items():
        cell_by_id(nb, gid).source = source
    nbformat.write(nb, out["tmpl"])
    nb = nbformat.read(SOURCE, as_version=4)
    cell_by_id(nb, "lstm_cell").source = ATTACKS["forge_with_torch"]["lstm_cell"]
    nbformat.write(nb, out["forge"])
    return out


def _hidden_lines() -> list[str]:
    """Hidden test lines and solution lines of the source notebook (long enough to be telling)."""
    nb = nbformat.read(SOURCE, as_version=4)
    lines = []
    for cell in nb.cells:
        for block in re.findall(r"### BEGIN (?:HIDDEN TESTS|SOLUTION)\n(.*?)### END", cell.source, re.S):
            lines += [ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25]
    assert lines
    return lines


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from coursectl.grading import sandbox

    if sandbox.unavailable():
        pytest.skip(f"the grading sandbox cannot start here: {sandbox.unavailable()}")
    tmp = tmp_path_factory.mktemp("serve_a1")
    course = make_course(tmp, A)
    (course / "service.toml").write_text("[limits]\nmin_interval_s = 0\n")
    toks = make_tokens(course, ["sol", "tmpl", "forge"])
    nbs = _notebooks(tmp)
    server = Server(course, "--workers", "2").start()
    try:
        procs = {who: subprocess.Popen([str(BIN / "course"), "submit", A, str(nbs[who]), "--server", server.url,
                                        "--token", toks[who], "--json"], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
                 for who in nbs}
        done = {}
        for who, proc in procs.items():
            out, err = proc.communicate(timeout=900)
            done[who] = (proc.returncode, out, err)
        yield course, server, toks, done, tmp
    finally:
        server.stop()


def test_submit_prints_the_verdict_and_exits_0(served):
    _course, _server, _toks, done, _tmp = served
    for who, (code, out, err) in done.items():
        assert code == 0, (who, out, err)
        verdict = json.loads(out)
        assert verdict["status"] == "graded" and verdict["student"] == who
    sol = json.loads(done["sol"][1])
    assert sol["score"] == sum(u["max_points"] for u in sol["units"]) > 0
    assert all(c["passed"] for u in sol["units"] for c in u["checks"])
    assert len({c["name"] for u in sol["units"] for c in u["checks"]}) > 10  # check names, passed ones too
    tmpl = json.loads(done["tmpl"][1])
    gru = next(u for u in tmpl["units"] if u["grade_id"] == "test_gru_cell")
    assert gru["points"] < gru["max_points"] and any(not c["passed"] and c["message"] for c in gru["checks"])
    progress = "".join(e for _c, _o, e in done.values())
    assert re.search(r"attempt \d+: (queued, position \d+|grading)", progress), progress  # shown while waiting


def test_service_points_equal_course_grade(served):
    course, *_rest, done, _tmp = served
    proc = subprocess.run([str(BIN / "course"), "attempts", "collect", A, "--policy", "last"], cwd=course,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["forge", "sol", "tmpl"]
    proc = subprocess.run([str(BIN / "course"), "grade", A, "--workers", "2"], cwd=course, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for who in ("sol", "tmpl", "forge"):
        verdict = json.loads(done[who][1])
        service = {u["grade_id"]: u["points"] for u in verdict["units"]}
        graded = {gid: s for gid, (s, _m) in scores(course, A, who).items() if s is not None}
        assert service == pytest.approx(graded), who
    forge = json.loads(done["forge"][1])
    lstm = next(u for u in forge["units"] if u["grade_id"] == "test_lstm_cell")
    assert lstm["points"] == 0.0  # the forged LSTM cell earns nothing, as through course grade
    assert json.loads(done["tmpl"][1])["score"] < json.loads(done["sol"][1])["score"]


def test_verdict_reveals_no_hidden_code_or_solution(served):
    *_rest, done, _tmp = served
    text = "".join(out for _c, out, _e in done.values())
    leaked = [ln for ln in _hidden_lines() if ln in text]
    assert not leaked and "BEGIN HIDDEN" not in text and "BEGIN SOLUTION" not in text


def test_refusals_exit_2_with_the_reason(served):
    _course, server, toks, _done, tmp = served
    bad = tmp / "bad.ipynb"
    bad.write_text("{not a notebook")

    def run(*args):
        return subprocess.run([str(BIN / "course"), "submit", A, *args, "--server", server.url], capture_output=True,
                              text=True, timeout=60)

    proc = run(str(bad), "--token", toks["sol"])
    assert proc.returncode == 2 and "422" in proc.stderr and "not a notebook" in proc.stderr
    proc = run(str(bad), "--token", "sc_wrong")
    assert proc.returncode == 2 and "401" in proc.stderr and "sc_wrong" not in proc.stderr
