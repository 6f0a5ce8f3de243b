"""JupyterLab's "Submit for feedback" as a student meets it: the student bundle installed
into a fresh environment shows the extension enabled (`jupyter labextension list`, the
server extension list), and in headless Chromium the toolbar button saves the open
notebook, sends it to the feedback service and the dialog shows the verdict per unit.

The service is the real `course serve` on the same course (tokens from `course tokens
create`), grading through the real chain; the dialog must show what the service's API says
about that attempt. The waiting state and a 429 come from the fake service of
tests/service/test_lab_extension.py (a crowded queue and a tight limit are not needed for
the dialog's side of them). Slow: a student environment is installed from a bundle, a real
grading, and JupyterLab in a browser (see tests/test_browser.py).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pytest

from coursectl.cli import main
from coursekit import feedback_ext
from fixtures.grading import tiny
from nbcourse import BIN
from service.serving import Server, make_tokens
from service.test_lab_extension import STUDENT_TOKEN, fake_service  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow

A = tiny.ASSIGNMENT
EDIT = "# edited in the browser, not yet saved"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The instructor's course with tiny released and its student bundle written."""
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{BIN}{os.pathsep}{old}"  # `course release` runs the nbgrader CLI
    try:
        course = tiny.make_course(tmp_path_factory.mktemp("lab-feedback") / "course", generate=False)
        assert main(["--course-dir", str(course), "release", A, "--bundle"]) == 0
    finally:
        os.environ["PATH"] = old
    return course


@pytest.fixture(scope="module")
def student_python(course, tmp_path_factory) -> Path:
    """The bundle unpacked and `pip install`ed into a fresh venv (test_bundle's recipe)."""
    from test_bundle import _student_env

    return _student_env(course / "bundles" / f"{A}-student.zip", tmp_path_factory.mktemp("student-env"))


def _env(python: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "NBGRADER", "COURSE_FEEDBACK"))}
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env


