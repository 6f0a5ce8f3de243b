"""Hidden checks for A1 (recurrent cells from scratch); each grade cell calls one unit.

The classes under test follow this contract (``a1_rnn_cells.reference`` has the instructor's code):

* ``LSTMCell(input_size, hidden_size, bias=True)``: ``x2h`` Linear(D, 4H), ``h2h`` Linear(H, 4H);
  ``forward(input (B, D), hx=None | (h, c)) -> (h, c)``, each (B, H); gates input, forget,
  cell, output; ``hx=None`` means zeros; ``reset_parameters()`` draws every parameter
  uniform in [-1/sqrt(H), 1/sqrt(H)].
* ``GRUCell(input_size, hidden_size, bias=True)``: ``x2h`` Linear(D, 3H), ``h2h`` Linear(H, 3H);
  ``forward(input, hx=None) -> h``; blocks reset, update, new;
  n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) * n + z * h.
* ``RNNModel(mode, input_size, hidden_size, num_layers, bias, output_size)``, mode "LSTM",
  "GRU", "RNN_TANH" or "RNN_RELU": ``rnn_cell_list`` (nn.ModuleList, one cell per layer, built
  from the notebook's global ``LSTMCell``/``GRUCell``/``BasicRNNCell``) and ``fc`` Linear(H, K);
  ``forward(input (B, T, D), hx=None) -> (B, K)`` = fc(top state after the last step); ``hx``
  as in torch.nn: (h0, c0) for LSTM, else h0, each (num_layers, B, H).
* ``BidirRecurrentModel(same arguments)``: ``rnn_cell_list`` and a separate
  ``rnn_cell_list_rev``, ``fc`` Linear(2H, K); upper layers read [forward, reverse] (2H) of
  the layer below, as torch.nn.LSTM/GRU/RNN(bidirectional=True, batch_first=True);
  output fc(cat(top forward state at the last step, top reverse state at the first step)).

How the checks work (``harness``: the verdict is decided here, never in the kernel): each
check draws torch.nn-layout weights (uniform in +-1/sqrt(H), torch.nn's own range), inputs,
states and output weightings from the grading run's ``rng``. The kernel (``a1_rnn_cells.probes``)
copies the weights into the student's cells (x2h <-> weight_ih/bias_ih, h2h <->
weight_hh/bias_hh) and ``fc``, runs the float32 code on the course device and sends back
outputs and gradients (w.r.t. the input, the initial state and every weight). The judge
computes the expected values from the same numbers in float64 with ``torch.nn.LSTMCell``/
``GRUCell`` or ``torch.nn.LSTM``/``GRU``/``RNN`` and compares within the tolerances below.
Models are graded apart from the student's cells (the kernel swaps in stand-in cells).
Torch's recurrent layers or kernels in a graded class give no credit for its grade cell:
``static_guard`` reads the source before grading, and ``guards`` judges what the probes saw.
Both belong to the units' policy ``FROM_SCRATCH`` (``from_scratch``), which also holds the
units for review when the notebook uses a feature that reaches code by a computed name, and
makes torch's recurrent ops raise in the kernel while the units are probed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import guards, static_guard
from ..from_scratch import FromScratch
from . import probes
from .reference import MODES
from ..harness import CheckFailed, Probe, Unit, assert_close, require

# Tolerances (float32 student code against a float64 reference).
ATOL, RTOL = 1e-5, 1e-4              # all outputs; gradients of a single cell
GRAD_ATOL, GRAD_RTOL = 1e-4, 1e-3    # gradients through a whole model (longer sums)
INIT_SLACK = 1e-6                    # relative slack on the +-1/sqrt(H) bound
INPUT_SCALE = 0.8                    # standard deviation of drawn inputs and states

ABC_KEY_PATH = Path(__file__).with_name("abc_key.json")
ABC_CHOICES = ("RNN", "LSTM", "GRU")
NO_BUILTINS = "no torch.nn recurrent layers"
# a1's cells and models are written from nn.Linear and tensor operations: torch's recurrent
# layers named in the source fail the unit, dynamic features hold it for review, and
# torch's recurrent ops raise in the kernel while its probes run (``from_scratch``).
FROM_SCRATCH = FromScratch(
    name=NO_BUILTINS, literal_scan=static_guard.scan, everything=static_guard.EVERYTHING,
    advice=guards.ADVICE.strip("()"),
    kernel_ops=("lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "lstm", "gru", "rnn_tanh", "rnn_relu",
                "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "quantized_lstm_cell", "quantized_gru_cell",
                "quantized_rnn_tanh_cell", "quantized_rnn_relu_cell", "_cudnn_rnn", "miopen_rnn",
                "mkldnn_rnn_layer", "_use_cudnn_rnn_flatten_weight"),
    # every probe sends what it built; a torch recurrent layer there fails the whole unit
    probe_notes=guards.forbidden)

_TORCH_STACK = {"LSTM": (nn.LSTM, {}), "GRU": (nn.GRU, {}),
                "RNN_TANH": (nn.RNN, {"nonlinearity": "tanh"}),
                "RNN_RELU": (nn.RNN, {"nonlinearity": "relu"})}
_CELL_NAME = {"LSTM": "LSTMCell", "GRU": "GRUCell", "RNN_TANH": "BasicRNNCell", "RNN_RELU": "BasicRNNCell"}
_BLOCKS = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
STAND_INS = tuple(dict.fromkeys(_CELL_NAME.values()))  # what the probes swap in while models are graded


# --------------------------------------------------------------------------- drawing

def _normal(rng, *shape) -> torch.Tensor:
    return torch.from_numpy((rng.standard_normal(shape) * INPUT_SCALE).astype(np.float32))


def _uniform(rng, shape, fan_in) -> torch.Tensor:
    """Uniform in +-1/sqrt(fan_in), torch.nn's own range for recurrent and linear weights."""
    bound = 1.0 / fan_in ** 0.5
    return torch.from_numpy(rng.uniform(-bound, bound, size=shape).astype(np.float32))


