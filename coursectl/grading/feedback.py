"""The HTML exporter `course grade` writes feedback pages with: nbconvert's HTMLExporter
(as nbgrader's GenerateFeedback uses it: same template, filters and sanitizing), with the
inline MathJax bundle (offline_math.py, about 1.2 MB) put into the page after nbconvert's
BeautifulSoup pass over the rendered page instead of before it. The template writes an
unguessable marker (an HTML comment with a random token, drawn in the grading process
after the kernel is gone) where the bundle goes, and the marker is then replaced by the
very same bundle. That pass only adds alt texts and tab stops, which the bundle's one
<script> element has no place for, so the page is byte for byte the same
(tests/grading/test_feedback_export.py); the pass no longer parses 1.2 MB of script.
"""
from __future__ import annotations

import secrets

from nbconvert.exporters import HTMLExporter

from .. import offline_math


class FeedbackExporter(HTMLExporter):
    """HTMLExporter with the MathJax bundle put in last."""

    mathjax_marker: str | None = None  # read by offline_math.InlineMathJax while rendering

    def from_notebook_node(self, nb, resources=None, **kw):
        marker = self.mathjax_marker = f"<!--course-inline-mathjax-{secrets.token_hex(16)}-->"
        try:
            page, resources = super().from_notebook_node(nb, resources, **kw)
        finally:
            self.mathjax_marker = None
        if marker in page:
            page = page.replace(marker, offline_math.inline_bundle(), 1)
        return page, resources
