"""Hidden checks for a3_char_lm, on the checks harness (see ``harness``).

Every check draws fresh inputs from the grader's ``rng``, asks a probe in
``a3_char_lm.probes`` to run the student's code on them, and judges the returned data here
against ``a3_char_lm.reference`` with a message that says what is wrong. The notebook's grade
cells call the entry points, e.g. ``check_make_windows(make_windows, points=2)``.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import torch

from . import reference as ref
from ..harness import CheckFailed, Probe, Unit, assert_close, require

PROBES = Path(__file__).with_name("probes.py")
POOL = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()\n\téßø—")
CELLS = ("rnn", "lstm", "gru")


def _build(config, dtype=None) -> ref.CharModel:
    """A reference CharModel, built without touching the notebook's torch RNG."""
    with torch.random.fork_rng(devices=[]):
        model = ref.CharModel(**config)
    return model.to(dtype) if dtype is not None else model


def _counted(config) -> int:
    with torch.random.fork_rng(devices=[]):
        return ref.counted_macs(ref.CharModel(**config))


@contextlib.contextmanager
def _one_thread():
    """Tiny models run far faster on one thread, above all on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _check(unit, name):
    """``unit.check(name)`` with the check and its judge run on one thread."""
    def register(fn):
        def planned(rng, **options):
            with _one_thread():
                probes, judge = fn(rng, **options)

            def judged(out):
                with _one_thread():
                    return judge(out)
            return probes, judged
        unit.check(name)(planned)
        return fn
    return register


def _unit(name, grade_id, points, objects):
    return Unit(name, grade_id=grade_id, points=points, objects=objects, probes=PROBES)


def _text(rng, n, alphabet_size=None, alphabet=None):
    if alphabet is None:
        k = alphabet_size or 16
        alphabet = [POOL[i] for i in rng.choice(len(POOL), size=k, replace=False)]
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=n))


def _ids(rng, n, vocab):
    return torch.from_numpy(rng.integers(0, vocab, size=n).astype(np.int64))


def _tensor(value, what):
    require(isinstance(value, torch.Tensor), f"{what}: expected a torch tensor, got {value!r:.80}")
    return value


def _number(out, what):
    """A returned float (or int, or one-element tensor) as a Python float."""
    value = out["value"]
    if isinstance(value, torch.Tensor):
        require(value.numel() == 1, f"{what}: expected one number, got a tensor of shape {tuple(value.shape)}")
        return float(value.reshape(-1)[0])
    require(isinstance(value, (int, float)) and not isinstance(value, bool),
            f"{what}: expected a number, got {out['type']}")
    return float(value)


def _equal_long(got, want, what):
    got = _tensor(got, what)
    require(tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    require(got.dtype == torch.long, f"{what}: dtype {got.dtype}, expected torch.long (int64)")
    if not torch.equal(got, want):
        bad = int(torch.nonzero((got != want).reshape(len(want), -1).any(-1))[0]) if len(want) else 0
        raise CheckFailed(f"{what}: row {bad} is {got[bad].tolist()}, expected {want[bad].tolist()}")


# ------------------------------------------------------------- build_vocab

vocab_unit = _unit("build_vocab", "test_build_vocab", 1, ("build_vocab",))


def _vocab_judge(text, part):
    chars, stoi = ref.build_vocab(text)

    def judge(out):
        require(out["chars_type"] in ("list", "tuple"),
                f"chars should be a list, got {out['chars_type']}")
        if part in ("chars", "both"):
            require(out["chars"] == chars, f"chars for {text[:30]!r}...: {out['chars']!r:.200}, expected the sorted "
                    f"distinct characters {chars!r:.200}")
        if part in ("stoi", "both"):
            require(isinstance(out["stoi"], dict), f"stoi should be a dict, got {out['stoi']!r:.100}")
            require(out["stoi"] == stoi, f"stoi should map each character to its index in chars: "
                    f"got {out['stoi']!r:.200}")
    return judge


@_check(vocab_unit, "chars: the sorted distinct characters")
def _vocab_sorted(rng):
    text = _text(rng, 150)
    return Probe("vocab_case", text=text), _vocab_judge(text, "chars")


@_check(vocab_unit, "stoi: character -> its index in chars")
def _vocab_stoi(rng):
    text = _text(rng, 150)
    return Probe("vocab_case", text=text), _vocab_judge(text, "stoi")


@_check(vocab_unit, "spaces, newlines, tabs and non-ASCII characters count")
def _vocab_special(rng):
    text = _text(rng, 120, alphabet=list(" \n\téß—xyZ"))
    return Probe("vocab_case", text=text), _vocab_judge(text, "both")


@_check(vocab_unit, "a text of one repeated character")
def _vocab_one(rng):
    text = POOL[int(rng.integers(0, 26))] * 5
    return Probe("vocab_case", text=text), _vocab_judge(text, "both")


check_build_vocab = vocab_unit.entry_point()


# ---------------------------------------------------------- encode/decode

codec_unit = _unit("encode/decode", "test_encode_decode", 2, ("encode", "decode"))


@_check(codec_unit, "encode: a 1-D LongTensor of indices")
def _encode_values(rng):
    text = _text(rng, 60)
    chars, stoi = ref.build_vocab(text + "".join(POOL[:5]))
    want = ref.encode(text, stoi)

    def judge(out):
        require(out["type"] == "Tensor", f"encode should return a torch tensor, got {out['type']}")
        _equal_long(out["value"], want, f"encode({text[:20]!r}...)")
    return Probe("encode_case", text=text, stoi=stoi), judge


@_check(codec_unit, "encode: a character outside the vocabulary raises KeyError naming it")
def _encode_unknown(rng):
    text = _text(rng, 40, alphabet=list("abcdefgh "))
    _, stoi = ref.build_vocab(text)
    bad = "XQZ#"[int(rng.integers(0, 4))]
    pos = int(rng.integers(0, len(text)))
    text = text[:pos] + bad + text[pos:]

    def judge(out):
        require("raised" in out, f"encode of a text containing {bad!r} (not in the vocabulary) returned "
                f"{out.get('returned')} instead of raising KeyError")
        require(out["raised"] == "KeyError", f"expected KeyError for {bad!r}, got {out['raised']}: {out['message']}")
        require(bad in out["message"] or any(bad in a for a in out["args"]),
                f"the KeyError should name the character {bad!r}; its message was {out['message']!r}")
    return Probe("encode_unknown", text=text, stoi=stoi), judge


@_check(codec_unit, "decode: indices (tensor or list) back to the string")
def _decode(rng):
    text = _text(rng, 60)
    chars, stoi = ref.build_vocab(text)
    ids = ref.encode(text, stoi)

    def judge(outs):
        for out, kind in zip(outs, ("a tensor", "a list")):
            require(isinstance(out, str), f"decode of {kind} should return a str, got {out}")
            require(out == text, f"decode of {kind} gave {out[:40]!r}..., expected {text[:40]!r}...")
    return [Probe("decode_case", ids=ids, chars=chars, as_list=False),
            Probe("decode_case", ids=ids, chars=chars, as_list=True)], judge


@_check(codec_unit, "edge cases: the empty string, a single character")
def _codec_edges(rng):
    text = _text(rng, 30)
    chars, stoi = ref.build_vocab(text)
    one = text[int(rng.integers(0, len(text)))]

    def judge(outs):
        empty, single = outs
        require(empty["type"] == "Tensor", f"encode('') should return a tensor, got {empty['type']}")
        _equal_long(empty["value"], torch.zeros(0, dtype=torch.long), "encode('')")
        _equal_long(single["value"], ref.encode(one, stoi), f"encode({one!r})")
    return [Probe("encode_case", text="", stoi=stoi), Probe("encode_case", text=one, stoi=stoi)], judge


check_encode_decode = codec_unit.entry_point()


# ----------------------------------------------------------- make_windows

windows_unit = _unit("make_windows", "test_make_windows", 2, ("make_windows",))


def _windows_judge(ids, seq_len, part):
    want_x, want_y = ref.make_windows(ids, seq_len)

    def judge(out):
        x, y = _tensor(out[0], "X"), _tensor(out[1], "y")
        n = len(ids) - seq_len
        require(tuple(x.shape) == tuple(want_x.shape), f"{len(ids)} ids, seq_len {seq_len}: X has shape "
                f"{tuple(x.shape)}, expected {tuple(want_x.shape)} (windows i = 0 .. len(ids) - seq_len - 1"
                f"{', none here' if n <= 0 else ''})")
        require(tuple(y.shape) == tuple(want_y.shape), f"y has shape {tuple(y.shape)}, expected {tuple(want_y.shape)}")
        if part in ("x", "all"):
            _equal_long(x, want_x, f"X (seq_len {seq_len})")
        if part in ("y", "all"):
            got = y.long()
            if not torch.equal(got, want_y):
                hint = (" (y[i] should be ids[i + seq_len], the character AFTER the window)"
                        if n > 1 and torch.equal(got[1:], want_y[:-1]) or torch.equal(got, ids[seq_len - 1:-1]) else "")
                raise CheckFailed(f"targets y differ from ids[i + seq_len]: got {got[:8].tolist()}..., expected "
                                  f"{want_y[:8].tolist()}...{hint}")
            require(y.dtype == torch.long, f"y: dtype {y.dtype}, expected torch.long")
    return judge


@_check(windows_unit, "X[i] = ids[i : i + seq_len]")
def _windows_x(rng):
    ids, t = _ids(rng, 64, 30), 7
    return Probe("windows_case", ids=ids, seq_len=t), _windows_judge(ids, t, "x")


@_check(windows_unit, "y[i] = ids[i + seq_len], the next character")
def _windows_y(rng):
    ids, t = _ids(rng, 64, 30), 7
    return Probe("windows_case", ids=ids, seq_len=t), _windows_judge(ids, t, "y")


@_check(windows_unit, "seq_len 1 and a text of exactly seq_len + 1 ids")
def _windows_small(rng):
    a = _ids(rng, 10, 9)
    t = 6
    b = _ids(rng, t + 1, 9)
    ja, jb = _windows_judge(a, 1, "all"), _windows_judge(b, t, "all")
    return [Probe("windows_case", ids=a, seq_len=1), Probe("windows_case", ids=b, seq_len=t)], \
        lambda outs: (ja(outs[0]), jb(outs[1]))


@_check(windows_unit, "too short for one window: shapes (0, seq_len) and (0,)")
def _windows_empty(rng):
    t = 6
    ids = _ids(rng, t, 9)
    return Probe("windows_case", ids=ids, seq_len=t), _windows_judge(ids, t, "all")


check_make_windows = windows_unit.entry_point()


# ------------------------------------------------------- train_val_windows

split_unit = _unit("train_val_windows", "test_train_val_windows", 2,
                   ("train_val_windows", "build_vocab", "encode", "make_windows"))


def _split_text(rng, n):
    """A text whose validation part holds characters the training part lacks."""
    base = _text(rng, n, alphabet=list("abcdefghij ,.\n"))
    tail = list(base[int(n * 0.85):])
    for k, ch in enumerate("XYZ"):
        tail[int(rng.integers(0, len(tail)))] = ch
    return base[:int(n * 0.85)] + "".join(tail)


def _split_matches(out, want, what):
    """None if ``out`` (chars, train, val parts) equals ``want``, else the first difference."""
    if out["chars"] != want["chars"]:
        return f"the vocabulary is {''.join(out['chars'])!r:.80}, expected {''.join(want['chars'])!r:.80}"
    for name in what:
        for k, label in enumerate(("X", "y")):
            got, exp = out[name][k], want[name][k]
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(exp.shape):
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                return f"{label}_{name} has shape {shape}, expected {tuple(exp.shape)}"
            if not torch.equal(got.long(), exp):
                return f"{label}_{name} differs from the windows of the {name} part"
    return None


def _split_check(rng, n, seq_len, frac, what, message):
    text = _split_text(rng, n)
    cut = ref.split_point(len(text), frac)
    chars, _, train, val = ref.train_val_windows(text, seq_len, frac)
    want = {"chars": chars, "train": list(train), "val": list(val)}

    def judge(out):
        problem = _split_matches(out, want, what)
        if problem is None:
            return
        if out.get("pieces") is not None and _split_matches(out, out["pieces"], what) is None:
            return  # consistent with the student's own build_vocab/encode/make_windows
        raise CheckFailed(f"{message} (text of {len(text)} characters, seq_len {seq_len}, "
                          f"val_fraction {frac}, boundary at {cut}): {problem}")
    return Probe("split_case", text=text, seq_len=seq_len, val_fraction=frac, cut=cut), judge


@_check(split_unit, "the vocabulary comes from the whole text")
def _split_vocab(rng):
    return _split_check(rng, 200, 6, 0.2, (),
                        "characters that occur only in the validation part need an index too")


@_check(split_unit, "training windows lie in the first part")
def _split_train(rng):
    return _split_check(rng, 200, 6, 0.2, ("train",),
                        "training windows should be make_windows(encode(text[:cut]))")


@_check(split_unit, "validation windows lie in the last part: none crosses the boundary")
def _split_val(rng):
    return _split_check(rng, 200, 6, 0.2, ("val",),
                        "validation windows should be make_windows(encode(text[cut:])), so that no window "
                        "or target crosses the boundary")


@_check(split_unit, "other validation fractions and window lengths")
def _split_other(rng):
    frac = 0.25
    return _split_check(rng, 250, 11, frac, ("train", "val"),
                        "the split should put the last val_fraction of the text in validation")


check_train_val_windows = split_unit.entry_point()


# -------------------------------------------------------------- CharModel

model_unit = _unit("CharModel", "test_char_model", 3, ("CharModel",))


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


@_check(model_unit, "parameter count: embedding, one nn.RNN/LSTM/GRU layer, linear output")
def _model_counts(rng):
    configs = [_config(c) for c in CELLS]
    judges = [_count_judge(c) for c in configs]
    return [_model_probe(rng, c)[0] for c in configs], lambda outs: [j(o) for j, o in zip(judges, outs)]


@_check(model_unit, "parameter count: stacked layers and a hidden head layer")
def _model_counts_deep(rng):
    configs = [_config("lstm", layers=3, head=True), _config("gru", layers=2)]
    judges = [_count_judge(c) for c in configs]
    return [_model_probe(rng, c)[0] for c in configs], lambda outs: [j(o) for j, o in zip(judges, outs)]


def _shape_judge(config, x):
    b, t = x.shape
    layers, h = config["num_layers"], config["hidden_size"]

    def judge(out):
        logits = _tensor(out["logits"], "logits")
        require(tuple(logits.shape) == (b, t, config["vocab_size"]),
                f"{_describe(config)} on x of shape {(b, t)}: logits of shape {tuple(logits.shape)}, expected "
                f"{(b, t, config['vocab_size'])} (a prediction at every position)")
        state = out["state"]
        hs = state[0] if config["cell"] == "lstm" and isinstance(state, tuple) else state
        require(isinstance(hs, torch.Tensor) and tuple(hs.shape) == (layers, b, h),
                f"{_describe(config)}: the returned state should be the recurrent layer's "
                f"({'(h, c), each ' if config['cell'] == 'lstm' else ''}of shape {(layers, b, h)})")
    return judge


@_check(model_unit, "forward: logits (B, T, vocab) at every position and the state, batch size 1 included")
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


@_check(model_unit, "values: embedding -> recurrent layer -> linear, with the weights copied into torch layers")
def _model_values(rng):
    cases = [_model_probe(rng, _config(c)) for c in CELLS]
    judges = [_values_judge(p.args["config"], x) for p, (x, _, _) in cases]
    return [p for p, _ in cases], lambda outs: [j(o) for j, o in zip(judges, outs)]


@_check(model_unit, "values: stacked layers and the ReLU head layer")
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


@_check(model_unit, "state: a given state is used, and passing it on continues the sequence")
def _model_state(rng):
    cases = [_model_probe(rng, _config(c, layers=layers), with_state=True) for c, layers in zip(CELLS, (2, 1, 2))]
    judges = [_state_judge(p.args["config"], *extra) for p, extra in cases]
    return [p for p, _ in cases], lambda outs: [j(o) for j, o in zip(judges, outs)]


check_char_model = model_unit.entry_point()


# ------------------------------------------------------------- macs_per_step

macs_unit = _unit("macs_per_step", "test_macs_per_step", 2, ("macs_per_step",))


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


_check(macs_unit, "nn.RNN: one weight block, matches FlopCounterMode")(_macs_check("rnn"))
_check(macs_unit, "nn.GRU: three weight blocks, matches FlopCounterMode")(_macs_check("gru"))
_check(macs_unit, "nn.LSTM: four weight blocks, matches an nn.Linear step under FlopCounterMode")(_macs_check("lstm"))


@_check(macs_unit, "stacked layers (input of the upper layers = hidden size) and the head layer")
def _macs_deep(rng):
    configs = [_config(c, layers=layers, head=True) for c, layers in (("lstm", 3), ("gru", 2))]
    judges = [_macs_judge(c) for c in configs]
    return [Probe("macs_case", config=c) for c in configs], lambda outs: [j(o) for j, o in zip(judges, outs)]


check_macs_per_step = macs_unit.entry_point()


# ------------------------------------------------------------ model_size_bytes

size_unit = _unit("model_size_bytes", "test_model_size", 1, ("model_size_bytes",))
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


_check(size_unit, "float32 parameters: numel * 4 bytes")(_size_check("float32", "lstm", 1, False))
_check(size_unit, "float64 and float16: element_size() of each tensor")(_size_check(
    "float64", "gru", 2, True, norm="layer"))
_check(size_unit, "frozen parameters count too")(_size_check("float16", "rnn", 1, True, frozen=True))
_check(size_unit, "buffers count (BatchNorm statistics, an int64 buffer)")(_size_check(
    "float32", "lstm", 2, False, norm="batch", buffer=True))

check_model_size = size_unit.entry_point()


# ------------------------------------------------------------------ metrics

def _logits(rng, shape):
    return torch.from_numpy(rng.normal(0, 2.0, size=shape).astype(np.float32))


def _targets(rng, shape, v):
    return torch.from_numpy(rng.integers(0, v, size=shape).astype(np.int64))


def _metric_check(name, reference, shape_fn, describe, atol):
    def fn(rng):
        shape, special = shape_fn(rng)
        v = shape[-1]
        logits = _logits(rng, shape)
        targets = _targets(rng, shape[:-1], v)
        if special == "right":  # make about half of the positions correct
            flat_t = targets.reshape(-1)
            flat_l = logits.reshape(-1, v)
            for k in range(0, len(flat_t), 2):
                if int(flat_l[k].argmax()) == 0:  # never class 0: an argmax over a length-1 axis gives 0
                    flat_l[k, [0, 1 + k % (v - 1)]] = flat_l[k, [1 + k % (v - 1), 0]]
                flat_t[k] = int(flat_l[k].argmax())
        elif special == "uniform":
            logits = torch.zeros(shape)
        want = reference(logits, targets)

        def judge(out):
            got = _number(out, name)
            if abs(got - want) > atol:
                hint = ""
                if name == "bits_per_char" and abs(got - want * math.log(2)) < atol:
                    hint = " (that is in nats: divide by ln 2)"
                raise CheckFailed(f"{name} on {describe} with logits of shape {tuple(shape)}: {got:.6f}, "
                                  f"expected {want:.6f}{hint}")
        return Probe("metric_case", metric=name, logits=logits, targets=targets), judge
    return fn


accuracy_unit = _unit("accuracy", "test_accuracy", 1, ("accuracy",))
_check(accuracy_unit, "(N, V) logits: fraction of argmax == target")(_metric_check(
    "accuracy", ref.accuracy, lambda r: ((40, 17), "right"), "last-position predictions", 1e-6))
_check(accuracy_unit, "(B, T, V) logits: over every position")(_metric_check(
    "accuracy", ref.accuracy, lambda r: ((3, 5, 11), "right"), "every position", 1e-6))
_check(accuracy_unit, "one sequence of one position")(_metric_check(
    "accuracy", ref.accuracy, lambda r: ((1, 1, 13), "right"), "a single prediction", 1e-6))
check_accuracy = accuracy_unit.entry_point()

bpc_unit = _unit("bits_per_char", "test_bits_per_char", 1, ("bits_per_char",))
_check(bpc_unit, "uniform predictions cost log2(V) bits")(_metric_check(
    "bits_per_char", ref.bits_per_char, lambda r: ((12, 40), "uniform"), "uniform logits", 1e-4))
_check(bpc_unit, "(N, V) logits: mean cross-entropy in bits")(_metric_check(
    "bits_per_char", ref.bits_per_char, lambda r: ((40, 17), None), "random logits", 1e-4))
_check(bpc_unit, "(B, T, V) logits: over every position")(_metric_check(
    "bits_per_char", ref.bits_per_char,
    lambda r: ((3, 5, 11), None), "every position", 1e-4))
check_bits_per_char = bpc_unit.entry_point()


# -------------------------------------------------------- evaluate and generate

def _fixture(rng, cell, vocab=None):
    """Config and float64 weights of a small language model (names as in CharModel)."""
    v = vocab or 19
    e, h = 6, 14
    config = {"vocab_size": v, "hidden_size": h, "cell": cell, "num_layers": 1, "embedding_dim": e, "head_hidden": None}
    model = _build(config, torch.float64)
    weights = {}
    for name, p in model.state_dict().items():
        scale = 1.0 if name.startswith("embedding") else (1.2 if name.startswith("fc") else 0.5)
        weights[name] = torch.from_numpy(rng.normal(0, scale, size=tuple(p.shape)))
    model.load_state_dict(weights)
    return config, weights, model.eval()


evaluate_unit = _unit("evaluate", "test_evaluate", 2, ("evaluate",))


def _evaluate_data(rng, config, model, n, t, per_position):
    """Windows and targets; about half of the targets are the model's own argmax, so
    accuracies differ from batch to batch."""
    v = config["vocab_size"]
    x = torch.from_numpy(rng.integers(0, v, size=(n, t)).astype(np.int64))
    with torch.no_grad():
        guess = model(x)[0].argmax(-1)
    if not per_position:
        guess = guess[:, -1]
    y = torch.from_numpy(rng.integers(0, v, size=tuple(guess.shape)).astype(np.int64))
    keep = torch.from_numpy(rng.random(size=tuple(guess.shape)) < 0.5)
    return x, torch.where(keep, guess, y)


def _evaluate_check(per_position, batches, cell):
    def fn(rng):
        config, weights, model = _fixture(rng, cell)
        t = 5
        if batches == "uneven":
            bs, n = 8, 8 * 4 + 3  # a last batch of 3
        else:
            n = 40
            bs = n + 50 if batches == "one" else 8
        x, y = _evaluate_data(rng, config, model, n, t, per_position)
        want_loss, want_acc = ref.evaluate(model, x, y, bs)

        def judge(out):
            loss = _number({"value": out["loss"], "type": type(out["loss"]).__name__}, "loss")
            acc = _number({"value": out["accuracy"], "type": type(out["accuracy"]).__name__}, "accuracy")
            where = f"{n} windows, batch_size {bs}, targets of shape {tuple(y.shape)}"
            require(not out["training"], f"{where}: the model ran in training mode (call model.eval(): "
                    "dropout must be off while evaluating)")
            require(abs(acc - want_acc) < 1e-6, f"{where}: accuracy {acc:.6f}, expected {want_acc:.6f} "
                    "(the fraction of ALL predicted characters, not an average of per-batch accuracies)")
            require(abs(loss - want_loss) < 1e-6 * max(1.0, want_loss),
                    f"{where}: loss {loss:.6f}, expected {want_loss:.6f} (mean cross-entropy per predicted "
                    "character, batches weighted by their size)")
        return Probe("evaluate_case", config=config, weights=weights, X=x, y=y, batch_size=bs), judge
    return fn


_check(evaluate_unit, "last-position targets (N,), last batch smaller than the others")(_evaluate_check(False, "uneven", "lstm"))
_check(evaluate_unit, "every-position targets (N, T), last batch smaller")(_evaluate_check(True, "uneven", "gru"))
_check(evaluate_unit, "one batch larger than the data")(_evaluate_check(False, "one", "rnn"))


@_check(evaluate_unit, "no gradients are tracked while evaluating")
def _evaluate_no_grad(rng):
    config, weights, model = _fixture(rng, "gru")
    x = torch.from_numpy(rng.integers(0, config["vocab_size"], size=(20, 5)).astype(np.int64))
    y = torch.from_numpy(rng.integers(0, config["vocab_size"], size=(20,)).astype(np.int64))

    def judge(out):
        require(not out["grad"], "the model ran with gradients enabled: wrap evaluation in torch.no_grad()")
    return Probe("evaluate_case", config=config, weights=weights, X=x, y=y, batch_size=8), judge


check_evaluate = evaluate_unit.entry_point()

generate_unit = _unit("generate", "test_generate", 3, ("generate",))


def _stateless_greedy(model, prefix, n, stoi, chars) -> str:
    """Greedy generation that restarts the state at every new character (a typical mistake)."""
    with torch.no_grad():
        logits, _ = model(torch.tensor([[stoi[c] for c in prefix]]))
        out = []
        for _ in range(n):
            out.append(chars[int(logits[0, -1].argmax())])
            logits, _ = model(torch.tensor([[stoi[out[-1]]]]))
    return "".join(out)


def _generate_check(temperatures, describe, cell, n=30):
    def fn(rng):
        for _ in range(20):  # a model whose greedy text needs the carried state (almost always the first)
            chars = sorted(set(_text(rng, 400, alphabet_size=16)))
            config, weights, model = _fixture(rng, cell, vocab=len(chars))
            stoi = {c: i for i, c in enumerate(chars)}
            prefix = _text(rng, 3, alphabet=chars)
            if 0 not in temperatures or (ref.generate(model, prefix, n, stoi, chars, 0, None)
                                         != _stateless_greedy(model, prefix, n, stoi, chars)):
                break
        probes, wants = [], []
        for temp in temperatures:
            seed = int(rng.integers(0, 2 ** 31))
            wants.append((temp, ref.generate(model, prefix, n, stoi, chars, temp, torch.Generator().manual_seed(seed))))
            probes.append(Probe("generate_case", config=config, weights=weights, prefix=prefix, n_chars=n,
                                chars=chars, temperature=temp, seed=seed, global_seed=None))

        def judge(outs):
            for out, (temp, want) in zip(outs, wants):
                require(out["is_str"], f"generate should return a str, got {out['text']}")
                text = out["text"]
                require(len(text) == n, f"generate(..., n_chars={n}) returned {len(text)} characters; expected the "
                        f"{n} new ones only (not the prefix)")
                require(text == want, f"temperature {temp}, prefix {prefix!r}, {cell} model: generated "
                        f"{text[:30]!r}..., expected {want[:30]!r}... ({describe})")
        return probes, judge
    return fn


_check(generate_unit, "temperature 0: greedy argmax, state carried from step to step")(_generate_check(
    [0], "feed the prefix once, then each new character with the state returned by the previous call", "gru"))
_check(generate_unit, "temperature 1: torch.multinomial(softmax(logits), 1, generator=generator)")(_generate_check(
    [1.0], "sample with the given generator, in the order the docstring gives", "lstm"))
_check(generate_unit, "temperature 0.5 and 2: logits divided by the temperature before the softmax")(_generate_check(
    [0.5, 2.0], "softmax(logits / temperature), then torch.multinomial with the generator", "rnn"))


@_check(generate_unit, "returns only the n_chars new characters; eval mode, no gradients")
def _generate_mode(rng):
    chars = sorted(set(_text(rng, 300, alphabet_size=14)))
    config, weights, _ = _fixture(rng, "lstm", vocab=len(chars))
    n = 9
    prefix = _text(rng, 4, alphabet=chars)

    def judge(out):
        require(out["is_str"] and len(out["text"]) == n,
                f"generate(..., n_chars={n}) should return a str of {n} new characters, got {out['text']!r:.60}")
        require(not out["training"], "the model ran in training mode: call model.eval() first (dropout off)")
        require(not out["grad"], "the model ran with gradients enabled: generate under torch.no_grad()")
    return Probe("generate_case", config=config, weights=weights, prefix=prefix, n_chars=n, chars=chars,
                 temperature=1.0, seed=int(rng.integers(0, 2 ** 31)), global_seed=None), judge


check_generate = generate_unit.entry_point()
