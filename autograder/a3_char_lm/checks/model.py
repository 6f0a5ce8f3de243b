"""a3_char_lm's hidden checks for CharModel, macs_per_step and model_size_bytes (see ``checks``)."""
from __future__ import annotations

import numpy as np
import torch

from .. import probes
from .. import reference as ref
from ...harness import CheckFailed, Probe, Unit, assert_close, require, tensor_of
from .common import CELLS, _build, _counted, _number


# -------------------------------------------------------------- CharModel

model_unit = Unit("CharModel", grade_id="test_char_model", threads=1, probes=probes, objects=("CharModel",))


def _config(cell, layers=1, head=False):
    """Fixed sizes, all different, so every tensor of the model has a shape of its own."""
    return {"vocab_size": 37, "hidden_size": 11, "cell": cell, "num_layers": layers,
            "embedding_dim": 7, "head_hidden": 73 if head else None}


def _describe(c):
    head = f", head_hidden={c['head_hidden']}" if c["head_hidden"] else ""
    return (f"CharModel({c['vocab_size']}, {c['hidden_size']}, cell={c['cell']!r}, num_layers={c['num_layers']}, "
            f"embedding_dim={c['embedding_dim']}{head})")


def _reference_with(params, config) -> ref.CharModel:
    """A reference CharModel holding the student's tensors, matched by role (recurrent
    weights by their torch name, the rest by their distinct shapes)."""
    model = _build(config)
    slots = {}
    for name, p in model.named_parameters():
        key = ("rnn", name.split(".")[-1]) if name.startswith("rnn.") else ("shape", tuple(p.shape))
        slots[key] = name
    state, missing = {}, dict(slots)
    for name, tensor in params:
        suffix = name.split(".")[-1]
        key = ("rnn", suffix) if ("rnn", suffix) in slots else ("shape", tuple(tensor.shape))
        target = missing.pop(key, None)
        require(target is not None, f"{_describe(config)}: unexpected parameter {name} of shape "
                f"{tuple(tensor.shape)} (expected embedding, one nn.{config['cell'].upper()} layer stack"
                f"{', a hidden linear layer' if config['head_hidden'] else ''} and the output linear layer)")
        state[target] = tensor
    require(not missing, f"{_describe(config)}: no parameter for {sorted(missing.values())}")
    model.load_state_dict(state)
    return model.eval()


def _model_probe(rng, config, batch=None, steps=None, with_state=False):
    b = 3 if batch is None else batch
    t = 5 if steps is None else steps
    x = torch.from_numpy(rng.integers(0, config["vocab_size"], size=(b, t)).astype(np.int64))
    split = 2 if t > 1 else None
    state0 = None
    if with_state:
        shape = (config["num_layers"], b, config["hidden_size"])
        h0 = torch.from_numpy(rng.normal(0, 0.5, size=shape).astype(np.float32))
        c0 = torch.from_numpy(rng.normal(0, 0.5, size=shape).astype(np.float32))
        state0 = (h0, c0) if config["cell"] == "lstm" else h0
    return Probe("char_model_case", config=config, x=x, split=split, state0=state0), (x, split, state0)


def _count_judge(config):
    want = ref.param_count(**config)

    def judge(out):
        got = sum(int(p.numel()) for _, p in out["params"])
        require(got == want, f"{_describe(config)} has {got:,} parameters, expected {want:,}")
    return judge


@model_unit.check("parameter count: embedding, one nn.RNN/LSTM/GRU layer, linear output", weight=1)
def _model_counts(rng):
    configs = [_config(c) for c in CELLS]
    judges = [_count_judge(c) for c in configs]
    return [_model_probe(rng, c)[0] for c in configs], lambda outs: [j(o) for j, o in zip(judges, outs)]


@model_unit.check("parameter count: stacked layers and a hidden head layer", weight=1)
def _model_counts_deep(rng):
    configs = [_config("lstm", layers=3, head=True), _config("gru", layers=2)]
    judges = [_count_judge(c) for c in configs]
    return [_model_probe(rng, c)[0] for c in configs], lambda outs: [j(o) for j, o in zip(judges, outs)]


