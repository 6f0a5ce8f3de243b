"""Students on the instructor's machine (or JupyterHub) fetch and submit through the
course's exchange with nothing but the student bundle's settings (issue 17): its
nbgrader config carries the course id and the exchange the course's own config uses, so
`nbgrader list/fetch_assignment/submit` and JupyterLab's Assignment List work without
options, and the instructor's `nbgrader collect` picks the submission up.

Slow: a student environment is installed from the bundle (as in test_bundle), and the
browser part drives the Assignment List in headless Chromium (see test_browser.py).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from coursectl.cli import main
from fixtures.grading import tiny
from nbcourse import BIN, nbgrader

pytestmark = pytest.mark.slow

A = tiny.ASSIGNMENT


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The instructor's course: tiny released, with its student bundle, and published."""
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{BIN}{os.pathsep}{old}"
    saved = os.environ.pop("COURSE_EXCHANGE", None)  # the course's own exchange, beside its config
    try:
        course = tiny.make_course(tmp_path_factory.mktemp("exchange") / "instructor", generate=False)
        assert main(["--course-dir", str(course), "release", A, "--bundle"]) == 0
        nbgrader(course, "release_assignment", A, "--force")
    finally:
        os.environ["PATH"] = old
        if saved is not None:
            os.environ["COURSE_EXCHANGE"] = saved
    assert (course / "exchange" / "seqcourse" / "outbound" / A).is_dir()
    return course


@pytest.fixture(scope="module")
def student_python(course, tmp_path_factory):
    from test_bundle import _student_env

    where = tmp_path_factory.mktemp("student-env")
    return _student_env(course / "bundles" / f"{A}-student.zip", where)


def _student_env_vars(python: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "NBGRADER", "COURSE_EXCHANGE"))}
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env


