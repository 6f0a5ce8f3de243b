"""The A1 hidden checks: full credit for the reference, less for every known wrong answer.

A "notebook" here is a dict namespace into which the reference module's source is exec'd,
so its classes look up ``LSTMCell`` & co. in that namespace exactly as notebook cells do.
A mutant (a patch in tests/mutants/a1/, applied by tests/mutants.py) replaces one cell's class; every grade
cell is then graded.
"""
import json
import re
import warnings
from pathlib import Path

import nbformat
import pytest
import torch

from autograder.a1_rnn_cells import checks, probes
from autograder.a1_rnn_cells import reference as ref
from autograder import guards, harness, static_guard, wire
from coursectl import trusted
from mutants import load_mutant
from nbcourse import REPO
from probe_modules import assert_kernel_safe

MUTANT_DIR = Path(__file__).parents[2] / "mutants" / "a1"
MUTANTS = sorted(MUTANT_DIR.glob("*.py"))
KEY = {"A": "GRU", "B": "RNN", "C": "LSTM"}
MODES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU"}

# grade id -> (the cell's points, its hidden call); a call returns the share earned (0 to 1)
GRADE_CELLS = {
    "test_lstm_cell": (4, lambda ns: checks.check_lstm_cell(ns["LSTMCell"])),
    "test_gru_cell": (4, lambda ns: checks.check_gru_cell(ns["GRUCell"])),
    **{f"test_rnn_model_{m}": (2, lambda ns, mode=mode: checks.check_rnn_model(ns["RNNModel"], mode))
       for m, mode in MODES.items()},
    **{f"test_bidir_model_{m}": (2, lambda ns, mode=mode: checks.check_bidir_model(
        ns["BidirRecurrentModel"], mode)) for m, mode in MODES.items()},
    "test_abc_answers": (3, lambda ns: checks.check_abc_answers(ns["A_model"], ns["B_model"], ns["C_model"])),
}


@pytest.fixture(autouse=True)
def abc_key(tmp_path, monkeypatch):
    """The tests' own answer key (the committed one is regenerated with the figure)."""
    key_file = tmp_path / "abc_key.json"
    key_file.write_text(json.dumps(KEY))
    monkeypatch.setattr(checks, "ABC_KEY_PATH", key_file)
    return key_file


def run_source(ns, source, filename):
    # Compiled under a real file name so inspect.getsource (used by the guards) finds it.
    exec(compile(source, filename, "exec"), ns)


def notebook():
    ns = {"__name__": "a1_notebook"}
    run_source(ns, Path(ref.__file__).read_text(), ref.__file__)
    ns.update(A_model=KEY["A"], B_model=KEY["B"], C_model=KEY["C"])
    return ns


def grade_all(ns):
    return {gid: round(points * fn(ns), 4) for gid, (points, fn) in GRADE_CELLS.items()}


def header(path, field):
    m = re.search(rf"^# {field}: (.+)$", path.read_text(), re.M)
    assert m, f"{path.name} lacks '# {field}:'"
    return m.group(1).strip()


def test_reference_gets_full_points(capsys):
    scores = grade_all(notebook())
    assert scores == {gid: float(points) for gid, (points, _) in GRADE_CELLS.items()}
    assert capsys.readouterr().err == ""


def test_mutant_list_covers_the_brief():
    names = {p.stem for p in MUTANTS}
    assert len(names) >= 23
    for path in MUTANTS:
        assert header(path, "cell") in {"lstm_cell", "gru_cell", "rnn_model", "bidir_model", "abc_answers"}
        assert set(map(str.strip, header(path, "loses").split(","))) <= set(GRADE_CELLS)


@pytest.mark.parametrize("path", MUTANTS, ids=[p.stem for p in MUTANTS])
def test_mutant_loses_exactly_where_declared(path, capsys):
    loses = {g.strip() for g in header(path, "loses").split(",")}
    ns = notebook()
    mutant = load_mutant(path)
    run_source(ns, mutant.source, mutant.source_file())
    scores = grade_all(ns)
    report = capsys.readouterr()
    assert report.err == ""
    for gid, (points, _) in GRADE_CELLS.items():
        if gid in loses:
            assert scores[gid] < points, f"{path.stem} keeps full points in {gid}"
        else:
            assert scores[gid] == points, f"{path.stem} loses points in {gid}:\n{report.out}"



# Two course secrets under which the mutant that stops a step early once scored apart in
# test_rnn_model_rnn_relu (1 and 2 checks of 7): its top ReLU layer was dead in the 3-layer
# bias=False case of one draw, so the output was the fc bias whatever the steps read.
RELU_SECRETS = ("5afacca2fc858b1f85607056828dbefb2c44f597f6cbd9ff38140d7e586864bf",
                "f343395ef3c42dc4d68b21dc5bb4d72a535a5bbeecb4aeaf2274b2fa7771e844")