def _layer_weights(rng, blocks, H, fan_in, bias, suffix="") -> dict:
    """torch.nn's ``weight_ih{suffix}``, ``weight_hh{suffix}`` (and biases) for one cell."""
    shapes = {f"weight_ih{suffix}": (blocks * H, fan_in), f"weight_hh{suffix}": (blocks * H, H)}
    if bias:
        shapes.update({f"bias_ih{suffix}": (blocks * H,), f"bias_hh{suffix}": (blocks * H,)})
    return {k: _uniform(rng, shape, H) for k, shape in shapes.items()}


def _student_name(torch_name: str) -> str:
    """Where a torch.nn parameter lives in the student's objects: ``weight_ih_l1_reverse``
    -> ``rnn_cell_list_rev[1].x2h.weight``; ``bias_hh`` -> ``cell.h2h.bias``."""
    if torch_name.startswith("fc."):
        return torch_name
    kind, tag, *rest = torch_name.split("_")
    lin = "x2h" if tag == "ih" else "h2h"
    if not rest:
        return f"cell.{lin}.{kind}"
    attr = "rnn_cell_list_rev" if rest[1:] == ["reverse"] else "rnn_cell_list"
    return f"{attr}[{int(rest[0][1:])}].{lin}.{kind}"


# --------------------------------------------------------------------------- judging

def _reference(module, weights: dict):
    """``module`` in float64 with ``weights`` copied in by parameter name."""
    module = module.double()
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(weights[name])
    return module


def _leaves(tensors, grads):
    return [t.detach().double().requires_grad_(grads) for t in tensors]


def _compare_grads(label, got, expected, atol, rtol):
    """``got``: the kernel's gradients {"input", "state", "params"}; ``expected``: the
    same from the reference, with the student-facing names."""
    require(got is not None, f"{label}: no gradients (an output had the wrong shape)")
    require(isinstance(got, dict), f"{label}: no gradients came back")
    pairs = [("the input", got.get("input"), expected["input"])]
    pairs += [(f"the initial {n}", g, e) for n, g, e in zip(expected["state_names"], got.get("state") or [],
                                                            expected["state"])]
    params = got.get("params") or {}
    pairs += [(_student_name(n), params.get(n), e) for n, e in expected["params"].items()]
    for what, g, e in pairs:
        require(g is not None, f"{label}: {what} received no gradient")
        assert_close(g, e, atol, rtol, f"{label}: gradient of {what}")


