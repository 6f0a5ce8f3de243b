"""a2's hidden checks for pad_sequences and the vocabulary (build_word_index, docs_to_sequences) (see ``checks``)."""
from __future__ import annotations

import numpy as np

from .. import probes as kit  # helper models: the grader builds the kernel's models again
from .. import reference as ref
from ...harness import CheckFailed, Probe, Unit, per_case, require
from .common import _calls, _case, _int_lists, _kind, _words


# ================================================================ pad_sequences

pad = Unit("pad_sequences", grade_id="test_pad_sequences", objects=("pad_sequences",), probes=kit)


def _seq(rng, length: int) -> list[int]:
    # Distinct values: the first maxlen items never equal the last maxlen ones.
    return [int(v) for v in rng.choice(np.arange(1, 100), size=length, replace=False)]


def _mixed(rng, maxlen: int) -> list[list[int]]:
    """Sequences shorter (one empty, one not) than ``maxlen``, as long and longer, in random
    order; the lengths are fixed, so every check sees each kind whatever the draw."""
    lengths = [max(1, maxlen - 2), maxlen + 3, 0, maxlen, maxlen + 6]
    return [_seq(rng, k) for k in rng.permutation(lengths)]


# A check from ``draw(rng) -> [(what, sequences, kwargs)]``: pad_sequences against the reference.
padded = per_case(lambda cases: _calls("pad_sequences", [_case(s, **kw) for _, s, kw in cases]),
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


pad.check("padding='post' puts the values after the sequence", weight=1)(padded(_with_maxlen("post", "post", 6)))
pad.check("padding='pre' puts the values before the sequence", weight=1)(padded(_with_maxlen("pre", "post", 5)))
pad.check("truncating='post' keeps the first maxlen items", weight=1)(padded(_with_maxlen("post", "post", 3)))
pad.check("truncating='pre' keeps the last maxlen items", weight=1)(padded(_with_maxlen("post", "pre", 4)))


@pad.check("defaults are Keras' (padding and truncating 'pre', value 0)", weight=1)
@padded
def _defaults(rng):
    m = 5
    return [(f"pad_sequences(seqs, maxlen={m})", _mixed(rng, m), {"maxlen": m})]


@pad.check("value fills the padding", weight=1)
@padded
def _value(rng):
    m, value = 7, int(rng.choice([-3, -2, -1, 7, 100]))
    seqs = [_seq(rng, k) for k in (0, 3, 6)]  # every row padded, one entirely
    return [(f"value={value}", seqs, {"maxlen": m, "padding": "post", "value": value})]


@pad.check("maxlen=None pads to the longest sequence", weight=1)
@padded
def _no_maxlen(rng):
    seqs = [_seq(rng, k) for k in (3, 9, 1, 5)]
    return [("maxlen=None", seqs, {"padding": "post"})]


@pad.check("edge cases: empty, exact-length, very long, numpy-array sequences", weight=1)
@padded
def _edges(rng):
    m = 4
    long = [int(v) for v in rng.integers(1, 100, size=20 * m)]
    return [("empty sequences", [[], _seq(rng, 1), []], {"maxlen": m, "padding": "post"}),
            ("length exactly maxlen", [_seq(rng, m)], {"maxlen": m, "padding": "post", "truncating": "post"}),
            ("a sequence 20x too long", [long], {"maxlen": m, "truncating": "pre"}),
            ("numpy arrays as sequences", [np.array(_seq(rng, m + 3), dtype=np.int64), np.array(_seq(rng, 2))],
             {"maxlen": m + 1, "padding": "post"}),
            ("maxlen 1", [_seq(rng, 2), _seq(rng, 3)], {"maxlen": 1, "truncating": "post"})]


@pad.check("60 random cases match the reference", weight=1)
@padded
def _random_cases(rng):
    # Sizes and options fixed per case (a schedule over maxlen 1..11 or None, 1..8 sequences of
    # 0..15 items, values -1..2, every padding/truncating pair); only the items are drawn.
    cases = []
    for case in range(60):
        kwargs = dict(maxlen=None if case % 10 == 0 else 1 + (7 * case) % 11,
                      padding=("pre", "post")[case % 2], truncating=("pre", "post")[(case // 2) % 2],
                      value=(case // 4) % 4 - 1)
        lengths = [(3 * case + 7 * j) % 16 for j in range(1 + (5 * case) % 8)]
        seqs = [[int(v) for v in rng.integers(1, 50, size=k)] for k in lengths]
        cases.append((f"random case {case} ({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})", seqs, kwargs))
    return cases


@pad.check("the input is not modified", weight=1)
def _input_untouched(rng):
    data = [_seq(rng, k) for k in (2, 5, 3)]
    m = 2

    def judge(outs):
        after = outs[0]["args"][0]
        require(isinstance(after, list) and all(isinstance(s, list) for s in after) and after == data,
                "the input sequences were modified")
    return _calls("pad_sequences", [_case(data, maxlen=m, padding="post", truncating="post")], echo=True), judge


@pad.check("an unknown padding/truncating raises ValueError", weight=1)
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

vocab = Unit("build_word_index/docs_to_sequences", grade_id="test_vocabulary", objects=("build_word_index", "docs_to_sequences"), probes=kit)


def _split_docs(tokens: list[str], n_docs: int) -> list[list[str]]:
    """``tokens`` cut into ``n_docs`` documents of fixed, unequal lengths."""
    cuts = sorted({max(1, len(tokens) * i * i // (n_docs * n_docs)) for i in range(1, n_docs)})
    return [list(part) for part in np.split(np.array(tokens, dtype=object), cuts)]


def _distinct_counts(rng, k: int) -> list[list[str]]:
    """A corpus of ``k`` words whose counts are all different (1..k, shuffled), in 4 documents."""
    words = _words(rng, k)
    tokens = [w for w, c in zip(words, rng.permutation(np.arange(1, k + 1))) for _ in range(int(c))]
    return _split_docs([tokens[i] for i in rng.permutation(len(tokens))], 4)


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
    while True:  # document lengths fixed (an empty one included); the words are drawn
        docs = [[str(w) for w in rng.choice(vocabulary, size=k)] for k in (5, 0, 11, 3, 8, 1, 9, 4, 7, 2, 10, 6)]
        want = ref.build_word_index(docs)
        if want != _tie_order(docs, False) and want != _tie_order(docs, True):
            return docs


@vocab.check("ranks follow word counts, 1 = most common", weight=1)
def _ranks(rng):
    docs = _distinct_counts(rng, 7)

    def judge(outs):
        got = outs[0]
        require(isinstance(got, dict), f"expected a dict, got {_kind(got)}")
        want = ref.build_word_index(docs)
        require(got == want, f"word index {got}, expected {want}")
    return _calls("build_word_index", [_case(docs)]), judge


@vocab.check("equal counts rank in order of first appearance", weight=1)
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


# A check from ``draw(rng) -> [(what, docs, index, kwargs)]``: docs_to_sequences against the reference.
sequenced = per_case(lambda cases: _calls("docs_to_sequences", [_case(d, i, **kw) for _, d, i, kw in cases]),
                     _same_sequences)


def _shuffled(rng, words) -> list[str]:
    return [words[i] for i in rng.permutation(len(words))]


@vocab.check("start 1, ranks offset by 3 (num_words=None)", weight=1)
@sequenced
def _offset(rng):
    words, index = _indexed(rng, 6)
    docs = [[str(w) for w in rng.choice(words, size=k)] for k in (3, 1, 5)]
    return [("docs_to_sequences", docs, index, {})]


@vocab.check("indices >= num_words become the OOV index 2", weight=1)
@sequenced
def _cut(rng):
    words, index = _indexed(rng, 8)
    n = 7  # ranks 1-3 kept (indices 4-6), ranks 4-8 cut
    return [(f"num_words={n}", [_shuffled(rng, words)], index, {"num_words": n})]


@vocab.check("num_words at the boundary (index num_words - 1 kept, num_words dropped)", weight=1)
@sequenced
def _boundary(rng):
    words, index = _indexed(rng, 8)
    n = 7  # ranks n - 4 and n - 3 are indices n - 1 and n
    edge = [words[n - 5], words[n - 4]]
    return [(f"num_words={n}", [_shuffled(rng, words), _shuffled(rng, edge)], index, {"num_words": n})]


@vocab.check("words missing from the index are OOV", weight=1)
@sequenced
def _unknown(rng):
    words, index = _indexed(rng, 5)
    strangers = [w.upper() for w in _words(rng, 3)]
    n = 50
    return [("unknown word", [_shuffled(rng, words[:3] + strangers)], index, {"num_words": n})]


@vocab.check("an empty review is just the start index", weight=1)
@sequenced
def _empty(rng):
    words, index = _indexed(rng, 5)
    docs = [[], [str(w) for w in rng.choice(words, size=3)], []]
    return [("empty review", _shuffled(rng, docs), index, {"num_words": 1000})]


@vocab.check("start_char, oov_char and index_from are honoured", weight=1)
@sequenced
def _custom(rng):
    words, index = _indexed(rng, 6)
    index_from = 4
    num_words = index_from + len(words)  # the least common word is cut, the next one kept
    start, oov = (int(v) for v in rng.choice([v for v in range(3, 12) if v != num_words], size=2, replace=False))
    kwargs = {"num_words": num_words, "start_char": start, "oov_char": oov, "index_from": index_from}
    doc = _shuffled(rng, words + [_words(rng, 1)[0].upper()])
    return [(", ".join(f"{k}={v}" for k, v in kwargs.items()), [doc], index, kwargs)]


@vocab.check("start_char=None adds no start index", weight=1)
@sequenced
def _no_start(rng):
    words, index = _indexed(rng, 5)
    return [("start_char=None", [_shuffled(rng, words)], index, {"start_char": None})]


@vocab.check("Keras-sized vocabulary: every index below 2000", weight=1)
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
