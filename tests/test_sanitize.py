"""The sanitiser of what people open (coursectl/sanitize.py) and the feedback page's
offline MathJax (coursectl/offline_math.py), without kernels.

Each hostile form a student can produce (an output of their kernel, a markdown answer, an
attachment, metadata) goes through the sanitiser; ``live_places`` then lists whatever in
the result a browser would run or load. It is checked against the raw forms first, so a
sanitiser that passed its input through unchanged fails these tests. The last tests
render whole pages through the course's real nbgrader_config.py (feedback and formgrade
templates) and look for the attacker's marker anywhere live.
"""
from __future__ import annotations

import base64
import copy
import os
from html.parser import HTMLParser

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from coursectl import sanitize
from coursectl.offline_math import inline_bundle, mathjax_files
from nbcourse import REPO

MARK = "__attacker_ran"
RUN = f"window.{MARK} = 1"
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

LIVE_TAGS = {"script", "iframe", "frame", "object", "embed", "applet", "meta", "base", "form", "svg",
             "math", "link", "style", "template", "portal"}
URL_ATTRS = {"href", "src", "action", "formaction", "data", "xlink:href", "srcdoc", "background", "poster"}


class _Live(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag in LIVE_TAGS:
            self.found.append(f"<{tag}>")
        self._in_script = tag == "script"
        for name, value in attrs:
            value = value or ""
            compact = "".join(value.split()).lower()
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            elif name in URL_ATTRS and (compact.startswith(("javascript:", "vbscript:", "data:text", "data:image/svg"))
                                        or name == "srcdoc"):
                self.found.append(f"<{tag} {name}={value[:40]!r}>")
            elif name == "style" and any(k in compact for k in ("url(", "expression(", "@import")):
                self.found.append(f"<{tag} style={value!r}>")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.found.append(f"script text {data[:60]!r}")


def live_places(html: str) -> list[str]:
    """What in ``html`` a browser would run or load (elements, handlers, URLs)."""
    parser = _Live()
    parser.feed(html)
    parser.close()
    return parser.found


HOSTILE_HTML = {
    "script tag": f"<script>{RUN}</script>",
    "script, odd case and spacing": f"<ScRiPt >{RUN}</sCrIpT >",
    "img onerror": f'<img src=x onerror="{RUN}">',
    "on* on an allowed tag": f'<b onmouseover="{RUN}">hover</b>',
    "details ontoggle": f'<details open ontoggle="{RUN}"><summary>s</summary></details>',
    "javascript: link": f'<a href="javascript:{RUN}">click</a>',
    "javascript: link, entity-encoded": '<a href="jav&#x61;script:alert(1)">click</a>',
    "img javascript: src": '<img src="javascript:alert(1)">',
    "data:text/html link": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "iframe srcdoc": f'<iframe srcdoc="<script>parent.{MARK}=1</script>"></iframe>',
    "svg script": f"<svg><script>{RUN}</script></svg>",
    "svg onload": f'<svg onload="{RUN}"></svg>',
    "object": '<object data="javascript:alert(1)"></object>',
    "embed": '<embed src="x.swf">',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "base href": '<base href="https://example.invalid/">',
    "style expression": '<div style="width: expression(alert(1))">x</div>',
    "style url(javascript:)": '<div style="background-image: url(javascript:alert(1))">x</div>',
    "style block": f"<style>@import url(https://example.invalid/x.css);</style>",
    "form": '<form action="https://example.invalid"><input name=p></form>',
    "math with href": '<math><mi href="javascript:alert(1)">x</mi></math>',
    "comment trick": f"<!--<script>{RUN}</script>-->",
}


def test_live_places_sees_every_raw_hostile_form():
    # The detector must flag the raw inputs, or the tests below would prove nothing.
    for name, html in HOSTILE_HTML.items():
        if name == "comment trick":
            continue
        assert live_places(html), name


@pytest.mark.parametrize("name", list(HOSTILE_HTML))
def test_clean_html_leaves_nothing_live(name):
    cleaned = sanitize.clean_html(HOSTILE_HTML[name])
    assert live_places(cleaned) == [], (name, cleaned)


def test_clean_html_escapes_rather_than_hides_a_script():
    # The grader sees the attempt as text.
    cleaned = sanitize.clean_html(f"<script>{RUN}</script>")
    assert "&lt;script&gt;" in cleaned and RUN in cleaned


def test_clean_html_keeps_what_honest_outputs_use():
    table = ('<style scoped>.dataframe tbody tr th {vertical-align: top}</style>'
             '<table border="1" class="dataframe"><thead><tr><th>loss</th></tr></thead>'
             '<tbody><tr><td>0.5</td></tr></tbody></table>')
    cleaned = sanitize.clean_html(table)
    assert "<table" in cleaned and "<th>loss</th>" in cleaned and "<style" not in cleaned
    img = f'<p>figure: <img src="data:image/png;base64,{PNG}" width="40" alt="curve"></p>'
    kept = sanitize.clean_html(img)
    assert f'src="data:image/png;base64,{PNG}"' in kept and 'width="40"' in kept and 'alt="curve"' in kept
    math = r"the update $h_t = o_t \odot \tanh(c_t)$ and $$a < b$$"
    assert sanitize.clean_html(math) == math.replace("<", "&lt;")
    assert '<span style="color: red;">' in sanitize.clean_html('<span style="color: red">r</span>')
    assert '<a href="https://pytorch.org">' in sanitize.clean_html('<a href="https://pytorch.org">torch</a>')


def test_clean_html_drops_remote_images_and_svg_data_images():
    assert "example.invalid" not in sanitize.clean_html('<img src="https://example.invalid/pixel.gif">')
    svg = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>').decode()
    assert "svg" not in sanitize.clean_html(f'<img src="data:image/svg+xml;base64,{svg}">')


# ------------------------------------------------------------------ SVG


def test_clean_svg_keeps_drawing_and_drops_script():
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
           f'onload="{RUN}" width="10" height="10"><script>{RUN}</script>'
           f'<foreignObject><div xmlns="http://www.w3.org/1999/xhtml"><img src="x" onerror="{RUN}"/></div></foreignObject>'
           f'<a href="javascript:{RUN}"><rect width="5" height="5" onclick="{RUN}"/></a>'
           '<use xlink:href="https://example.invalid/x.svg#a"/><path d="M0 0L1 1" style="fill:url(#g)"/>'
           '<style>@import url(https://example.invalid/a.css);</style></svg>')
    cleaned = sanitize.clean_svg(svg)
    assert cleaned is not None
    assert MARK not in cleaned and "javascript" not in cleaned and "example.invalid" not in cleaned
    assert "foreignObject" not in cleaned and "<script" not in cleaned
    assert "<rect" in cleaned and 'd="M0 0L1 1"' in cleaned and "url(#g)" in cleaned


