"""A real browser (headless Chromium through selenium) against a real JupyterLab.

Instructor: after `course --course-dir DIR demo`, JupyterLab is started in DIR and the
formgrader's pages must show Release and Collect (a working exchange), the students'
names from the roster, rendered math in the written answers (MathJax served by the Jupyter
server, not a CDN) and no solution markers.

Student: the a1 student bundle is installed into a fresh environment; in its JupyterLab
nbgrader's instructor tools are gone, and a filled-in release notebook runs with Run All
and passes the Validate button. The notebook trains in its quick mode (COURSE_QUICK=1) to
keep the test short; run times are not what is checked here.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them); skipped without
them, except under CI=true, where their absence fails.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from nbcourse import BIN, REPO

pytestmark = pytest.mark.slow

A1 = "a1_rnn_cells"
TOKEN = "browser-test-token"
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1400,1000")


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def chromium():
    found = _chromium()
    if found is None:
        reason = "needs Debian's chromium and chromium-driver and the selenium package"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; .ci/run installs them (apt-get install chromium chromium-driver)")
        pytest.skip(f"{reason} (apt-get install chromium chromium-driver)")
    return found


def start_driver(chromium: tuple[str, str], profile: Path, extra_flags: tuple[str, ...] = ()):
    """Headless Chromium through chromium-driver, with a fresh profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium[0]
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}", *extra_flags):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(chromium[1]))
    driver.set_page_load_timeout(120)
    return driver


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    driver = start_driver(chromium, tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(folder: Path, python: Path, env: dict[str, str], log: Path):
    """JupyterLab serving ``folder`` (its working folder too), run by ``python``; yields
    the base URL once the server answers. Stopped with its whole process group."""
    port = _free_port()
    cmd = [str(python), "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={folder}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 180 s:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _api(base: str, path: str):
    req = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def _wait(driver, test, timeout=120, what="condition"):
    """Poll ``test(driver)`` until it is truthy. A page that re-renders while it is read
    (a stale element) is read again on the next poll."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5,
                             ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: test(d))
    except TimeoutException:
        pytest.fail(f"timed out after {timeout} s waiting for {what}; page text:\n"
                    f"{driver.find_element('tag name', 'body').text[:2000]}")


def _clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "NBGRADER"))}
    env.update(extra)
    return env


# ------------------------------------------------------------------ instructor


@pytest.fixture(scope="module")
def demo_course(chromium, tmp_path_factory):
    """`course --course-dir DIR demo`, the installed console script, as an instructor runs it."""
    course = tmp_path_factory.mktemp("browser") / "demo"
    env = _clean_env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("COURSE_EXCHANGE", None)
    proc = subprocess.run([str(BIN / "course"), "--course-dir", str(course), "demo"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (course / "gradebook.db").is_file() and (course / "exchange").is_dir()
    assert "course --course-dir" in proc.stdout and "feedback a1_rnn_cells" in proc.stdout
    return course


@pytest.fixture(scope="module")
def instructor_lab(demo_course, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "instructor-lab.log"
    env = _clean_env(JUPYTER_CONFIG_DIR=str(tmp_path_factory.mktemp("jupyter-config")))
    env.pop("COURSE_EXCHANGE", None)
    with jupyter_lab(demo_course, Path(sys.executable), env, log) as base:
        yield base


def test_formgrader_shows_release_and_collect(browser, instructor_lab):
    from selenium.webdriver.common.by import By

    browser.get(f"{instructor_lab}/formgrader/manage_assignments?token={TOKEN}")
    row = _wait(browser, lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "tbody tr")
                                    if r.find_elements(By.CSS_SELECTOR, "td.name") and A1 in r.text],
                what="the a1 row")[0]
    assert not browser.find_elements(By.ID, "warning-exchange"), "formgrader says the exchange is missing"
    assert "released" in row.find_element(By.CSS_SELECTOR, "td.status").text  # the demo published it
    assert row.find_elements(By.CSS_SELECTOR, "td.release a .glyphicon-remove")  # Release (here: unrelease)
    collect = row.find_elements(By.CSS_SELECTOR, "td.collect a .glyphicon-cloud-download")
    assert collect, "no Collect button"
    collect[0].click()
    _wait(browser, lambda d: "Successfully collected" in d.find_element(By.TAG_NAME, "body").text,
          what="the collect confirmation")


def test_formgrader_lists_students_by_name(browser, instructor_lab):
    from selenium.webdriver.common.by import By

    browser.get(f"{instructor_lab}/formgrader/manage_students?token={TOKEN}")
    names = _wait(browser, lambda d: [c.text for c in d.find_elements(By.CSS_SELECTOR, "td.name")] or None,
                  what="the student list")
    assert sorted(names) == ["Lindqvist, Carol", "Moreau, Alice", "Okafor, Bob"]
    assert "None, None" not in browser.find_element(By.TAG_NAME, "body").text


def test_grading_view_renders_math_and_shows_no_solution_markers(browser, instructor_lab):
    from selenium.webdriver.common.by import By

    subs = _api(instructor_lab, f"/formgrader/api/submitted_notebooks/{A1}/{A1}")
    alice = next(s for s in subs if s["student"] == "alice")
    assert (alice["first_name"], alice["last_name"]) == ("Alice", "Moreau")
    browser.get(f"{instructor_lab}/formgrader/submissions/{alice['id']}/?token={TOKEN}")
    _wait(browser, lambda d: d.execute_script(
        "return window.MathJax !== undefined && MathJax.Hub !== undefined && MathJax.isReady === true"
        " && MathJax.Hub.queue.pending === 0 && document.querySelectorAll('.MathJax, .MathJax_Display').length > 0"),
        timeout=120, what="MathJax to typeset the answers")
    rendered = browser.execute_script("return document.querySelectorAll('.MathJax, .MathJax_Display').length")
    sources = browser.execute_script(
        "return Array.from(document.querySelectorAll('script[src]')).map(s => s.src).filter(s => /MathJax/.test(s))")
    text = browser.find_element(By.TAG_NAME, "body").text
    page = browser.page_source
    assert rendered >= 5, rendered
    assert sources and all(s.startswith(instructor_lab) for s in sources), sources  # served locally, no CDN
    assert "Math Processing Error" not in text
    assert "\\odot" not in text and "\\operatorname" not in text  # no raw TeX left in the answers
    assert "Backpropagation through time" in text  # alice's written answer is on the page
    for marker in ("BEGIN SOLUTION", "END SOLUTION"):
        assert marker not in page, marker


# ------------------------------------------------------------------ student


@pytest.fixture(scope="module")
def student_folder(chromium, tmp_path_factory):
    """The a1 bundle installed into a fresh environment, with a filled-in release notebook.
    Packages the environment would get from PyPI come from this venv (a path file); their
    Jupyter data and server settings are linked and copied in as their installs would."""
    from coursectl.bundle import build_bundle
    from coursectl.demo import answered
    from test_bundle import _student_env

    import data_scripts

    data_scripts.build_offline("speech_commands")
    where = tmp_path_factory.mktemp("student")
    bundle = build_bundle(REPO, A1, where / "dist")
    python = _student_env(bundle, where, top=f"{A1}-student")
    from test_student_exchange import add_jupyter_files

    add_jupyter_files(python.parent.parent)
    top = where / f"{A1}-student"
    notebook = top / A1 / f"{A1}.ipynb"
    filled = answered(nbformat.read(notebook, as_version=4),
                      nbformat.read(REPO / "source" / A1 / f"{A1}.ipynb", as_version=4))
    nbformat.write(filled, notebook)
    return top, python


@pytest.fixture(scope="module")
def student_lab(student_folder, tmp_path_factory):
    top, python = student_folder
    log = tmp_path_factory.mktemp("logs") / "student-lab.log"
    env = _clean_env(COURSE_QUICK="1", JUPYTER_CONFIG_DIR=str(tmp_path_factory.mktemp("student-jupyter-config")),
                     PATH=f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    with jupyter_lab(top, python, env, log) as base:
        yield base


def _menu(driver, label: str):
    from selenium.webdriver.common.by import By

    bar = _wait(driver, lambda d: [m for m in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
                                   if m.text.strip() == label], what=f"the {label} menu")
    bar[0].click()
    return _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".lm-Menu-item"), what=f"{label}'s items")


def _close_menu(driver):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    time.sleep(0.5)


def test_student_runs_all_and_validates(browser, student_lab, student_folder):
    from selenium.webdriver.common.by import By

    top, _ = student_folder
    notebook = top / A1 / f"{A1}.ipynb"
    with pytest.raises(urllib.error.HTTPError):  # the formgrader's server side is off too
        _api(student_lab, "/formgrader/api/assignments")

    browser.get(f"{student_lab}/lab/tree/{A1}/{A1}.ipynb?token={TOKEN}")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), what="the notebook")
    # The server's view of the kernel (JupyterLab 4.6's status bar no longer shows its state).
    _wait(browser, lambda d: [k for k in _api(student_lab, "/api/kernels") if k["execution_state"] == "idle"],
          what="an idle kernel")

    items = [i.text.strip() for i in _menu(browser, "Nbgrader") if i.text.strip()]
    _close_menu(browser)
    assert items == ["Assignment List"], items  # no Formgrader, Create Assignment or Course List

    run_all = [i for i in _menu(browser, "Run") if i.get_attribute("data-command") == "runmenu:run-all"]
    assert run_all, "no Run All Cells in the Run menu"
    run_all[0].click()
    save = browser.find_element(By.CSS_SELECTOR, '.jp-NotebookPanel-toolbar [data-command="docmanager:save"]')
    deadline, state = time.monotonic() + 600, None
    while time.monotonic() < deadline:  # save now and then; the file on disk tells how far the run got
        time.sleep(5)
        save.click()
        time.sleep(1)
        nb = nbformat.read(notebook, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        errors = [f"{o.ename}: {o.evalue}" for c in code for o in c.outputs if o.output_type == "error"]
        state = (sum(c.execution_count is not None for c in code), len(code), errors)
        if state[0] == state[1] or errors:
            break
    assert state and not state[2], state[2]
    assert state[0] == state[1], f"Run All executed {state[0]} of {state[1]} code cells in 600 s"
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "tests passed" in printed

    validate = [b for b in browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel-toolbar jp-button, "
                                                                  ".jp-NotebookPanel-toolbar button")
                if b.text.strip() == "Validate"]
    assert validate, "no Validate button in the notebook toolbar"
    validate[0].click()
    verdict = _wait(browser, lambda d: [t for t in (e.text for e in d.find_elements(By.CSS_SELECTOR, ".jp-Dialog"))
                                        if "passes all the tests" in t or "fail" in t.lower() or "rror" in t],
                    timeout=600, what="Validate's verdict")
    assert "Success! Your notebook passes all the tests." in verdict[0], verdict[0]