def _expected_grads(outputs, grad_weights, x, states, state_names, params: dict) -> dict:
    sum((o * w.double()).sum() for o, w in zip(outputs, grad_weights)).backward()
    return {"input": x.grad, "state": [s.grad for s in states], "state_names": state_names,
            "params": {n: p.grad for n, p in params.items()}}


# --------------------------------------------------------------------------- cells

def _check_init(params, hidden_size, when):
    require(params, f"{when}: no parameters registered")
    bound = 1.0 / hidden_size ** 0.5
    for name, p in params:
        v = p.double().flatten()
        require(bool(torch.isfinite(v).all()), f"{when}: {name} has non-finite values (uninitialised?)")
        top = v.abs().max().item()
        require(top <= bound * (1 + INIT_SLACK),
                f"{when}: {name} reaches {top:.3f}, outside +-1/sqrt(H) = +-{bound:.3f}")
        require(v.numel() < 50 or top >= 0.8 * bound,
                f"{when}: {name} spans only +-{top:.3f}, expected uniform in +-{bound:.3f}")
        # A uniform draw on [-b, b] has standard deviation b / sqrt(3).
        require(v.numel() < 100 or 0.75 < v.std().item() / (bound / 3 ** 0.5) < 1.25,
                f"{when}: {name} does not look uniform in +-{bound:.3f} (standard deviation {v.std().item():.3f})")


def _check_layout(entries, blocks, D, H):
    for entry in entries:
        bias = entry["bias"]
        for name, fan_in in (("x2h", D), ("h2h", H)):
            lin = entry[name]
            want = [blocks * H, fan_in]
            require(lin["weight"] == want,
                    f"{name}.weight: shape {_shape_text(lin['weight'])}, expected {tuple(want)}")
            if bias:
                require(lin["bias"] == [blocks * H], f"bias=True: {name}.bias should have shape {(blocks * H,)}")
            else:
                require(not lin["has_bias"], f"bias=False: {name} should have no bias")
            require(lin["registered"], f"{name}'s parameters are not registered with the cell")
        want = blocks * H * (D + H) + (2 * blocks * H if bias else 0)
        require(entry["count"] == want, f"bias={bias}: {entry['count']} parameter values registered, expected {want}")


def _shape_text(shape):
    return None if shape is None else tuple(shape)


def _cell_case(rng, kind, label, B, D, H, bias=True, given=True, grads=False):
    """The probe and judge of one forward (and backward) of a cell."""
    lstm = kind == "LSTM"
    weights = _layer_weights(rng, _BLOCKS[kind], H, D, bias)
    x = _normal(rng, B, D)
    state = [_normal(rng, B, H) for _ in range(2 if lstm else 1)] if given else None
    names = ["h'", "c'"] if lstm else ["h'"]
    grad_weights = [_normal(rng, B, H) for _ in names] if grads else None

    def judge(out):
        torch_cell = nn.LSTMCell if lstm else nn.GRUCell
        theirs = _reference(torch_cell(D, H, bias=bias), weights)
        xr, *sr = _leaves([x, *(state or [])], grads)
        expected = theirs(xr, (tuple(sr) if lstm else sr[0]) if given else None)
        want = list(expected) if lstm else [expected]
        got = out["out"]
        require(isinstance(got, list) and len(got) == len(want), f"{label}: wrong number of outputs")
        for g, w, n in zip(got, want, names):
            assert_close(g, w, ATOL, RTOL, f"{label}: {n}")
        after = out["state_after"]
        require(all(isinstance(a, torch.Tensor) and torch.equal(a, s) for a, s in zip(after, state or [])),
                f"{label}: forward changed the state passed in (in-place update)")
        if grads:
            params = dict(theirs.named_parameters())
            expected_grads = _expected_grads(want, grad_weights, xr, sr, [n[0] for n in names], params)
            _compare_grads(label, out.get("grads"), expected_grads, ATOL, RTOL)

    probe = Probe("cell_case", kind=kind, D=D, H=H, bias=bias, weights=weights, x=x, state=state,
                  grad_weights=grad_weights)
    return probe, judge