def test_the_bundle_installs_and_enables_the_extension(student_python, tmp_path):
    """`jupyter labextension list` in the bundle's venv shows it enabled, from files the
    bundle's `pip install .` put there (not links to this repo's)."""
    prefix = student_python.parent.parent
    build = prefix / "share" / "jupyter" / "labextensions" / feedback_ext.LAB_EXTENSION
    assert (build / "package.json").is_file() and not (build / "package.json").is_symlink()
    entry = json.loads((build / "package.json").read_text())["jupyterlab"]["_build"]["load"]
    assert (build / entry).is_file(), entry  # the remote entry the page loads
    env = _env(student_python, JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter"))
    lab = subprocess.run([str(student_python), "-m", "jupyterlab.labextensions", "list"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    listed = [line for line in (lab.stdout + lab.stderr).splitlines() if feedback_ext.LAB_EXTENSION in line]
    assert listed and "enabled" in listed[0] and "OK" in listed[0], lab.stdout + lab.stderr
    assert str(prefix / "share" / "jupyter" / "labextensions") in lab.stdout + lab.stderr
    server = subprocess.run([str(student_python), "-m", "jupyter_server.extension.serverextension", "list"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    out = re.sub(r"\x1b\[[0-9;]*m", "", server.stdout + server.stderr)  # no colours
    assert f"{feedback_ext.EXTENSION} enabled" in out, out
    assert "Validating coursekit.feedback_ext" in out and "ERROR" not in out.split("coursekit.feedback_ext", 1)[1]


@dataclass
class Service:
    """The feedback service the student's JupyterLab talks to."""
    url: str
    token: str   # alice's, from `course tokens create`


@pytest.fixture(scope="module")
def feedback_service(course):
    """`course serve` in the instructor's course, one grading worker."""
    tokens = make_tokens(course, ["alice", "bob"])
    server = Server(course, "--workers", "1").start()
    try:
        yield Service(url=server.url, token=tokens["alice"])
    finally:
        server.stop()


@pytest.fixture(scope="module")
def student_lab(student_python, course, feedback_service, tmp_path_factory):
    """JupyterLab in the student's folder (the bundle's tiny/ answered), its feedback
    settings in the documented place: course_feedback.json in the Jupyter config folder."""
    from test_browser import _chromium, jupyter_lab
    from test_student_exchange import add_jupyter_files

    if _chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("needs Debian's chromium and chromium-driver (.ci/run installs them)")
        pytest.skip("needs Debian's chromium and chromium-driver and selenium")
    add_jupyter_files(student_python.parent.parent)  # JupyterLab's own front end, as pip would install it
    home = tmp_path_factory.mktemp("student-home")
    for folder in (A, "busy", "slow"):  # the fake service refuses "busy" (429) and queues "slow" a while
        (home / folder).mkdir()
        nbformat.write(nbformat.read(course / "release" / A / "tiny.ipynb", as_version=4), home / folder / "tiny.ipynb")
        tiny.answer(home / folder / "tiny.ipynb")
    # alice's own copy gets `cube` wrong: the verdict has a unit that passes and one that fails
    mine = home / A / "tiny.ipynb"
    mine.write_text(mine.read_text().replace("return x ** 3", "return x ** 2"))
    config = home / ".jupyter"
    config.mkdir()
    (config / feedback_ext.CONFIG_NAME).write_text(json.dumps({"url": feedback_service.url,
                                                               "token": feedback_service.token}))
    env = _env(student_python, JUPYTER_CONFIG_DIR=str(config), HOME=str(home))
    with jupyter_lab(home, student_python, env, home / "lab.log") as base:
        yield base, home


@pytest.fixture(scope="module")
def driver(student_lab, tmp_path_factory):
    from test_browser import _chromium, start_driver

    d = start_driver(_chromium(), tmp_path_factory.mktemp("chromium-profile"))
    yield d
    d.quit()


def _open_notebook(driver, base: str, path: str):
    """Open ``path`` alone (``reset``: no notebooks restored from the last page) and wait
    until its kernel is idle: the page is then fully set up."""
    from selenium.webdriver.common.by import By

    from test_browser import TOKEN, _api, _wait

    driver.get(f"{base}/lab/tree/{path}?reset&token={TOKEN}")
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), what="the notebook")
    _wait(driver, lambda d: [s for s in _api(base, "/api/sessions")
                             if s["path"] == path and s["kernel"]["execution_state"] == "idle"],
          what=f"an idle kernel for {path}")


def _feedback_button(driver):
    """The button in the toolbar of the notebook on show (other open notebooks' are hidden)."""
    from selenium.webdriver.common.by import By

    from test_browser import _wait

    return _wait(driver, lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel-toolbar jp-button, "
                                                                               ".jp-NotebookPanel-toolbar button")
                                    if b.text.strip() == "Submit for feedback" and b.is_displayed()],
                 what="the Submit for feedback button")[0]


def _dialog_text(driver, what: str, test, timeout=300):
    from selenium.webdriver.common.by import By

    from test_browser import _wait

    return _wait(driver, lambda d: [t for t in (e.text for e in d.find_elements(By.CSS_SELECTOR,
                                                                                ".jp-Dialog .seqcourse-feedback"))
                                    if test(t)], timeout=timeout, what=what)[0]


def test_toolbar_button_submits_and_the_dialog_shows_the_verdict(driver, student_lab, feedback_service):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from test_browser import _wait

    base, home = student_lab
    _open_notebook(driver, base, f"{A}/tiny.ipynb")
    # an unsaved edit (a new cell below the first): the command saves before it sends
    driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")[0].click()
    ActionChains(driver).send_keys(Keys.ESCAPE, "b", Keys.ENTER).pause(0.5).send_keys(EDIT).perform()
    _wait(driver, lambda d: EDIT in d.find_element(By.CSS_SELECTOR, ".jp-Notebook").text, what="the edit")
    assert EDIT not in (home / A / "tiny.ipynb").read_text()
    _feedback_button(driver).click()
    text = _dialog_text(driver, "the verdict", lambda t: "Score:" in t or "failed" in t.lower(), timeout=600)
    assert EDIT in (home / A / "tiny.ipynb").read_text()  # saved first
    assert "Score:" in text and "Graded (attempt " in text, text

    # the dialog shows exactly what the service says about this attempt, unit by unit
    attempt = re.search(r"Graded \(attempt (\d+)", text).group(1)
    verdict = httpx.get(f"{feedback_service.url}/api/attempts/{attempt}", timeout=30,
                        headers={"Authorization": f"Bearer {feedback_service.token}"}).json()
    assert verdict["status"] == "graded" and verdict["student"] == "alice", verdict
    units = {u["grade_id"]: (u["points"], u["max_points"]) for u in verdict["units"]}
    assert units["test_square"] == (2, 2) and units["test_cube"] == (0, 3), verdict  # cube is wrong
    assert f"Score: {verdict['score']:g} / {verdict['max_score']:g}" in text
    shown = {}
    for unit in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog .seqcourse-feedback-unit"):
        shown[unit.get_attribute("data-grade-id")] = (
            unit.find_element(By.CSS_SELECTOR, ".seqcourse-feedback-unit-points").text,
            [(c.get_attribute("data-passed"), c.text) for c in
             unit.find_elements(By.CSS_SELECTOR, ".seqcourse-feedback-check")])
    assert set(shown) == {u["grade_id"] for u in verdict["units"]} >= set(tiny.AUTO_POINTS), shown
    for unit in verdict["units"]:
        points, checks = shown[unit["grade_id"]]
        if unit.get("points") is not None:
            assert points == f"{unit['points']:g} / {unit['max_points']:g}", (points, unit)
        assert [p for p, _ in checks] == [str(c["passed"]).lower() for c in unit.get("checks", [])], unit
        for (_, shown_text), check in zip(checks, unit.get("checks", [])):
            assert check["name"] in shown_text and (check.get("message") or "") in shown_text
    # (tiny's hidden tests are plain asserts, so its units carry no named checks; the
    # names and messages of checks are shown in the next test, from the fake service)
    _close_dialog(driver)


def test_command_palette_lists_it(driver, student_lab):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from test_browser import _wait

    ActionChains(driver).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("c").key_up(Keys.SHIFT) \
        .key_up(Keys.CONTROL).perform()
    search = _wait(driver, lambda d: [i for i in d.find_elements(By.CSS_SELECTOR, ".lm-CommandPalette-input")
                                      if i.is_displayed()], what="the command palette")[0]
    search.send_keys("Submit for feedback")
    items = _wait(driver, lambda d: [i.text for i in d.find_elements(By.CSS_SELECTOR, ".lm-CommandPalette-item")
                                     if "Submit for feedback" in i.text], what="the palette entry")
    assert items, items
    search.send_keys(Keys.ESCAPE)


def _close_dialog(driver):
    from selenium.webdriver.common.by import By

    from test_browser import _wait

    driver.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept").click()
    _wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".jp-Dialog"), what="the dialog to close")


