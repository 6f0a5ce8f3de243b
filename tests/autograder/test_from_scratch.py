"""The from-scratch rule (autograder/from_scratch.py) and the kernel's op guard (kernel_side).

Fast: no nbgrader, no kernels. The attack submissions (tests/fixtures/attacks/
a1_from_scratch_attacks.py) are read as the trusted chain reads them (the release notebook
with the attack in its answer cell, magics included) and must fail or be held; honest
notebooks of all four assignments, the demo sample and every mutant must be neither; and
with the reading bypassed, torch's recurrent ops still fail a1's checks in the kernel.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from autograder.a1_rnn_cells import checks as a1_checks
from autograder.a1_rnn_cells import reference as a1_reference
from autograder import from_scratch
from coursectl import cells
from coursectl.assignments import ASSIGNMENTS
from fixtures.attacks.a1_from_scratch_attacks import EXPECTED, FROM_SCRATCH_ATTACKS, kernel_only_source, KERNEL_ONLY
from mutants import load_mutants

REPO = Path(__file__).resolve().parents[2]
A1 = REPO / "release" / "a1_rnn_cells" / "a1_rnn_cells.ipynb"
A1_UNITS = [a1_checks.check_lstm_cell.unit, a1_checks.check_gru_cell.unit, a1_checks.check_rnn_model.unit,
            a1_checks.check_bidir_model.unit]


def _reading(nb) -> from_scratch.Reading:
    """What coursectl.trusted reads: every student-editable code cell, by position."""
    return from_scratch.read_cells([
        (i + 1, str(c.get("id") or ""), cells.source_text(c)) for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and not cells.is_autograded_test(c) and not cells.is_locked(c)])


def _verdicts(nb) -> dict[str, from_scratch.Verdict | None]:
    reading = _reading(nb)
    names = {"test_lstm_cell": ["LSTMCell"], "test_gru_cell": ["GRUCell"], "test_rnn_model": ["RNNModel"],
             "test_bidir_model": ["BidirRecurrentModel"]}
    return {u.grade_id: u.policy.review(reading, names[u.grade_id], isolated=tuple(u.stand_ins)) for u in A1_UNITS}


def _with(answers: dict[str, str]):
    nb = nbformat.read(A1, as_version=4)
    for cell_id, code in answers.items():
        next(c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == cell_id).source = code
    return nb


def test_there_are_enough_attack_classes():
    assert len(FROM_SCRATCH_ATTACKS) >= 12
    assert {"held", "fails"} == set(EXPECTED.values())


@pytest.mark.parametrize("name", list(FROM_SCRATCH_ATTACKS))
def test_attack_fails_or_is_held(name):
    verdict = _verdicts(_with(FROM_SCRATCH_ATTACKS[name]))["test_lstm_cell"]
    assert verdict is not None, f"{name} passes the from-scratch rule"
    assert ("fails" if verdict.fails else "held") == EXPECTED[name], verdict.message
    if not verdict.fails:  # the message says what and where: the answer cell, a line in it
        assert verdict.name == from_scratch.HELD_NAME
        assert "cell 9 (lstm-cell), line " in verdict.message and verdict.findings
    else:
        assert verdict.name == a1_checks.NO_BUILTINS


@pytest.mark.parametrize("code, construct", [
    ("import numpy as np\nK = np.load('k.npy', allow_pickle=True)", "allow_pickle=..."),
    ("import yaml\nK = yaml.unsafe_load(TEXT)", "yaml.unsafe_load"),
    ("import dill", "import dill"),
    ("from torch import _VF", "from torch import _VF"),
    ("import torch.nn.utils.stateless as s", "import torch.nn.utils.stateless"),
    ("K = torch.load('cell.pt')", "torch.load"),
    ("K = torch.jit.script(f)", "torch.jit"),
    ("f = lambda m: m.__globals__", ".__globals__"),
    ("%run other.py", "the magic %run (it can run code)"),
    ("%load_ext mymagic", "the magic %load_ext (it can run code)"),
])
def test_more_dynamic_features_are_held(code, construct):
    findings = _reading(_with({"lstm_cell": code})).findings
    assert construct in [f.construct for f in findings], findings


def test_held_verdict_names_each_construct_and_its_line():
    nb = _with(FROM_SCRATCH_ATTACKS["vars_torch"])
    [finding] = _reading(nb).findings
    assert (finding.construct, finding.cell, finding.line) == ("vars(...)", 9, 1)
    nb = _with({"lstm_cell": "import math\n\n%timeit -n1 -r1 x = 1\n"})
    [finding] = _reading(nb).findings
    assert finding.construct.startswith("the magic %timeit") and finding.line == 3


def test_a_held_construct_anywhere_holds_every_from_scratch_unit():
    honest = nbformat.read(REPO / "source" / "a1_rnn_cells" / "a1_rnn_cells.ipynb", as_version=4)
    choose = next(c for c in honest.cells if c.get("id") == "choose")
    choose.source += "\n_ = eval('1 + 1')\n"
    verdicts = _verdicts(honest)
    assert all(v is not None and not v.fails and "eval(...) in cell" in v.message for v in verdicts.values())


@pytest.mark.parametrize("code, what", [
    ("def f(:\n    pass", "code Python cannot read"),
    ("%time x = (", "code Python cannot read (given to %time)"),
    ("%%capture\nx = (", "code Python cannot read (given to %capture)"),
])
def test_unreadable_code_is_never_skipped(code, what):
    findings = _reading(_with({"lstm_cell": code})).findings
    assert any(f.construct.startswith(what) for f in findings), findings


@pytest.mark.parametrize("code", [
    "%time K = torch.lstm_cell",
    "%timeit -n1 -r1 K = torch.lstm_cell",
    "%%time\nK = nn.LSTMCell",
    "%%capture out\n%time K = torch._VF.gru_cell",
    "x = %who_ls\nK = torch.lstm_cell",
    "!true\nK = nn.GRU",
])
def test_literal_use_inside_magics_fails(code):
    nb = _with({"lstm_cell": code + "\nclass LSTMCell(nn.Module):\n    def forward(self, x):\n        return K(x)\n"})
    verdict = _verdicts(nb)["test_lstm_cell"]
    assert verdict is not None and verdict.fails, verdict


@pytest.mark.parametrize("code", [
    "%matplotlib inline\nx = 1",
    "import math\nfrom types import SimpleNamespace\nimport sys\nprint(sys.version)",
    "from IPython.display import display\ndisplay(1)",
    "y = getattr(nn, 'Linear')\nsetattr(y, 'note', 1)",
    "s = '''\n%not a magic\n'''",
])
def test_honest_features_are_allowed(code):
    assert _reading(_with({"lstm_cell": code})).findings == []


def _notebooks():
    yield from sorted((REPO / "source").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", list(_notebooks()), ids=lambda p: p.parent.name)
def test_no_solution_notebook_is_held(path):
    nb = nbformat.read(path, as_version=4)
    assert _reading(nb).findings == []
    if path.parent.name == "a1_rnn_cells":
        assert _verdicts(nb) == {u.grade_id: None for u in A1_UNITS}


def test_demo_sample_and_mutants_are_not_held():
    samples = sorted((REPO / "coursectl" / "demo_samples").glob("*.py"))
    mutants = [m for spec in ASSIGNMENTS.values() for m in load_mutants(spec.mutants)]
    assert samples and len(mutants) > 20
    for name, source in [(p.name, p.read_text()) for p in samples] + [(m.name, m.source) for m in mutants]:
        reading = from_scratch.read_cells([(1, "", source)])
        assert reading.findings == [], (name, reading.findings)
    demo = _with({"gru_cell": samples[0].read_text()})
    assert _verdicts(demo)["test_gru_cell"] is None


# ---------------------------------------------------------------- the kernel's op guard


def _compiled_class(source: str, name: str = "LSTMCell"):
    """The class, defined from source no file holds (the kernel-side notes cannot read it)."""
    import math

    import torch
    from torch import nn

    ns = {"torch": torch, "nn": nn, "math": math, "__name__": "student"}
    exec(compile(source, "<student cell>", "exec"), ns)
    return ns[name]


@pytest.mark.parametrize("route", list(KERNEL_ONLY))
def test_op_guard_fails_what_the_reading_never_saw(route, capsys):
    unit = a1_checks.check_lstm_cell.unit
    cls = _compiled_class(kernel_only_source(route))
    # Without a policy (no guard) the cheat earns everything: the guard is what stops it.
    bare = copy.copy(unit)
    bare.policy = None
    assert bare.run_local({"cls": cls}).score == 1.0  # the whole share
    result = unit.run_local({"cls": cls})
    assert result.score == 0.0
    assert [c.name for c in result.checks] == [a1_checks.NO_BUILTINS]
    assert "your code called torch's lstm_cell while it was checked" in result.checks[0].message


def test_op_guard_stops_torch_layers_inside_a_model_but_not_the_stand_ins():
    unit = a1_checks.check_rnn_model.unit
    honest = unit.run_local({"cls": a1_reference.RNNModel}, options={"mode": "GRU"})
    assert honest.score == 1.0  # the stand-in cells call torch.gru_cell: allowed
    source = '''
class RNNModel(nn.Module):
    def __init__(self, mode, input_size, hidden_size, num_layers, bias, output_size):
        super().__init__()
        self.inner = RNNModelRef(mode, input_size, hidden_size, num_layers, bias, output_size)
        self.rnn_cell_list, self.fc = self.inner.rnn_cell_list, self.inner.fc
        self._layer = getattr(nn, "G" + "RU")(input_size, hidden_size, num_layers, bias=bias, batch_first=True)

    def forward(self, input, hx=None):
        self._layer(input)  # torch's GRU runs, even if its result is thrown away
        return self.inner(input, hx)
'''
    import math

    import torch
    from torch import nn

    ns = {"torch": torch, "nn": nn, "math": math, "__name__": "student", "RNNModelRef": a1_reference.RNNModel}
    exec(compile(source, "<student cell>", "exec"), ns)
    result = unit.run_local({"cls": ns["RNNModel"]}, options={"mode": "GRU"})
    assert result.score == 0.0 and "torch's gru" in result.checks[0].message


def test_op_guard_leaves_torch_as_it_was():
    import torch
    from torch import nn

    from autograder import kernel_side

    watching = kernel_side.install_guard()
    x, h = torch.zeros(1, 2), torch.zeros(1, 3)
    with watching(["gru_cell"], []) as seen:
        with pytest.raises(RuntimeError, match="may not be used"):
            nn.GRUCell(2, 3)(x, h)
    assert seen == ["gru_cell"]
    nn.GRUCell(2, 3)(x, h)  # after the probes, torch works again
    assert kernel_side.install_guard() is watching  # one guard per kernel
