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

from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter

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


class _CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept in memory for every exporter of this process.

    Each exporter builds a Jinja environment of its own, and each job's grading process
    makes a new exporter: without this, every feedback page compiled nbconvert's and
    nbgrader's templates again (about a quarter of a page's time). The fork server fills it
    while it warms up (worker.warm_up), so grading processes start with it full. An entry is
    used only for the very template source it was compiled from (Jinja checks the source's
    checksum); a template changed on disk is compiled again."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self._code[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = _CompiledTemplates()


class FeedbackExporter(HTMLExporter):
    """HTMLExporter with the MathJax bundle and the highlighted code put in last."""

    mathjax_marker: str | None = None  # read by offline_math.InlineMathJax while rendering
    code_blocks_kept_out = 0  # of the last page: highlighted blocks put in after the pass
    _code_blocks: dict[str, str] | None = None  # while a page is rendered with code markers
    _code_token = ""

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = COMPILED_TEMPLATES
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        kept = copy.deepcopy(resources)
        page, resources, blocks = self._export(nb, resources, kw, code_markers=True)
        if blocks is None:  # a template that cleans or repeats the source: the pass sees all of it
            page, resources, blocks = self._export(nb, kept, kw, code_markers=False)
        self.code_blocks_kept_out = blocks
        return page, resources

    def register_filter(self, name, jinja_filter):
        # HTMLExporter registers the notebook's highlighter here for each page. (Setting
        # ``filters`` instead would rebuild the Jinja environment, templates and all.) A
        # highlighter the configuration names is left alone.
        if name == "highlight_code" and self._code_blocks is not None and name not in self.filters:
            jinja_filter = self._highlighter(jinja_filter, self._code_token, self._code_blocks)
        return super().register_filter(name, jinja_filter)

    def _export(self, nb, resources, kw, *, code_markers: bool):
        """(page, resources, how many code blocks were put in after the pass), or None for
        the last if the page did not hold each of their markers exactly once."""
        token = self._code_token = secrets.token_hex(16)
        marker = self.mathjax_marker = f"<!--course-inline-mathjax-{token}-->"
        blocks: dict[str, str] = {}
        self._code_blocks = blocks if code_markers else None
        try:
            page, resources = super().from_notebook_node(nb, resources, **kw)
        finally:
            self.mathjax_marker = self._code_blocks = None
        found: list[str] = []

        def block(m):
            found.append(m.group(0))
            return blocks.get(m.group(0), m.group(0))
        page = re.sub(f"<!--course-code-{token}-[0-9]+-->", block, page)
        if marker in page:
            page = page.replace(marker, offline_math.inline_bundle(), 1)
        return page, resources, len(found) if sorted(found) == sorted(blocks) else None

    def _highlighter(self, plain, token: str, blocks: dict[str, str]):
        """nbconvert's highlighter for the page (``plain``, its lexer chosen by
        HTMLExporter), whose blocks become markers, their final form kept in ``blocks``."""

        def highlight(source, language=None, metadata=None):
            block = plain(source, language=language, metadata=metadata)
            final = _as_the_pass_writes(block)
            if final is None:
                return block
            key = f"<!--course-code-{token}-{len(blocks)}-->"
            blocks[key], tail = final
            return key + tail
        return highlight
