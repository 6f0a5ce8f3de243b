"""The HTML exporter `course grade` writes feedback pages with: nbconvert's HTMLExporter
(as nbgrader's GenerateFeedback uses it: same template, filters and sanitizing), with two
parts of the page kept out of nbconvert's BeautifulSoup pass over the rendered page and put
in after it, each exactly as that pass would have written it:

* the inline MathJax bundle (offline_math.py, about 1.2 MB of script);
* the syntax-highlighted source of the code cells (pygments' spans: about four tags in five
  of an a1 page, and the pass's time goes by tags).

The template writes an unguessable marker (an HTML comment with a random token, drawn in
the grading process after the kernel is gone) where each part goes, and the marker is then
replaced. The pass only adds alt texts to images and tab stops to two kinds of wrapper
<div>, neither of which occurs inside those parts; a highlighted block is taken out only
when it is nothing but pygments' <span>s and text, whose form after the pass is known
(``_as_the_pass_writes``). So the page is byte for byte the same as nbconvert's
(tests/grading/test_feedback_export.py); the pass no longer parses most of it.
"""
from __future__ import annotations

import copy
import html
import re
import secrets

from nbconvert.exporters import HTMLExporter
from nbconvert.filters.highlight import Highlight2HTML

from .. import offline_math

# pygments' HtmlFormatter block as nbconvert's Highlight2HTML writes it: the wrapper's
# class list, then spans with one class each (or none) and text with no markup in it. The
# text between spans is matched one character at a time: a run matched as a repeated run
# (``[^<>]+`` inside ``*``) makes a block that fails to match cost exponential time.
_BLOCK = re.compile(r'<div class="(?P<cls>[\w -]+)"><pre>(?P<body>(?:<span(?: class="[\w-]+")?>[^<>]*</span>|[^<>])*)'
                    r'</pre></div>(?P<tail>\n?)\Z')


def _as_the_pass_writes(block: str) -> tuple[str, str] | None:
    """``block`` as BeautifulSoup (html.parser, default formatter) writes it back (a class
    list joined by single spaces; text with its character references decoded and then only
    &, < and > escaped), and the whitespace after it, which stays in the page: the pass
    writes whitespace between tags in a form of its own. None if the block is not
    pygments' plain form."""
    m = _BLOCK.match(block)
    if not m:
        return None
    body = re.sub(r"(?<=>)[^<>]+|^[^<>]+", lambda t: html.escape(html.unescape(t.group(0)), quote=False),
                  m.group("body"))
    return f'<div class="{" ".join(m.group("cls").split())}"><pre>{body}</pre></div>', m.group("tail")


class FeedbackExporter(HTMLExporter):
    """HTMLExporter with the MathJax bundle and the highlighted code put in last."""

    mathjax_marker: str | None = None  # read by offline_math.InlineMathJax while rendering
    code_blocks_kept_out = 0  # of the last page: highlighted blocks put in after the pass

    def from_notebook_node(self, nb, resources=None, **kw):
        kept = copy.deepcopy(resources)
        page, resources, blocks = self._export(nb, resources, kw, code_markers=True)
        if blocks is None:  # a template that cleans or repeats the source: the pass sees all of it
            page, resources, blocks = self._export(nb, kept, kw, code_markers=False)
        self.code_blocks_kept_out = blocks
        return page, resources

    def _export(self, nb, resources, kw, *, code_markers: bool):
        """(page, resources, how many code blocks were put in after the pass), or None for
        the last if the page did not hold each of their markers exactly once."""
        token = secrets.token_hex(16)
        marker = self.mathjax_marker = f"<!--course-inline-mathjax-{token}-->"
        blocks: dict[str, str] = {}
        configured = self.filters
        if code_markers and "highlight_code" not in configured:  # a configured highlighter is left alone
            self.filters = {**configured, "highlight_code": self._highlighter(nb, token, blocks)}
        try:
            page, resources = super().from_notebook_node(nb, resources, **kw)
        finally:
            self.mathjax_marker = None
            self.filters = configured
        found: list[str] = []

        def block(m):
            found.append(m.group(0))
            return blocks.get(m.group(0), m.group(0))
        page = re.sub(f"<!--course-code-{token}-[0-9]+-->", block, page)
        if marker in page:
            page = page.replace(marker, offline_math.inline_bundle(), 1)
        return page, resources, len(found) if sorted(found) == sorted(blocks) else None

    def _highlighter(self, nb, token: str, blocks: dict[str, str]):
        """nbconvert's highlighter for ``nb`` (its lexer chosen as HTMLExporter chooses it),
        whose blocks become markers, their final form kept in ``blocks``."""
        info = nb.metadata.get("language_info", {})
        plain = Highlight2HTML(pygments_lexer=info.get("pygments_lexer", info.get("name", None)), parent=self)

        def highlight(source, language=None, metadata=None):
            block = plain(source, language=language, metadata=metadata)
            final = _as_the_pass_writes(block)
            if final is None:
                return block
            key = f"<!--course-code-{token}-{len(blocks)}-->"
            blocks[key], tail = final
            return key + tail
        return highlight
