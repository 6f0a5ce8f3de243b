"""A regrade gives the same grades: one secret per course (coursectl/secret.py) draws every
check's inputs, whichever way the course is graded.

Fast tests: the secret file (made once, mode 0600, kept, reseeded with the old one kept, a
damaged one refused), where InjectProbes finds it, and that neither a job's scratch course
nor the sandbox's bound files hold it.

Slow test (the real CLIs, one a1 course: the template-style student and one mutant):
`nbgrader autograde` twice and `course grade --workers 2` give identical per-cell scores,
equal to the in-process grading under the course's secret; `course grade --reseed` draws a
new secret, keeps the old one, says so in the report, and (a bug's penalty does not depend
on the draw) still gives the same scores, graded on Dask (`--cluster local:2`); the kernel cannot read the secret; the student
bundle does not contain it.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from coursectl import secret as course_secret
from coursectl.errors import CourseError
from mutants import load_cells, load_mutants
from nbcourse import REPO, cell_by_id, make_course, nbgrader, scores, submit

COURSE_CLI = str(Path(sys.executable).parent / "course")
A = "a1_rnn_cells"
TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "a1" / "template_style_student.py"
MUTANT = "rnn_model_off_by_one"  # its RNN_RELU score once depended on the draw


# ------------------------------------------------------------------ the secret file

def test_made_once_private_and_kept(tmp_path):
    first = course_secret.load_or_create(tmp_path)
    assert first.created and len(first.value) == 32
    path = tmp_path / ".course_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = course_secret.load_or_create(tmp_path)
    assert again.value == first.value and not again.created
    assert not [p for p in tmp_path.iterdir() if p.name != ".course_secret"]  # no temporary file left
    assert first.fingerprint == again.fingerprint and first.hex not in first.fingerprint


def test_reseed_draws_a_new_secret_and_keeps_the_old_one(tmp_path):
    old = course_secret.load_or_create(tmp_path)
    new = course_secret.reseed(tmp_path)
    assert new.value != old.value and new.created and new.previous == tmp_path / ".course_secret.old"
    assert course_secret.parse(new.previous.read_text()) == old.value
    assert stat.S_IMODE(new.previous.stat().st_mode) == 0o600
    assert course_secret.load_or_create(tmp_path).value == new.value


def test_a_damaged_secret_is_refused_not_replaced(tmp_path):
    path = tmp_path / ".course_secret"
    path.write_text("not hex at all\n")
    with pytest.raises(CourseError, match="--reseed"):
        course_secret.load_or_create(tmp_path)
    assert path.read_text() == "not hex at all\n"  # grades depend on it: never overwritten silently


def test_a_secret_others_can_read_is_made_private(tmp_path):
    value = course_secret.load_or_create(tmp_path).value
    path = tmp_path / ".course_secret"
    os.chmod(path, 0o644)
    assert course_secret.load_or_create(tmp_path).value == value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_git_ignores_the_secret_files():
    for name in (".course_secret", ".course_secret.old", "some/course/.course_secret"):
        proc = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO)
        assert proc.returncode == 0, f"{name} is not ignored by git"


def test_inject_probes_uses_the_given_secret_or_the_courses(tmp_path, monkeypatch):
    from coursectl.trusted import InjectProbes

    monkeypatch.chdir(tmp_path)  # plain nbgrader runs its preprocessors in the course root
    made = InjectProbes()._course_secret()
    assert made == course_secret.load_or_create(tmp_path).value
    assert InjectProbes(secret="ab" * 32)._course_secret() == bytes.fromhex("ab" * 32)
    with pytest.raises(CourseError):
        InjectProbes(secret="abc")._course_secret()


def test_the_secret_travels_in_the_job_never_in_its_files(tmp_path):
    from coursectl.grading import jobs
    from coursectl.grading.model import GradeJob, Limits

    value = "5e" * 32
    job = GradeJob(assignment="a", student="s", submission={"a.ipynb": (0o644, b"{}")}, config_text="c = 1\n",
                   source={"a.ipynb": (0o644, b"{}")}, gradebook=b"", limits=Limits(timeout=10), secret=value)
    jobs.write_scratch_course(job, tmp_path / "course")
    for path in (tmp_path / "course").rglob("*"):
        if path.is_file():
            assert value not in path.read_bytes().decode("latin-1"), path


def test_a_worker_grades_with_the_jobs_secret(tmp_path):
    """What a Dask worker receives (a pickled job) sets InjectProbes' secret in the grading
    process's config, in memory: the worker never makes a secret of its own."""
    import pickle

    from coursectl.grading import jobs, worker
    from coursectl.grading.model import GradeJob, Limits

    value = "c3" * 32
    job = GradeJob(assignment="a", student="s", submission={}, source={}, gradebook=b"", limits=Limits(timeout=10),
                   config_text=(REPO / "nbgrader_config.py").read_text(), secret=value)
    job = pickle.loads(pickle.dumps(job))
    jobs.write_scratch_course(job, tmp_path / "course")
    config = worker._load_config(tmp_path / "course", job)
    assert config.InjectProbes.secret == value
    assert not (tmp_path / "course" / ".course_secret").exists()


def test_the_sandbox_binds_no_dot_files(tmp_path):
    from coursectl.grading import sandbox

    folder = tmp_path / "autograded" / "s" / "a"
    folder.mkdir(parents=True)
    (folder / ".course_secret").write_text("ab" * 32)
    (folder / "figure.png").write_bytes(b"png")
    assert [rel for _, rel in sandbox._assignment_files(str(folder))] == ["figure.png"]