@pytest.fixture
def on_the_fake_service(student_lab, fake_service):  # noqa: F811
    """The student's settings pointed at the fake service for one test (they are read
    on every submission: no restart), then back."""
    _, home = student_lab
    settings = home / ".jupyter" / feedback_ext.CONFIG_NAME
    real = settings.read_text()
    settings.write_text(json.dumps({"url": fake_service.url, "token": STUDENT_TOKEN}))
    yield
    settings.write_text(real)


def test_the_queue_position_shows_while_waiting_then_the_verdict(driver, student_lab, on_the_fake_service):
    """The dialog's waiting state and a 429 refusal, through the fake (the real service would
    need a crowded queue and a tight limit for them)."""
    from selenium.webdriver.common.by import By

    base, _ = student_lab
    _open_notebook(driver, base, "slow/tiny.ipynb")
    _feedback_button(driver).click()
    waiting = _dialog_text(driver, "the queue position", lambda t: "position" in t or "Score:" in t, timeout=60)
    assert "Queued: position 3 in the queue" in waiting and "Attempt 9" in waiting, waiting
    text = _dialog_text(driver, "the verdict", lambda t: "Score:" in t, timeout=60)
    assert "Graded (attempt 9" in text and "Score: 3 / 5" in text
    units = driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog .seqcourse-feedback-unit")
    checks = driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog .seqcourse-feedback-check")
    assert [u.get_attribute("data-grade-id") for u in units] == ["cell_rnn", "cell_lstm"]
    assert [c.get_attribute("data-passed") for c in checks] == ["true", "false"]
    assert "passed" in checks[0].text and "shape" in checks[0].text
    assert "failed" in checks[1].text and "gates" in checks[1].text and "forget gate bias is off" in checks[1].text
    held = [u.get_attribute("data-grade-id") for u in units
            if u.find_elements(By.CSS_SELECTOR, ".seqcourse-feedback-held")]
    assert held == ["cell_lstm"] and "Held for your instructor" in units[1].text  # points held for review
    _close_dialog(driver)

    _open_notebook(driver, base, "busy/tiny.ipynb")
    _feedback_button(driver).click()
    text = _dialog_text(driver, "the refusal", lambda t: "429" in t, timeout=60)
    assert "Too many attempts for now (429): submit again in 30 s" in text and "Retry-After: 30 s" in text, text
    error = driver.find_element(By.CSS_SELECTOR, ".jp-Dialog .seqcourse-feedback-error")
    assert error.get_attribute("data-status") == "429"
    _close_dialog(driver)


