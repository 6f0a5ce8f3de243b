"""Hidden checks for a2_sentiment, as units of the trusted-verdict harness (``harness``).

One unit per grade cell; its entry point is what the notebook's hidden one-liner calls
(``check_pad_sequences(pad_sequences, points=3)``). Every check draws its inputs from the
generator it is given (random sequences, corpora, histories, toy data and weights, built to
keep the traps the checks are about: a validation tail that differs from the rest, logits
in (0, 0.5), words with equal counts, ...), names the probe in ``a2_sentiment.probes`` that runs the
student's code on them in the kernel, and judges the returned data here, against
``a2_sentiment.reference``. No reference code and no comparison ever runs in the student's kernel.
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import probes as kit  # helper models: the grader builds the kernel's models again
from . import reference as ref
from ..harness import CheckFailed, Probe, Unit, require

PROBES = Path(__file__).with_name("probes.py")
KINDS = ("rnn", "lstm", "gru")


def _unit(name: str, grade_id: str, points: float, objects: tuple[str, ...]) -> Unit:
    return Unit(name, grade_id=grade_id, points=points, objects=objects, probes=PROBES)


def _case(*args, **kwargs) -> dict:
    return {"args": list(args), "kwargs": kwargs}


def _calls(fn: str, cases: list[dict], **extra) -> Probe:
    return Probe("call", fn=fn, cases=cases, **extra)


def _per_case(unit: Unit, name: str, probes, compare):
    """Decorator: register ``draw(rng) -> [case, ...]`` as check ``name`` of ``unit``. The
    kernel runs ``probes(cases)`` (one output per case); ``compare(case, output)`` judges."""
    def register(draw):
        @unit.check(name)
        def check(rng):
            cases = draw(rng)

            def judge(outs):
                for case, out in zip(cases, outs):
                    compare(case, out)
            return probes(cases), judge
        return draw
    return register


def _kind(value) -> str:
    """How a returned value reads in a message (probes send unsendable objects as '<T object>')."""
    if isinstance(value, str) and value.startswith("<"):
        return value
    return type(value).__name__


def _as_int(value, what: str) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        raise CheckFailed(f"{what}: expected an integer, got {value!r}"[:300])
    return int(value)


def _int_lists(value, n: int, what: str) -> list[list[int]]:
    require(isinstance(value, (list, tuple)) and len(value) == n,
            f"{what}: expected a list of {n} sequences, got {_kind(value)}"
            + (f" of length {len(value)}" if isinstance(value, (list, tuple)) else ""))
    out = []
    for seq in value:
        if isinstance(seq, (torch.Tensor, np.ndarray)):
            seq = seq.reshape(-1).tolist()
        require(isinstance(seq, (list, tuple)), f"{what}: a sequence is a {_kind(seq)}, expected a list of int")
        out.append([_as_int(v, what) for v in seq])
    return out


def _float32(array) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float32))


def _words(rng, n: int) -> list[str]:
    """``n`` distinct made-up lowercase words."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: list[str] = []
    while len(words) < n:
        w = "".join(rng.choice(letters, size=int(rng.integers(3, 8))))
        if w not in words:
            words.append(w)
    return words


# ================================================================ pad_sequences

pad = _unit("pad_sequences", "test_pad_sequences", 3, ("pad_sequences",))


def _seq(rng, length: int) -> list[int]:
    # Distinct values: the first maxlen items never equal the last maxlen ones.
    return [int(v) for v in rng.choice(np.arange(1, 100), size=length, replace=False)]


def _mixed(rng, maxlen: int) -> list[list[int]]:
    """Sequences shorter (one empty, one not) than ``maxlen``, as long and longer, in random
    order; the lengths are fixed, so every check sees each kind whatever the draw."""
    lengths = [max(1, maxlen - 2), maxlen + 3, 0, maxlen, maxlen + 6]
    return [_seq(rng, k) for k in rng.permutation(lengths)]


def _padding_check(name: str):
    """Register ``draw(rng) -> [(what, sequences, kwargs)]``: pad_sequences against the reference."""
    return _per_case(pad, name, lambda cases: _calls("pad_sequences", [_case(s, **kw) for _, s, kw in cases]),
                     lambda case, got: _same_padding(got, ref.pad_sequences(case[1], **case[2]), case[0]))


def _same_padding(got, want, what):
    require(isinstance(got, np.ndarray), f"{what}: expected a numpy array, got {_kind(got)}")
    require(got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}")
    require(np.issubdtype(got.dtype, np.integer), f"{what}: dtype {got.dtype}, expected integers")
    if not np.array_equal(got, want):
        row = int(np.flatnonzero((got != want).any(axis=1))[0])
        raise CheckFailed(f"{what}: row {row} is {got[row].tolist()}, expected {want[row].tolist()}")


def _with_maxlen(padding, truncating, m):
    def draw(rng):
        kwargs = {"maxlen": m, "padding": padding, "truncating": truncating}
        return [(f"padding={padding!r}, truncating={truncating!r}, maxlen {m}", _mixed(rng, m), kwargs)]
    return draw


_padding_check("padding='post' puts the values after the sequence")(_with_maxlen("post", "post", 6))
_padding_check("padding='pre' puts the values before the sequence")(_with_maxlen("pre", "post", 5))
_padding_check("truncating='post' keeps the first maxlen items")(_with_maxlen("post", "post", 3))
_padding_check("truncating='pre' keeps the last maxlen items")(_with_maxlen("post", "pre", 4))