# ------------------------------------------------------------------ the real CLIs

SPY = '''
import pathlib
try:
    pathlib.Path({path!r}).read_text()
    print("SECRET-READ")
except OSError as exc:
    print("SECRET-HIDDEN", type(exc).__name__)
'''


def _course(*args, course: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([COURSE_CLI, "--course-dir", str(course), *args], cwd=course, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _per_cell(course: Path) -> dict[str, dict[str, float]]:
    return {s: {gid: score for gid, (score, _) in scores(course, A, s).items()} for s in ("template", "mutant")}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One a1 course, the two submissions, graded by plain nbgrader twice and by `course
    grade --workers 2` once: (course, [per-cell scores of each run], secret, report)."""
    course = make_course(tmp_path_factory.mktemp("regrade"), A)
    nbgrader(course, "generate_assignment", A, "--force")
    source = nbformat.read(REPO / "source" / A / f"{A}.ipynb", as_version=4)
    template_cells, _ = load_cells(TEMPLATE)
    nb = nbformat.from_dict(json.loads(json.dumps(source)))
    for gid, text in template_cells.items():
        cell_by_id(nb, gid).source = text
    submit(course, "template", A, nb, name=f"{A}.ipynb")
    (mutant,) = [m for m in load_mutants("a1") if m.name == MUTANT]
    nb = nbformat.from_dict(json.loads(json.dumps(source)))
    cell_by_id(nb, mutant.cell).source = mutant.source
    nb.cells.append(new_code_cell(SPY.format(path=str(course / ".course_secret"))))  # a student's own cell
    submit(course, "mutant", A, nb, name=f"{A}.ipynb")

    runs = []
    for _ in range(2):
        nbgrader(course, "autograde", A, "--force", timeout=1800)
        runs.append(_per_cell(course))
    secret = (course / ".course_secret").read_text()
    proc = _course("grade", A, "--workers", "2", course=course)
    runs.append(_per_cell(course))
    return course, runs, secret, proc.stdout


@pytest.mark.slow
def test_plain_nbgrader_and_course_grade_give_the_same_per_cell_scores(graded):
    course, runs, secret, report = graded
    assert runs[0]["template"] and runs[0]["mutant"]
    assert runs[1] == runs[0], "a second plain nbgrader autograde changed scores"
    assert runs[2] == runs[0], "course grade --workers 2 changed scores"
    assert (course / ".course_secret").read_text() == secret
    assert stat.S_IMODE((course / ".course_secret").stat().st_mode) == 0o600
    fingerprint = course_secret.CourseSecret(course_secret.parse(secret), course / ".course_secret").fingerprint
    assert f"course secret {fingerprint} (kept from earlier gradings" in report
    # The mutant and the template student lose where they must, and only there.
    loses = {"template": load_cells(TEMPLATE)[1],
             "mutant": next(m.loses for m in load_mutants("a1") if m.name == MUTANT)}
    points = {gid: p for gid, (_, p) in scores(course, A, "template").items()}
    for student, lost in loses.items():
        assert {g for g, s in runs[0][student].items() if s < points[g]} == set(lost), student


@pytest.mark.slow
def test_in_process_grading_under_the_course_secret_gives_the_same_scores(graded):
    """The in-process grading of test_reproducible.py draws what the kernels were given."""
    sys.path.insert(0, str(REPO / "tests" / "autograder"))
    import reproducible as R

    course, runs, secret, _ = graded
    value = course_secret.parse(secret)
    source = nbformat.read(REPO / "source" / A / f"{A}.ipynb", as_version=4)
    points = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in source.cells
              if c.metadata.get("nbgrader", {}).get("grade")}
    for sub in R.submissions():
        student = {"a1/template_style_student": "template", f"a1/{MUTANT}": "mutant"}.get(sub.name)
        if student:
            # in process a unit returns the share (4 decimals) of its cell's points, which the metadata holds
            local = {gid: share * points[gid] for gid, share in R.grade(sub, value).items()}
            assert local == pytest.approx({gid: runs[0][student][gid] for gid in local}, abs=1e-3), student  # shares are rounded


@pytest.mark.slow
def test_kernels_cannot_read_the_secret(graded):
    course = graded[0]
    nb = nbformat.read(course / "autograded" / "mutant" / A / f"{A}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "SECRET-HIDDEN" in printed and "SECRET-READ" not in printed


@pytest.mark.slow
def test_reseed_draws_a_new_secret_says_so_and_keeps_the_scores(graded):
    course, runs, secret, _ = graded
    proc = _course("grade", A, "--cluster", "local:2", "--reseed", course=course)  # on Dask this time
    new = (course / ".course_secret").read_text()
    assert new != secret and (course / ".course_secret.old").read_text() == secret
    assert "NEW: drawn by --reseed" in proc.stdout and ".course_secret.old" in proc.stdout
    report = json.loads((course / "reports" / A / "report.json").read_text())
    assert report["secret"]["reseeded"] is True
    # Sizes and flags are fixed per check: a new secret draws other values, same penalties.
    assert _per_cell(course) == runs[0]


@pytest.mark.slow
def test_the_student_bundle_holds_no_secret(graded):
    course, _, secret, _ = graded
    _course("release", A, "--bundle", course=course)
    bundle = course / "bundles" / f"{A}-student.zip"
    with zipfile.ZipFile(bundle) as zf:
        assert not any(".course_secret" in n for n in zf.namelist())
        for name in zf.namelist():
            assert secret.strip() not in zf.read(name).decode("latin-1"), name
