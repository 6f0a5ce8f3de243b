"""Numbers the a3/a4 notebooks quote agree with a recorded run of the solution notebook.

``benchmarks/record_runs.py`` executes a solution notebook and writes what it printed to
``benchmarks/results/<a>.json`` (``quotable``: key -> number). The markdown, model answers
included, marks each quoted result or time with ``<!-- recorded: KEY ±SPREAD -->`` right
after it (invisible when rendered); SPREAD is absolute, or relative with ``%``, and without
it the quoted number's last digit sets it (``1.655`` must be within 0.0005). A range
``1.9–2.3x`` must contain the recorded value (give or take the spread); ``11%`` is compared
with 0.11. A recording made before the notebook's code last changed fails too (re-record),
and so does a number with a unit of time or a percentage that carries no marker, unless its
sentence says it is the coursework's.
"""
from __future__ import annotations

import importlib.util
import json
import math
import re
from dataclasses import dataclass

import nbformat
import pytest

from nbcourse import REPO

ASSIGNMENTS = ("a3_char_lm", "a4_visualizing")
NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
MARKER = re.compile(r"<!--\s*recorded:\s*(?P<key>[^±>]+?)\s*(?:±\s*(?P<spread>[\d.]+)\s*(?P<rel>%)?)?\s*-->")
QUOTED = re.compile(rf"(?P<lo>(?<![\d.])[-−]?{NUM})(?:\s*(?:–|-|to)\s*(?P<hi>{NUM}))?\s*(?P<unit>%|x|×|s|min|minutes|seconds)?"
                    r"[\s*)`]*$")
# A number with a unit of time or a percentage: a result or a cost, which needs a marker. (A share
# of something, "the first 80% of the text", "10% for validation", is a setting, not a result.)
UNMARKED = re.compile(rf"(?<![\w.])(?:{NUM}\s*(?:–|-|to)\s*)?{NUM}\s*(?:%(?!\s+(?:of|for|is)\b)|s\b|min\b|minutes?\b"
                      r"|seconds?\b)")
# Every one of these must be quoted somewhere (the figures issue 17 found wrong).
REQUIRED = {
    "a3_char_lm": {"cpu.runs1", "cpu.runs2", "part2.cpu_minutes_20_epochs.min", "part2.cpu_minutes_20_epochs.max",
                   "part1.window30_over_10.min", "part1.train_loss.lstm.T10", "part1.train_loss.rnn.T10",
                   "notebook_cpu_seconds"},
    "a4_visualizing": {"opt.sgd lr=0.001", "notebook_cpu_seconds", "filters.structure.longer"},
}