@_padding_check("defaults are Keras' (padding and truncating 'pre', value 0)")
def _defaults(rng):
    m = 5
    return [(f"pad_sequences(seqs, maxlen={m})", _mixed(rng, m), {"maxlen": m})]


@_padding_check("value fills the padding")
def _value(rng):
    m, value = 7, int(rng.choice([-3, -2, -1, 7, 100]))
    seqs = [_seq(rng, k) for k in (0, 3, 6)]  # every row padded, one entirely
    return [(f"value={value}", seqs, {"maxlen": m, "padding": "post", "value": value})]


@_padding_check("maxlen=None pads to the longest sequence")
def _no_maxlen(rng):
    seqs = [_seq(rng, k) for k in (3, 9, 1, 5)]
    return [("maxlen=None", seqs, {"padding": "post"})]


@_padding_check("edge cases: empty, exact-length, very long, numpy-array sequences")
def _edges(rng):
    m = 4
    long = [int(v) for v in rng.integers(1, 100, size=20 * m)]
    return [("empty sequences", [[], _seq(rng, 1), []], {"maxlen": m, "padding": "post"}),
            ("length exactly maxlen", [_seq(rng, m)], {"maxlen": m, "padding": "post", "truncating": "post"}),
            ("a sequence 20x too long", [long], {"maxlen": m, "truncating": "pre"}),
            ("numpy arrays as sequences", [np.array(_seq(rng, m + 3), dtype=np.int64), np.array(_seq(rng, 2))],
             {"maxlen": m + 1, "padding": "post"}),
            ("maxlen 1", [_seq(rng, 2), _seq(rng, 3)], {"maxlen": 1, "truncating": "post"})]