def _cell_unit(kind: str, name: str, grade_id: str) -> Unit:
    unit = Unit(name, grade_id=grade_id, objects=("cls",), probes=probes, policy=FROM_SCRATCH)
    blocks = _BLOCKS[kind]

    @unit.check("parameters registered (x2h, h2h, bias on/off)", weight=1)
    def registered(rng):
        D, H = 5, 3
        return Probe("cell_layout", D=D, H=H), lambda out: _check_layout(out, blocks, D, H)

    # D < H: nn.Linear's own default bound for x2h, 1/sqrt(D), is wider than 1/sqrt(H).
    @unit.check("initialisation uniform in +-1/sqrt(H)", weight=1)
    def init_range(rng):
        return Probe("cell_parameters", D=4, H=25), lambda out: _check_init(out, 25, "after construction")

    @unit.check("reset_parameters() re-draws every parameter", weight=1)
    def reset(rng):
        return (Probe("cell_parameters", D=4, H=25, reset=True),
                lambda out: _check_init(out, 25, "after reset_parameters()"))

    cases = [
        ("given state (B=3, D=5, H=4)", [("given state", 3, 5, 4, {})]),
        ("default state hx=None means zeros (B=4, D=3, H=6)", [("default state", 4, 3, 6, {"given": False})]),
        ("batch size 1", [("batch size 1, given state", 1, 5, 4, {}),
                          ("batch size 1, default state", 1, 5, 4, {"given": False})]),
        ("bias=False (B=3, D=4, H=5)", [("bias=False", 3, 4, 5, {"bias": False})]),
        ("gradients w.r.t. input, state and weights (B=3, D=5, H=4)", [("gradients", 3, 5, 4, {"grads": True})]),
        ("gradients with bias=False, default state, batch size 1",
         [("gradients (bias=False, B=1)", 1, 3, 4, {"bias": False, "given": False, "grads": True})]),
    ]
    for check_name, parts in cases:
        unit.check(check_name, weight=1)(_cases(lambda rng, label, *sizes, **kw: _cell_case(rng, kind, label, *sizes, **kw),
                                      parts))
    return unit


def _cases(make, parts):
    """A check made of one or more cases ``(label, *sizes, options)``: every case must pass."""
    def check(rng, **options):
        planned = [make(rng, label, *sizes, **kw, **options) for label, *sizes, kw in parts]

        def judge(outs):
            for (_, one), out in zip(planned, outs):
                one(out)
        return [p for p, _ in planned], judge
    return check


lstm_cell_unit = _cell_unit("LSTM", "LSTMCell", "test_lstm_cell")
gru_cell_unit = _cell_unit("GRU", "GRUCell", "test_gru_cell")
check_lstm_cell = lstm_cell_unit.entry_point()
check_gru_cell = gru_cell_unit.entry_point()


# --------------------------------------------------------------------------- models

def _mode(mode):
    if mode not in MODES:
        raise CheckFailed(f"unknown mode {mode!r}; expected one of {MODES}")
    return mode


_MAX_DRAWS = 50


def _draw_model(rng, mode, B, T, D, H, L, bias, given, K, dirs):
    """A model's torch.nn weights (``fc.*`` included), input and initial state (or None)."""
    weights = {}
    for suffix in ("", "_reverse")[:dirs]:
        for layer in range(L):
            weights.update(_layer_weights(rng, _BLOCKS[mode], H, D if layer == 0 else dirs * H, bias,
                                          f"_l{layer}{suffix}"))
    if mode == "RNN_RELU":  # positive biases keep the ReLU layers mostly alive (and see _relu_top_alive)
        weights = {k: v.abs() if k.startswith("bias") else v for k, v in weights.items()}
    weights["fc.weight"], weights["fc.bias"] = _uniform(rng, (K, dirs * H), dirs * H), _uniform(rng, (K,), dirs * H)
    x = _normal(rng, B, T, D)
    state = [_normal(rng, L, B, H) for _ in range(2 if mode == "LSTM" else 1)] if given else None
    return weights, x, state


