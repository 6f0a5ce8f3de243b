"""The feedback exporter `course grade` uses (coursectl/grading/feedback.py) writes the
same page, byte for byte, as nbconvert's HTMLExporter under the course's config (what
plain `nbgrader generate_feedback` writes), MathJax bundle and highlighted code included,
for hostile notebooks, every assignment's source and code that plays with markup; without
kernels."""
from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_sanitize import RESOURCES, _course_exporter, _hostile_notebook  # noqa: E402

from coursectl import offline_math  # noqa: E402
from coursectl.assignments import ASSIGNMENTS  # noqa: E402
from coursectl.grading import feedback  # noqa: E402
from nbcourse import REPO  # noqa: E402

# Sources whose highlighted form holds what the page pass rewrites: character references,
# quotes, markup in strings, a comment lookalike, non-ASCII, tabs, carriage returns, empty.
MARKUP_SOURCES = [
    'html = "<div class=\'x\'>&amp; &lt;b&gt; &#39; &nbsp; &copy</div>"  # <!-- not a comment -->',
    "s = '\"' + \"'\" + '&' + '<' + '>'\nprint(s)\t# tab\r\nx = 1\r",
    "", "   ", "# \u00e9t\u00e9 \u2192 \u03b8 \U0001F600\n" + "y = [i ** 2 for i in range(10)]\n" * 40,
    "%time f(<b>)\n!ls -la > /dev/null\n??x", "</pre></div><script>alert(1)</script>",
    "<!--course-code-00-0-->", "a = b\\\n" + "    + c",
]


def _markup_notebook():
    cells = [new_code_cell(src, outputs=[new_output("stream", name="stdout", text=src)]) for src in MARKUP_SOURCES]
    nb = new_notebook(cells=cells)
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    return nb


def _notebooks():
    yield "hostile", _hostile_notebook()
    yield "markdown math", new_notebook(cells=[new_markdown_cell(r"$x^2$ and \(h_t\)")])
    yield "markup in code", _markup_notebook()
    for a in ASSIGNMENTS:
        nb = nbformat.read(REPO / "source" / a / f"{a}.ipynb", as_version=4)
        for cell in nb.cells:  # scored, as nbgrader's feedback template expects
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                meta["score"] = meta["points"]
        yield a, nb


def _exporters(template: str):
    plain = _course_exporter(template)
    ours = feedback.FeedbackExporter(config=plain.config)
    return plain, ours


@pytest.mark.parametrize("template", ["feedback", "formgrade"])
def test_same_page_as_the_plain_exporter(template):
    plain, ours = _exporters(template)
    for name, nb in _notebooks():
        want, _ = plain.from_notebook_node(copy.deepcopy(nb), resources=copy.deepcopy(RESOURCES))
        got, _ = ours.from_notebook_node(copy.deepcopy(nb), resources=copy.deepcopy(RESOURCES))
        assert got == want, name
        code = [c for c in nb.cells if c.cell_type == "code"]
        # every code cell's highlighted source was put in after the page pass
        assert ours.code_blocks_kept_out == len(code), (name, ours.code_blocks_kept_out, len(code))
        assert not re.search("<!--course-code-[0-9a-f]{32}-", got), name  # no marker is left
    if template == "feedback":
        assert got.count(offline_math.inline_bundle()) == 1
        assert "course-inline-mathjax-" not in got  # the marker is gone
    assert ours.mathjax_marker is None


def test_a_printed_marker_lookalike_stays_text():
    """A notebook cannot guess the marker: a look-alike in its output is left as text."""
    plain, ours = _exporters("feedback")
    nb = new_notebook(cells=[new_markdown_cell("<!--course-inline-mathjax-00-->")])
    got, _ = ours.from_notebook_node(nb, resources=copy.deepcopy(RESOURCES))
    assert got.count("window.courseMathJax =") == 1


def test_a_template_that_repeats_or_drops_the_code_gets_the_plain_export(monkeypatch):
    """When the rendered page does not hold each code marker exactly once (a template that
    cleans or repeats the source), the page is exported again without markers."""
    plain, ours = _exporters("feedback")
    nb = _markup_notebook()
    want, _ = plain.from_notebook_node(copy.deepcopy(nb), resources=copy.deepcopy(RESOURCES))
    made = feedback.FeedbackExporter._highlighter
    for change in (lambda out: out + out, lambda out: out.replace("<!--course-code-", "<!--dropped-", 1)):
        def twisted(self, plain, token, blocks, change=change):
            inner = made(self, plain, token, blocks)
            return lambda *a, **k: change(inner(*a, **k))
        monkeypatch.setattr(feedback.FeedbackExporter, "_highlighter", twisted)
        got, _ = ours.from_notebook_node(copy.deepcopy(nb), resources=copy.deepcopy(RESOURCES))
        assert got == want and ours.code_blocks_kept_out == 0


def test_a_block_that_is_not_pygments_plain_form_is_refused_at_once():
    """A block that fails the pattern after a long run of text is refused in linear time
    (a pattern with a repeated run inside a repetition took exponential time: 2 s at 24
    characters, never at 300). In a process of its own: the regex engine holds the GIL."""
    import subprocess

    code = ("from coursectl.grading.feedback import _as_the_pass_writes as f; "
            "print(f('<div class=\" highlight hl-ipython3\"><pre><span></span><span class=\"n\">x</span> '"
            " + 'a' * 300 + '<b>bold</b></pre></div>\\n'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.strip() == "None", proc.stderr


def test_templates_are_compiled_once_per_process(monkeypatch, tmp_path):
    """Every exporter of a process (each job's grading process makes its own) reuses the
    templates compiled before it, from the fork server's warm-up on; a template whose source
    changed is compiled again."""
    import warnings

    import jinja2

    from coursectl.grading import worker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader's own, about its throw-away course
        worker.warm_up()  # what the fork server does before any job
    compiled = []
    real = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, *args, **kw):
        compiled.append(name)
        return real(self, source, name, filename, *args, **kw)
    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    nb = _markup_notebook()
    for _ in range(2):  # a new exporter, then a second page from the same one
        _, ours = _exporters("feedback")
        want, _ = ours.from_notebook_node(copy.deepcopy(nb), resources=copy.deepcopy(RESOURCES))
        ours.from_notebook_node(copy.deepcopy(nb), resources=copy.deepcopy(RESOURCES))
    assert compiled == []
    # a course template of its own, changed between two exporters: compiled each time
    (tmp_path / "mine").mkdir()
    for text in ("one {{ nb.cells | length }}", "two {{ nb.cells | length }}"):
        (tmp_path / "mine" / "index.html.j2").write_text(text)
        (tmp_path / "mine" / "conf.json").write_text('{"base_template": "base", "mimetypes": {"text/html": true}}')
        own = feedback.FeedbackExporter(extra_template_basedirs=[str(tmp_path)], template_name="mine")
        page, _ = own.from_notebook_node(copy.deepcopy(nb))
        assert page == f"{text.split()[0]} {len(nb.cells)}"
    assert compiled.count("index.html.j2") == 2
