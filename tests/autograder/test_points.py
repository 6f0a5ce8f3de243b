"""Points are declared once, in the grade cell's metadata: what the trusted chain's first step
(coursectl/trusted.py, ``InjectProbes``) plans for a cell, without running a kernel."""
from __future__ import annotations

import sys
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook

from coursectl.trusted import KEY, InjectProbes

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # square_units, the toy unit


def _cell(gid: str, points: float, hidden: str):
    meta = {"nbgrader": {"grade": True, "grade_id": gid, "locked": True, "points": points, "schema_version": 3,
                         "solution": False, "task": False}}
    return new_code_cell(f"assert True\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS", metadata=meta)


def _plans(*cells) -> dict:
    nb = new_notebook(cells=[new_code_cell("def square(x):\n    return x * x"), *cells])
    step = InjectProbes(secret="ab" * 32, unit_packages=["square_units"])
    _, resources = step.preprocess(nb, {"nbgrader": {"assignment": "sq"}})
    return {gid: [plan.points for plan, _ in planned] for gid, planned in resources[KEY]["plans"].items()}


IMPORT = "from square_units import check_square\n"


def test_the_points_are_the_cells_metadata():
    assert _plans(_cell("test_six", 6, IMPORT + "check_square(square)"),
                  _cell("test_half", 0.5, IMPORT + "check_square(square)")) == {"test_six": [6.0], "test_half": [0.5]}


def test_a_call_that_names_points_is_not_a_unit_call():
    """Left to nbgrader's rule, where the call raises (no points argument): no points."""
    assert _plans(_cell("test_sq", 3, IMPORT + "check_square(square, points=3)")) == {}


def test_a_zero_point_cell_is_graded_out_of_its_extra_credit():
    assert _plans(_cell("test_bonus", 0, IMPORT + "check_square(square, extra_credit=2)")) == {"test_bonus": [2.0]}
    # extra credit only where the cell is worth nothing: a 3-point cell stays a 3-point cell
    assert _plans(_cell("test_sq", 3, IMPORT + "check_square(square, extra_credit=2)")) == {"test_sq": [3.0]}


def test_two_units_in_one_cell_share_its_points_by_weight():
    both = IMPORT + "check_square(square)\ncheck_square(square)"
    assert _plans(_cell("test_both", 8, both)) == {"test_both": [4.0, 4.0]}