def test_clean_svg_refuses_what_is_not_plain_svg():
    assert sanitize.clean_svg("<svg><g></svg>") is None  # not well-formed
    bomb = '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><svg>&b;</svg>'
    assert sanitize.clean_svg(bomb) is None
    assert sanitize.clean_svg("<html><script>x</script></html>") is None


def test_matplotlib_svg_survives():
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1, 2], [1, 0, 1])
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    cleaned = sanitize.clean_svg(buf.getvalue())
    assert cleaned is not None and cleaned.count("<path") >= 3


# ------------------------------------------------------------------ outputs, attachments, metadata


def _display(data, metadata=None, kind="display_data"):
    if kind == "execute_result":
        return new_output(kind, data=data, metadata=metadata or {}, execution_count=1)
    return new_output(kind, data=data, metadata=metadata or {})


def test_javascript_and_unknown_outputs_are_removed_with_a_note():
    out = _display({"application/javascript": RUN})
    sanitize.clean_output(out)
    assert "application/javascript" not in out.data
    assert "not shown" in out.data["text/plain"]
    out = _display({"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "w",
                    "text/javascript": RUN, "application/x-whatever": RUN})
    sanitize.clean_output(out)
    assert set(out.data) == {"text/plain"} and out.data["text/plain"] == "w"