def _student(python: Path, folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`nbgrader ARGS` as a student types it, in ``folder`` (no config file there)."""
    return subprocess.run([str(python), "-m", "nbgrader", *args], cwd=folder, capture_output=True, text=True,
                          env=_student_env_vars(python, JUPYTER_CONFIG_DIR=str(folder / ".jupyter")), timeout=300)


def _collected(course: Path) -> Path:
    nbgrader(course, "collect", A, "--update")
    (student,) = [p for p in (course / "submitted").iterdir() if (p / A).is_dir()]
    return student / A / "tiny.ipynb"


def test_cli_fetch_submit_collect(course, student_python, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    listed = _student(student_python, work, "list")
    assert listed.returncode == 0 and f"seqcourse {A}" in listed.stdout + listed.stderr, listed.stderr
    fetched = _student(student_python, work, "fetch_assignment", A)
    assert fetched.returncode == 0, fetched.stderr
    notebook = work / A / "tiny.ipynb"
    assert notebook.is_file()
    tiny.answer(notebook)
    submitted = _student(student_python, work, "submit", A)
    assert submitted.returncode == 0, submitted.stderr
    got = nbformat.read(_collected(course), as_version=4)
    assert "return x * x" in "\n".join(c.source for c in got.cells)


def test_without_the_bundle_settings_nbgrader_finds_no_exchange(course, student_python, tmp_path):
    """The check above can fail: the same environment without the bundle's nbgrader
    settings looks in nbgrader's default exchange, which does not exist."""
    default = "/usr/local/share/nbgrader/exchange"
    if Path(default).exists():
        pytest.skip(f"{default} exists on this machine")
    prefix = student_python.parent.parent
    settings = prefix / "etc" / "jupyter" / "nbgrader_config.json"
    hidden = settings.with_suffix(".off")
    work = tmp_path / "work"
    work.mkdir()
    settings.rename(hidden)
    try:
        proc = _student(student_python, work, "list")
    finally:
        hidden.rename(settings)
    assert f"seqcourse {A}" not in proc.stdout + proc.stderr
    assert "exchange" in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr


# ------------------------------------------------------------------ browser


@pytest.fixture(scope="module")
def student_lab(course, student_python, tmp_path_factory):
    from test_browser import _chromium, jupyter_lab

    if _chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("needs Debian's chromium and chromium-driver (.ci/run installs them)")
        pytest.skip("needs Debian's chromium and chromium-driver and selenium")
    add_jupyter_files(student_python.parent.parent)
    home = tmp_path_factory.mktemp("student-home")
    env = _student_env_vars(student_python, JUPYTER_CONFIG_DIR=str(home / ".jupyter"))
    with jupyter_lab(home, student_python, env, home / "lab.log") as base:
        yield base, home


def add_jupyter_files(prefix: Path) -> None:
    """JupyterLab's and nbgrader's front-end files from the test venv, as pip would install
    them into the student environment ``prefix``: the share/jupyter data merged with what
    the bundle installed there, and the server extensions' enabling files."""
    venv_prefix = Path(sys.prefix)
    _link_missing(venv_prefix / "share" / "jupyter", prefix / "share" / "jupyter")
    server_d = prefix / "etc" / "jupyter" / "jupyter_server_config.d"
    for cfg in (venv_prefix / "etc" / "jupyter" / "jupyter_server_config.d").glob("*.json"):
        if not (server_d / cfg.name).exists():
            shutil.copy(cfg, server_d / cfg.name)


def _link_missing(source: Path, target: Path) -> None:
    """Link into ``target`` what ``source`` has and it lacks (folders merged)."""
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        there = target / item.name
        if there.is_dir() and item.is_dir() and not there.is_symlink():
            _link_missing(item, there)
        elif not there.exists():
            there.symlink_to(item)


def test_assignment_list_fetches_and_submits_then_instructor_collects(course, student_lab, tmp_path_factory):
    from selenium.webdriver.common.by import By

    from test_browser import TOKEN, _api, _close_menu, _menu, _wait

    base, home = student_lab
    # the bundle's JupyterLab defaults are in force: no "official Jupyter news" prompt
    news = _api(base, "/lab/api/settings/@jupyterlab/apputils-extension:notification")
    assert news["schema"]["properties"]["fetchNews"]["default"] == "false", news["schema"]["properties"]["fetchNews"]
    driver = _browser(tmp_path_factory)
    try:
        driver.get(f"{base}/lab?token={TOKEN}")
        items = _menu(driver, "Nbgrader")
        entry = [i for i in items if i.text.strip() == "Assignment List"]
        assert entry, [i.text for i in items]
        entry[0].click()

        def button(list_id: str, label: str):
            rows = driver.find_elements(By.CSS_SELECTOR, f"#{list_id} .list_item")
            found = [b for r in rows if A in r.text for b in r.find_elements(By.TAG_NAME, "button")
                     if b.text.strip() == label and b.is_enabled()]
            return found[0] if found else None

        fetch = _wait(driver, lambda d: button("released_assignments_list", "Fetch"), timeout=120,
                      what="the released assignment with a Fetch button")
        page = driver.find_element(By.TAG_NAME, "body").text
        assert "Error fetching courses" not in page and "exchange directory does not exist" not in page
        fetch.click()
        submit = _wait(driver, lambda d: button("fetched_assignments_list", "Submit"), timeout=120,
                       what="the fetched assignment with a Submit button")
        notebook = home / A / "tiny.ipynb"
        assert notebook.is_file(), sorted(p.name for p in home.iterdir())
        tiny.answer(notebook)
        time.sleep(1.5)  # nbgrader's submission timestamps have one-second resolution
        submit.click()
        _wait(driver, lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#submitted_assignments_list .list_item")
                                 if A in r.text], timeout=120, what="the submission in the submitted list")
        _close_menu(driver)
    finally:
        driver.quit()
    got = nbformat.read(_collected(course), as_version=4)
    assert "return x ** 3" in "\n".join(c.source for c in got.cells)


def _browser(tmp_path_factory):
    from test_browser import _chromium, start_driver

    return start_driver(_chromium(), tmp_path_factory.mktemp("chromium-profile"))
