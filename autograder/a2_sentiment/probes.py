"""Kernel-side probes for a2_sentiment: call the student's code, send back plain data.

This module's SOURCE is sent into the student's kernel during grading, so it imports
only torch, numpy and the standard library (matplotlib, which the notebook itself uses,
only inside the plot probe) and nothing from the grader's own package: the kernel must
not see reference code. Each probe ``fn(student, **inputs)`` gets the student's objects by
the unit's parameter names (``student["train_model"]``) and inputs the grader drew; it
returns what the student's code produced (results, histories, final weights, figure
contents) and decides nothing. The grader's judges compare.

The helper models the probes build (``BagModel``, ``SentimentLike``, ``Tied``, ``Nested``,
``TwoLayer``) are plain course material; the grader imports this module to build the
same models for its reference runs.
"""
from __future__ import annotations


import numpy as np
import torch
from torch import nn

if "ProbeError" not in globals():  # the kernel injects its own; this one serves imports
    class ProbeError(Exception):
        """A clear message about the student's code (shown as is)."""


PROBE_SEED = 0  # the harness's probe_context (kernel_side): torch seeded, random states kept


# ------------------------------------------------------------------ plain data

def type_names(obj) -> list[str]:
    """``module.Class`` for the type of ``obj`` and each of its bases."""
    return [f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__]


