"""MathJax inside the feedback page itself, so that LaTeX renders offline.

Students open feedback HTML from disk (file://), after nbgrader's exchange has copied the
page *alone* (`release_feedback` copies the .html file and nothing beside it) or after the
page went through an LMS. A MathJax folder next to the page would not travel with it, and a
CDN is no use offline. So the page carries the MathJax it needs: the JavaScript files of
the copy the jupyter-server-mathjax package ships (MathJax 2.7, TeX input, HTML-CSS output
with STIX-Web font data), about 1.2 MB, as strings in one inline script. MathJax's file
loader is pointed at those strings (``MathJax.Ajax.loader.JS``), so its usual on-demand
loading (TeX extensions, font ranges) works without a network or a server.

The formgrader's pages are served by the Jupyter server, which has the same copy; they
load it from there and do not embed it (see templates/base/mathjax.html.j2).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jinja2 import pass_context
from traitlets.config import LoggingConfigurable

# Files MathJax 2 never loads for TeX in HTML-CSS: other languages (English is built in),
# the accessibility explorer's speech rules, and the SVG output's fonts (no SVG jax here).
_SKIP_PREFIXES = ("localization/", "jax/output/SVG/", "extensions/a11y/")
_KEEP = ("extensions/a11y/accessibility-menu.js",)  # the menu asks for it at start-up
ROOT_NAME = "course-inline-mathjax"  # MathJax's root: a name, not a folder anyone serves


def mathjax_static() -> Path:
    """The MathJax copy of the jupyter-server-mathjax package (a course dependency)."""
    try:
        import jupyter_server_mathjax
    except ImportError as exc:  # pragma: no cover - a dependency of the course package
        raise RuntimeError("jupyter-server-mathjax is not installed: feedback cannot carry MathJax; "
                           "pip install jupyter-server-mathjax") from exc
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise RuntimeError(f"no MathJax.js in {static}: reinstall jupyter-server-mathjax")
    return static


@lru_cache(maxsize=1)
def mathjax_files() -> dict[str, str]:
    """Relative path -> source of every MathJax file a feedback page may load."""
    static = mathjax_static()
    files = {}
    for path in sorted(static.rglob("*.js")):
        rel = path.relative_to(static).as_posix()
        if rel.startswith(_SKIP_PREFIXES) and rel not in _KEEP:
            continue
        files[rel] = path.read_text(encoding="utf-8")
    return files


def _script_literal(value) -> str:
    """JSON that is safe inside an HTML <script> element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


@lru_cache(maxsize=1)
def inline_bundle() -> str:
    """One <script> that defines ``window.courseMathJax`` = {root, files}."""
    data = {"root": ROOT_NAME, "files": mathjax_files()}
    return f"<script>window.courseMathJax = {_script_literal(data)};</script>"


class InlineMathJax(LoggingConfigurable):
    """Jinja filter (registered through ``HTMLExporter.filters`` in nbgrader_config.py):
    ``{{ "" | course_inline_mathjax }}`` gives the bundle for pages read from disk, and
    nothing for the formgrader's pages (template ``formgrade``), which its server serves
    MathJax to. nbconvert builds it with the exporter as parent."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Called with the render context: Jinja then calls it while rendering, instead of
        # folding ``"" | course_inline_mathjax`` into the compiled template once.
        pass_context(self)

    def __call__(self, _context, _value="") -> str:
        template = getattr(self.parent, "template_name", "") or ""
        if template == "formgrade":
            return ""
        # An exporter that puts the bundle in after nbconvert's own pass over the page
        # (coursectl/grading/feedback.py) names a marker; the page still carries it all.
        marker = getattr(self.parent, "mathjax_marker", None)
        return marker if marker else inline_bundle()