def test_the_real_services_refusals_reach_the_student_as_messages(student_lab, feedback_service):
    """What the button's request gets from `course serve` itself (no browser needed: the
    dialog shows ``message``): a broken notebook, one too large, an unknown assignment,
    submitting again too soon (429 and Retry-After), a wrong token."""
    import urllib.error
    import urllib.request

    from test_browser import TOKEN

    base, home = student_lab

    def submit(path: str) -> tuple[int, dict]:
        req = urllib.request.Request(f"{base}/seqcourse-feedback/attempts", method="POST",
                                     data=json.dumps({"path": path}).encode(),
                                     headers={"Authorization": f"token {TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    (home / A / "broken.ipynb").write_text("this is not a notebook")
    status, reply = submit(f"{A}/broken.ipynb")
    assert status == 422 and "did not accept the file as a notebook" in reply["message"], reply

    big = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="y" * (6 * 1024 * 1024))])])
    nbformat.write(big, home / A / "big.ipynb")
    status, reply = submit(f"{A}/big.ipynb")
    assert status == 413 and "too large" in reply["message"], reply

    (home / "nosuch").mkdir(exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(), home / "nosuch" / "tiny.ipynb")
    status, reply = submit("nosuch/tiny.ipynb")
    assert status == 404 and "does not know assignment 'nosuch'" in reply["message"], reply

    # the service's minimum interval between one student's attempts (30 s by default): the
    # second of two quick submissions is refused with the time to wait
    first, _ = submit(f"{A}/tiny.ipynb")
    status, reply = submit(f"{A}/tiny.ipynb")
    assert first in (202, 429) and status == 429, (first, status, reply)
    assert 0 < reply["retry_after"] <= 30 and f"submit again in {reply['retry_after']} s" in reply["message"], reply

    settings = home / ".jupyter" / feedback_ext.CONFIG_NAME
    real = settings.read_text()
    settings.write_text(json.dumps({"url": feedback_service.url, "token": "not-a-token-of-this-course"}))
    try:
        status, reply = submit(f"{A}/tiny.ipynb")
    finally:
        settings.write_text(real)
    assert status == 401 and "did not accept your token" in reply["message"], reply
