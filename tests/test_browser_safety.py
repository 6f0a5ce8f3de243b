"""An attacker's a1 submission, graded once, opened in headless Chromium with no network.

The attacker adds cells to the release notebook whose outputs try every way of running
script in a page (HTML ``<script>``, ``<img onerror>``, an ``<iframe srcdoc>``, markdown
with raw HTML, SVG with ``onload`` and ``<script>``, a JavaScript output, a rich
``_repr_html_`` result, image metadata that breaks out of its attribute), writes a markdown
answer with ``<script>`` next to LaTeX, and hides an SVG in a cell attachment. Each sets
the marker ``window.__attacker_ran``.

The submission is graded with `course grade` (sandboxed), then feedback is written again
with `course feedback` and with plain `nbgrader generate_feedback`. Every feedback page,
opened from disk (file://), and the formgrader's page of the submission, served by a real
JupyterLab, must leave the marker undefined while still showing the student's figure (an
<img> that decoded) and rendered math (MathJax's output elements). Chromium resolves no
host but 127.0.0.1, so nothing comes from a CDN.

Needs Debian's chromium and chromium-driver (tests/install_chromium.sh); skipped without
them, except under CI=true, where their absence fails.
"""
from __future__ import annotations

import base64
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from nbcourse import BIN, REPO, cell_by_id, make_course, nbgrader, submit
from test_browser import TOKEN, _api, _clean_env, _wait, chromium, jupyter_lab, start_driver  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

A = "a1_rnn_cells"
NAME = f"{A}.ipynb"
STUDENT = "mallory"
MARK = "__attacker_ran"