@pytest.mark.parametrize("kind", ["display_data", "execute_result"])
def test_html_and_markdown_outputs_are_cleaned(kind):
    out = _display({"text/html": f'<b>ok</b><img src=x onerror="{RUN}"><script>{RUN}</script>',
                    "text/markdown": f'# title <img src=x onerror="{RUN}">', "text/plain": "p"}, kind=kind)
    sanitize.clean_output(out)
    for mime in ("text/html", "text/markdown"):
        assert live_places(out.data[mime]) == [], out.data[mime]
    assert "<b>ok</b>" in out.data["text/html"]


def test_svg_output_is_cleaned_or_dropped():
    out = _display({"image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg" onload="{RUN}"><rect width="1" height="1"/></svg>'})
    sanitize.clean_output(out)
    assert MARK not in out.data["image/svg+xml"] and "<rect" in out.data["image/svg+xml"]
    out = _display({"image/svg+xml": f"<svg><script>{RUN}", "image/png": PNG})
    sanitize.clean_output(out)
    assert set(out.data) == {"image/png"}


def test_image_metadata_becomes_plain_numbers():
    out = _display({"image/png": PNG}, {"image/png": {"width": f"1 onerror={RUN}", "height": "30",
                                                       "alt": "a plot", "filenames": {"image/png": "x.png"}},
                                        "isolated": True})
    sanitize.clean_output(out)
    assert out.metadata == {"image/png": {"height": 30, "alt": "a plot"}}
    assert out.data["image/png"] == PNG


def test_broken_raster_data_is_dropped():
    out = _display({"image/png": '" onerror="alert(1)', "text/plain": "fig"})
    sanitize.clean_output(out)
    assert set(out.data) == {"text/plain"}


def test_attachments_keep_only_raster_images():
    svg = base64.b64encode(f'<svg xmlns="http://www.w3.org/2000/svg" onload="{RUN}"/>'.encode()).decode()
    got = sanitize.clean_attachments({"a.svg": {"image/svg+xml": svg}, "p.png": {"image/png": PNG},
                                      "h.html": {"text/html": f"<script>{RUN}</script>"},
                                      "bad.png": {"image/png": "not base64 !"}})
    assert got == {"p.png": {"image/png": PNG}}


def _hostile_notebook() -> nbformat.NotebookNode:
    md = new_markdown_cell(f'My answer: $h_t = o_t \\odot \\tanh(c_t)$ <script>{RUN}</script> '
                           f'<img src=x onerror="{RUN}"> ![a](attachment:a.svg) ![p](attachment:p.png)')
    md.metadata["nbgrader"] = {"grade": True, "solution": True, "points": 2, "locked": False, "schema_version": 3,
                               "grade_id": f'q1"><script>{RUN}</script>', "score": 1.0,
                               "comment": f"<img src=x onerror=\"{RUN}\"> see $x^2$"}
    md.attachments = {"a.svg": {"image/svg+xml": base64.b64encode(
        f'<svg xmlns="http://www.w3.org/2000/svg" onload="{RUN}"/>'.encode()).decode()}, "p.png": {"image/png": PNG}}
    code = new_code_cell("show()", outputs=[
        _display({"text/html": f"<script>{RUN}</script>"}),
        _display({"text/html": f'<iframe srcdoc="<script>parent.{MARK}=1</script>"></iframe>'}),
        _display({"text/markdown": f'<img src=x onerror="{RUN}">'}),
        _display({"image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg" onload="{RUN}"><script>{RUN}</script></svg>'}),
        _display({"application/javascript": RUN}),
        _display({"text/html": f'<svg onload="{RUN}"></svg>', "text/plain": "x"}, kind="execute_result"),
        _display({"image/png": PNG}, {"image/png": {"width": f"1 onerror={RUN}"}}),
    ])
    code.metadata["tags"] = [f'x" onmouseover="{RUN}']
    raw = new_raw_cell(f"<script>{RUN}</script>", metadata={"raw_mimetype": "text/html"})
    nb = new_notebook(cells=[md, code, raw])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": f"</script><script>{RUN}"}}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_stored_outputs_keep_grading_metadata():
    nb = _hostile_notebook()
    grade_id = nb.cells[0].metadata.nbgrader.grade_id
    # called as nbgrader's chain calls it (an nbconvert preprocessor is off unless enabled)
    nb, _ = sanitize.SanitizeStoredOutputs()(nb, {})
    assert nb.cells[0].metadata.nbgrader.grade_id == grade_id  # nbgrader's own records untouched
    assert "widgets" not in nb.metadata
    for out in nb.cells[1].outputs:
        for mime, value in out.get("data", {}).items():
            if mime in ("text/html", "text/markdown"):
                assert live_places(value) == [], value
            assert mime != "application/javascript"


def _course_exporter(template: str):
    import nbgrader
    from nbconvert.exporters import HTMLExporter
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    config.HTMLExporter.template_name = template
    # what nbgrader's GenerateFeedback adds (bootstrap's CSS for the feedback template)
    config.HTMLExporter.extra_template_paths = [os.path.join(
        os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "static", "node_modules",
        "bootstrap", "dist", "css")]
    return HTMLExporter(config=config)


RESOURCES = {"nbgrader": {"notebook": "a1", "score": 1.0, "max_score": 2.0, "late_penalty": 0},
             "base_url": "", "index": 0, "total": 1, "notebook_id": "a1", "assignment_id": "a1",
             "submission_id": "s", "student": f'mallory"><img src=x onerror="{RUN}">',
             "first_name": f"<script>{RUN}</script>", "last_name": f"<svg onload='{RUN}'>",
             "notebook_path": f'course/autograded/m" onmouseover="{RUN}/a1.ipynb'}


@pytest.mark.parametrize("template", ["feedback", "formgrade"])
def test_whole_page_runs_no_attacker_script(template):
    html, _ = _course_exporter(template).from_notebook_node(_hostile_notebook(), resources=copy.deepcopy(RESOURCES))
    live = [p for p in live_places(html) if MARK in p]
    assert live == [], live
    assert "&lt;script&gt;" in html  # the attempt is shown as text
    assert r"h_t = o_t \odot \tanh(c_t)" in html  # math stays for MathJax
    assert f"data:image/png;base64,{PNG}" in html  # images stay
    # without the course's config the same page is live: the test can fail
    from nbconvert.exporters import HTMLExporter

    plain, _ = HTMLExporter(template_name="classic").from_notebook_node(_hostile_notebook())
    assert [p for p in live_places(plain) if MARK in p]


def test_feedback_page_carries_mathjax_and_formgrader_page_does_not():
    nb = new_notebook(cells=[new_markdown_cell("$x^2$")])
    feedback, _ = _course_exporter("feedback").from_notebook_node(nb, resources=copy.deepcopy(RESOURCES))
    formgrade, _ = _course_exporter("formgrade").from_notebook_node(nb, resources=copy.deepcopy(RESOURCES))
    assert "window.courseMathJax" in feedback and "TeX-AMS-MML_HTMLorMML-full.js" in feedback
    assert "window.courseMathJax =" not in formgrade
    assert "/static/jupyter_server_mathjax/MathJax.js" in formgrade


def test_inline_bundle_is_safe_inside_a_script_element():
    files = mathjax_files()
    assert {"MathJax.js", "config/TeX-AMS-MML_HTMLorMML-full.js", "config/Safe.js", "extensions/Safe.js",
            "jax/output/HTML-CSS/fonts/STIX-Web/fontdata.js"} <= set(files)
    body = inline_bundle()[len("<script>"):-len("</script>")]
    assert "</script" not in body.lower() and "<!--" not in body


def test_report_text_shows_control_characters_as_escapes():
    from coursectl.grading.report import SubmissionResult, render_text, summarize

    evil = "mallory\x1b]52;c;ZWNobw==\x07\x1b[2J\u202e"
    results = [SubmissionResult(student=evil, status="failed", problems=["cell 'q1\x1b[31m': crashed\nhonest  graded 27/27"])]
    meta = {"workers": 1, "seconds": 1.0, "network": "off"}
    text = render_text("a1_rnn_cells", summarize(results), results, [("bad\nname\x1b[0m.ipynb", "link")], meta)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b]52" in text  # shown, escaped
    assert not any(line.startswith("honest") or line.startswith("name") for line in text.splitlines())
