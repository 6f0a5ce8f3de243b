"""The gradebook on a real PostgreSQL server (started here in a temporary folder), as a
course with several graders would configure it through nbgrader's ``db_url``."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from coursectl.grading import grade_assignment
from fixtures.grading import tiny
from nbcourse import nbgrader, submit

PG_DIRS = [Path(p) for p in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/14/bin")]


def _pg_bin(name: str) -> str | None:
    for d in PG_DIRS:
        if (d / name).exists():
            return str(d / name)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(why: str):
    """Skip on a student's or maintainer's machine without a server; fail in CI, which installs one."""
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed "
                     "(Debian: apt-get install postgresql; .ci/run does this)")
    import psycopg
    run_as: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(tmp)
            _unavailable("running as root and there is no 'postgres' user to run the server")
        os.chown(tmp, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = tmp / "data", _free_port()
    subprocess.run([*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as con:
            con.execute("CREATE DATABASE gradebook")
        yield f"postgresql://postgres@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_course(tmp_path_factory, postgres_url):
    course = tiny.make_course(tmp_path_factory.mktemp("pg"), generate=False)
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write(f"\nc.CourseDirectory.db_url = {postgres_url!r}\n")
    nbgrader(course, "generate_assignment", tiny.ASSIGNMENT, "--force", "--no-db")  # release/ only
    for i in range(4):
        submit(course, f"s{i}", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    submit(course, "wrong", tiny.ASSIGNMENT, tiny.wrong_answer(), name="tiny.ipynb")
    submit(course, "crash", tiny.ASSIGNMENT, tiny.with_cell("import os\nos._exit(2)"), name="tiny.ipynb")
    broken = course / "submitted" / "broken" / tiny.ASSIGNMENT
    broken.mkdir(parents=True)
    (broken / "tiny.ipynb").write_text("{not json")
    return course, postgres_url


def _pg_scores(url: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(url, course_id="seqcourse") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(tiny.ASSIGNMENT).submissions}


def test_grades_into_postgres(pg_course):
    course, url = pg_course
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=2, students=["s0", "wrong", "crash", "broken"],
                           progress=False)
    assert not (course / "gradebook.db").exists()  # everything went to the server
    assert _pg_scores(url) == {"s0": 5.0, "wrong": 2.0, "crash": 5.0, "broken": 0.0}
    assert "not valid JSON" in run.result("broken").reason
    nbgrader(course, "export", "--to", "pg_export.csv")  # nbgrader itself reads the same gradebook
    assert sorted((course / "pg_export.csv").read_text().splitlines()) == \
        sorted(run.files["grades_csv"].read_text().splitlines())


def test_two_graders_share_the_server(pg_course):
    course, url = pg_course
    runs, errors = {}, []

    def grade(name, students):
        try:
            runs[name] = grade_assignment(course, tiny.ASSIGNMENT, workers=1, students=students, progress=False,
                                          feedback=False)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=grade, args=("a", ["s1", "s2"])),
               threading.Thread(target=grade, args=("b", ["s3", "wrong"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors
    assert _pg_scores(url) == {"s0": 5.0, "s1": 5.0, "s2": 5.0, "s3": 5.0, "wrong": 2.0, "crash": 5.0,
                               "broken": 0.0}