def plain(value, depth: int = 0):
    """``value`` as data the grader can read: numbers, strings, containers, tensors and
    numeric arrays as they are; anything else as ``"<type object>"``."""
    if depth > 20:
        return "<nested too deeply>"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, np.ndarray):
        return value.copy() if value.dtype.kind in "biuf" else f"<ndarray of {value.dtype}>"
    if isinstance(value, (list, tuple)):
        items = [plain(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            k = plain(k, depth + 1)
            out[k if isinstance(k, (str, int, float, bool, type(None))) else repr(k)] = plain(v, depth + 1)
        return out
    return f"<{type(value).__name__} object>"


# ------------------------------------------------------------- generic calls

def call(student, fn, cases, echo=False):
    """``student[fn](*args, **kwargs)`` for each case ``{"args": [...], "kwargs": {...}}``.

    Returns the plain results in order; with ``echo`` each as ``{"result", "args"}``, the
    arguments as they were after the call (to see whether the input was modified).
    """
    f = student[fn]
    out = []
    for case in cases:
        args, kwargs = case.get("args", []), case.get("kwargs", {})
        result = plain(f(*args, **kwargs))
        out.append({"result": result, "args": plain(args)} if echo else result)
    return out


def raises(student, fn, cases):
    """For each case: None if the call returned, else the exception's type names and message."""
    f = student[fn]
    out = []
    for case in cases:
        try:
            f(*case.get("args", []), **case.get("kwargs", {}))
        except Exception as exc:  # the grader decides which exception was right
            out.append({"types": type_names(exc), "message": str(exc)[:200]})
        else:
            out.append(None)
    return out


# ------------------------------------------------------------------ models

class SentimentLike(nn.Module):
    """The notebook's layout (embedding -> recurrent layer -> fc), for count_parameters."""

    def __init__(self, kind: str, vocab_size: int, embed_dim: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](embed_dim, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)


class Tied(nn.Module):
    """Output layer shares the embedding matrix (weight tying)."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.decoder = nn.Linear(dim, vocab_size)
        self.decoder.weight = self.embedding.weight


class Nested(nn.Module):
    """Layers inside Sequentials, and a layer without parameters."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, width: int):
        super().__init__()
        self.features = nn.Sequential(nn.Embedding(vocab_size, embed_dim),
                                      nn.LSTM(embed_dim, hidden_size, batch_first=True))
        self.head = nn.Sequential(nn.Linear(hidden_size, width), nn.ReLU(), nn.Linear(width, 1))
        self.dropout = nn.Dropout(0.1)


COUNT_MODELS = {"sentiment": SentimentLike, "tied": Tied, "nested": Nested}


def count_model(spec: dict) -> nn.Module:
    """``COUNT_MODELS[spec["model"]](*spec["sizes"])`` with the layers ``spec["frozen"]`` frozen."""
    model = COUNT_MODELS[spec["model"]](*spec["sizes"])
    for name in spec.get("frozen", []):
        getattr(model, name).requires_grad_(False)
    return model


def count_parameters(student, spec):
    """The student's count_parameters on the helper model ``spec`` describes."""
    return plain(student["count_parameters"](count_model(spec)))


class BagModel(nn.Module):
    """Logit = mean of one learned score per token + bias: any order, any length."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.emb(x).squeeze(-1).mean(dim=1) + self.bias


def bag_model(weights: dict) -> BagModel:
    """A BagModel holding ``weights`` (its state_dict: ``emb.weight``, ``bias``)."""
    model = BagModel(weights["emb.weight"].shape[0])
    model.load_state_dict(weights)
    return model


class TwoLayer(nn.Sequential):
    """A small two-layer net whose weights a fake training changes in place."""

    def __init__(self, inputs: int, hidden: int):
        super().__init__(nn.Linear(inputs, hidden), nn.Linear(hidden, 1))


def two_layer(weights: dict) -> TwoLayer:
    model = TwoLayer(weights["0.weight"].shape[1], weights["0.weight"].shape[0])
    model.load_state_dict(weights)
    return model


def state(model: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------- SentimentRNN

def _build(student, config, seed):
    kind, v, e, h = config
    torch.manual_seed(seed)
    model = student["model_class"](kind, vocab_size=v, embed_dim=e, hidden_size=h)
    if not isinstance(model, nn.Module):
        raise ProbeError(f"SentimentRNN({kind!r}, ...) built a {type(model).__name__}, not an nn.Module")
    return model


_LAYER_FACTS = ("num_embeddings", "embedding_dim", "input_size", "hidden_size", "num_layers", "bidirectional",
                "batch_first", "nonlinearity", "in_features", "out_features")


def _layer(layer):
    if layer is None:
        return None
    facts = {"types": type_names(layer)}
    for attr in _LAYER_FACTS:
        value = getattr(layer, attr, None)
        if isinstance(value, (bool, int, str)):
            facts[attr] = value
    weight = getattr(layer, "weight", None)
    facts["weight_shape"] = list(weight.shape) if isinstance(weight, torch.Tensor) else None
    if isinstance(layer, nn.Module):
        facts["parameters"] = sum(p.numel() for p in layer.parameters())
    return facts


def model_layers(student, configs, seed):
    """For each ``(kind, V, E, H)``: the built model's embedding/rnn/fc facts and its total size."""
    out = []
    for config in configs:
        model = _build(student, config, seed)
        layers = {name: _layer(getattr(model, name, None)) for name in ("embedding", "rnn", "fc")}
        out.append({"layers": layers, "total": sum(p.numel() for p in model.parameters())})
    return out


def model_forward(student, config, seed, x, weights=None):
    """Logits of a model of ``config`` on ``x``, holding ``weights`` (the grader's) if given."""
    model = _build(student, config, seed)
    try:
        if weights is not None:
            model.load_state_dict(weights)
    except Exception as exc:
        raise ProbeError(f"{config[0]}: could not load embedding/rnn/fc weights into your model "
                         f"({str(exc).splitlines()[0][:200]}); are the layers named and sized as asked?") from None
    with torch.no_grad():
        return plain(model(x))


def model_init(student, config, seed):
    """The freshly built model's ``rnn.weight_ih_l0``."""
    model = _build(student, config, seed)
    weight = getattr(getattr(model, "rnn", None), "weight_ih_l0", None)
    if not isinstance(weight, torch.Tensor):
        raise ProbeError(f"{config[0]}: the model has no rnn.weight_ih_l0")
    return weight.detach().cpu().clone()


# ---------------------------------------------------------------- training

def evaluate(student, weights, x, y):
    """The student's evaluate on a BagModel holding ``weights``."""
    return plain(student["evaluate"](bag_model(weights), x, y))


def train(student, weights, x, y, kwargs):
    """The student's train_model on a BagModel: its history and the final weights."""
    model = bag_model(weights)
    history = student["train_model"](model, x, y, **kwargs)
    return {"history": plain(history), "state": state(model)}


def train_callback(student, weights, x, y, kwargs):
    """train_model with a callback that records every call it receives."""
    model = bag_model(weights)
    calls = []

    def callback(epoch, logs, model_seen):
        calls.append({"epoch": plain(epoch), "logs": plain(dict(logs)), "same_model": model_seen is model})

    history = student["train_model"](model, x, y, callback=callback, **kwargs)
    return {"history": plain(history), "calls": calls}


# -------------------------------------------------------------- best epoch

def fake_training(keeper, model, history, steps):
    """Epoch e adds ``steps[e]`` to every weight in place, as an optimiser would, then
    calls ``keeper.update(e, logs, model)``; returns what update returned."""
    flags = []
    for epoch, step in enumerate(steps):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(step)
        flags.append(keeper.update(epoch, {k: v[epoch] for k, v in history.items()}, model))
    return flags


def keep_best(student, weights, history, steps, restore):
    """Run a fresh KeepBest through a fake training; what it tracked and, with
    ``restore``, the weights restore() leaves."""
    model = two_layer(weights)
    keeper = student["keep_best_class"]()
    flags = fake_training(keeper, model, history, steps)
    out = {"best_epoch": plain(getattr(keeper, "best_epoch", "<missing>")),
           "best_score": plain(getattr(keeper, "best_score", "<missing>")), "flags": plain(flags)}
    if restore:
        back = keeper.restore(model)
        out["restored"] = state(back if isinstance(back, nn.Module) else model)
    return out


def update_flags(student, scores):
    """What update() returns for a sequence of val_accuracy values on a small model."""
    model = nn.Linear(2, 1)
    keeper = student["keep_best_class"]()
    return [plain(keeper.update(epoch, {"val_accuracy": s}, model)) for epoch, s in enumerate(scores)]


# -------------------------------------------------------------------- plots

def _numbers(values):
    try:
        return np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        return None


def _axes(ax):
    box = ax.get_position()
    lines = [{"label": str(ln.get_label()), "x": _numbers(ln.get_xdata()), "y": _numbers(ln.get_ydata())}
             for ln in ax.get_lines()]
    return {"title": str(ax.get_title()), "ylabel": str(ax.get_ylabel()), "legend": ax.get_legend() is not None,
            "position": [float(box.x0), float(box.y0), float(box.x1), float(box.y1)], "lines": lines}


def plot(student, history):
    """What the student's plot_history draws for ``history``; every figure it opened is closed."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    fig = None
    try:
        fig = student["plot_history"](history)
        names = type_names(fig)
        axes = [_axes(ax) for ax in fig.axes] if "matplotlib.figure.Figure" in names else []
        return {"types": names, "axes": axes}
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)
        if fig is not None and "matplotlib.figure.Figure" in type_names(fig):
            plt.close(fig)
