"""The trusted autograde chain (coursectl/trusted.py) through the real `nbgrader autograde`:
scores come from the grader's verdict, never from what the kernel prints or forges, and a
failing visible assert no longer blocks the hidden checks."""
from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbcourse import cell_by_id, make_course, nbgrader, scores, submit

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent


def _meta(gid, **kw):
    m = {"grade": False, "grade_id": gid, "locked": False, "schema_version": 3, "solution": False, "task": False}
    m.update(kw)
    return {"nbgrader": m}


def _source_nb():
    cells = [
        new_code_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
                      metadata=_meta("square", solution=True)),
        new_code_cell("assert isinstance(square(2), int), 'square of an int should be an int'\n"
                      "print('visible test passed')\n"
                      "### BEGIN HIDDEN TESTS\nfrom square_units import check_square\n"
                      "check_square(square)\n### END HIDDEN TESTS",
                      metadata=_meta("test_square", grade=True, locked=True, points=3)),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


FORGE_PAYLOAD = textwrap.dedent('''
    import base64, json
    def _forge(lines):
        src = "".join(lines)
        if "__course_grader_probe" not in src:
            return lines
        plan = json.loads(base64.b64decode(src.split('plan = json.loads(base64.b64decode("')[1].split('"')[0]))
        fake = {"nonce": plan["nonce"], "unit": plan["unit"],
                "results": [{"ok": True, "value": -7} for _ in plan["calls"]]}  # never a square
        return ["from IPython.display import display\\n",
                f"display({{'application/vnd.seqcourse.probe+json': {fake!r}}}, raw=True)\\n"]
    get_ipython().input_transformers_post.append(_forge)
''')

DEEP_PAYLOAD = textwrap.dedent('''
    def _deep(lines):
        if "__course_grader_probe" not in "".join(lines):
            return lines
        return ["from IPython.display import display\\n",
                "display({'application/vnd.seqcourse.probe+json': '[' * 200000 + ']' * 200000}, raw=True)\\n"]
    get_ipython().input_transformers_post.append(_deep)
''')

# A cell the student adds that carries the probe cell's tag and shows a forged payload.
IMPOSTOR_CELL = textwrap.dedent('''
    from IPython.display import display
    display({"application/vnd.seqcourse.probe+json": {"nonce": "x", "unit": "square", "results": []}}, raw=True)
    print("impostor ran")
''')

STUDENTS = {
    "honest": ("def square(x):\n    return x * x", 3.0),
    # Visible assert fails (a float), every hidden check passes: full marks now.
    "floaty": ("def square(x):\n    return float(x * x)", 3.0),
    "wrong": ("def square(x):\n    return x * abs(x)", 2.0),
    # Wrong code, then every cell's last value rewritten to 3.0 (nbgrader's partial credit).
    "printer": ("def square(x):\n    return None\n"
                "get_ipython().input_transformers_post.append(lambda lines: lines + ['\\n3.0\\n'])", 0.0),
    # Wrong code, then the probe cell replaced by a well-formed payload with made-up values.
    "forger": ("def square(x):\n    return None\n" + FORGE_PAYLOAD, 0.0),
    "release": ("def square(x):\n    raise NotImplementedError()", 0.0),
    # A probe result nested 200,000 deep: refused with a message, the judge keeps going.
    "deep": ("def square(x):\n    return x * x\n" + DEEP_PAYLOAD, 0.0),
    # Wrong code plus a cell that poses as the grader's probe cell (see IMPOSTOR_CELL).
    "impostor": ("def square(x):\n    return None", 0.0),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    import os

    tmp = tmp_path_factory.mktemp("trusted")
    course = make_course(tmp)
    with open(course / "nbgrader_config.py", "a") as f:
        f.write('\nc.InjectProbes.unit_packages = ["autograder", "square_units"]\n')
    (course / "source" / "sq").mkdir(parents=True)
    nbformat.write(_source_nb(), course / "source" / "sq" / "sq.ipynb")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), old]))
    try:
        nbgrader(course, "generate_assignment", "sq", "--force")
        for student, (code, _) in STUDENTS.items():
            nb = nbformat.read(course / "release" / "sq" / "sq.ipynb", as_version=4)
            cell_by_id(nb, "square").source = code
            if student == "impostor":
                nb.cells.append(new_code_cell(IMPOSTOR_CELL, metadata={
                    "seqcourse_probe": {"grade_id": "test_square", "index": 0, "token": "guess"}}))
            submit(course, student, "sq", nb, name="sq.ipynb")
        nbgrader(course, "autograde", "sq", "--force")
        nbgrader(course, "generate_feedback", "sq", "--force")
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    return course


@pytest.mark.parametrize("student", list(STUDENTS))
def test_score_is_the_verdict(graded, student):
    assert scores(graded, "sq", student)["test_square"] == (STUDENTS[student][1], 3.0)


def test_graded_notebook_is_the_students_own(graded):
    nb = nbformat.read(graded / "autograded" / "wrong" / "sq" / "sq.ipynb", as_version=4)
    assert not any("__course_grader_probe" in c.source for c in nb.cells)
    cell = cell_by_id(nb, "test_square")
    assert "check_square(square)" in cell.source          # restored for the gradebook's checksum
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert "[grader] square: 2/3 checks passed" in text and "FAILED negative numbers" in text


def test_feedback_shows_verdict_but_no_hidden_code(graded):
    page = next((graded / "feedback" / "floaty" / "sq").glob("*.html")).read_text()
    assert "3/3 checks passed" in page and "square of an int should be an int" in page
    assert "check_square" not in page and "square_units" not in page and "__course_grader_probe" not in page


def test_deep_payload_is_refused_with_a_message(graded):
    nb = nbformat.read(graded / "autograded" / "deep" / "sq" / "sq.ipynb", as_version=4)
    text = "".join(o.get("text", "") for o in cell_by_id(nb, "test_square").outputs)
    assert "refused" in text and "nested more than" in text, text


def test_a_cell_posing_as_the_probe_is_kept_and_flagged(graded):
    nb = nbformat.read(graded / "autograded" / "impostor" / "sq" / "sq.ipynb", as_version=4)
    posing = [c for c in nb.cells if "seqcourse_probe" in c.get("metadata", {})]
    assert len(posing) == 1 and "impostor ran" in posing[0].source
    text = "".join(o.get("text", "") for o in posing[0].outputs)
    assert "impostor ran" in text and "probe-cell tag" in text
    page = next((graded / "feedback" / "impostor" / "sq").glob("*.html")).read_text()
    assert "probe-cell tag" in page
