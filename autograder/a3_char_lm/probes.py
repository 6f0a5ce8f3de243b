"""Probe functions of a3_char_lm: sent as source into the student's kernel.

Each ``fn(student, **inputs)`` calls the student's code on inputs the grader drew and
returns plain data; nothing here compares with a reference (the grader judges). Only
torch, numpy and the standard library may be imported. The small models built here are
fixtures for the functions that take a model (macs, size, evaluate, generate), so that
those units do not depend on the student's own CharModel.
"""

import torch
from torch import nn

if "ProbeError" not in globals():
    class ProbeError(Exception):
        """A message about the student's code (the harness provides the real one)."""

RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


# The harness's probe_context (kernel_side): every call starts from the same torch seed, on
# one thread (tiny models), and leaves the kernel's RNG and thread count as they were.
PROBE_SEED = 0
PROBE_THREADS = 1


def _raised(fn, *args):
    """What calling fn raised: {"raised": type name, "message": str} or {"returned": value}."""
    try:
        value = fn(*args)
    except Exception as exc:  # the student's error is the data here
        return {"raised": type(exc).__name__, "message": str(exc)[:300], "args": [repr(a)[:80] for a in exc.args]}
    return {"returned": repr(value)[:200]}


def _plain(value):
    """Tensors stay tensors; lists/tuples/dicts are walked; other values as they are."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ data

def vocab_case(student, text):
    chars, stoi = student["build_vocab"](text)
    return {"chars": list(chars) if isinstance(chars, (list, tuple, str)) else repr(chars)[:200],
            "chars_type": type(chars).__name__,
            "stoi": dict(stoi) if isinstance(stoi, dict) else repr(stoi)[:200]}


def encode_case(student, text, stoi):
    out = student["encode"](text, stoi)
    return {"type": type(out).__name__, "value": _plain(out) if isinstance(out, torch.Tensor) else repr(out)[:300]}


def encode_unknown(student, text, stoi):
    return _raised(student["encode"], text, stoi)


def decode_case(student, ids, chars, as_list):
    arg = ids.tolist() if as_list else ids
    out = student["decode"](arg, chars)
    return out if isinstance(out, str) else {"not_a_string": repr(out)[:200]}


def windows_case(student, ids, seq_len):
    out = student["make_windows"](ids.clone(), seq_len)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ProbeError(f"make_windows should return (X, y), got {type(out).__name__}")
    return [_plain(out[0]), _plain(out[1])]


def split_case(student, text, seq_len, val_fraction, cut):
    """The student's train_val_windows, plus what their own pieces give for the same split."""
    out = student["train_val_windows"](text, seq_len, val_fraction)
    if not isinstance(out, (tuple, list)) or len(out) != 4:
        raise ProbeError(f"train_val_windows should return (chars, stoi, (X_train, y_train), (X_val, y_val)), "
                         f"got {type(out).__name__}")
    chars, stoi, train, val = out
    result = {"chars": list(chars), "stoi": dict(stoi), "train": _plain(list(train)), "val": _plain(list(val))}
    try:  # the composition of the student's own pieces (None if they do not run)
        p_chars, p_stoi = student["build_vocab"](text)
        tr = student["make_windows"](student["encode"](text[:cut], p_stoi), seq_len)
        va = student["make_windows"](student["encode"](text[cut:], p_stoi), seq_len)
        result["pieces"] = {"chars": list(p_chars), "train": _plain(list(tr)), "val": _plain(list(va))}
    except Exception:
        result["pieces"] = None
    return result


# ----------------------------------------------------------------- model

def _state(state):
    if isinstance(state, (tuple, list)):
        return tuple(_plain(s) for s in state)
    return _plain(state)


