"""Student-made HTML, markdown, SVG and JavaScript, made safe to show to a person.

A submission's outputs and written answers end up in pages an instructor or a student
opens: the feedback HTML (nbgrader's `feedback` template), the formgrader's view of the
autograded notebook (template `formgrade`), and the autograded notebook itself. Whatever
the student's kernel displayed (``display(HTML(...))``, ``Javascript``, SVG, markdown) or
typed into a markdown answer must not run script there. Three layers:

- ``SanitizeNotebook`` (an nbconvert preprocessor) cleans the notebook before a template
  sees it: HTML and markdown outputs through the allow-list below, SVG through an
  element/attribute allow-list, JavaScript, widget and any other unknown output types
  removed (a note says so), output metadata reduced to what images need (numbers), cell
  attachments to raster images, metadata the templates print (grade ids, tags) to safe
  characters. It runs in the autograde chain too (last, after the scores are saved), so
  the stored autograded notebook is clean for any later viewer.
- The Jinja filters ``markdown2html`` and ``clean_html`` are replaced (nbgrader_config.py,
  ``HTMLExporter.filters``) by sanitising ones, and ``HTMLExporter.sanitize_html`` is on:
  every markdown cell and comment nbgrader's templates render, and every HTML output,
  goes through the allow-list at render time, whatever the notebook holds.
- Images keep working: png/jpeg/gif outputs, ``<img src="data:image/png;base64,...">``,
  SVG shown through ``<img>`` (where browsers never run script), and LaTeX stays text for
  MathJax.

The allow-list is bleach's (a maintained html5lib-based sanitiser that nbconvert itself
uses): tags not allowed are escaped, so an attack shows up as visible text for the grader.
"""
from __future__ import annotations

import base64
import binascii
import html
import re
import xml.etree.ElementTree as ET

import bleach
from bleach.css_sanitizer import CSSSanitizer
from jinja2 import pass_context
from nbconvert.filters.markdown_mistune import IPythonRenderer
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

# ------------------------------------------------------------------ HTML allow-list

TAGS = frozenset({
    "a", "abbr", "acronym", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
    "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s",
    "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul", "var",
})
# No id/name: page elements named by the student could shadow globals (DOM clobbering of
# `MathJax`, say) and stop the page's own scripts.
COMMON_ATTRS = ("class", "title", "align", "lang", "dir", "style")
ATTRS = {
    "table": ["border", "cellpadding", "cellspacing"],
    "td": ["colspan", "rowspan", "valign"],
    "th": ["colspan", "rowspan", "valign", "scope"],
    "col": ["span"], "colgroup": ["span"], "ol": ["start", "type"], "details": ["open"],
    "img": ["src", "alt", "width", "height"],
    "a": ["href"],
    "abbr": [], "acronym": [],
}
CSS_PROPERTIES = frozenset({
    "background-color", "border", "border-bottom", "border-collapse", "border-color", "border-left",
    "border-right", "border-spacing", "border-style", "border-top", "border-width", "color", "display",
    "font-family", "font-size", "font-style", "font-weight", "height", "line-height", "margin",
    "margin-bottom", "margin-left", "margin-right", "margin-top", "max-height", "max-width", "min-width",
    "padding", "padding-bottom", "padding-left", "padding-right", "padding-top", "text-align",
    "text-decoration", "vertical-align", "white-space", "width",
})
RASTER_DATA_URL = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$", re.IGNORECASE)
SAFE_LINK = re.compile(r"^(https?:|mailto:|#)", re.IGNORECASE)
_SCHEME = re.compile(r"^\s*[a-zA-Z][a-zA-Z0-9+.-]*:")
# CSS that fetches (url() other than #fragment, @import) or runs (expression()): never needed
_CSS_FETCH = re.compile(r"@import|url\s*\(\s*['\"]?\s*(?!#)|expression\s*\(|javascript:", re.IGNORECASE)
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.IGNORECASE | re.DOTALL)


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name == "style":
        return not _CSS_FETCH.search(value)
    if name in COMMON_ATTRS:
        return True
    if name not in ATTRS.get(tag, ()):
        return False
    if tag == "img" and name == "src":
        # an embedded raster image, or a relative file of the assignment; no remote fetches
        return bool(RASTER_DATA_URL.match(value)) or not (_SCHEME.match(value) or value.strip().startswith("//"))
    if tag == "a" and name == "href":
        return bool(SAFE_LINK.match(value.strip())) or not (_SCHEME.match(value) or value.strip().startswith("//"))
    if name in ("width", "height", "colspan", "rowspan", "span", "start", "border", "cellpadding",
                "cellspacing"):
        return bool(re.fullmatch(r"\s*\d{1,5}(\.\d+)?(%|px)?\s*", value))
    return True


