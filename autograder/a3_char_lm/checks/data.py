"""a3_char_lm's hidden checks for build_vocab, encode/decode, make_windows and train_val_windows
(see ``checks``)."""
from __future__ import annotations

import torch

from .. import probes
from .. import reference as ref
from ...harness import CheckFailed, Probe, Unit, assert_equal_long, require, tensor_of
from .common import POOL, _ids, _text


# ------------------------------------------------------------- build_vocab

vocab_unit = Unit("build_vocab", grade_id="test_build_vocab", threads=1, probes=probes, objects=("build_vocab",))


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


@vocab_unit.check("chars: the sorted distinct characters", weight=1)
def _vocab_sorted(rng):
    text = _text(rng, 150)
    return Probe("vocab_case", text=text), _vocab_judge(text, "chars")


@vocab_unit.check("stoi: character -> its index in chars", weight=1)
def _vocab_stoi(rng):
    text = _text(rng, 150)
    return Probe("vocab_case", text=text), _vocab_judge(text, "stoi")


@vocab_unit.check("spaces, newlines, tabs and non-ASCII characters count", weight=1)
def _vocab_special(rng):
    text = _text(rng, 120, alphabet=list(" \n\téß—xyZ"))
    return Probe("vocab_case", text=text), _vocab_judge(text, "both")


@vocab_unit.check("a text of one repeated character", weight=1)
def _vocab_one(rng):
    text = POOL[int(rng.integers(0, 26))] * 5
    return Probe("vocab_case", text=text), _vocab_judge(text, "both")


check_build_vocab = vocab_unit.entry_point()


# ---------------------------------------------------------- encode/decode

codec_unit = Unit("encode/decode", grade_id="test_encode_decode",
                  threads=1, probes=probes, objects=("encode", "decode"))


@codec_unit.check("encode: a 1-D LongTensor of indices", weight=1)
def _encode_values(rng):
    text = _text(rng, 60)
    chars, stoi = ref.build_vocab(text + "".join(POOL[:5]))
    want = ref.encode(text, stoi)

    def judge(out):
        require(out["type"] == "Tensor", f"encode should return a torch tensor, got {out['type']}")
        assert_equal_long(out["value"], want, f"encode({text[:20]!r}...)")
    return Probe("encode_case", text=text, stoi=stoi), judge


@codec_unit.check("encode: a character outside the vocabulary raises KeyError naming it", weight=1)
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


@codec_unit.check("decode: indices (tensor or list) back to the string", weight=1)
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


@codec_unit.check("edge cases: the empty string, a single character", weight=1)
def _codec_edges(rng):
    text = _text(rng, 30)
    chars, stoi = ref.build_vocab(text)
    one = text[int(rng.integers(0, len(text)))]

    def judge(outs):
        empty, single = outs
        require(empty["type"] == "Tensor", f"encode('') should return a tensor, got {empty['type']}")
        assert_equal_long(empty["value"], torch.zeros(0, dtype=torch.long), "encode('')")
        assert_equal_long(single["value"], ref.encode(one, stoi), f"encode({one!r})")
    return [Probe("encode_case", text="", stoi=stoi), Probe("encode_case", text=one, stoi=stoi)], judge


check_encode_decode = codec_unit.entry_point()


# ----------------------------------------------------------- make_windows

windows_unit = Unit("make_windows", grade_id="test_make_windows", threads=1, probes=probes, objects=("make_windows",))


def _windows_judge(ids, seq_len, part):
    want_x, want_y = ref.make_windows(ids, seq_len)

    def judge(out):
        x, y = tensor_of(out[0], "X"), tensor_of(out[1], "y")
        n = len(ids) - seq_len
        require(tuple(x.shape) == tuple(want_x.shape), f"{len(ids)} ids, seq_len {seq_len}: X has shape "
                f"{tuple(x.shape)}, expected {tuple(want_x.shape)} (windows i = 0 .. len(ids) - seq_len - 1"
                f"{', none here' if n <= 0 else ''})")
        require(tuple(y.shape) == tuple(want_y.shape), f"y has shape {tuple(y.shape)}, expected {tuple(want_y.shape)}")
        if part in ("x", "all"):
            assert_equal_long(x, want_x, f"X (seq_len {seq_len})")
        if part in ("y", "all"):
            got = y.long()
            if not torch.equal(got, want_y):
                hint = (" (y[i] should be ids[i + seq_len], the character AFTER the window)"
                        if n > 1 and torch.equal(got[1:], want_y[:-1]) or torch.equal(got, ids[seq_len - 1:-1]) else "")
                raise CheckFailed(f"targets y differ from ids[i + seq_len]: got {got[:8].tolist()}..., expected "
                                  f"{want_y[:8].tolist()}...{hint}")
            require(y.dtype == torch.long, f"y: dtype {y.dtype}, expected torch.long")
    return judge


@windows_unit.check("X[i] = ids[i : i + seq_len]", weight=1)
def _windows_x(rng):
    ids, t = _ids(rng, 64, 30), 7
    return Probe("windows_case", ids=ids, seq_len=t), _windows_judge(ids, t, "x")


@windows_unit.check("y[i] = ids[i + seq_len], the next character", weight=1)
def _windows_y(rng):
    ids, t = _ids(rng, 64, 30), 7
    return Probe("windows_case", ids=ids, seq_len=t), _windows_judge(ids, t, "y")


@windows_unit.check("seq_len 1 and a text of exactly seq_len + 1 ids", weight=1)
def _windows_small(rng):
    a = _ids(rng, 10, 9)
    t = 6
    b = _ids(rng, t + 1, 9)
    ja, jb = _windows_judge(a, 1, "all"), _windows_judge(b, t, "all")
    return [Probe("windows_case", ids=a, seq_len=1), Probe("windows_case", ids=b, seq_len=t)], \
        lambda outs: (ja(outs[0]), jb(outs[1]))


@windows_unit.check("too short for one window: shapes (0, seq_len) and (0,)", weight=1)
def _windows_empty(rng):
    t = 6
    ids = _ids(rng, t, 9)
    return Probe("windows_case", ids=ids, seq_len=t), _windows_judge(ids, t, "all")


check_make_windows = windows_unit.entry_point()


# ------------------------------------------------------- train_val_windows

split_unit = Unit("train_val_windows", grade_id="test_train_val_windows", threads=1, probes=probes,
                  objects=("train_val_windows", "build_vocab", "encode", "make_windows"))


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


@split_unit.check("the vocabulary comes from the whole text", weight=1)
def _split_vocab(rng):
    return _split_check(rng, 200, 6, 0.2, (),
                        "characters that occur only in the validation part need an index too")


@split_unit.check("training windows lie in the first part", weight=1)
def _split_train(rng):
    return _split_check(rng, 200, 6, 0.2, ("train",),
                        "training windows should be make_windows(encode(text[:cut]))")


@split_unit.check("validation windows lie in the last part: none crosses the boundary", weight=1)
def _split_val(rng):
    return _split_check(rng, 200, 6, 0.2, ("val",),
                        "validation windows should be make_windows(encode(text[cut:])), so that no window "
                        "or target crosses the boundary")


@split_unit.check("other validation fractions and window lengths", weight=1)
def _split_other(rng):
    frac = 0.25
    return _split_check(rng, 250, 11, frac, ("train", "val"),
                        "the split should put the last val_fraction of the text in validation")


check_train_val_windows = split_unit.entry_point()