@_padding_check("60 random cases match the reference")
def _random_cases(rng):
    cases = []
    for case in range(60):
        kwargs = dict(maxlen=None if case % 10 == 0 else int(rng.integers(1, 12)),
                      padding=("pre", "post")[case % 2], truncating=("pre", "post")[(case // 2) % 2],
                      value=int(rng.integers(-1, 3)))
        lengths = rng.integers(0, 16, size=int(rng.integers(1, 9)))
        seqs = [[int(v) for v in rng.integers(1, 50, size=k)] for k in lengths]
        cases.append((f"random case {case} ({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})", seqs, kwargs))
    return cases


@pad.check("the input is not modified")
def _input_untouched(rng):
    data = [_seq(rng, k) for k in (2, 5, 3)]
    m = 2

    def judge(outs):
        after = outs[0]["args"][0]
        require(isinstance(after, list) and all(isinstance(s, list) for s in after) and after == data,
                "the input sequences were modified")
    return _calls("pad_sequences", [_case(data, maxlen=m, padding="post", truncating="post")], echo=True), judge


@pad.check("an unknown padding/truncating raises ValueError")
def _bad_arguments(rng):
    words = ["middle", "both", "center", "around", "sides"]
    bad = [{"padding": str(rng.choice(words))}, {"truncating": str(rng.choice(words))}]
    seqs = _mixed(rng, 3)

    def judge(outs):
        for kwargs, got in zip(bad, outs):
            require(got is not None, f"{kwargs} should raise ValueError")
            require("builtins.ValueError" in got["types"], f"{kwargs} should raise ValueError, "
                    f"raised {got['types'][0].removeprefix('builtins.')}: {got['message']}")
    return Probe("raises", fn="pad_sequences", cases=[_case(seqs, maxlen=3, **kw) for kw in bad]), judge


check_pad_sequences = pad.entry_point()


# =================================================================== vocabulary

vocab = _unit("build_word_index/docs_to_sequences", "test_vocabulary", 3, ("build_word_index", "docs_to_sequences"))


def _split_docs(rng, tokens: list[str], n_docs: int) -> list[list[str]]:
    cuts = np.sort(rng.choice(np.arange(1, len(tokens)), size=n_docs - 1, replace=False))
    return [list(part) for part in np.split(np.array(tokens, dtype=object), cuts)]


def _distinct_counts(rng, k: int) -> list[list[str]]:
    """A corpus of ``k`` words whose counts are all different (1..k, shuffled), in 4 documents."""
    words = _words(rng, k)
    tokens = [w for w, c in zip(words, rng.permutation(np.arange(1, k + 1))) for _ in range(int(c))]
    return _split_docs(rng, [tokens[i] for i in rng.permutation(len(tokens))], 4)


def _tie_order(docs, reverse: bool) -> dict:
    counts: dict[str, int] = {}
    for doc in docs:
        for w in doc:
            counts[w] = counts.get(w, 0) + 1
    ranked = sorted(sorted(counts, reverse=reverse), key=lambda w: -counts[w])
    return {w: r for r, w in enumerate(ranked, start=1)}


def _tied_corpus(rng) -> list[list[str]]:
    """Random documents whose equal counts rank differently by first appearance than
    alphabetically either way round."""
    vocabulary = _words(rng, 30)
    while True:
        docs = [[str(w) for w in rng.choice(vocabulary, size=int(rng.integers(0, 12)))] for _ in range(12)]
        want = ref.build_word_index(docs)
        if want != _tie_order(docs, False) and want != _tie_order(docs, True):
            return docs


@vocab.check("ranks follow word counts, 1 = most common")
def _ranks(rng):
    docs = _distinct_counts(rng, 7)

    def judge(outs):
        got = outs[0]
        require(isinstance(got, dict), f"expected a dict, got {_kind(got)}")
        want = ref.build_word_index(docs)
        require(got == want, f"word index {got}, expected {want}")
    return _calls("build_word_index", [_case(docs)]), judge


@vocab.check("equal counts rank in order of first appearance")
def _ties(rng):
    corpora = [_tied_corpus(rng) for _ in range(5)]

    def judge(outs):
        for docs, got in zip(corpora, outs):
            require(isinstance(got, dict), f"expected a dict, got {_kind(got)}")
            want = ref.build_word_index(docs)
            if got != want:
                bad = next(w for w in want if got.get(w) != want[w])
                raise CheckFailed(f"word {bad!r} has rank {got.get(bad)}, expected {want[bad]} "
                                  "(equal counts: the word seen first ranks first)")
    return _calls("build_word_index", [_case(d) for d in corpora]), judge


def _indexed(rng, k: int) -> tuple[list[str], dict]:
    """``k`` words by rank (1 first) and their word index."""
    index = ref.build_word_index(_distinct_counts(rng, k))
    return sorted(index, key=index.get), index


def _same_sequences(case, out):
    what, docs, index, kwargs = case
    got = _int_lists(out, len(docs), what)
    want = ref.docs_to_sequences(docs, index, **kwargs)
    require(got == want, f"{what}: got {got}, expected {want}")


def _sequences_check(name: str):
    """Register ``draw(rng) -> [(what, docs, index, kwargs)]``: docs_to_sequences against the reference."""
    return _per_case(vocab, name,
                     lambda cases: _calls("docs_to_sequences", [_case(d, i, **kw) for _, d, i, kw in cases]),
                     _same_sequences)


def _shuffled(rng, words) -> list[str]:
    return [words[i] for i in rng.permutation(len(words))]


@_sequences_check("start 1, ranks offset by 3 (num_words=None)")
def _offset(rng):
    words, index = _indexed(rng, 6)
    docs = [[str(w) for w in rng.choice(words, size=k)] for k in (3, 1, 5)]
    return [("docs_to_sequences", docs, index, {})]


@_sequences_check("indices >= num_words become the OOV index 2")
def _cut(rng):
    words, index = _indexed(rng, 8)
    n = 7  # ranks 1-3 kept (indices 4-6), ranks 4-8 cut
    return [(f"num_words={n}", [_shuffled(rng, words)], index, {"num_words": n})]


@_sequences_check("num_words at the boundary (index num_words - 1 kept, num_words dropped)")
def _boundary(rng):
    words, index = _indexed(rng, 8)
    n = 7  # ranks n - 4 and n - 3 are indices n - 1 and n
    edge = [words[n - 5], words[n - 4]]
    return [(f"num_words={n}", [_shuffled(rng, words), _shuffled(rng, edge)], index, {"num_words": n})]


@_sequences_check("words missing from the index are OOV")
def _unknown(rng):
    words, index = _indexed(rng, 5)
    strangers = [w.upper() for w in _words(rng, 3)]
    n = 50
    return [("unknown word", [_shuffled(rng, words[:3] + strangers)], index, {"num_words": n})]


@_sequences_check("an empty review is just the start index")
def _empty(rng):
    words, index = _indexed(rng, 5)
    docs = [[], [str(w) for w in rng.choice(words, size=3)], []]
    return [("empty review", _shuffled(rng, docs), index, {"num_words": 1000})]


@_sequences_check("start_char, oov_char and index_from are honoured")
def _custom(rng):
    words, index = _indexed(rng, 6)
    index_from = 4
    num_words = index_from + len(words)  # the least common word is cut, the next one kept
    start, oov = (int(v) for v in rng.choice([v for v in range(3, 12) if v != num_words], size=2, replace=False))
    kwargs = {"num_words": num_words, "start_char": start, "oov_char": oov, "index_from": index_from}
    doc = _shuffled(rng, words + [_words(rng, 1)[0].upper()])
    return [(", ".join(f"{k}={v}" for k, v in kwargs.items()), [doc], index, kwargs)]


@_sequences_check("start_char=None adds no start index")
def _no_start(rng):
    words, index = _indexed(rng, 5)
    return [("start_char=None", [_shuffled(rng, words)], index, {"start_char": None})]


@vocab.check("Keras-sized vocabulary: every index below 2000")
def _keras_size(rng):
    names = np.array([f"t{i}" for i in rng.permutation(3000)], dtype=object)
    probs = 1.0 / np.arange(1, 3001)
    while True:  # enough distinct words that some ranks pass 1996 (index 2000 and up)
        lengths = rng.integers(5, 60, size=500)
        tokens = rng.choice(names, size=int(lengths.sum()), p=probs / probs.sum())
        docs = [list(doc) for doc in np.split(tokens, np.cumsum(lengths)[:-1])]
        index = ref.build_word_index(docs)
        if len(index) > 2050:
            break

    def judge(outs):
        got = _int_lists(outs[0], len(docs), "num_words=2000")
        require(max((max(g) for g in got if g), default=0) <= 1999, "an index >= 2000 survived num_words=2000 "
                "(it would overflow Embedding(2000, ...))")
        want = ref.docs_to_sequences(docs, index, num_words=2000)
        if got != want:
            i = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
            raise CheckFailed(f"a Zipf-like corpus with num_words=2000: review {i} is {got[i][:12]}..., "
                              f"expected {want[i][:12]}...")
    return _calls("docs_to_sequences", [_case(docs, index, num_words=2000)]), judge


check_vocabulary = vocab.entry_point()


# ============================================================== SentimentRNN

sentiment = _unit("SentimentRNN", "test_sentiment_model", 3, ("model_class",))
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


@sentiment.check("layers: Embedding -> nn.RNN/LSTM/GRU -> Linear(hidden, 1)")
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


@sentiment.check("exact parameter counts per layer (100,000 / 285 / 6 for the default)")
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


@sentiment.check("forward: logits from the hidden state after the last time step")
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


@sentiment.check("batch size 1 keeps its batch dimension")
def _batch_one(rng):
    configs = [_config(k) for k in KINDS]

    def judge(outs):
        for (kind, *_), out in zip(configs, outs):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else _kind(out)
            require(shape == (1,), f"{kind}: batch of one gave shape {shape}, expected (1,)")
    probes = [Probe("model_forward", config=c, seed=_seed(rng), x=torch.from_numpy(rng.integers(0, c[1], size=(1, 4))))
              for c in configs]
    return probes, judge


@sentiment.check("input kernel initialised N(0, 0.001²), std 0.001")
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

count = _unit("count_parameters", "test_count_parameters", 2, ("count_parameters",))


def _sentiment_spec(rng, kind: str, frozen=()) -> dict:
    # Counts are the one place sizes are drawn: a counting mistake (frozen, tied, nested
    # parameters) shows at any size, and drawn sizes keep the answers from being written in.
    sizes = (kind, int(rng.integers(50, 800)), int(rng.integers(4, 25)), int(rng.integers(2, 13)))
    return {"model": "sentiment", "sizes": list(sizes), "frozen": list(frozen)}


def _same_count(case, got):
    what, spec = case
    require(isinstance(got, dict), f"{what}: expected a dict, got {_kind(got)}")
    got = {k: (_as_int(v, f"{what}[{k!r}]") if isinstance(v, (int, float, torch.Tensor, np.ndarray)) else v)
           for k, v in got.items()}
    want = ref.count_parameters(kit.count_model(spec))
    require(got == want, f"{what}: got {got}, expected {want}")
    require(list(got) == list(want), f"{what}: keys in order {list(got)}, expected {list(want)}")


def _count_check(name: str):
    """Register ``draw(rng) -> [(what, spec)]``: count_parameters on each helper model."""
    return _per_case(count, name, lambda cases: [Probe("count_parameters", spec=spec) for _, spec in cases],
                     _same_count)


@_count_check("SentimentRNN(rnn): 100,000 + 285 + 6 = 100,291")
def _default_model(rng):
    return [("default model", {"model": "sentiment", "sizes": list(DEFAULT)}),
            ("rnn model", _sentiment_spec(rng, "rnn"))]


@_count_check("LSTM model")
def _lstm_model(rng):
    return [("lstm model", _sentiment_spec(rng, "lstm"))]


@_count_check("frozen (non-trainable) parameters count too")
def _frozen(rng):
    layers = ["embedding", "rnn", "fc"]
    frozen = [layers[0], layers[2]]
    return [(f"frozen {', '.join(frozen)}", _sentiment_spec(rng, "gru", frozen))]


@_count_check("a shared (tied) tensor counts once")
def _tied(rng):
    return [("tied embedding/decoder weights", {"model": "tied", "sizes": [int(rng.integers(20, 80)),
                                                                          int(rng.integers(3, 12))]})]


@_count_check("nested layers and parameter-free layers")
def _nested(rng):
    sizes = [int(rng.integers(10, 60)), int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(3, 12))]
    return [("nested Sequential layers", {"model": "nested", "sizes": sizes})]


check_count_parameters = count.entry_point()


# ============================================================ train_model

train = _unit("train_model/evaluate", "test_train_model", 4, ("train_model", "evaluate"))
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
TOY_VOCAB = 20


def _toy_data(rng, n: int, steps: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Reviews of ``steps`` random tokens; positive iff a randomly chosen token occurs."""
    x = torch.from_numpy(rng.integers(0, TOY_VOCAB, size=(n, steps)))
    y = (x == int(rng.integers(0, TOY_VOCAB))).any(dim=1).float()
    return x, y


def _bag_weights(rng, scale: float) -> dict:
    return {"emb.weight": _float32(rng.normal(0.0, scale, size=(TOY_VOCAB, 1))), "bias": torch.zeros(1)}


def _history_ok(hist, epochs: int) -> None:
    require(isinstance(hist, dict), f"train_model should return a dict, got {_kind(hist)}")
    for key in HISTORY_KEYS:
        require(key in hist, f"history has no key {key!r}")
        require(isinstance(hist[key], (list, tuple)) and len(hist[key]) == epochs,
                f"history[{key!r}] should hold one number per epoch ({epochs} epochs)")
        for v in hist[key]:
            require(isinstance(v, (float, int)) and math.isfinite(float(v)),
                    f"history[{key!r}] should hold plain numbers, found {_kind(v)}")


def _train_probe(weights, x, y, **kwargs) -> Probe:
    return Probe("train", weights=weights, x=x, y=y, kwargs=kwargs)


@train.check("returns a history: loss, accuracy, val_loss, val_accuracy per epoch")
def _history_shape(rng):
    epochs = 3
    x, y = _toy_data(rng, 60)
    return (_train_probe(_bag_weights(rng, 1.5), x, y, epochs=epochs, batch_size=16, lr=0.01),
            lambda out: _history_ok(out["history"], epochs))


@train.check("evaluate: mean BCE on logits, accuracy with the logit-0 threshold")
def _evaluate(rng):
    while True:  # logits in (0, 0.5) whose labels do not cancel out: thresholding at 0.5 shows
        weights, (x, y) = _bag_weights(rng, 1.0), _toy_data(rng, 90)
        with torch.no_grad():
            logits = kit.bag_model(weights)(x)
        between = (logits > 0) & (logits < 0.5)
        if int(y[between].sum()) * 2 != int(between.sum()):
            break

    def judge(got):
        require(isinstance(got, (list, tuple)) and len(got) == 2, "evaluate should return (loss, accuracy)")
        loss, acc = (float(_as_float(v, "evaluate")) for v in got)
        want = ref.evaluate(kit.bag_model(weights), x, y)
        require(abs(loss - want[0]) < 1e-5,
                f"evaluate loss {loss:.5f}, expected mean binary cross-entropy {want[0]:.5f}")
        require(abs(acc - want[1]) < 1e-9, f"evaluate accuracy {acc:.4f}, expected {want[1]:.4f} "
                "(a logit above 0 means probability above 0.5)")
    return Probe("evaluate", weights=weights, x=x, y=y), judge


def _as_float(value, what: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    require(isinstance(value, (int, float)), f"{what}: expected a number, got {_kind(value)}")
    return float(value)


FROZEN_RUN_SIZES = {0.2: 73, 0.25: 74, 0.3: 71}  # examples per validation_split


def _threshold_shows(bag, x, y) -> bool:
    """Whether an accuracy thresholding logits at 0.5 differs from the right one on (x, y)."""
    with torch.no_grad():
        logits = bag(x)
    return bool(((logits > 0).float() == y).sum() != ((logits > 0.5).float() == y).sum())


def _frozen_run(rng, validation_split: float):
    """A run with lr=0 (weights never change, every metric is a plain evaluation) on data
    whose tail has flipped labels, so metrics on any other part than the last differ."""
    # n * (1 - split) never a whole number: an exact boundary would allow two roundings.
    n = FROZEN_RUN_SIZES[validation_split]
    split_at = int(n * (1.0 - validation_split))
    while True:
        weights = _bag_weights(rng, 1.0)
        bag = kit.bag_model(weights)
        x, y = _toy_data(rng, n)
        flip = split_at - 5  # all of the validation part and a few before it
        y[flip:] = 1 - y[flip:]
        if not all(_threshold_shows(bag, x[part], y[part]) for part in (slice(split_at), slice(split_at, n))):
            continue  # a logit-0.5 threshold would give the same accuracies here
        parts = {"train": ref.evaluate(bag, x[:split_at], y[:split_at]),
                 "val": ref.evaluate(bag, x[split_at:], y[split_at:]),
                 "head": ref.evaluate(bag, x[:n - split_at], y[:n - split_at]),
                 "rest": ref.evaluate(bag, x[n - split_at:], y[n - split_at:])}
        if abs(parts["val"][0] - parts["head"][0]) > 1e-3 and abs(parts["train"][0] - parts["rest"][0]) > 1e-3:
            break
    probe = _train_probe(weights, x, y, epochs=2, batch_size=16, lr=0.0, validation_split=validation_split)
    return probe, parts["train"], parts["val"]


@train.check("validation metrics on the last validation_split of the data")
def _validation(rng):
    splits = [0.3, 0.25]
    runs = [_frozen_run(rng, vs) for vs in splits]

    def judge(outs):
        for vs, (_, _, (vl, va)), out in zip(splits, runs, outs):
            hist = out["history"]
            _history_ok(hist, 2)
            for e in range(2):
                require(abs(hist["val_loss"][e] - vl) < 1e-5 and abs(hist["val_accuracy"][e] - va) < 1e-9,
                        f"validation_split={vs}: epoch {e} val_loss/val_accuracy "
                        f"{hist['val_loss'][e]:.4f}/{hist['val_accuracy'][e]:.4f}, expected {vl:.4f}/{va:.4f} "
                        "on the LAST part of the data")
    return [probe for probe, _, _ in runs], judge


@train.check("training loss and accuracy: means over the epoch's examples")
def _training_metrics(rng):
    probe, (tl, ta), _ = _frozen_run(rng, 0.2)

    def judge(out):
        hist = out["history"]
        _history_ok(hist, 2)
        for e in range(2):
            require(abs(hist["loss"][e] - tl) < 1e-5,
                    f"epoch {e} loss {hist['loss'][e]:.5f}, expected {tl:.5f} (mean over the training examples)")
            require(abs(hist["accuracy"][e] - ta) < 1e-9,
                    f"epoch {e} accuracy {hist['accuracy'][e]:.4f}, expected {ta:.4f}")
    return probe, judge


def _optimiser_check(name: str, optimizer: str, lr_range: tuple[float, float]):
    @train.check(name)
    def check(rng):
        lr = round(float(rng.uniform(*lr_range)), 4)
        x, y = _toy_data(rng, 50)
        weights = _bag_weights(rng, 0.5)
        # One batch per epoch: the updates do not depend on the shuffling.
        kwargs = dict(epochs=3, batch_size=64, optimizer=optimizer, lr=lr, validation_split=0.2)

        def judge(out):
            mine = kit.bag_model(weights)
            ref.train_model(mine, x, y, **kwargs)
            theirs = out["state"]
            for n, a in mine.state_dict().items():
                b = theirs[n]
                if not torch.allclose(a, b, atol=1e-6):
                    raise CheckFailed(f"optimizer={optimizer!r}, lr={lr}: after 3 full-batch epochs `{n}` differs "
                                      f"from the reference by {(a - b).abs().max():.2e} "
                                      "(loss, optimizer or data used?)")
        return _train_probe(weights, x, y, **kwargs), judge
    return check


_optimiser_check("Adam steps on the mean BCE-with-logits loss of the training part", "adam", (0.03, 0.08))
_optimiser_check("optimizer='rmsprop' uses RMSprop with the given lr", "rmsprop", (0.005, 0.02))


@train.check("mini-batch training learns an easy task")
def _learns(rng):
    kwargs = dict(epochs=8, batch_size=16, lr=0.2)
    while True:  # a draw on which the reference reaches 95% (it nearly always reaches 100%)
        weights, (x, y), seed = _bag_weights(rng, 0.1), _toy_data(rng, 400), int(rng.integers(0, 1000))
        hist = ref.train_model(kit.bag_model(weights), x, y, seed=seed, **kwargs)
        if hist["val_accuracy"][-1] >= 0.95 and hist["loss"][-1] < hist["loss"][0]:
            break

    def judge(out):
        hist = out["history"]
        _history_ok(hist, 8)
        require(hist["loss"][-1] < hist["loss"][0], "training loss did not go down")
        require(hist["val_accuracy"][-1] >= 0.9,
                f"val_accuracy {hist['val_accuracy'][-1]:.3f} after 8 epochs on an easy task (reference: "
                f"{ref_acc:.3f})")
    ref_acc = hist["val_accuracy"][-1]
    return _train_probe(weights, x, y, seed=seed, **kwargs), judge


@train.check("callback(epoch, logs, model) after every epoch")
def _callback(rng):
    epochs = 3
    x, y = _toy_data(rng, 60)
    kwargs = dict(epochs=epochs, batch_size=16, lr=0.01)

    def judge(out):
        hist, calls = out["history"], out["calls"]
        _history_ok(hist, epochs)
        seen = [c["epoch"] for c in calls]
        require(seen == list(range(epochs)), f"callback epochs {seen}, expected {list(range(epochs))}")
        require(all(c["same_model"] for c in calls), "callback should receive the model being trained")
        for c in calls:
            epoch, logs = c["epoch"], c["logs"]
            for key in HISTORY_KEYS:
                require(key in logs and abs(_as_float(logs[key], f"logs[{key!r}]") - hist[key][epoch]) < 1e-9,
                        f"callback logs[{key!r}] at epoch {epoch} differ from the history")
    return Probe("train_callback", weights=_bag_weights(rng, 1.5), x=x, y=y, kwargs=kwargs), judge


check_train_model = train.entry_point()


# ============================================================= best epoch

best = _unit("best_epoch/KeepBest", "test_best_epoch", 3, ("best_epoch", "keep_best_class"))


def _overfitting(rng, epochs: int, peak: int) -> dict:
    """A history whose training loss keeps falling while val_accuracy peaks once, at ``peak``."""
    loss = 0.7 - np.cumsum(rng.uniform(0.02, 0.12, size=epochs))
    acc = 0.5 + np.cumsum(rng.uniform(0.01, 0.07, size=epochs))
    top = rng.uniform(0.65, 0.85)
    val_acc = np.empty(epochs)
    val_acc[peak] = top
    val_acc[:peak] = top - np.cumsum(rng.uniform(0.005, 0.06, size=peak))[::-1]
    val_acc[peak + 1:] = top - np.cumsum(rng.uniform(0.005, 0.04, size=epochs - peak - 1))
    val_loss = 0.7 - 0.5 * (val_acc - 0.5) + rng.uniform(0, 0.01, size=epochs)
    return {"loss": loss.tolist(), "accuracy": acc.tolist(), "val_loss": val_loss.tolist(),
            "val_accuracy": val_acc.tolist()}


def _peaked(rng) -> tuple[dict, int]:
    epochs = 7
    peak = int(rng.integers(1, epochs - 1))  # neither the first nor the last epoch
    return _overfitting(rng, epochs, peak), peak


@best.check("best epoch = highest validation accuracy")
def _selects(rng):
    history, peak = _peaked(rng)
    randoms = [{k: [float(v) for v in rng.random(7)] for k in HISTORY_KEYS} for _ in range(20)]

    def judge(outs):
        got = _as_int(outs[0], "best_epoch")
        require(got == peak, f"best_epoch gave {got}, expected {peak} (highest val_accuracy; "
                "0-based; training loss keeps falling while the model overfits)")
        for h, out in zip(randoms, outs[1:]):
            got, want = _as_int(out, "best_epoch"), ref.best_epoch(h)
            require(got == want, f"best_epoch disagrees on a random history: {got}, expected {want} "
                    f"for val_accuracy {np.round(h['val_accuracy'], 3).tolist()}")
    return _calls("best_epoch", [_case(h) for h in [history] + randoms]), judge


@best.check("ties: the earliest best epoch")
def _best_ties(rng):
    epochs = 7
    history = _overfitting(rng, epochs, 0)
    top = round(float(rng.uniform(0.7, 0.9)), 2)
    tied = sorted(int(v) for v in rng.choice(epochs - 1, size=3, replace=False))
    scores = [round(top - float(rng.uniform(0.01, 0.2)), 2) for _ in range(epochs)]
    for e in tied:
        scores[e] = top
    history["val_accuracy"] = scores

    def judge(outs):
        got = _as_int(outs[0], "best_epoch")
        require(got == tied[0], f"best_epoch gave {got} for a tie (val_accuracy {scores}), "
                f"expected the first ({tied[0]})")
    return _calls("best_epoch", [_case(history)]), judge


def _fake_run(rng, restore: bool):
    history, peak = _peaked(rng)
    inputs, hidden = 5, 3
    weights = {k: _float32(rng.normal(0.0, 0.5, size=tuple(t.shape)))
               for k, t in kit.TwoLayer(inputs, hidden).state_dict().items()}
    steps = [float(v) for v in rng.uniform(0.05, 0.3, size=len(history["loss"]))]
    probe = Probe("keep_best", weights=weights, history=history, steps=steps, restore=restore)
    return probe, history, peak, weights, steps


@best.check("KeepBest tracks the best epoch and score")
def _tracks(rng):
    probe, history, peak, _, _ = _fake_run(rng, restore=False)
    score = history["val_accuracy"][peak]

    def judge(out):
        require(out["best_epoch"] == peak, f"best_epoch attribute {out['best_epoch']}, expected {peak}")
        got = _as_float(out["best_score"], "best_score")
        require(abs(got - score) < 1e-12, f"best_score {got}, expected {score}")
    return probe, judge


class _Snapshots:
    """A keeper that keeps every epoch's weights: the expected states of a fake run."""

    def __init__(self):
        self.states = []

    def update(self, epoch, logs, model):
        self.states.append(kit.state(model))


@best.check("restore() brings back the best epoch's weights")
def _restores(rng):
    probe, history, peak, weights, steps = _fake_run(rng, restore=True)

    def judge(out):
        snapshots = _Snapshots()
        kit.fake_training(snapshots, kit.two_layer(weights), history, steps)
        restored = out["restored"]
        for k, want in snapshots.states[peak].items():
            v = restored.get(k)
            require(isinstance(v, torch.Tensor) and v.shape == want.shape, f"restored state has no `{k}` of shape "
                    f"{tuple(want.shape)}")
            if not torch.equal(v, want):
                last = torch.equal(v, snapshots.states[-1][k])
                raise CheckFailed(f"restored `{k}` is not epoch {peak}'s" +
                                  (" but the last epoch's: keep a copy, state_dict() tensors change "
                                   "in place while training" if last else ""))
    return probe, judge


@best.check("update() says whether the score improved")
def _improved_flag(rng):
    moves = ["up", "same", "down"] + [str(m) for m in rng.choice(["up", "same", "down"], size=2)]
    moves = [moves[i] for i in rng.permutation(len(moves))]
    scores = [round(float(rng.uniform(0.4, 0.6)), 3)]
    top = scores[0]
    for m in moves:
        delta = round(float(rng.uniform(0.01, 0.1)), 3)
        scores.append(top + delta if m == "up" else top - delta if m == "down" else top)
        top = max(top, scores[-1])
    want = [True] + [m == "up" for m in moves]

    def judge(outs):
        flags = [bool(f) for f in outs]
        require(flags == want, f"update() returned {flags} for val_accuracy {scores}, expected {want} "
                "(True only on a strict improvement)")
    return Probe("update_flags", scores=scores), judge


check_best_epoch = best.entry_point()


# ========================================================= parameter ratio

ratio = _unit("recurrent_param_count", "test_param_ratio", 2, ("recurrent_param_count",))


def _sizes(rng) -> list[tuple[int, int]]:
    """Six (input, hidden) pairs: a tiny one, one with input == hidden, four up to 128 with
    input != hidden, so a formula that mixes them up always fails. Counts are formulas: a
    mistake shows at any such size, and drawn sizes keep the answers from being written in."""
    pairs = [(1, int(rng.integers(1, 4)))]
    same = int(rng.integers(2, 65))
    pairs.append((same, same))
    while len(pairs) < 6:
        d, h = (int(v) for v in rng.integers(1, 129, size=2))
        if d != h:
            pairs.append((d, h))
    return pairs


def _torch_check(name: str, bias: bool):
    @ratio.check(name)
    def check(rng):
        cases = [(kind, d, h) for kind in KINDS for d, h in _sizes(rng)]
        biases = 2 if bias else 0

        def judge(outs):
            for (kind, d, h), out in zip(cases, outs):
                cls = ref.RECURRENT[kind]
                want = sum(p.numel() for p in cls(d, h, bias=bias).parameters())
                got = _as_int(out, f"{kind}(input {d}, hidden {h}, biases={biases})")
                require(got == want, f"{kind}(input {d}, hidden {h}, biases={biases}): "
                        f"{got}, expected {want} (count of torch.nn.{cls.__name__})")
        return _calls("recurrent_param_count", [_case(k, d, h, biases=biases) for k, d, h in cases]), judge
    return check


_torch_check("matches torch.nn.RNN/LSTM/GRU (two bias vectors)", True)
_torch_check("biases=0 matches bias=False", False)


@ratio.check("biases=1 gives the Keras counts (280 for the SimpleRNN)")
def _keras(rng):
    cases = [("rnn", 50, 5)] + [(kind, d, h) for kind in KINDS for d, h in _sizes(rng)[:2]]

    def judge(outs):
        got = _as_int(outs[0], "Keras SimpleRNN(5)")
        require(got == 280, f"Keras SimpleRNN(5) on 50 features: {got}, expected 280 (one bias vector)")
        for (kind, d, h), out in zip(cases[1:], outs[1:]):
            got, want = _as_int(out, kind), ref.recurrent_param_count(kind, d, h, 1)
            require(got == want, f"Keras {kind.upper()}({h}) on {d} features: {got}, expected {want}")
    return _calls("recurrent_param_count", [_case(k, d, h, biases=1) for k, d, h in cases]), judge


@ratio.check("GRU:LSTM is exactly 3:4 for any sizes")
def _ratio(rng):
    sizes = _sizes(rng)

    def judge(outs):
        for i, (d, h) in enumerate(sizes):
            gru, lstm = (_as_int(v, "recurrent_param_count") for v in outs[2 * i:2 * i + 2])
            require(lstm != 0, f"LSTM count for input {d}, hidden {h} is 0")
            r = Fraction(gru, lstm)
            require(r == Fraction(3, 4), f"GRU:LSTM for input {d}, hidden {h} is {r}, expected exactly 3/4")
    return _calls("recurrent_param_count", [_case(k, d, h) for d, h in sizes for k in ("gru", "lstm")]), judge


check_param_ratio = ratio.entry_point()


# ================================================================= plot

plot = _unit("plot_history", "test_plot_history", 2, ("plot_history",))
FIGURE = "matplotlib.figure.Figure"


def _plot_history(rng) -> dict:
    epochs = 5
    return {"loss": (0.7 - np.cumsum(rng.uniform(0.02, 0.1, epochs))).round(4).tolist(),
            "accuracy": (0.5 + np.cumsum(rng.uniform(0.02, 0.08, epochs))).round(4).tolist(),
            "val_loss": rng.uniform(0.4, 0.7, epochs).round(4).tolist(),
            "val_accuracy": rng.uniform(0.5, 0.8, epochs).round(4).tolist()}


def _figure(out) -> list[dict]:
    require(FIGURE in out["types"], "no figure")
    return out["axes"]


def _panel(axes, word):
    found = [ax for ax in axes if word in f"{ax['title']} {ax['ylabel']}".lower()]
    require(len(found) == 1, f"expected one panel whose title or y label says '{word}', found {len(found)}")
    return found[0]


def _labelled(ax):
    return [ln for ln in ax["lines"] if not ln["label"].startswith("_")]


def _line(ax, which, values, panel):
    matches = [ln for ln in _labelled(ax) if which in ln["label"].lower()]
    if which == "train":
        matches = [ln for ln in matches if "val" not in ln["label"].lower()]
    require(len(matches) == 1, f"{panel} panel: expected one line labelled with '{which}', found "
            f"{[ln['label'] for ln in ax['lines']]}")
    ln = matches[0]
    y = ln["y"]
    require(y is not None and y.shape == (len(values),) and np.allclose(y, values),
            f"{panel} panel: the '{ln['label']}' line shows "
            f"{np.round(y, 3).tolist() if y is not None else 'no numbers'}, expected {values}")


def _plot_check(name: str):
    """Register ``compare(history, figure description)`` on what plot_history draws for a
    fresh random history."""
    def register(compare):
        _per_case(plot, name, lambda histories: [Probe("plot", history=h) for h in histories], compare)(
            lambda rng: [_plot_history(rng)])
        return compare
    return register


@_plot_check("returns a Figure with two panels")
def _two_panels(history, out):
    require(FIGURE in out["types"], f"plot_history should return the matplotlib Figure, got "
                                    f"{out['types'][0].rsplit('.', 1)[-1]}")
    require(len([ax for ax in out["axes"] if ax["lines"]]) == 2, "expected two panels with lines (loss and accuracy)")


def _metric_panel(word, keys):
    def compare(history, out):
        ax = _panel(_figure(out), word)
        _line(ax, "train", history[keys[0]], word)
        _line(ax, "val", history[keys[1]], word)
        require(ax["legend"], f"{word} panel has no legend")
    return compare


_plot_check("loss panel: labelled train and validation loss")(_metric_panel("loss", ("loss", "val_loss")))
_plot_check("accuracy panel: labelled train and validation accuracy")(
    _metric_panel("acc", ("accuracy", "val_accuracy")))


@_plot_check("x axis: epochs 1..E")
def _x_axis(history, out):
    epochs = list(range(1, len(history["loss"]) + 1))
    for ax in _figure(out):
        for ln in _labelled(ax):
            x = ln["x"]
            require(x is not None and np.array_equal(x, epochs), f"line '{ln['label']}' has x "
                    f"{x.tolist() if x is not None else 'that are not numbers'}, expected epochs 1..{len(epochs)}")


@_plot_check("loss left, accuracy right")
def _side_by_side(history, out):
    axes = _figure(out)
    lb, ab = _panel(axes, "loss")["position"], _panel(axes, "acc")["position"]
    require(lb[2] <= ab[0] + 1e-6 and abs(lb[1] - ab[1]) < 0.05,
            "the loss panel should be left of the accuracy panel, side by side")


check_plot_history = plot.entry_point()