def _shape_judge(config, x):
    b, t = x.shape
    layers, h = config["num_layers"], config["hidden_size"]

    def judge(out):
        logits = tensor_of(out["logits"], "logits")
        require(tuple(logits.shape) == (b, t, config["vocab_size"]),
                f"{_describe(config)} on x of shape {(b, t)}: logits of shape {tuple(logits.shape)}, expected "
                f"{(b, t, config['vocab_size'])} (a prediction at every position)")
        state = out["state"]
        hs = state[0] if config["cell"] == "lstm" and isinstance(state, tuple) else state
        require(isinstance(hs, torch.Tensor) and tuple(hs.shape) == (layers, b, h),
                f"{_describe(config)}: the returned state should be the recurrent layer's "
                f"({'(h, c), each ' if config['cell'] == 'lstm' else ''}of shape {(layers, b, h)})")
    return judge


@model_unit.check("forward: logits (B, T, vocab) at every position and the state, batch size 1 included", weight=1)
def _model_shapes(rng):
    cases = [_model_probe(rng, _config(c), batch=bsz) for c, bsz in zip(CELLS, (1, 3, 2))]
    cases.append(_model_probe(rng, _config("lstm", layers=2), batch=2, steps=1))
    judges = [_shape_judge(p.args["config"], x) for p, (x, _, _) in cases]
    return [p for p, _ in cases], lambda outs: [j(o) for j, o in zip(judges, outs)]


def _values_judge(config, x):
    def judge(out):
        model = _reference_with(out["params"], config)
        with torch.no_grad():
            want, _ = model(x)
        assert_close(out["logits"], want, 1e-5, 1e-4, f"{_describe(config)} logits")
    return judge


@model_unit.check("values: embedding -> recurrent layer -> linear, with the weights copied into torch layers", weight=1)
def _model_values(rng):
    cases = [_model_probe(rng, _config(c)) for c in CELLS]
    judges = [_values_judge(p.args["config"], x) for p, (x, _, _) in cases]
    return [p for p, _ in cases], lambda outs: [j(o) for j, o in zip(judges, outs)]


@model_unit.check("values: stacked layers and the ReLU head layer", weight=1)
def _model_values_head(rng):
    cases = [_model_probe(rng, _config(c, layers=2, head=True)) for c in ("gru", "lstm")]
    judges = [_values_judge(p.args["config"], x) for p, (x, _, _) in cases]
    return [p for p, _ in cases], lambda outs: [j(o) for j, o in zip(judges, outs)]


def _state_judge(config, x, split, state0):
    def judge(out):
        model = _reference_with(out["params"], config)
        with torch.no_grad():
            want, _ = model(x)
            given, _ = model(x, state0)
        assert_close(out["second"], want[:, split:], 1e-5, 1e-4,
                     f"{_describe(config)}: forward(x[:, {split}:], state) after forward(x[:, :{split}]) "
                     "(the state must carry the sequence on)")
        assert_close(out["given"], given, 1e-5, 1e-4, f"{_describe(config)}: forward(x, state) with a given state")
    return judge


@model_unit.check("state: a given state is used, and passing it on continues the sequence", weight=1)
def _model_state(rng):
    cases = [_model_probe(rng, _config(c, layers=layers), with_state=True) for c, layers in zip(CELLS, (2, 1, 2))]
    judges = [_state_judge(p.args["config"], *extra) for p, extra in cases]
    return [p for p, _ in cases], lambda outs: [j(o) for j, o in zip(judges, outs)]


check_char_model = model_unit.entry_point()


# ------------------------------------------------------------- macs_per_step

macs_unit = Unit("macs_per_step", grade_id="test_macs_per_step", threads=1, probes=probes, objects=("macs_per_step",))


def _macs_judge(config):
    want = _counted(config)
    gates = ref.GATES[ref.RECURRENT[config["cell"]]]

    def judge(out):
        value = out["value"]
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        require(isinstance(value, int) and not isinstance(value, bool),
                f"macs_per_step should return an int, got {out['type']}")
        if value != want:
            hint = ""
            rnn_part = sum(gates * config["hidden_size"] * ((config["embedding_dim"] if k == 0 else
                           config["hidden_size"]) + config["hidden_size"]) for k in range(config["num_layers"]))
            for g in (1, 2, 3, 4, 6, 8):
                if g != gates and value == want - rnn_part + rnn_part // gates * g:
                    hint = f" (that is {g} weight blocks per layer; nn.{config['cell'].upper()} has {gates})"
            raise CheckFailed(f"{_describe(config)}: macs_per_step gave {value:,}, FlopCounterMode counts "
                              f"{want:,} multiply-accumulates for one step{hint}")
    return judge