def char_model_case(student, config, x, split, state0):
    """Build the student's CharModel (seeded), return its parameters and its outputs."""
    model = student["CharModel"](config["vocab_size"], config["hidden_size"], cell=config["cell"],
                                 num_layers=config["num_layers"], embedding_dim=config["embedding_dim"],
                                 head_hidden=config["head_hidden"])
    if not isinstance(model, nn.Module):
        raise ProbeError(f"CharModel(...) should be an nn.Module, got {type(model).__name__}")
    model.eval()
    params = [[name, p.detach().clone()] for name, p in model.named_parameters()]
    with torch.no_grad():
        out = model(x)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ProbeError("forward(x) should return (logits, state)")
        logits, state = out
        second = None
        if split is not None:
            first, mid = model(x[:, :split])
            second, _ = model(x[:, split:], mid)
        if state0 is not None:
            given, _ = model(x, tuple(state0) if isinstance(state0, (tuple, list)) else state0)
        else:
            given = None
    return {"params": params, "logits": _plain(logits), "state": _state(state),
            "second": _plain(second), "given": _plain(given),
            "modules": sorted({type(m).__name__ for m in model.modules()})}


class _Layers(nn.Module):
    """A CharModel-shaped holder (embedding, rnn, head, fc) for macs and size probes."""

    def __init__(self, config):
        super().__init__()
        self.embedding = nn.Embedding(config["vocab_size"], config["embedding_dim"])
        self.rnn = RECURRENT[config["cell"]](config["embedding_dim"], config["hidden_size"],
                                             num_layers=config["num_layers"], batch_first=True)
        hh = config["head_hidden"]
        self.head = nn.Sequential(nn.Linear(config["hidden_size"], hh), nn.ReLU()) if hh else None
        self.fc = nn.Linear(hh or config["hidden_size"], config["vocab_size"])


def macs_case(student, config):
    value = student["macs_per_step"](_Layers(config))
    return {"type": type(value).__name__, "value": _plain(value)}


def size_case(student, config, dtype, frozen, norm, buffer_shape):
    model = _Layers(config)
    if norm:
        model.norm = nn.LayerNorm(config["hidden_size"]) if norm == "layer" else nn.BatchNorm1d(config["hidden_size"])
    if buffer_shape:
        model.register_buffer("counts", torch.zeros(buffer_shape, dtype=torch.long))
    model.to({"float32": torch.float32, "float64": torch.float64, "float16": torch.float16}[dtype])
    if frozen:
        model.embedding.weight.requires_grad_(False)
    value = student["model_size_bytes"](model)
    return {"type": type(value).__name__, "value": _plain(value)}


# --------------------------------------------------------------- metrics

def metric_case(student, metric, logits, targets):
    value = student[metric](logits.clone(), targets.clone())
    return {"type": type(value).__name__, "value": _plain(value)}


class _FixtureLM(nn.Module):
    """embedding -> recurrent layer -> dropout -> linear, in float64, weights from the grader.
    It notes whether it ran with gradients on and in training mode."""

    def __init__(self, config, weights):
        super().__init__()
        self.embedding = nn.Embedding(config["vocab_size"], config["embedding_dim"])
        self.rnn = RECURRENT[config["cell"]](config["embedding_dim"], config["hidden_size"], batch_first=True)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(config["hidden_size"], config["vocab_size"])
        self.double()
        self.load_state_dict(weights)
        self.calls = []

    def forward(self, x, state=None):
        self.calls.append((torch.is_grad_enabled(), self.training, tuple(x.shape)))
        out, state = self.rnn(self.embedding(x), state)
        return self.fc(self.drop(out)), state


def evaluate_case(student, config, weights, X, y, batch_size):
    model = _FixtureLM(config, weights)
    model.train()
    out = student["evaluate"](model, X.clone(), y.clone(), batch_size)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ProbeError(f"evaluate should return (loss, accuracy), got {type(out).__name__}")
    return {"loss": _plain(out[0]), "accuracy": _plain(out[1]),
            "grad": any(c[0] for c in model.calls), "training": any(c[1] for c in model.calls),
            "batches": [c[2][0] for c in model.calls]}


def generate_case(student, config, weights, prefix, n_chars, chars, temperature, seed, global_seed):
    model = _FixtureLM(config, weights)
    model.train()
    stoi = {c: i for i, c in enumerate(chars)}
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if global_seed is not None:
        torch.manual_seed(global_seed)
    text = student["generate"](model, prefix, n_chars, stoi, list(chars), temperature=temperature,
                               generator=generator)
    return {"text": text if isinstance(text, str) else repr(text)[:200], "is_str": isinstance(text, str),
            "grad": any(c[0] for c in model.calls), "training": any(c[1] for c in model.calls),
            "calls": [list(c[2]) for c in model.calls][:5]}