@pytest.mark.parametrize("bidir", [False, True], ids=["rnn_model", "bidir_model"])
def test_relu_models_are_drawn_with_a_live_top_layer(bidir):
    """Every ReLU case the checks draw has an active unit in each batch row of its top
    layer's last state, bias=False included (about one raw draw in eight was dead there)."""
    import numpy as np

    dead = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        probe, _ = checks._model_case(rng, "3 layers, bias=False", 2, 3, 3, 4, 3, bias=False, mode="RNN_RELU",
                                      bidir=bidir)
        a = probe.args
        dead += not checks._relu_top_alive(a["weights"], a["x"], a["state"], 3, 4, 3, False, bidir)
    assert dead == 0
    # the raw draws of this case are dead often enough that 60 seeds would have shown it
    raw = sum(not checks._relu_top_alive(*checks._draw_model(np.random.default_rng(s), "RNN_RELU", 2, 3, 3, 4, 3,
                                                             False, False, 3, 2 if bidir else 1), 3, 4, 3, False, bidir)
              for s in range(60))
    assert raw > 0


def test_a_model_one_step_short_loses_every_relu_case_whatever_the_secret(capsys):
    ns = notebook()
    mutant = load_mutant(MUTANT_DIR / "rnn_model_off_by_one.py")
    run_source(ns, mutant.source, mutant.source_file())
    for secret in RELU_SECRETS:
        result = checks.rnn_model_unit.run_local({"cls": ns["RNNModel"]}, options={"mode": "RNN_RELU"},
                                                 secret=bytes.fromhex(secret), assignment="a1_rnn_cells",
                                                 grade_id="test_rnn_model_rnn_relu")
        passed = [c.name for c in result.checks if c.passed]
        assert passed == ["structure (3 layers)"], (secret[:8], passed)


STUBS = '''
import torch
from torch import nn

class LSTMCell(nn.Module):
    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        raise NotImplementedError()
    def reset_parameters(self):
        raise NotImplementedError()
    def forward(self, input, hx=None):
        raise NotImplementedError()

class GRUCell(LSTMCell):
    pass

class RNNModel(nn.Module):
    def __init__(self, mode, input_size, hidden_size, num_layers, bias, output_size):
        super().__init__()
        raise NotImplementedError()
    def forward(self, input, hx=None):
        raise NotImplementedError()

class BidirRecurrentModel(RNNModel):
    def forward(self, input):
        raise NotImplementedError()
'''


def test_not_implemented_gets_zero_without_crashing(tmp_path, capsys):
    ns = notebook()
    stub = tmp_path / "stubs.py"
    stub.write_text(STUBS)
    run_source(ns, STUBS, str(stub))
    ns.update(A_model=None, B_model=None, C_model=None)
    assert set(grade_all(ns).values()) == {0.0}
    out = capsys.readouterr()
    assert out.err == "" and "NotImplementedError" in out.out


NOISY = '''
import sys, warnings
import torch
from torch import nn

class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        warnings.warn("constructor warning")
        print("constructor noise", file=sys.stderr)
        self.x2h = nn.Linear(input_size, 3 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
    def forward(self, input, hx=None):
        warnings.warn("forward warning", RuntimeWarning)
        print("forward noise", file=sys.stderr)
        print("stdout noise")
        return torch.tanh(self.x2h(input))[:, : self.h2h.in_features]
'''


def test_noise_and_warnings_never_reach_stderr(tmp_path, capsys):
    ns = notebook()
    path = tmp_path / "noisy.py"
    path.write_text(NOISY)
    run_source(ns, NOISY, str(path))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        score = checks.check_gru_cell(ns["GRUCell"])
    assert 0 <= score < 1 and not seen
    out = capsys.readouterr()
    assert out.err == "" and "noise" not in out.out


def test_checks_leave_global_state_as_it_was():
    ns = notebook()
    mutant = load_mutant(MUTANT_DIR / "lstm_gate_order.py")
    run_source(ns, mutant.source, mutant.source_file())
    cells = {n: ns[n] for n in ("LSTMCell", "GRUCell", "BasicRNNCell")}
    factories = (torch.empty, torch.empty_like, torch.Tensor.new_empty)
    rng = torch.get_rng_state()
    assert checks.check_rnn_model(ns["RNNModel"], "LSTM") == 1.0  # graded with the reference cell

    class Broken(torch.nn.Module):  # raises inside the isolated check
        def __init__(self, *args):
            raise RuntimeError("boom")
    assert checks.check_bidir_model(Broken, "GRU") == 0.0
    assert {n: ns[n] for n in cells} == cells
    assert (torch.empty, torch.empty_like, torch.Tensor.new_empty) == factories
    assert "new_empty" not in vars(torch.Tensor) and "__new__" not in vars(torch.Tensor)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.empty(3).shape == (3,)


