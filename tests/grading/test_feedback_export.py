"""The feedback exporter `course grade` uses (coursectl/grading/feedback.py) writes the
same page, byte for byte, as nbconvert's HTMLExporter under the course's config (what
plain `nbgrader generate_feedback` writes), MathJax bundle included; without kernels."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_sanitize import RESOURCES, _course_exporter, _hostile_notebook  # noqa: E402

from coursectl import offline_math  # noqa: E402
from coursectl.grading import feedback  # noqa: E402


def _exporters(template: str):
    plain = _course_exporter(template)
    ours = feedback.FeedbackExporter(config=plain.config)
    return plain, ours


@pytest.mark.parametrize("template", ["feedback", "formgrade"])
def test_same_page_as_the_plain_exporter(template):
    plain, ours = _exporters(template)
    for nb in (_hostile_notebook(), new_notebook(cells=[new_markdown_cell(r"$x^2$ and \(h_t\)")])):
        want, _ = plain.from_notebook_node(copy.deepcopy(nb), resources=copy.deepcopy(RESOURCES))
        got, _ = ours.from_notebook_node(copy.deepcopy(nb), resources=copy.deepcopy(RESOURCES))
        assert got == want
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
