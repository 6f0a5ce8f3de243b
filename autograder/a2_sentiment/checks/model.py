"""a2's hidden checks for SentimentRNN, count_parameters and recurrent_param_count (see ``checks``)."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
from torch import nn

from .. import probes as kit  # helper models: the grader builds the kernel's models again
from .. import reference as ref
from ...harness import CheckFailed, Probe, Unit, integer_of, per_case, require
from .common import KINDS, _calls, _case, _float32, _kind


# ============================================================== SentimentRNN

sentiment = Unit("SentimentRNN", grade_id="test_sentiment_model", objects=("model_class",), probes=kit)
DEFAULT = ("rnn", 2000, 50, 5)


# (vocabulary, embedding, hidden) per kind: fixed, all different, hidden != embedding.
SIZES = {"rnn": (123, 17, 9), "lstm": (211, 13, 6), "gru": (97, 21, 11)}


def _config(kind: str) -> tuple:
    return (kind, *SIZES[kind])


def _configs(rng) -> list[tuple]:
    """The coursework's default model, then each kind in random order."""
    return [DEFAULT] + [_config(str(k)) for k in rng.permutation(KINDS)]


def _qualname(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


MODULE, EMBEDDING, LINEAR = (_qualname(cls) for cls in (nn.Module, nn.Embedding, nn.Linear))


def _seed(rng) -> int:
    return int(rng.integers(0, 2 ** 31))


@sentiment.check("layers: Embedding -> nn.RNN/LSTM/GRU -> Linear(hidden, 1)", weight=1)
def _layers(rng):
    configs = _configs(rng)

    def judge(outs):
        for (kind, v, e, h), got in zip(configs, outs):
            layers = got["layers"]
            for name in ("embedding", "rnn", "fc"):
                require(layers[name] is not None and MODULE in layers[name]["types"],
                        f"{kind}: no layer attribute `{name}`")
            emb, rnn, fc = layers["embedding"], layers["rnn"], layers["fc"]
            require(EMBEDDING in emb["types"] and emb["weight_shape"] == [v, e],
                    f"{kind}: embedding should be nn.Embedding({v}, {e})")
            cls = ref.RECURRENT[kind]
            require(rnn["types"][0] == _qualname(cls),
                    f"{kind}: rnn is {rnn['types'][0].rsplit('.', 1)[-1]}, expected nn.{cls.__name__}")
            require((rnn.get("input_size"), rnn.get("hidden_size"), rnn.get("num_layers")) == (e, h, 1),
                    f"{kind}: rnn should read {e} features into {h} units, one layer")
            require(not rnn.get("bidirectional"), f"{kind}: rnn should be one-directional")
            if kind == "rnn":
                require(rnn.get("nonlinearity") == "tanh", "rnn: the SimpleRNN uses tanh")
            require(LINEAR in fc["types"] and (fc.get("in_features"), fc.get("out_features")) == (h, 1),
                    f"{kind}: fc should be nn.Linear({h}, 1)")
    return Probe("model_layers", configs=configs, seed=_seed(rng)), judge


@sentiment.check("exact parameter counts per layer (100,000 / 285 / 6 for the default)", weight=1)
def _counts(rng):
    configs = _configs(rng)

    def judge(outs):
        for (kind, v, e, h), got in zip(configs, outs):
            per_layer = {name: (got["layers"][name] or {}).get("parameters") for name in ("embedding", "rnn", "fc")}
            want = {"embedding": v * e, "rnn": ref.recurrent_param_count(kind, e, h), "fc": h + 1}
            require(per_layer == want, f"{kind}({v}, {e}, {h}): parameters per layer {per_layer}, expected {want}")
            require(sum(per_layer.values()) == got["total"],
                    f"{kind}: the model has parameters outside embedding, rnn and fc")
    return Probe("model_layers", configs=configs, seed=_seed(rng)), judge


def _model_weights(rng, config) -> dict:
    """Random weights for every tensor of the model ``config`` describes: large input
    weights and a positive fc bias, so a wrong time step or an extra sigmoid shows clearly."""
    kind, v, e, h = config
    shapes = {k: tuple(t.shape) for k, t in ref.SentimentRNN(kind, v, e, h).state_dict().items()}
    bound = 1.0 / math.sqrt(h)
    weights = {}
    for key, shape in shapes.items():
        if key == "embedding.weight":
            values = rng.normal(0.0, 1.0, size=shape)
        elif key == "rnn.weight_ih_l0":
            values = rng.normal(0.0, 0.5, size=shape)
        elif key == "fc.bias":
            values = rng.uniform(0.2, 0.5, size=shape)
        else:
            values = rng.uniform(-bound, bound, size=shape)
        weights[key] = _float32(values)
    return weights


def _padded_batch(rng, v: int, batch: int, steps: int) -> torch.Tensor:
    x = torch.from_numpy(rng.integers(1, v, size=(batch, steps)))
    x[int(rng.integers(0, batch)), int(rng.integers(2, steps)):] = 0  # post padding: the last steps read index 0
    return x


@sentiment.check("forward: logits from the hidden state after the last time step", weight=1)
def _forward(rng):
    cases = []
    for kind in rng.permutation(KINDS):
        config = _config(str(kind))
        cases.append((config, _model_weights(rng, config), _padded_batch(rng, config[1], 6, 9)))

    def judge(outs):
        for (config, weights, x), got in zip(cases, outs):
            kind = config[0]
            require(isinstance(got, torch.Tensor) and tuple(got.shape) == (6,),
                    f"{kind}: forward should return logits of shape (6,), got "
                    f"{tuple(got.shape) if isinstance(got, torch.Tensor) else _kind(got)}")
            reference = ref.SentimentRNN(*config)
            reference.load_state_dict(weights)
            with torch.no_grad():
                want = ref.forward_like(reference, kind, x)
            if not torch.allclose(got, want, atol=1e-5):
                hint = (" (these look like probabilities: return logits, the loss applies the sigmoid)"
                        if torch.allclose(got, torch.sigmoid(want), atol=1e-5) else "")
                raise CheckFailed(f"{kind}: logits differ from the last time step's hidden state "
                                  f"through fc (max diff {(got - want).abs().max():.2e}){hint}")
    probes = [Probe("model_forward", config=c, seed=_seed(rng), weights=w, x=x) for c, w, x in cases]
    return probes, judge


@sentiment.check("batch size 1 keeps its batch dimension", weight=1)
def _batch_one(rng):
    configs = [_config(k) for k in KINDS]

    def judge(outs):
        for (kind, *_), out in zip(configs, outs):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else _kind(out)
            require(shape == (1,), f"{kind}: batch of one gave shape {shape}, expected (1,)")
    probes = [Probe("model_forward", config=c, seed=_seed(rng), x=torch.from_numpy(rng.integers(0, c[1], size=(1, 4))))
              for c in configs]
    return probes, judge


@sentiment.check("input kernel initialised N(0, 0.001²), std 0.001", weight=1)
def _init(rng):
    configs = [(k, 150, 60, 22) for k in KINDS]  # enough weights for a std within 20%

    def judge(outs):
        for (kind, *_), w in zip(configs, outs):
            std, mean = w.double().std().item(), w.double().mean().item()
            require(0.0008 < std < 0.0012 and abs(mean) < 0.0002,
                    f"{kind}: weight_ih_l0 has mean {mean:.2g} and std {std:.2g}, expected N(0, 0.001²), std 0.001")
    return [Probe("model_init", config=c, seed=_seed(rng)) for c in configs], judge


check_sentiment_model = sentiment.entry_point()


# =========================================================== count_parameters

count = Unit("count_parameters", grade_id="test_count_parameters", objects=("count_parameters",), probes=kit)


# (vocabulary, embedding, hidden) per cell kind: fixed, all different, so that a count that
# mixes two sizes up is wrong (a count depends on sizes alone: these checks draw nothing).
COUNT_SIZES = {"rnn": (317, 11, 7), "lstm": (523, 17, 9), "gru": (211, 13, 5)}


def _sentiment_spec(kind: str, frozen=()) -> dict:
    return {"model": "sentiment", "sizes": [kind, *COUNT_SIZES[kind]], "frozen": list(frozen)}


def _same_count(case, got):
    what, spec = case
    require(isinstance(got, dict), f"{what}: expected a dict, got {_kind(got)}")
    got = {k: (integer_of(v, f"{what}[{k!r}]") if isinstance(v, (int, float, torch.Tensor, np.ndarray)) else v)
           for k, v in got.items()}
    want = ref.count_parameters(kit.count_model(spec))
    require(got == want, f"{what}: got {got}, expected {want}")
    require(list(got) == list(want), f"{what}: keys in order {list(got)}, expected {list(want)}")


# A check from ``draw(rng) -> [(what, spec)]``: count_parameters on each helper model.
counted = per_case(lambda cases: [Probe("count_parameters", spec=spec) for _, spec in cases], _same_count)


@count.check("SentimentRNN(rnn): 100,000 + 285 + 6 = 100,291", weight=1)
@counted
def _default_model(rng):
    return [("default model", {"model": "sentiment", "sizes": list(DEFAULT)}),
            ("rnn model", _sentiment_spec("rnn"))]


@count.check("LSTM model", weight=1)
@counted
def _lstm_model(rng):
    return [("lstm model", _sentiment_spec("lstm"))]


@count.check("frozen (non-trainable) parameters count too", weight=1)
@counted
def _frozen(rng):
    layers = ["embedding", "rnn", "fc"]
    frozen = [layers[0], layers[2]]
    return [(f"frozen {', '.join(frozen)}", _sentiment_spec("gru", frozen))]


@count.check("a shared (tied) tensor counts once", weight=1)
@counted
def _tied(rng):
    return [("tied embedding/decoder weights", {"model": "tied", "sizes": [47, 7]})]


@count.check("nested layers and parameter-free layers", weight=1)
@counted
def _nested(rng):
    return [("nested Sequential layers", {"model": "nested", "sizes": [29, 5, 3, 8]})]


check_count_parameters = count.entry_point()


# ========================================================= parameter ratio

ratio = Unit("recurrent_param_count", grade_id="test_param_ratio", objects=("recurrent_param_count",), probes=kit)


# Six (input, hidden) pairs, fixed: a tiny one, one with input == hidden, four with input !=
# hidden either way round, so a formula that mixes them up always fails. A count depends on
# the sizes alone, so these checks draw nothing and score the same under every secret.
RATIO_SIZES = ((1, 3), (37, 37), (5, 17), (96, 11), (23, 64), (128, 1))


def _sizes() -> list[tuple[int, int]]:
    return list(RATIO_SIZES)


def _torch_counts(bias: bool):
    def check(rng):
        cases = [(kind, d, h) for kind in KINDS for d, h in _sizes()]
        biases = 2 if bias else 0

        def judge(outs):
            for (kind, d, h), out in zip(cases, outs):
                cls = ref.RECURRENT[kind]
                want = sum(p.numel() for p in cls(d, h, bias=bias).parameters())
                got = integer_of(out, f"{kind}(input {d}, hidden {h}, biases={biases})")
                require(got == want, f"{kind}(input {d}, hidden {h}, biases={biases}): "
                        f"{got}, expected {want} (count of torch.nn.{cls.__name__})")
        return _calls("recurrent_param_count", [_case(k, d, h, biases=biases) for k, d, h in cases]), judge
    return check


ratio.check("matches torch.nn.RNN/LSTM/GRU (two bias vectors)", weight=1)(_torch_counts(True))
ratio.check("biases=0 matches bias=False", weight=1)(_torch_counts(False))


@ratio.check("biases=1 gives the Keras counts (280 for the SimpleRNN)", weight=1)
def _keras(rng):
    cases = [("rnn", 50, 5)] + [(kind, d, h) for kind in KINDS for d, h in _sizes()[:2]]

    def judge(outs):
        got = integer_of(outs[0], "Keras SimpleRNN(5)")
        require(got == 280, f"Keras SimpleRNN(5) on 50 features: {got}, expected 280 (one bias vector)")
        for (kind, d, h), out in zip(cases[1:], outs[1:]):
            got, want = integer_of(out, kind), ref.recurrent_param_count(kind, d, h, 1)
            require(got == want, f"Keras {kind.upper()}({h}) on {d} features: {got}, expected {want}")
    return _calls("recurrent_param_count", [_case(k, d, h, biases=1) for k, d, h in cases]), judge


@ratio.check("GRU:LSTM is exactly 3:4 for any sizes", weight=1)
def _ratio(rng):
    sizes = _sizes()

    def judge(outs):
        for i, (d, h) in enumerate(sizes):
            gru, lstm = (integer_of(v, "recurrent_param_count") for v in outs[2 * i:2 * i + 2])
            require(lstm != 0, f"LSTM count for input {d}, hidden {h} is 0")
            r = Fraction(gru, lstm)
            require(r == Fraction(3, 4), f"GRU:LSTM for input {d}, hidden {h} is {r}, expected exactly 3/4")
    return _calls("recurrent_param_count", [_case(k, d, h) for d, h in sizes for k in ("gru", "lstm")]), judge


check_param_ratio = ratio.entry_point()