def _relu_top_alive(weights, x, state, D, H, L, bias, bidir) -> bool:
    """Does the top ReLU layer's last state have an active unit in every batch row (each
    direction)? A row all zero there makes the output fc's bias alone, whatever the steps
    before, so a model that skips a step or a layer would pass or fail by the draw: 13% of
    the draws of the 3-layer bias=False case (24% with two directions), at most 2% of the
    others. The draws kept are then a function of the secret still; _MAX_DRAWS dead draws in
    a row (0.13**50) would keep the last."""
    rnn = _reference(nn.RNN(D, H, num_layers=L, bias=bias, batch_first=True, bidirectional=bidir,
                            nonlinearity="relu"), weights)
    with torch.no_grad():
        _, h_n = rnn(x.double(), state[0].double() if state else None)
    tops = h_n[-2:] if bidir else h_n[-1:]
    return bool((tops > 0).any(dim=-1).all())


def _model_case(rng, label, B, T, D, H, L, bias=True, given=False, grads=False, K=3, *, mode=None, bidir=False):
    """The probe and judge of one forward (and backward) of a model in ``mode``."""
    _mode(mode)
    lstm, dirs = mode == "LSTM", 2 if bidir else 1
    for _ in range(_MAX_DRAWS):  # ReLU: drawn again while the top layer is dead (see _relu_top_alive)
        weights, x, state = _draw_model(rng, mode, B, T, D, H, L, bias, given, K, dirs)
        if mode != "RNN_RELU" or _relu_top_alive(weights, x, state, D, H, L, bias, bidir):
            break
    grad_weights = _normal(rng, B, K) if grads else None

    def judge(out):
        maker, extra = _TORCH_STACK[mode]
        theirs = _reference(maker(D, H, num_layers=L, bias=bias, batch_first=True, bidirectional=bidir, **extra),
                            weights)
        fc = _reference(nn.Linear(dirs * H, K), {"weight": weights["fc.weight"], "bias": weights["fc.bias"]})
        xr, *sr = _leaves([x, *(state or [])], grads)
        if not given:
            hx = None
        elif lstm:  # a model that takes one tensor for both h0 and c0 is graded that way
            hx = (sr[0], sr[0]) if out.get("hx_form") == "single" else tuple(sr)
        else:
            hx = sr[0]
        _, h_n = theirs(xr, hx)
        h_n = h_n[0] if lstm else h_n  # (L * dirs, B, H); the top layer comes last
        expected = fc(torch.cat([h_n[-2], h_n[-1]], dim=1) if bidir else h_n[-1])
        assert_close(out["out"], expected, ATOL, RTOL, f"{label}: output")
        if grads:
            params = {**dict(theirs.named_parameters()), **{f"fc.{n}": p for n, p in fc.named_parameters()}}
            expected_grads = _expected_grads([expected], [grad_weights], xr, sr, ["h0", "c0"], params)
            _compare_grads(label, out.get("grads"), expected_grads, GRAD_ATOL, GRAD_RTOL)

    probe = Probe("model_case", bidir=bidir, D=D, H=H, L=L, bias=bias, K=K, weights=weights, x=x,
                  state=state, grad_weights=grad_weights)
    return probe, judge


def _check_structure(out, mode, bidir, D, H, L, K):
    dirs = 2 if bidir else 1
    blocks = _BLOCKS[mode]
    for attr, entry in out["lists"].items():
        require(entry["module_list"], f"{attr} should be an nn.ModuleList, got {entry['type']}")
        cells = entry["cells"]
        require(len(cells) == L, f"{attr} holds {len(cells)} cells, expected num_layers={L}")
        for layer, cell in enumerate(cells):
            where = f"{attr}[{layer}]"
            require(cell["type"] == _CELL_NAME[mode], f"{where} is a {cell['type']}, expected a {_CELL_NAME[mode]}")
            fan_in = D if layer == 0 else dirs * H
            require(cell["x2h"] == [blocks * H, fan_in],
                    f"{where}.x2h.weight: shape {_shape_text(cell['x2h'])}, expected {(blocks * H, fan_in)} "
                    f"(layer {layer} reads {fan_in} features)")
            if mode.startswith("RNN_"):
                require(cell["nonlinearity"] == mode[4:].lower(),
                        f"{where} uses nonlinearity {cell['nonlinearity']!r} for mode {mode}")
    require(not out["shared"], "rnn_cell_list and rnn_cell_list_rev share cells; each direction needs its own")
    require(out["fc"] == [K, dirs * H], f"fc.weight: shape {_shape_text(out['fc'])}, expected {(K, dirs * H)}")