def _red_png(width: int, height: int) -> str:
    """A small solid red PNG (base64), for an <img src="data:..."> in an HTML output."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


_TINY_PNG = _red_png(24, 16)  # allowed in an HTML output: it must load

HOSTILE_CODE = f'''
import base64, io
import matplotlib.pyplot as plt
from IPython.display import HTML, SVG, Javascript, Markdown, display

fig, ax = plt.subplots(figsize=(4, 3))
ax.plot([0, 1, 2, 3], [0.2, 0.6, 0.4, 0.9])
ax.set_title("validation accuracy")
plt.show()
buf = io.BytesIO()
fig.savefig(buf, format="png")
png = base64.b64encode(buf.getvalue()).decode()

display(HTML("<script>window.{MARK} = 'html script'</script><b>bold is fine</b>"))
display(HTML('<img src="nowhere.png" onerror="window.{MARK} = \\'img onerror\\'">'))
display(HTML('<iframe srcdoc="<script>parent.{MARK} = \\'iframe srcdoc\\'</script>"></iframe>'))
display(HTML('<details open ontoggle="window.{MARK} = \\'ontoggle\\'"><summary>s</summary></details>'))
display(HTML('<a href="javascript:window.{MARK} = 1" id="MathJax">link</a>'))
display(HTML('<img alt="inline png" src="data:image/png;base64,{_TINY_PNG}">'))
display(Markdown('## markdown output <img src="nowhere.png" onerror="window.{MARK} = \\'markdown\\'">'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" onload="window.{MARK} = \\'svg\\'">'
            '<script>window.{MARK} = \\'svg script\\'</script><rect width="10" height="10"/></svg>'))
display(Javascript("window.{MARK} = 'javascript output'"))
display({{"text/html": '<svg onload="window.{MARK} = \\'raw html svg\\'"></svg>', "text/plain": "raw"}}, raw=True)
display({{"image/png": png}}, raw=True,
        metadata={{"image/png": {{"width": "300 onerror=window.{MARK}='width'"}}}})

class Evil:
    def _repr_html_(self):
        return '<img src="nowhere.png" onerror="window.{MARK} = \\'execute_result\\'">'

Evil()
'''

ANSWER = (f"Gates keep the gradient alive: $c_t = f_t \\odot c_{{t-1}} + i_t \\odot \\tilde c_t$, so "
          f"$$\\frac{{\\partial c_t}}{{\\partial c_{{t-1}}}} = f_t.$$\n\n"
          f"<script>window.{MARK} = 'markdown answer'</script>\n"
          f"<img src=\"nowhere.png\" onerror=\"window.{MARK} = 'answer img'\">\n"
          f"![attached](attachment:plot.svg)")


def _attacker_notebook() -> nbformat.NotebookNode:
    nb = nbformat.read(REPO / "release" / A / NAME, as_version=4)
    answer = cell_by_id(nb, "q_lstm_vs_rnn")
    answer.source = ANSWER
    answer["attachments"] = {"plot.svg": {"image/svg+xml": base64.b64encode(
        f'<svg xmlns="http://www.w3.org/2000/svg" onload="window.{MARK} = \'attachment\'"/>'.encode()).decode()}}
    nb.cells.append(new_markdown_cell(f"My notes <img src=x onerror=\"window.{MARK} = 'notes'\"> "
                                      f"and $\\sigma(x) = 1/(1+e^{{-x}})$"))
    nb.cells.append(new_code_cell(HOSTILE_CODE))
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {}, "note": f"</script><script>window.{MARK} = 'widgets'</script>"}}
    return nb


@pytest.fixture(scope="module")
def offline_browser(chromium, tmp_path_factory):
    """Headless Chromium that resolves no host name but 127.0.0.1 (no CDN, no network)."""
    driver = start_driver(chromium, tmp_path_factory.mktemp("chromium-safety"),
                          ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=127.0.0.1:9",
                           "--proxy-bypass-list=127.0.0.1"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def graded(chromium, tmp_path_factory):
    """One real grading run of the attacker's submission; the feedback page of each of the
    three ways to write it, kept side by side."""
    course = make_course(tmp_path_factory.mktemp("safety"), A)
    nbgrader(course, "generate_assignment", A, "--force")
    submit(course, STUDENT, A, _attacker_notebook(), name=NAME)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(BIN / "course"), "grade", A, "--workers", "1", "--cell-timeout", "60"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = course / "feedback" / STUDENT / A / f"{A}.html"
    pages = tmp_path_factory.mktemp("pages")
    assert page.is_file(), proc.stdout[-3000:]
    shutil.copy(page, pages / "course-grade.html")
    proc = subprocess.run([str(BIN / "course"), "feedback", A], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    shutil.copy(page, pages / "course-feedback.html")
    nbgrader(course, "generate_feedback", A, "--force")
    shutil.copy(page, pages / "nbgrader-generate-feedback.html")
    return course, pages


def _page_state(driver) -> dict:
    return driver.execute_script(f"""
        var imgs = Array.from(document.images);
        return {{
            marker: typeof window.{MARK} === "undefined" ? null : String(window.{MARK}),
            mathjax: window.MathJax !== undefined && MathJax.isReady === true,
            rendered: document.querySelectorAll(".MathJax, .MathJax_Display").length,
            figures: imgs.filter(i => i.complete && i.naturalWidth > 0 && /^data:image\\/png/.test(i.src)).length,
            inline_png: imgs.filter(i => i.alt === "inline png" && i.naturalWidth === 24).length,
            remote: Array.from(document.querySelectorAll("script[src]")).map(s => s.src)
                .filter(s => !s.startsWith(location.origin) || location.protocol === "file:"),
            text: document.body.innerText
        }};""")


def _check(driver, what: str) -> dict:
    # (offline, MathJax typesets at once and then waits a few seconds for web fonts it cannot
    # fetch from file://; the formulas are on the page meanwhile)
    _wait(driver, lambda d: (lambda s: s["mathjax"] and s["rendered"] >= 3)(_page_state(d)), timeout=120,
          what=f"MathJax to typeset {what}")
    state = _page_state(driver)
    assert state["marker"] is None, f"{what}: the attacker's script ran ({state['marker']})"
    assert state["figures"] >= 1, f"{what}: the student's figure did not show"
    assert state["inline_png"] == 1, f"{what}: the data: image in an HTML output did not show"
    assert state["rendered"] >= 3, state["rendered"]  # the answer's two formulas and the notes'
    assert state["remote"] == [], state["remote"]
    assert "Math Processing Error" not in state["text"]
    assert "\\odot" not in state["text"] and "\\frac" not in state["text"]  # no raw TeX left
    assert "<script>" in state["text"]  # the attempt is visible to the grader, as text
    return state


@pytest.mark.parametrize("way", ["course-grade", "course-feedback", "nbgrader-generate-feedback"])
def test_feedback_page_runs_no_student_script_offline(graded, offline_browser, way):
    _, pages = graded
    page = pages / f"{way}.html"
    html = page.read_text(encoding="utf-8")
    assert "cdnjs" not in html.split("window.courseMathJax", 1)[0]  # no CDN before the inline copy
    offline_browser.get(page.as_uri())
    _check(offline_browser, f"the feedback page ({way})")


def test_stored_autograded_notebook_is_clean(graded):
    course, _ = graded
    nb = nbformat.read(course / "autograded" / STUDENT / A / NAME, as_version=4)
    mimes = {m for c in nb.cells if c.cell_type == "code" for o in c.outputs for m in o.get("data", {})}
    assert "application/javascript" not in mimes
    assert "image/png" in mimes  # the figure is kept
    html = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "text/html" in o.get("data", {})]
    assert html and not any("<script" in h or "onerror=" in h or "<iframe" in h for h in html), html


@pytest.fixture(scope="module")
def formgrader(graded, tmp_path_factory):
    course, _ = graded
    log = tmp_path_factory.mktemp("logs") / "safety-lab.log"
    env = _clean_env(JUPYTER_CONFIG_DIR=str(tmp_path_factory.mktemp("jupyter-config")))
    with jupyter_lab(course, Path(sys.executable), env, log) as base:
        yield base


def test_formgrader_page_runs_no_student_script(graded, offline_browser, formgrader):
    subs = _api(formgrader, f"/formgrader/api/submitted_notebooks/{A}/{A}")
    mine = next(s for s in subs if s["student"] == STUDENT)
    offline_browser.get(f"{formgrader}/formgrader/submissions/{mine['id']}/?token={TOKEN}")
    state = _check(offline_browser, "the formgrader's page")
    assert "Gates keep the gradient alive" in state["text"]
    # the formgrader's own scripts still work: its grading widgets are on the page
    assert offline_browser.find_elements("css selector", "input.score, textarea.comment")