def _recorder():
    spec = importlib.util.spec_from_file_location("record_runs", REPO / "benchmarks" / "record_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Quote:
    cell: str
    key: str
    lo: float
    hi: float
    spread: float
    text: str

    def agrees(self, recorded: float) -> bool:
        return self.lo - self.spread - 1e-12 <= recorded <= self.hi + self.spread + 1e-12


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


def _last_digit(text: str) -> float:
    """Half a unit of the last digit shown: what rounding to it allows."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10 ** -decimals


def quotes(markdown: str, cell: str = "") -> list[Quote]:
    """Every marked quote of a markdown text; a marker without a number before it raises."""
    out = []
    for m in MARKER.finditer(markdown):
        before = re.sub(r"(?:<!--[^>]*-->\s*)+$", "", markdown[:m.start()])   # two markers may share a range
        q = QUOTED.search(before)
        assert q, f"{cell}: no number right before {m.group(0)!r}: ...{before[-60:]!r}"
        scale = 0.01 if q.group("unit") == "%" else 1.0
        lo = _number(q.group("lo")) * scale
        hi = _number(q.group("hi")) * scale if q.group("hi") else lo
        if m.group("spread") is None:
            spread = _last_digit(q.group("hi") or q.group("lo")) * scale
        elif m.group("rel"):
            spread = float(m.group("spread")) / 100 * max(abs(lo), abs(hi))
        else:
            spread = float(m.group("spread")) * scale
        out.append(Quote(cell, m.group("key").strip(), lo, hi, spread, before[q.start():] + m.group(0)))
    return out


def _markdown(assignment):
    nb = nbformat.read(REPO / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    return nb, [(c.get("id", ""), c.source) for c in nb.cells if c.cell_type == "markdown"]


def _recording(assignment):
    path = REPO / "benchmarks" / "results" / f"{assignment}.json"
    assert path.exists(), f"no recording: run python benchmarks/record_runs.py {assignment}"
    return json.loads(path.read_text())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_recording_is_of_the_current_code(assignment):
    nb, _ = _markdown(assignment)
    rec = _recording(assignment)
    assert rec["code_sha256"] == _recorder().code_fingerprint(nb, assignment), (
        f"{assignment}'s code cells or course modules changed since benchmarks/results/{assignment}.json was "
        "recorded: run "
        f"python benchmarks/record_runs.py {assignment}, then fix the numbers this test reports")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_quoted_numbers_agree_with_the_recorded_run(assignment):
    _, cells = _markdown(assignment)
    recorded = _recording(assignment)["quotable"]
    found = [q for cell, text in cells for q in quotes(text, cell)]
    unknown = sorted({q.key for q in found} - set(recorded))
    assert not unknown, f"markers name keys the recording lacks: {unknown}; known: {sorted(recorded)}"
    wrong = [f"{q.cell}: {q.text!r} but the recorded run gave {recorded[q.key]:.4g}"
             for q in found if not q.agrees(recorded[q.key])]
    assert not wrong, "\n".join(wrong)
    missing = REQUIRED[assignment] - {q.key for q in found}
    assert not missing, f"not quoted anywhere: {sorted(missing)}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_time_or_percentage_is_recorded_or_the_courseworks(assignment):
    _, cells = _markdown(assignment)
    loose = []
    for cell, text in cells:
        plain = MARKER.sub("\0", text)
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z*(])|\n\s*\n|\n[*|] ?", plain):
            if "coursework" in sentence.lower():
                continue
            for m in UNMARKED.finditer(sentence):
                if not sentence[m.end():].lstrip(" *)`").startswith("\0"):
                    loose.append(f"{cell}: {m.group(0)!r} in {sentence.strip()[:120]!r}")
    assert not loose, "numbers with a unit of time or a percentage, neither marked nor the coursework's:\n" + \
        "\n".join(loose)


def test_the_parser_catches_a_wrong_number():
    """The comparison can fail: the same text against a recording that disagrees."""
    (q,) = quotes("Part 1 trains in about 11 s <!-- recorded: t ±30% --> on 2 cores.")
    assert (q.lo, q.hi) == (11.0, 11.0) and math.isclose(q.spread, 3.3)
    assert q.agrees(13.0) and not q.agrees(60.0)
    (r,) = quotes("costs 1.9–2.3x <!-- recorded: r --> as much")
    assert r.agrees(2.0) and r.agrees(2.34) and not r.agrees(3.0)
    (p,) = quotes("reached **11%** <!-- recorded: acc -->")
    assert p.agrees(0.112) and not p.agrees(0.82)
    lo, hi = quotes("about 2–3 min <!-- recorded: a --><!-- recorded: b --> each")
    assert (lo.lo, lo.hi, hi.lo, hi.hi) == (2.0, 3.0, 2.0, 3.0)
    (n,) = quotes("a correlation of\n-0.07 <!-- recorded: c -->")
    assert n.agrees(-0.0692) and not n.agrees(0.07)
    (x,) = quotes("loss 1.655 <!-- recorded: loss -->")
    assert x.agrees(1.6554) and not x.agrees(1.546)
    with pytest.raises(AssertionError, match="no number"):
        quotes("no number here <!-- recorded: k -->")


@pytest.mark.slow  # nbconvert's HTML export: a few seconds each on a busy machine
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_markers_stay_invisible_in_the_rendered_release(assignment):
    """Rendered (nbconvert's HTML, as feedback and the formgrader show markdown), a marker is an
    HTML comment, never text a student reads."""
    from nbconvert import HTMLExporter

    path = REPO / "release" / assignment / f"{assignment}.ipynb"
    body, _ = HTMLExporter().from_filename(str(path))
    shown = path.read_text().count("<!-- recorded:")
    assert shown and body.count("<!-- recorded:") == shown and "&lt;!-- recorded" not in body


def test_the_fingerprint_follows_the_code_not_the_tests():
    """Editing a given or answer cell changes the fingerprint (re-record); a test cell does not."""
    nb, _ = _markdown("a4_visualizing")
    fingerprint = _recorder().code_fingerprint
    before = fingerprint(nb, "a4_visualizing")
    grade = next(c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade"))
    grade.source += "\n# another hidden check"
    assert fingerprint(nb, "a4_visualizing") == before
    given = next(c for c in nb.cells if c.get("id") == "baseline")
    given.source = given.source.replace("EPOCHS = shrink(3, 1)", "EPOCHS = shrink(4, 1)")
    assert fingerprint(nb, "a4_visualizing") != before