def test_report_names_the_failure(capsys):
    ns = notebook()
    mutant = load_mutant(MUTANT_DIR / "lstm_squeeze.py")
    run_source(ns, mutant.source, mutant.source_file())
    checks.check_lstm_cell(ns["LSTMCell"])
    out = capsys.readouterr().out
    assert "FAILED batch size 1" in out and "shape (4,), expected (1, 4)" in out


def test_forbidden_layers_give_no_credit(capsys):
    ns = notebook()
    mutant = load_mutant(MUTANT_DIR / "rnn_model_nn_lstm.py")
    run_source(ns, mutant.source, mutant.source_file())
    assert checks.check_rnn_model(ns["RNNModel"], "GRU") == 0.0
    assert "not allow" in capsys.readouterr().out


def _notes(cls, *instances):
    """The guard notes the probes take of ``cls`` and of ``instances`` (a fresh set)."""
    probes._SEEN.update(notes=[], classes=set())
    probes.note_class(cls)
    for obj in instances:
        probes.note_object(obj)
    return [list(n) for n in probes._SEEN["notes"]]


def test_guards_without_source_and_with_comments():
    ns = {}
    # No file behind this source: only the notes on an instance can see the built-in cell.
    exec("import torch\nclass Cell(torch.nn.Module):\n"
         "    def __init__(self):\n        super().__init__()\n        self.core = [torch.nn.GRUCell(2, 2)]\n", ns)
    assert guards.forbidden(_notes(ns["Cell"])) is None
    found = guards.forbidden(_notes(ns["Cell"], ns["Cell"]()))
    assert "attribute core is a torch.nn.GRUCell" in found and "not allow" in found
    # Mentions in comments and strings do not count; a class named LSTMCell is fine.
    assert guards.forbidden(_notes(ref.LSTMCell, ref.LSTMCell(3, 4))) is None

    class Commented(torch.nn.Module):
        def forward(self, x):
            # unlike nn.LSTM we loop by hand
            return "nn.LSTM" and x
    assert guards.forbidden(_notes(Commented)) is None

    class Subclass(torch.nn.LSTMCell):
        pass
    assert "Subclass derives from torch.nn.LSTMCell" in guards.forbidden(_notes(Subclass))

    class Fused(torch.nn.Module):
        def forward(self, x, hx, w):
            return torch._VF.gru_cell(x, hx, w, w)
    assert "Fused.forward uses torch._VF.gru_cell (torch.gru_cell)" in guards.forbidden(_notes(Fused))


@pytest.mark.parametrize("mode", ref.MODES)
def test_stand_in_cells_are_not_the_students_layers(mode):
    """The grader's stand-ins run on torch's cell kernels; that never counts against a model."""
    ns = notebook()
    with probes._stand_in_cells(ns["RNNModel"]):
        assert {n: ns[n] for n in probes.STAND_INS} == probes.STAND_INS
        model = ns["BidirRecurrentModel"](mode, 3, 4, 2, True, 2)
        assert guards.forbidden(_notes(ns["BidirRecurrentModel"], model)) is None
    assert ns["LSTMCell"] is not probes.LSTMCell


def test_static_guard_grades_models_apart_from_the_cells():
    """torch.lstm_cell in the student's LSTMCell blocks the cell's unit in trusted grading,
    not the models' (their probes swap in the grader's cells); a forbidden helper of the
    model's own still blocks them."""
    assert set(checks.STAND_INS) == set(probes.STAND_INS)
    assert checks.check_rnn_model.unit.stand_ins == checks.check_bidir_model.unit.stand_ins == checks.STAND_INS
    sources = [Path(ref.__file__).read_text(), load_mutant(MUTANT_DIR / "lstm_torch_kernel.py").source]
    assert "RNNModel" in static_guard.scan(sources)  # flags follow names...
    flags = static_guard.scan(sources, isolated=checks.STAND_INS)
    assert "LSTMCell" in flags and not {"RNNModel", "BidirRecurrentModel"} & set(flags)
    helper = "import torch\nStack = torch.nn.GRU\nclass RNNModel(torch.nn.Module):\n    make = Stack\n"
    assert "RNNModel" in static_guard.scan(sources + [helper], isolated=checks.STAND_INS)


@pytest.mark.parametrize("notes", ["all clear", [["uses", "X.f", "nn.LSTM"]], [[1, 2, 3, 4]]])
def test_malformed_guard_notes_fail_the_check(notes):
    with pytest.raises(ValueError):
        guards.forbidden(notes)