_CLEANER = bleach.Cleaner(
    tags=TAGS,
    attributes=_allowed_attribute,
    protocols={"http", "https", "mailto", "data"},  # then narrowed per tag above
    strip=False,            # escape what is not allowed: the grader sees the attempt as text
    strip_comments=True,
    css_sanitizer=CSSSanitizer(allowed_css_properties=CSS_PROPERTIES),
)


def clean_html(markup) -> str:
    """``markup`` with only allow-listed tags, attributes, URLs and CSS left live (also the
    Jinja filter ``clean_html`` of the course's HTML pages)."""
    if isinstance(markup, bytes):
        markup = markup.decode("utf-8", "replace")
    text = _STYLE_BLOCK.sub("", str(markup))  # pandas' <style scoped> tables: drop, not show
    return _CLEANER.clean(text)


# ------------------------------------------------------------------ markdown


class _Renderer(IPythonRenderer):
    """nbconvert's renderer; an attachment that was dropped (or never there) shows as a
    missing image instead of failing the whole page."""

    def _embed_image_or_attachment(self, src: str) -> str:
        if src.startswith("attachment:") and src[len("attachment:"):] not in self.attachments:
            return ""
        return super()._embed_image_or_attachment(src)


@pass_context
def markdown2html(context, source) -> str:
    """Jinja filter: nbconvert's markdown rendering (math kept for MathJax, the cell's
    image attachments inlined), then the HTML allow-list."""
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    cell = context.get("cell", {}) or {}
    path = (context.get("resources", {}) or {}).get("metadata", {}).get("path", "")
    renderer = _Renderer(escape=False, attachments=clean_attachments(cell.get("attachments", {}) or {}),
                               embed_images=False, path=path, anchor_link_text="¶")
    return clean_html(MarkdownWithMath(renderer=renderer).render(str(source or "")))


# ------------------------------------------------------------------ SVG

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)
SVG_TAGS = frozenset({
    "svg", "g", "defs", "title", "desc", "metadata", "path", "rect", "circle", "ellipse", "line",
    "polyline", "polygon", "text", "tspan", "textPath", "clipPath", "mask", "pattern", "marker",
    "linearGradient", "radialGradient", "stop", "symbol", "use", "image", "style", "a",
})
# RDF metadata matplotlib writes: kept as it is inert
_INERT_NS = ("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "http://purl.org/dc/elements/1.1/",
             "http://creativecommons.org/ns#")


def _local(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return "", name


def _clean_svg_element(el: ET.Element) -> None:
    for child in list(el):
        ns, local = _local(child.tag) if isinstance(child.tag, str) else ("", "")
        keep = (ns in (SVG_NS, "") and local in SVG_TAGS) or ns in _INERT_NS
        if not keep:
            el.remove(child)
            continue
        if local == "style" and child.text and _CSS_FETCH.search(child.text):
            el.remove(child)
            continue
        _clean_svg_element(child)
    for name, value in list(el.attrib.items()):
        ns, local = _local(name)
        lowered = local.lower()
        if lowered.startswith("on") or ns not in ("", XLINK_NS, "http://www.w3.org/XML/1998/namespace"):
            del el.attrib[name]
        elif lowered == "href":
            v = value.strip()
            if not (v.startswith("#") or RASTER_DATA_URL.match(v)):
                del el.attrib[name]
        elif _CSS_FETCH.search(value) or "javascript:" in value.lower().replace(" ", ""):
            del el.attrib[name]


def clean_svg(svg) -> str | None:
    """The SVG with only drawing elements and attributes left (no script, foreignObject,
    event handlers, outside links or fetching CSS); None when it is not well-formed XML."""
    text = svg if isinstance(svg, str) else "".join(svg) if isinstance(svg, list) else str(svg)
    if "<!ENTITY" in text or "<!DOCTYPE" in text.upper():
        text = re.sub(r"<!DOCTYPE[^[>]*(\[.*?\])?\s*>", "", text, flags=re.DOTALL | re.IGNORECASE)
        if "<!ENTITY" in text:
            return None  # entities can only be an expansion trick in an output
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError:
        return None
    ns, local = _local(root.tag)
    if local != "svg" or ns not in (SVG_NS, ""):
        return None
    _clean_svg_element(root)
    return ET.tostring(root, encoding="unicode")


# ------------------------------------------------------------------ outputs, attachments, metadata

RASTER_TYPES = ("image/png", "image/jpeg", "image/gif")
PLAIN_TYPES = frozenset({"text/plain", "text/latex", "application/json", *RASTER_TYPES})
_B64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
REMOVED_NOTE = "[grader: output of type {} not shown (it could run code in the viewer)]"


def _valid_base64(data) -> bool:
    if isinstance(data, list):
        data = "".join(data)
    if not isinstance(data, str) or not _B64.match(data):
        return False
    try:
        base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def clean_attachments(attachments: dict) -> dict:
    """Only raster images with valid base64 data (an SVG or HTML attachment is dropped)."""
    out = {}
    for name, bundle in (attachments or {}).items():
        if not isinstance(bundle, dict):
            continue
        kept = {mime: data for mime, data in bundle.items() if mime in RASTER_TYPES and _valid_base64(data)}
        if kept:
            out[str(name)] = kept
    return out


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,5}(\.\d+)?\s*", value):
        return float(value) if "." in value else int(value)
    return None


