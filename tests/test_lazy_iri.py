"""jsonschema's IRI check loaded on first use (coursectl/lazy_iri.py): the same answers,
without the grammar's 1.5 s at every start, and a start-up line that is quiet where
coursectl is out of sight."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coursectl import lazy_iri

pytest.importorskip("rfc3987_syntax")

IRIS = ["http://example.org/ä/b?c=d#e", "https://x.org/a b", "urn:isbn:0451450523", "//no-scheme", "ht tp://x",
        "mailto:someone@example.org", ""]

CHECK = """
import json, sys
if sys.argv[1] == "lazy":
    from coursectl import lazy_iri
    assert lazy_iri.install()
import jsonschema
before = type(sys.modules.get("rfc3987_syntax")).__name__
checker = jsonschema.FormatChecker()
answers = [[checker.conforms(v, "iri"), checker.conforms(v, "iri-reference")] for v in json.loads(sys.argv[2])]
print(json.dumps({"before": before, "answers": answers,
                  "after": type(sys.modules.get("rfc3987_syntax")).__name__}))
"""


def _run(mode: str) -> dict:
    # -S: no site-packages start-up lines (the venv's own .pth would install the stand-in)
    site = next(p for p in sys.path if p.endswith("site-packages"))
    code = f"import sys; sys.path[:0] = {[str(Path(lazy_iri.__file__).parents[1]), site]!r}\n" + CHECK
    proc = subprocess.run([sys.executable, "-S", "-c", code, mode, json.dumps(IRIS)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_iri_checks_answer_as_before_and_load_the_grammar_only_when_used():
    real, lazy = _run("real"), _run("lazy")
    assert real["before"] == "module"          # imported with jsonschema, as without the stand-in
    assert lazy["before"] == "_StandIn"        # jsonschema imported, the grammar not
    assert lazy["answers"] == real["answers"]
    assert {a for pair in real["answers"] for a in pair} == {True, False}  # the IRIs test both ways
    assert lazy["after"] == "module"           # the first check brought the real module in


def test_install_does_nothing_once_jsonschema_is_imported():
    code = ("import sys; sys.modules.setdefault('jsonschema', object())\n"
            "from coursectl import lazy_iri\nprint(lazy_iri.install(), 'rfc3987_syntax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout.split()
    # the venv's start-up line may have installed it already; a late install never swaps modules
    assert out in (["False", "False"], ["True", "True"])


def test_the_start_up_line_is_quiet_where_coursectl_is_out_of_sight(tmp_path):
    # -S -I: no site-packages and no script folder, so no coursectl: the line must do nothing
    proc = subprocess.run([sys.executable, "-S", "-I", "-c",
                           f"exec({lazy_iri.PTH_LINE!r}); import sys; print('coursectl' in sys.modules, "
                           "'rfc3987_syntax' in sys.modules)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.split() == ["False", "False"]


def test_install_pth_writes_the_line_into_the_environments_site_packages(tmp_path):
    path = lazy_iri.install_pth(tmp_path)
    assert path.read_text() == lazy_iri.PTH_LINE
    assert path.parent.name == "site-packages" and tmp_path in path.parents
    assert lazy_iri.PTH_LINE.startswith("import ") and lazy_iri.PTH_LINE.count("\n") == 1  # one .pth line


def test_the_course_environment_starts_with_the_stand_in():
    """`make setup` installed the line: a notebook reader here skips the grammar."""
    proc = subprocess.run([sys.executable, "-c", "import sys, nbformat; print(type(sys.modules['rfc3987_syntax'])"
                                                 ".__name__)"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "_StandIn", proc.stdout + proc.stderr


def test_submodules_import_under_the_stand_in():
    code = ("import sys\nfrom coursectl import lazy_iri\nsys.modules.pop('rfc3987_syntax', None)\n"
            "assert lazy_iri.install()\nimport rfc3987_syntax.utils\n"
            "print(type(sys.modules['rfc3987_syntax']).__name__, rfc3987_syntax.utils.__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["_StandIn", "rfc3987_syntax.utils"], proc.stderr


def test_reading_every_modules_file_loads_no_grammar():
    """inspect.getmodule reads each module's __file__; torch calls it as it is imported (its
    custom ops), so every process that imports torch would otherwise load the grammar."""
    code = ("import sys, inspect, json\nfrom coursectl import lazy_iri\nsys.modules.pop('rfc3987_syntax', None)\n"
            "assert lazy_iri.install()\nstand_in = sys.modules['rfc3987_syntax']\n"
            "inspect.getmodule(json.dumps, '/no/such/file.py')\n"
            "import torch\n"
            "print(type(sys.modules['rfc3987_syntax']).__name__, 'rfc3987_syntax.syntax_helpers' in sys.modules,"
            " stand_in.__file__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    kind, loaded, file = proc.stdout.split()
    assert (kind, loaded) == ("_StandIn", "False"), proc.stderr
    real = subprocess.run([sys.executable, "-c", "import sys; sys.modules.pop('rfc3987_syntax', None); "
                                                 "import rfc3987_syntax; print(rfc3987_syntax.__file__)"],
                          capture_output=True, text=True, timeout=60).stdout.strip()
    assert file == real  # the stand-in names the real module's file
