"""Fast checks of the grading pieces that need no kernel: intake, pre-checks, executor
plumbing, report, exports and the sandbox launcher."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from coursectl.grading import export, gradebook, intake, report, runners, staging
from coursectl.grading.model import CellScore
from coursectl.grading.jobs import SANDBOX_SCRIPT
from fixtures.grading import tiny


@pytest.fixture(scope="module")
def definition(tmp_path_factory):
    course = tiny.make_course(tmp_path_factory.mktemp("units"))
    with gradebook.open_gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return gradebook.read_definition(gb, tiny.ASSIGNMENT, course / "source" / tiny.ASSIGNMENT)


def _stage(tmp_path, definition, files: dict[str, bytes]):
    src = tmp_path / "submitted" / "stu" / tiny.ASSIGNMENT
    src.mkdir(parents=True)
    for name, data in files.items():
        (src / name).write_bytes(data)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    dest = tmp_path / "staged"
    staged = staging.stage_submission("stu", src, dest, definition)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before, "the submission was modified"
    return staged, dest


_nb_bytes = tiny.notebook_bytes


def _ids(path: Path) -> list:
    nb = json.loads(path.read_text())
    return [c["metadata"].get("nbgrader", {}).get("grade_id") for c in nb["cells"]]


# ---------------------------------------------------------------- pre-checks


def test_definition_follows_source_order(definition):
    assert [d.name for d in definition["tiny"]] == ["setup", "square", "test_square", "cube", "test_cube",
                                                   "explain_md", "explain"]
    test_cube = next(d for d in definition["tiny"] if d.name == "test_cube")
    assert test_cube.grade and test_cube.locked and test_cube.points == 3
    assert "hidden-cube-check" in test_cube.source  # the gradebook keeps hidden tests


def test_clean_submission_is_copied_byte_for_byte(tmp_path, definition):
    data = _nb_bytes(tiny.good()) + b"\n"
    staged, dest = _stage(tmp_path, definition, {"tiny.ipynb": data, "notes.txt": b"mine"})
    assert staged.problems == [] and staged.gradable
    assert (dest / "tiny.ipynb").read_bytes() == data
    assert (dest / "notes.txt").read_bytes() == b"mine"


@pytest.mark.parametrize("files, reason", [
    ({"tiny.ipynb": b""}, "empty file"),
    ({"tiny.ipynb": b"  \n"}, "empty file"),
    ({"tiny.ipynb": tiny.truncated_bytes()}, "not valid JSON"),
    ({"tiny.ipynb": b"[1, 2, 3]"}, "not a notebook"),
    ({"other.txt": b"no notebook here"}, "missing"),
])
def test_unreadable_submissions_get_one_line_reasons(tmp_path, definition, files, reason):
    staged, dest = _stage(tmp_path, definition, files)
    assert not staged.gradable
    assert any(reason in p for p in staged.problems), staged.problems
    assert all("\n" not in p for p in staged.problems)
    assert not (dest / "tiny.ipynb").exists()


def test_latin1_and_bom_are_decoded(tmp_path, definition):
    staged, dest = _stage(tmp_path, definition, {"tiny.ipynb": tiny.latin1_bytes()})
    assert staged.gradable and any("not UTF-8 (read as cp1252)" in p for p in staged.problems)
    assert "Résumé" in nbformat.read(dest / "tiny.ipynb", as_version=4).cells[0].source
    staged, dest = _stage(tmp_path / "bom", definition, {"tiny.ipynb": b"\xef\xbb\xbf" + _nb_bytes(tiny.good())})
    assert staged.gradable and any("byte-order mark" in p for p in staged.problems)


def test_wrong_file_name_is_graded_under_the_right_one(tmp_path, definition):
    staged, dest = _stage(tmp_path, definition, {"Tiny (1).ipynb": _nb_bytes(tiny.good())})
    assert staged.gradable
    assert staged.problems == ["wrong file name: 'Tiny (1).ipynb' graded as tiny.ipynb"]
    assert (dest / "tiny.ipynb").exists() and not (dest / "Tiny (1).ipynb").exists()


def test_deleted_cells_are_put_back_in_place(tmp_path, definition):
    nb = tiny.without("test_cube")
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "setup"]
    staged, dest = _stage(tmp_path, definition, {"tiny.ipynb": _nb_bytes(nb)})
    assert any("cells deleted: setup, test_cube" in p for p in staged.problems), staged.problems
    assert _ids(dest / "tiny.ipynb") == [None, "setup", "square", "test_square", "cube", "test_cube",
                                         "explain_md", "explain"]


def test_duplicates_keep_metadata_on_the_last_copy(tmp_path, definition):
    staged, dest = _stage(tmp_path, definition, {"tiny.ipynb": _nb_bytes(tiny.duplicated("test_square"))})
    assert any("test_square appears 2 times" in p for p in staged.problems)
    ids = _ids(dest / "tiny.ipynb")
    assert ids.count("test_square") == 1 and ids[ids.index("test_square") - 1] is None


def test_retyped_and_damaged_cells_are_restored(tmp_path, definition):
    nb = tiny.retyped("cube")
    nb.cells[3].metadata["nbgrader"] = {"grade": True, "grade_id": "test_square"}  # no points, no schema
    staged, dest = _stage(tmp_path, definition, {"tiny.ipynb": _nb_bytes(nb)})
    assert any("cell type changed: cube (code -> markdown)" in p for p in staged.problems), staged.problems
    assert any("metadata damaged in cells test_square" in p for p in staged.problems), staged.problems
    fixed = nbformat.read(dest / "tiny.ipynb", as_version=4)
    assert fixed.cells[4].cell_type == "code"
    assert fixed.cells[3].metadata.nbgrader.points == 2


def test_extra_notebook_is_reported(tmp_path, definition):
    staged, _ = _stage(tmp_path, definition, {"tiny.ipynb": _nb_bytes(tiny.good()),
                                              "scratch.ipynb": _nb_bytes(tiny.good())})
    assert staged.problems == ["extra notebook 'scratch.ipynb' not graded"]


# ---------------------------------------------------------------- intake


ROSTER = tiny.CANVAS_ROSTER
_canvas_zip = tiny.canvas_zip


def test_canvas_zip_intake(tmp_path):
    (tmp_path / "roster.csv").write_text(ROSTER)
    roster = intake.read_roster(tmp_path / "roster.csv")
    assert [(e.student_id, e.lms_id, e.section) for e in roster.entries] == [("jdoe", "12345", "A"),
                                                                             ("bsmith", "23456", "B")]
    nb = _nb_bytes(tiny.good())
    zpath = _canvas_zip(tmp_path / "canvas.zip", nb)
    course = tmp_path / "course"
    got = intake.from_canvas_zip(zpath, course, "tiny", roster)
    sub = course / "submitted"
    assert (sub / "jdoe" / "tiny" / "tiny.ipynb").read_bytes() == nb  # newest submission kept
    assert (sub / "bsmith" / "tiny" / "tiny-1.ipynb").read_bytes() == nb
    assert (sub / "jdoe" / "tiny" / "evil.py").exists()  # only the base name is used
    assert not (tmp_path / "escape_12345_903_evil.py").exists()
    assert got.late == {"bsmith"}
    reasons = dict(got.unplaced)
    assert "not in the roster" in reasons["stranger_99999_902_tiny.ipynb"]
    assert "older copy" in reasons["doejane_12345_800_tiny.ipynb"]
    assert "name is not" in reasons["notes for grader.txt"]
    again = intake.from_canvas_zip(zpath, course, "tiny", roster)
    assert {state for _, _, state in again.placed} == {"unchanged"}
    found = intake.find_submissions(course, "tiny")
    assert sorted(found.students) == ["bsmith", "jdoe"]


def test_canvas_zip_without_roster_uses_canvas_ids(tmp_path):
    zpath = _canvas_zip(tmp_path / "canvas.zip", b"{}")
    got = intake.from_canvas_zip(zpath, tmp_path / "course", "tiny", None)
    assert {s for _, s, _ in got.placed} == {"12345", "23456", "99999"}


def test_stray_files_in_submitted_are_reported(tmp_path):
    (tmp_path / "submitted" / "ann" / "tiny").mkdir(parents=True)
    (tmp_path / "submitted" / "ann" / "tiny.ipynb").write_text("{}")
    (tmp_path / "submitted" / "loose.ipynb").write_text("{}")
    found = intake.find_submissions(tmp_path, "tiny")
    assert list(found.students) == ["ann"]
    assert dict(found.unplaced) == {
        "submitted/ann/tiny.ipynb": "not inside submitted/ann/<assignment>/",
        "submitted/loose.ipynb": "file directly in submitted/, not in a student folder"}


# ---------------------------------------------------------------- runners, report, export


def test_jobs_come_back_in_finish_order():
    import threading

    gate = threading.Event()
    work = {"slow": lambda: gate.wait(5) and "slow", "fast": lambda: "fast"}
    with ThreadPoolExecutor(2) as pool:
        order = []
        for name, fut in runners.in_finish_order(lambda n: pool.submit(work[n]), ["slow", "fast"]):
            order.append((name, fut.result()))
            gate.set()
    assert order == [("fast", "fast"), ("slow", "slow")]


def test_window_keeps_the_rest_waiting_here():
    import threading

    lock, running, most = threading.Lock(), [0], [0]

    def job(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return i

    with ThreadPoolExecutor(4) as pool:
        got = [fut.result() for _, fut in runners.in_finish_order(lambda i: pool.submit(job, i), list(range(8)),
                                                                   window=lambda: 2)]
    assert sorted(got) == list(range(8)) and most[0] <= 2


def test_items_from_a_generator_are_made_only_when_there_is_room():
    from concurrent.futures import Future

    made = []

    def items():
        for i in range(5):
            made.append(i)
            yield i

    def submit(i):  # each job is done at once: what limits the making is the window
        fut = Future()
        fut.set_result(i)
        return fut

    seen = [(i, list(made)) for i, _ in runners.in_finish_order(submit, items(), window=lambda: 2)]
    assert seen == [(0, [0, 1]), (1, [0, 1, 2]), (2, [0, 1, 2, 3]), (3, [0, 1, 2, 3, 4]), (4, [0, 1, 2, 3, 4])]


def test_a_stalled_cluster_reports_every_unfinished_job():
    from concurrent.futures import Future

    made = []

    def submit(i):
        fut = Future()
        made.append(fut)
        if i == 0:
            fut.set_result("done")
        return fut

    checks = iter([None, "the cluster is gone"])
    got = list(runners.in_finish_order(submit, [0, 1, 2], window=lambda: 2, stalled=lambda: next(checks),
                                       poll_s=0.01))
    assert [i for i, _ in got] == [0, 1, 2] and got[0][1].result() == "done"
    for _, fut in got[1:]:
        with pytest.raises(runners.ClusterError, match="the cluster is gone"):
            fut.result()
    assert made[1].cancelled() and made[2].cancelled()


def _results():
    R, C = report.SubmissionResult, CellScore
    return [R("a", "graded", 7, 7, {"t1": C(2, 2, True), "t2": C(5, 5, True), "m": C(None, 1, False)}),
            R("b", "graded", 2, 7, {"t1": C(2, 2, True), "t2": C(0, 5, True)}, ["cell t2: timed out"], True),
            R("c", "failed", 0, 7, {}, ["tiny.ipynb: empty file (0 bytes)"])]


def test_summary_and_text_report(tmp_path):
    results = _results()
    s = report.summarize(results)
    assert (s["graded"], s["failed"], s["timed_out"], s["graded_with_problems"]) == (2, 1, 1, 1)
    assert s["pass_rate"] == {"t1": {"passed": 2, "of": 3, "rate": 2 / 3}, "t2": {"passed": 1, "of": 3, "rate": 1 / 3}}
    assert s["distribution"]["90-100%"] == 1 and s["distribution"]["0-10%"] == 1
    text = report.render_text("tiny", s, results, [("x.zip", "why")], {"workers": 2, "seconds": 1.0,
                                                                        "network": "isolated"})
    assert "b  graded 2/7  cell t2: timed out" in text
    assert "c  FAILED 0/7  tiny.ipynb: empty file (0 bytes)" in text
    assert "x.zip: why" in text
    assert s["manual_points"] == 1 and "1 of the 7 points are graded by hand" in text
    png = report.plot_summary(tmp_path / "s.png", "tiny", s, results)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_canvas_csv_uses_roster_column(tmp_path):
    (tmp_path / "roster.csv").write_text(ROSTER)
    roster = intake.read_roster(tmp_path / "roster.csv")
    path = export.canvas_csv(tmp_path / "c.csv", "tiny", [("jdoe", 5.0, 7.0), ("zed", 1.5, 7.0)], roster)
    rows = path.read_text().splitlines()
    assert rows[0] == "Student,ID,SIS User ID,SIS Login ID,Section,tiny (4242)"
    assert rows[1] == "Points Possible,,,,,7"
    assert rows[2] == "Doe Jane,12345,u001,jdoe,A,5"
    assert rows[3] == "zed,,zed,,,1.5"


# ---------------------------------------------------------------- sandbox launcher


def test_sandbox_caps_memory_and_execs(tmp_path):
    status = tmp_path / "k.jsonl"
    opts = json.dumps({"memory_mb": 512, "no_network": False, "status_file": str(status)})
    code = "b = bytearray(1024 * 1024 * 1024)"
    proc = subprocess.run([sys.executable, "-I", SANDBOX_SCRIPT, opts, "--", sys.executable, "-c", code],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "MemoryError" in proc.stderr
    note = json.loads(status.read_text())
    assert note["network"] == "not isolated (switched off)" and note["pid"] > 0


def test_sandbox_network_probe_says_what_it_got():
    out = subprocess.run([sys.executable, "-I", SANDBOX_SCRIPT, "--probe"], capture_output=True, text=True).stdout
    assert out.startswith(("isolated", "not isolated"))