def clean_output_metadata(metadata: dict, kept_types) -> dict:
    """What image rendering needs, as plain values: width/height numbers, alt text and
    the unconfined flag (the templates print these, some unquoted)."""
    out = {}
    for mime in kept_types:
        entry = (metadata or {}).get(mime)
        if mime not in RASTER_TYPES or not isinstance(entry, dict):
            continue
        clean = {}
        for key in ("width", "height"):
            number = _number(entry.get(key))
            if number is not None:
                clean[key] = number
        if isinstance(entry.get("alt"), str):
            clean["alt"] = entry["alt"][:500]
        if entry.get("unconfined") is True:
            clean["unconfined"] = True
        if clean:
            out[mime] = clean
    return out


def clean_output(output) -> None:
    """Clean one output in place (display_data / execute_result; streams and errors are
    printed escaped by the templates and left alone)."""
    if output.get("output_type") not in ("display_data", "execute_result", "update_display_data"):
        return
    data = output.get("data", {}) or {}
    removed = []
    for mime in list(data):
        value = data[mime]
        if mime in RASTER_TYPES:
            if not _valid_base64(value):
                removed.append(mime)
                del data[mime]
        elif mime in PLAIN_TYPES:
            continue
        elif mime == "text/html":
            data[mime] = clean_html("".join(value) if isinstance(value, list) else value)
        elif mime == "text/markdown":  # as nbconvert's SanitizeHTML does; rendering cleans again
            data[mime] = clean_html("".join(value) if isinstance(value, list) else value)
        elif mime == "image/svg+xml":
            svg = clean_svg(value)
            if svg is None:
                removed.append(mime)
                del data[mime]
            else:
                data[mime] = svg
        else:  # application/javascript, widgets, anything a renderer might execute
            removed.append(mime)
            del data[mime]
    if removed and not any(m in data for m in ("text/plain", "text/html", *RASTER_TYPES)):
        data["text/plain"] = REMOVED_NOTE.format(", ".join(removed))
    output["data"] = data
    output["metadata"] = clean_output_metadata(output.get("metadata", {}) or {}, list(data))


PRINTED_RESOURCES = ("student", "first_name", "last_name", "notebook_path")
SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def safe_identifier(value) -> str:
    """A grade id or tag the templates may print into attributes and markup as it is."""
    text = str(value)
    return text if SAFE_ID.match(text) else (_SAFE_NAME.sub("_", text)[:200] or "_")


class SanitizeNotebook(Preprocessor):
    """Cleans a notebook for display: outputs, attachments and, with ``for_display``, the
    metadata the HTML templates print (grade ids, tags) and raw cells. Scores are never
    touched: in the autograde chain it runs after they are saved."""

    # nbconvert's preprocessors are off unless enabled; nbgrader's chains register them as they are
    enabled = Bool(True).tag(config=True)
    for_display = Bool(True, help="also clean metadata that only the HTML templates print").tag(config=True)

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)  # widget state is rendered into <script> tags
        if self.for_display and isinstance(resources, dict):
            # the formgrader's page prints these into markup and attributes as they are;
            # names come from an LMS roster, ids from folder and file names
            for key in PRINTED_RESOURCES:
                if isinstance(resources.get(key), str):
                    resources[key] = html.escape(resources[key], quote=True)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []) or []:
            clean_output(output)
        if "attachments" in cell:
            cell["attachments"] = clean_attachments(cell.get("attachments") or {})
        if self.for_display:
            meta = cell.get("metadata", {})
            nbg = meta.get("nbgrader")
            if isinstance(nbg, dict) and "grade_id" in nbg:
                nbg["grade_id"] = safe_identifier(nbg["grade_id"])
            if isinstance(meta.get("tags"), list):
                meta["tags"] = [safe_identifier(t) for t in meta["tags"]]
            elif "tags" in meta:
                meta["tags"] = []
            if cell.cell_type == "raw":
                cell.source = clean_html(cell.source)
        return cell, resources


class SanitizeStoredOutputs(SanitizeNotebook):
    """The autograde chain's last step: the autograded notebook's outputs and attachments
    are stored clean (its metadata stays as nbgrader wrote it)."""

    for_display = Bool(False).tag(config=True)