def _model_unit(name: str, grade_id: str, bidir: bool) -> Unit:
    unit = Unit(name, grade_id=grade_id, objects=("cls",), options=("mode",), probes=probes,
                policy=FROM_SCRATCH)
    unit.label = lambda opts: f"{name}({opts.get('mode')!r})"
    unit.stand_ins = STAND_INS  # graded with the grader's cells, whatever the student's cells use

    @unit.check("structure (3 layers, separate directions)" if bidir else "structure (3 layers)", weight=1)
    def structure(rng, mode=None):
        D, H, L, K = 5, 4, 3, 2
        _mode(mode)
        return (Probe("model_layout", bidir=bidir, D=D, H=H, L=L, K=K),
                lambda out: _check_structure(out, mode, bidir, D, H, L, K))

    if bidir:
        cases = [("1 layer (B=3, T=4)", "1 layer", 3, 4, 5, 4, 1, {}),
                 ("2 layers (B=2, T=3)", "2 layers", 2, 3, 4, 5, 2, {})]
    else:
        # Only this check passes an initial state: hx is a side feature, and a model
        # that handles it differently should not lose the checks of its core behaviour.
        cases = [("1 layer, default state (B=3, T=4)", "1 layer, default state", 3, 4, 5, 4, 1, {}),
                 ("2 layers, given initial state hx (B=2, T=3)", "2 layers, given state", 2, 3, 4, 5, 2,
                  {"given": True})]
    cases += [("3 layers, bias=False", "3 layers, bias=False", 2, 3, 3, 4, 3, {"bias": False}),
              ("batch size 1 (2 layers)", "batch size 1", 1, 4, 3, 4, 2, {}),
              ("sequence length 1 (2 layers)", "sequence length 1", 2, 1, 3, 4, 2, {}),
              ("gradients w.r.t. input and all weights (2 layers)", "gradients", 2, 3, 3, 4, 2, {"grads": True})]
    if bidir:
        cases[2] = ("3 layers, bias=False (B=2, T=3)", *cases[2][1:])
    for check_name, *case in cases:
        def make(rng, label, *sizes, **kw):
            return _model_case(rng, label, *sizes, bidir=bidir, **kw)
        unit.check(check_name, weight=1)(_cases(make, [case]))
    return unit


rnn_model_unit = _model_unit("RNNModel", "test_rnn_model", bidir=False)
bidir_model_unit = _model_unit("BidirRecurrentModel", "test_bidir_model", bidir=True)
check_rnn_model = rnn_model_unit.entry_point()
check_bidir_model = bidir_model_unit.entry_point()


# --------------------------------------------------------------------------- figure question

abc_unit = Unit("models behind curves A, B, C", grade_id="test_abc_answers",
                objects=("A_model", "B_model", "C_model"), probes=probes)


def _abc_key() -> dict:
    try:
        with open(ABC_KEY_PATH, encoding="utf-8") as f:
            key = json.load(f)
    except (OSError, ValueError):
        key = None
    if not isinstance(key, dict) or any(key.get(letter) not in ABC_CHOICES for letter in "ABC"):
        raise CheckFailed(f"answer key {ABC_KEY_PATH.name} is missing or invalid (instructor: "
                          "generate the figure first)")
    return key


def _abc_check(letter):
    def check(rng):
        key = _abc_key()

        def judge(out):
            kind, text = out
            shown = repr(text) if kind == "str" else text  # the kernel sent a repr for non-strings
            require(kind == "str" and text in ABC_CHOICES,
                    f"{letter}_model must be exactly 'RNN', 'LSTM' or 'GRU', not {shown}")
            require(text == key[letter], f"{letter}_model: {text!r} is not the model behind curve {letter}")
        return Probe("answer", variable=f"{letter}_model"), judge
    return check


for _letter in "ABC":
    abc_unit.check(f"curve {_letter}", weight=1)(_abc_check(_letter))
check_abc_answers = abc_unit.entry_point()
