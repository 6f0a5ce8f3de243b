"""The course's nbgrader preprocessors, on hand-made notebooks."""
from nbformat.v4 import new_code_cell, new_notebook, new_output

from coursectl.preprocessors import HideHiddenTests, SoftenWarnings, strip_hidden

HIDDEN_CELL = """assert f(1) == 2
### BEGIN HIDDEN TESTS
from autograder.a1_rnn_cells.checks import check_gru_cell
check_gru_cell(GRUCell)
### END HIDDEN TESTS"""


def _grade_meta(gid="test_f"):
    return {"nbgrader": {"grade": True, "solution": False, "locked": True, "points": 2,
                         "grade_id": gid, "schema_version": 3, "task": False}}


def test_strip_hidden_removes_region_and_markers():
    text, found = strip_hidden(HIDDEN_CELL)
    assert found
    assert "autograder" not in text and "HIDDEN TESTS" not in text and "check_gru_cell" not in text
    assert text.startswith("assert f(1) == 2")
    assert strip_hidden("x = 1") == ("x = 1", False)


def test_feedback_hides_hidden_source_and_traceback():
    err = new_output("error", ename="NameError", evalue="name 'GRUCell' is not defined",
                     traceback=["---", "check_gru_cell(GRUCell)", "NameError: ..."])
    cell = new_code_cell(HIDDEN_CELL, metadata=_grade_meta(), outputs=[err])
    visible = new_code_cell("assert g() == 1", metadata=_grade_meta("test_g"),
                            outputs=[new_output("error", ename="AssertionError", evalue="",
                                                traceback=["assert g() == 1", "AssertionError"])])
    nb, _ = HideHiddenTests().preprocess(new_notebook(cells=[cell, visible]), {})
    shown = str(nb.cells[0])
    assert "check_gru_cell" not in shown and "autograder" not in shown
    assert nb.cells[0].outputs[0].traceback[0] == "NameError: name 'GRUCell' is not defined"
    # A cell without hidden tests keeps its traceback: it shows only the student's visible code.
    assert nb.cells[1].outputs[0].traceback == ["assert g() == 1", "AssertionError"]


def test_visible_assert_keeps_its_traceback_in_a_hidden_test_cell():
    """A failed visible assert is shown with its line, minus context lines from the hidden
    region; an error raised by a hidden line (or inside autograder/) is cut to its last line."""
    visible_tb = ["\x1b[0;31mAssertionError\x1b[0m Traceback",
                  "Cell In[8], line 1\n\x1b[0;32m----> 1\x1b[0m assert f(1) == 2\n      2 ### BEGIN HIDDEN TESTS\n"
                  "      3 from autograder.a1_rnn_cells.checks import check_gru_cell",
                  "AssertionError: "]
    hidden_tb = ["AssertionError Traceback", "Cell In[8], line 4\n      3 from autograder.a1_rnn_cells.checks import x\n"
                 "----> 4 check_gru_cell(GRUCell)", "AssertionError: x"]
    inner_tb = ["KeyError Traceback", "----> 1 assert f(1) == 2", "File /srv/course/autograder/a1_rnn_cells/checks.py:40",
                "KeyError: 'w'"]
    cells = [new_code_cell(HIDDEN_CELL, metadata=_grade_meta(f"t{i}"),
                           outputs=[new_output("error", ename=tb[-1].split(":")[0], evalue="x", traceback=tb)])
             for i, tb in enumerate((visible_tb, hidden_tb, inner_tb))]
    nb, _ = HideHiddenTests().preprocess(new_notebook(cells=cells), {})
    shown = nb.cells[0].outputs[0].traceback
    assert "----> 1" in shown[1] and "assert f(1) == 2" in shown[1]
    assert "HIDDEN" not in "\n".join(shown) and "autograder" not in "\n".join(shown)
    for cell in nb.cells[1:]:
        text = "\n".join(cell.outputs[0].traceback)
        assert "check_gru_cell" not in text and "autograder" not in text and "traceback hidden" in text


def test_warnings_move_to_stdout_other_stderr_stays():
    warn = new_output("stream", name="stderr",
                      text="/x/torch/nn/modules/rnn.py:83: UserWarning: dropout option adds dropout\n"
                           "  warnings.warn(\n")
    other = new_output("stream", name="stderr", text="something went to stderr\n")
    nb = new_notebook(cells=[new_code_cell("f()", metadata=_grade_meta(), outputs=[warn]),
                             new_code_cell("g()", metadata=_grade_meta("test_g"), outputs=[other])])
    nb, _ = SoftenWarnings().preprocess(nb, {})
    assert nb.cells[0].outputs[0].name == "stdout"
    assert nb.cells[1].outputs[0].name == "stderr"