def _macs_check(cell, layers=1, head=False):
    def fn(rng):
        config = _config(cell, layers=layers, head=head)
        return Probe("macs_case", config=config), _macs_judge(config)
    return fn


macs_unit.check("nn.RNN: one weight block, matches FlopCounterMode", weight=1)(_macs_check("rnn"))
macs_unit.check("nn.GRU: three weight blocks, matches FlopCounterMode", weight=1)(_macs_check("gru"))
macs_unit.check("nn.LSTM: four weight blocks, matches an nn.Linear step under FlopCounterMode", weight=1)(_macs_check("lstm"))


@macs_unit.check("stacked layers (input of the upper layers = hidden size) and the head layer", weight=1)
def _macs_deep(rng):
    configs = [_config(c, layers=layers, head=True) for c, layers in (("lstm", 3), ("gru", 2))]
    judges = [_macs_judge(c) for c in configs]
    return [Probe("macs_case", config=c) for c in configs], lambda outs: [j(o) for j, o in zip(judges, outs)]


check_macs_per_step = macs_unit.entry_point()


# ------------------------------------------------------------ model_size_bytes

size_unit = Unit("model_size_bytes", grade_id="test_model_size",
                 threads=1, probes=probes, objects=("model_size_bytes",))
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16}


def _size_expected(config, dtype, frozen, norm, buffer_shape):
    model = _build(config)
    if norm:
        model.norm = (torch.nn.LayerNorm(config["hidden_size"]) if norm == "layer"
                      else torch.nn.BatchNorm1d(config["hidden_size"]))
    if buffer_shape:
        model.register_buffer("counts", torch.zeros(buffer_shape, dtype=torch.long))
    model.to(DTYPES[dtype])
    trainable = sum(p.numel() * p.element_size() for p in model.parameters()) - (
        model.embedding.weight.numel() * model.embedding.weight.element_size() if frozen else 0)
    return ref.model_size_bytes(model), trainable, sum(p.numel() * p.element_size() for p in model.parameters())


def _size_check(dtype, cell, layers, head, frozen=False, norm=None, buffer=False):
    def fn(rng):
        config = _config(cell, layers=layers, head=head)
        shape = [3, 5] if buffer else None
        want, trainable, params_only = _size_expected(config, dtype, frozen, norm, shape)

        def judge(out):
            got = _number(out, "model_size_bytes")
            if got != want:
                hint = ""
                if got == 8 * want:
                    hint = " (that is in bits; the size is in bytes)"
                elif frozen and got == trainable:
                    hint = " (only the trainable parameters: frozen ones take memory too)"
                elif got == params_only:
                    hint = " (parameters only: buffers such as running statistics are saved too)"
                elif got * DTYPES[dtype].itemsize == want:
                    hint = " (that is the number of values; multiply by element_size())"
                raise CheckFailed(f"{_describe(config)} in {dtype}{', embedding frozen' if frozen else ''}"
                                  f"{', with ' + norm + ' norm' if norm else ''}"
                                  f"{', with an int64 buffer' if buffer else ''}: {got:g} bytes, expected {want:,}{hint}")
        return Probe("size_case", config=config, dtype=dtype, frozen=frozen, norm=norm, buffer_shape=shape), judge
    return fn


size_unit.check("float32 parameters: numel * 4 bytes", weight=1)(_size_check("float32", "lstm", 1, False))
size_unit.check("float64 and float16: element_size() of each tensor", weight=1)(_size_check(
    "float64", "gru", 2, True, norm="layer"))
size_unit.check("frozen parameters count too", weight=1)(_size_check("float16", "rnn", 1, True, frozen=True))
size_unit.check("buffers count (BatchNorm statistics, an int64 buffer)", weight=1)(_size_check(
    "float32", "lstm", 2, False, norm="batch", buffer=True))

check_model_size = size_unit.entry_point()
