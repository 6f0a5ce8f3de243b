"""The service's web pages in a real browser (headless Chromium through selenium) against a
real `course serve` grading through the real chain: a student logs in with their course
token, uploads a notebook from the page, watches it wait and reads the verdict; the
instructor, logged in with theirs, finds the attempt on the instructor's page (queue,
attempts per student, the plot) and opens it.

Slow (a real grading). Needs Debian's chromium and chromium-driver (see
tests/test_browser.py); skipped without them, except under CI=true.
"""
from __future__ import annotations

import pytest

from fixtures.grading import tiny
from service.serving import Server, make_tokens
from test_browser import _wait, chromium, start_driver  # noqa: F401  (chromium: the fixture)

pytestmark = pytest.mark.slow

A = tiny.ASSIGNMENT


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    course = tiny.make_course(tmp_path_factory.mktemp("pages-browser"))
    tokens = make_tokens(course, ["alice", "bob"])
    server = Server(course, "--workers", "1").start()
    try:
        yield server, tokens
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):  # noqa: F811
    driver = start_driver(chromium, tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def _login(driver, url: str, token: str):
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/")
    _wait(driver, lambda d: d.find_elements(By.ID, "token"), what="the login form")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "login").click()
    return _wait(driver, lambda d: d.find_elements(By.ID, "who"), what="the signed-in page")[0].text


def test_student_uploads_and_reads_the_verdict_then_the_instructor_sees_it(browser, served, tmp_path):
    from selenium.webdriver.common.by import By

    server, tokens = served
    assert _login(browser, server.url, tokens["alice"]) == "alice"
    notebook = tmp_path / "tiny.ipynb"
    notebook.write_bytes(tiny.notebook_bytes(tiny.wrong_answer()))
    section = browser.find_element(By.ID, f"assignment-{A}")
    section.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(notebook))
    section.find_element(By.CSS_SELECTOR, "form.upload button").click()

    # the attempt's page: waiting (it reloads itself), then the verdict
    _wait(browser, lambda d: "/attempts/" in d.current_url, what="the attempt's page")
    attempt = browser.current_url.rsplit("/", 1)[1]
    _wait(browser, lambda d: d.find_element(By.ID, "status").text == "graded", timeout=240,
          what="the verdict")
    assert browser.find_element(By.ID, "score").text == "Score: 2 / 7"
    assert "0 / 3 points" in browser.find_element(By.ID, "unit-test_cube").text
    assert "2 / 2 points" in browser.find_element(By.ID, "unit-test_square").text
    page = browser.page_source
    for marker in tiny.HIDDEN_MARKERS:
        assert marker not in page

    # the history on the student's page
    browser.get(f"{server.url}/")
    history = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.history"), what="history")[0]
    assert f"#{attempt}" in history.text and "graded" in history.text and "2 / 7" in history.text

    # the instructor
    browser.find_element(By.ID, "logout").click()
    _wait(browser, lambda d: d.find_elements(By.ID, "token"), what="the login form again")
    assert _login(browser, server.url, tokens["instructor"]) == "instructor"
    _wait(browser, lambda d: d.current_url.endswith("/instructor"), what="the instructor's page")
    students = browser.find_element(By.ID, "students").text
    assert "alice" in students and f"#{attempt}" in students
    assert "bob" in browser.find_element(By.ID, "missing").text
    assert browser.find_elements(By.ID, "queue-empty")
    # the plot is an image the page loaded (drawn on the server, allowed by the page's CSP)
    _wait(browser, lambda d: d.execute_script(
        "const i = document.getElementById('plot'); return i.complete && i.naturalWidth > 0;"),
        what="the attempts plot")
    browser.find_element(By.LINK_TEXT, f"#{attempt}").click()
    _wait(browser, lambda d: d.find_element(By.ID, "status").text == "graded", what="alice's verdict")
    assert browser.find_element(By.ID, "score").text == "Score: 2 / 7"