def test_probe_module_holds_no_grader_or_reference_code():
    """The probe module is sent into the student's kernel: torch, numpy and the standard library only."""
    source = Path(probes.__file__).read_text()
    assert_kernel_safe(source)
    assert "a1_rnn_cells.reference" not in source and "from ." not in source
    # Not even a line of the reference or of the solutions (the signatures are the notebook's API).
    from coursectl import cells
    solution = nbformat.read(REPO / "source" / "a1_rnn_cells" / "a1_rnn_cells.ipynb", as_version=4)
    secret = {ln.strip() for ln in Path(ref.__file__).read_text().splitlines()}
    secret |= {ln for c in solution.cells for ln in cells.solution_lines(cells.source_text(c))}
    shared = [ln.strip() for ln in source.splitlines() if len(ln.strip()) > 30 and ln.strip() in secret]
    assert set(shared) <= {"from __future__ import annotations", "def forward(self, input, hx=None):",
                           "super().__init__(input_size, hidden_size, bias)",
                           "self.nonlinearity = nonlinearity"}, shared
    # The from-scratch rule is the units' own hook: the trusted chain knows nothing of a1.
    assert {u.policy for u in (checks.check_lstm_cell.unit, checks.check_rnn_model.unit)} == {checks.FROM_SCRATCH}
    assert checks.FROM_SCRATCH.name == checks.NO_BUILTINS
    chain = Path(trusted.__file__).read_text()
    assert not any(word in chain for word in ("recurrent", "static_guard", "NO_BUILTINS", "a1_"))


def test_inputs_come_from_the_grading_rng_and_forged_results_earn_nothing():
    unit = checks.check_gru_cell.unit
    plans = [unit.plan(harness.seed_for(secret, "test_gru_cell"), bindings={"cls": "GRUCell"})
             for secret in (1, 2)]
    assert plans[0].kernel["calls"] != plans[1].kernel["calls"]
    # A kernel that answers zeros (and claims nothing forbidden) everywhere gets no value check right.
    calls = plans[0].kernel["calls"]
    zeros = {"value": {"out": [torch.zeros(3, 4)], "state_after": [], "grads": None}, "notes": []}
    forged = {"nonce": plans[0].kernel["nonce"], "results": [{"ok": True, "value": wire.encode(zeros)}] * len(calls)}
    result = unit.judge(plans[0], wire.loads(wire.dumps(forged)))
    assert result.passed == 0 and result.score == 0.0


def test_abc_key_file_and_bad_values(tmp_path, monkeypatch, capsys):
    key_file = tmp_path / "a1_abc_key.json"
    monkeypatch.setattr(checks, "ABC_KEY_PATH", key_file)
    assert checks.check_abc_answers("RNN", "LSTM", "GRU") == 0.0  # no key yet: no crash
    key_file.write_text(json.dumps({"A": "RNN", "B": "LSTM", "C": "GRU"}))
    assert checks.check_abc_answers("RNN", "LSTM", "GRU") == 1.0
    assert checks.check_abc_answers("RNN", "GRU", "LSTM") == round(1 / 3, 4)
    assert checks.check_abc_answers(" RNN", ["LSTM"], object()) == 0.0
    assert "must be exactly" in capsys.readouterr().out


def test_unknown_mode_is_a_failed_check_not_an_error():
    assert checks.check_rnn_model(ref.RNNModel, "LSTMX") == 0.0
    assert checks.check_bidir_model(None, "GRU") == 0.0
    assert checks.check_lstm_cell(None) == 0.0


LEGACY_STATE = """
import torch
from torch import nn

class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2h = nn.Linear(input_size, 3 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
        bound = hidden_size ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def reset_parameters(self):
        pass

    def forward(self, input, hx=None):
        if hx is None:
            hx = torch.Tensor(input.size(0), self.hidden_size)  # uninitialised
        x_r, x_z, x_n = self.x2h(input).chunk(3, 1)
        h_r, h_z, h_n = self.h2h(hx).chunk(3, 1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        return (1 - z) * torch.tanh(x_n + r * h_n) + z * hx
"""


def test_legacy_uninitialised_state_is_caught(tmp_path, capsys):
    ns = notebook()
    path = tmp_path / "legacy.py"
    path.write_text(LEGACY_STATE)
    run_source(ns, LEGACY_STATE, str(path))
    assert checks.check_gru_cell(ns["GRUCell"]) < 1
    out = capsys.readouterr().out
    assert "FAILED default state" in out and "contains NaN" in out
    assert "FAILED reset_parameters()" in out and "FAILED given state" not in out
