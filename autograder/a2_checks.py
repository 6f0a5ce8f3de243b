"""Hidden checks for a2_sentiment. Each ``check_*`` runs named sub-checks against
``a2_reference``, prints which failed and returns the points earned; none raises
and none writes to stderr (``Scorer`` catches and silences)."""
from __future__ import annotations

import contextlib
import copy
import math
from fractions import Fraction

import numpy as np
import torch
from torch import nn

from . import a2_reference as ref
from .scoring import CheckFailed, Scorer


def _require(cond, message):
    if not cond:
        raise CheckFailed(message)


@contextlib.contextmanager
def _own_rng(seed=0):
    """Seeded torch RNG that leaves the notebook's own RNG state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class _SeededScorer(Scorer):
    """Each check runs with the torch RNG seeded (shuffling repeats) and the
    notebook's own RNG state left untouched."""

    def check(self, name, fn):
        def seeded():
            with _own_rng(len(self.results)):
                fn()
        return super().check(name, seeded)


def _as_matrix(result, what):
    _require(isinstance(result, np.ndarray), f"{what}: expected a numpy array, got {type(result).__name__}")
    return result


# ------------------------------------------------------------ pad_sequences

def _random_sequences(rng, n, max_len, empty=True):
    lengths = rng.integers(0 if empty else 1, max_len + 1, size=n)
    return [list(map(int, rng.integers(1, 50, size=k))) for k in lengths]


def check_pad_sequences(pad_sequences, points=3):
    s = _SeededScorer("test_pad_sequences", points)
    seqs = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10, 11, 12, 13, 14]]

    def compare(args, kwargs, what):
        got = _as_matrix(pad_sequences(*args, **kwargs), what)
        want = ref.pad_sequences(*args, **kwargs)
        _require(got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}")
        _require(np.issubdtype(got.dtype, np.integer), f"{what}: dtype {got.dtype}, expected integers")
        if not np.array_equal(got, want):
            row = int(np.flatnonzero((got != want).any(axis=1))[0])
            raise CheckFailed(f"{what}: row {row} is {got[row].tolist()}, expected {want[row].tolist()}")

    s.check("padding='post' puts the values after the sequence",
            lambda: compare((seqs,), dict(maxlen=6, padding="post", truncating="post"), "post/post, maxlen 6"))
    s.check("padding='pre' puts the values before the sequence",
            lambda: compare((seqs,), dict(maxlen=6, padding="pre", truncating="post"), "pre padding, maxlen 6"))
    s.check("truncating='post' keeps the first maxlen items",
            lambda: compare((seqs,), dict(maxlen=4, padding="post", truncating="post"), "truncating post, maxlen 4"))
    s.check("truncating='pre' keeps the last maxlen items",
            lambda: compare((seqs,), dict(maxlen=4, padding="post", truncating="pre"), "truncating pre, maxlen 4"))
    s.check("defaults are Keras' (padding and truncating 'pre', value 0)",
            lambda: compare((seqs,), dict(maxlen=6), "pad_sequences(seqs, maxlen=6)"))
    s.check("value fills the padding",
            lambda: compare((seqs,), dict(maxlen=8, padding="post", value=-1), "value=-1"))
    s.check("maxlen=None pads to the longest sequence",
            lambda: compare((seqs,), dict(padding="post"), "maxlen=None"))

    def edge_cases():
        compare(([[], [3], []],), dict(maxlen=3, padding="post"), "empty sequences")
        compare(([[5, 6, 7]],), dict(maxlen=3, padding="post", truncating="post"), "length exactly maxlen")
        compare(([list(range(1, 101))],), dict(maxlen=5, truncating="pre"), "a sequence 20x too long")
        compare(([np.arange(1, 9), np.arange(3)],), dict(maxlen=5, padding="post"), "numpy arrays as sequences")
        compare(([[1, 2]],), dict(maxlen=1, truncating="post"), "maxlen 1")
    s.check("edge cases: empty, exact-length, very long, numpy-array sequences", edge_cases)

    def random_cases():
        rng = np.random.default_rng(2024)
        for case in range(60):
            kwargs = dict(maxlen=None if case % 10 == 0 else int(rng.integers(1, 12)),
                          padding=("pre", "post")[case % 2], truncating=("pre", "post")[(case // 2) % 2],
                          value=int(rng.integers(-1, 3)))
            compare((_random_sequences(rng, int(rng.integers(1, 9)), 15),), kwargs,
                    f"random case {case} ({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")
    s.check("60 random cases match the reference", random_cases)

    def input_untouched():
        data = [[1, 2, 3], [4]]
        pad_sequences(data, maxlen=2, padding="post", truncating="post")
        _require(data == [[1, 2, 3], [4]], "the input sequences were modified")
    s.check("the input is not modified", input_untouched)

    def bad_arguments():
        for kwargs in (dict(padding="middle"), dict(truncating="both")):
            try:
                pad_sequences(seqs, maxlen=3, **kwargs)
            except ValueError:
                continue
            raise CheckFailed(f"{kwargs} should raise ValueError")
    s.check("an unknown padding/truncating raises ValueError", bad_arguments)
    return s.finish()


# -------------------------------------------------------------- vocabulary

def _as_lists(seqs, what):
    _require(len(seqs) >= 0, f"{what}: expected a list of sequences")
    return [[int(v) for v in seq] for seq in seqs]


def check_vocabulary(build_word_index, docs_to_sequences, points=3):
    s = _SeededScorer("test_vocabulary", points)
    distinct = [["b", "a", "b", "c"], ["a", "b", "d", "b"], ["c", "a", "b", "e", "a", "d", "c", "a", "a"]]
    # counts: a 6, b 5, c 3, d 2, e 1

    def ranks_by_count():
        got = build_word_index(distinct)
        _require(isinstance(got, dict), f"expected a dict, got {type(got).__name__}")
        want = ref.build_word_index(distinct)
        _require(dict(got) == want, f"word index {dict(got)}, expected {want}")
    s.check("ranks follow word counts, 1 = most common", ranks_by_count)

    def ties():
        rng = np.random.default_rng(7)
        vocab = [f"w{i}" for i in range(30)]
        for _ in range(5):
            docs = [list(rng.choice(vocab, size=int(rng.integers(0, 12)))) for _ in range(12)]
            docs = [[str(w) for w in d] for d in docs]
            got, want = dict(build_word_index(docs)), ref.build_word_index(docs)
            if got != want:
                bad = next(w for w in want if got.get(w) != want[w])
                raise CheckFailed(f"word {bad!r} has rank {got.get(bad)}, expected {want[bad]} "
                                  "(equal counts: the word seen first ranks first)")
    s.check("equal counts rank in order of first appearance", ties)

    index = ref.build_word_index(distinct)  # a 1, b 2, c 3, d 4, e 5

    def compare(docs, kwargs, what):
        got = _as_lists(docs_to_sequences(docs, index, **kwargs), what)
        want = ref.docs_to_sequences(docs, index, **kwargs)
        _require(got == want, f"{what}: got {got}, expected {want}")

    s.check("start 1, ranks offset by 3 (num_words=None)",
            lambda: compare([["a", "b", "e"], ["d"]], {}, "docs_to_sequences"))
    s.check("indices >= num_words become the OOV index 2",
            lambda: compare([["a", "b", "c", "d", "e"]], dict(num_words=6), "num_words=6"))
    s.check("num_words at the boundary (index num_words - 1 kept, num_words dropped)",
            lambda: compare([["a", "b", "c", "d", "e"]], dict(num_words=7), "num_words=7"))
    s.check("words missing from the index are OOV",
            lambda: compare([["a", "zebra", "b"]], dict(num_words=100), "unknown word"))
    s.check("an empty review is just the start index",
            lambda: compare([[], ["b"]], dict(num_words=2000), "empty review"))
    s.check("start_char, oov_char and index_from are honoured",
            lambda: compare([["a", "e", "x"]], dict(num_words=8, start_char=7, oov_char=5, index_from=1),
                            "start_char=7, oov_char=5, index_from=1"))
    s.check("start_char=None adds no start index",
            lambda: compare([["a", "b"]], dict(start_char=None), "start_char=None"))

    def keras_size():
        rng = np.random.default_rng(11)
        words = [f"t{i}" for i in range(3000)]
        probs = 1.0 / np.arange(1, 3001)
        docs = [[str(w) for w in rng.choice(words, size=int(rng.integers(5, 60)), p=probs / probs.sum())]
                for _ in range(300)]
        wi = ref.build_word_index(docs)
        got = _as_lists(docs_to_sequences(docs, wi, num_words=2000), "num_words=2000")
        want = ref.docs_to_sequences(docs, wi, num_words=2000)
        _require(max(max(g) for g in got) <= 1999, "an index >= 2000 survived num_words=2000 "
                 "(it would overflow Embedding(2000, ...))")
        _require(got == want, "a Zipf-like corpus with num_words=2000 differs from the reference")
    s.check("Keras-sized vocabulary: every index below 2000", keras_size)
    return s.finish()


# ------------------------------------------------------------------ model

def _layer_counts(model):
    return {name: sum(p.numel() for p in getattr(model, name).parameters())
            for name in ("embedding", "rnn", "fc")}


def check_sentiment_model(model_class, points=3):
    s = _SeededScorer("test_sentiment_model", points)
    configs = [("rnn", 2000, 50, 5), ("lstm", 300, 16, 7), ("gru", 300, 16, 7), ("rnn", 120, 8, 3)]

    def build(kind, v, e, h, seed=0):
        with _own_rng(seed):
            return model_class(kind, vocab_size=v, embed_dim=e, hidden_size=h)

    def layers():
        for kind, v, e, h in configs:
            m = build(kind, v, e, h)
            for name in ("embedding", "rnn", "fc"):
                _require(isinstance(getattr(m, name, None), nn.Module), f"{kind}: no layer attribute `{name}`")
            _require(isinstance(m.embedding, nn.Embedding) and tuple(m.embedding.weight.shape) == (v, e),
                     f"{kind}: embedding should be nn.Embedding({v}, {e})")
            cls = ref.RECURRENT[kind]
            _require(type(m.rnn) is cls, f"{kind}: rnn is {type(m.rnn).__name__}, expected nn.{cls.__name__}")
            _require((m.rnn.input_size, m.rnn.hidden_size, m.rnn.num_layers) == (e, h, 1),
                     f"{kind}: rnn should read {e} features into {h} units, one layer")
            _require(not m.rnn.bidirectional, f"{kind}: rnn should be one-directional")
            if kind == "rnn":
                _require(m.rnn.nonlinearity == "tanh", "rnn: the SimpleRNN uses tanh")
            _require(isinstance(m.fc, nn.Linear) and (m.fc.in_features, m.fc.out_features) == (h, 1),
                     f"{kind}: fc should be nn.Linear({h}, 1)")
    s.check("layers: Embedding -> nn.RNN/LSTM/GRU -> Linear(hidden, 1)", layers)

    def counts():
        for kind, v, e, h in configs:
            got = _layer_counts(build(kind, v, e, h))
            want = {"embedding": v * e, "rnn": ref.recurrent_param_count(kind, e, h), "fc": h + 1}
            _require(got == want, f"{kind}({v}, {e}, {h}): parameters per layer {got}, expected {want}")
            _require(sum(got.values()) == sum(p.numel() for p in build(kind, v, e, h).parameters()),
                     f"{kind}: the model has parameters outside embedding, rnn and fc")
    s.check("exact parameter counts per layer (100,000 / 285 / 6 for the default)", counts)

    def forward_values():
        gen = torch.Generator().manual_seed(3)
        for kind, v, e, h in configs:
            m = build(kind, v, e, h, seed=1)
            with torch.no_grad():  # larger weights, so a wrong time step or sigmoid shows clearly
                m.rnn.weight_ih_l0.normal_(0, 0.5, generator=gen)
                m.fc.bias.fill_(0.3)
            x = torch.randint(1, v, (6, 9), generator=gen)
            x[0, 5:] = 0  # post padding: the last steps read index 0
            with torch.no_grad():
                got = m(x)
                want = ref.forward_like(m, kind, x)
            _require(isinstance(got, torch.Tensor) and tuple(got.shape) == (6,),
                     f"{kind}: forward should return logits of shape (6,), got "
                     f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__}")
            if not torch.allclose(got, want, atol=1e-5):
                hint = (" (these look like probabilities: return logits, the loss applies the sigmoid)"
                        if torch.allclose(got, torch.sigmoid(want), atol=1e-5) else "")
                raise CheckFailed(f"{kind}: logits differ from the last time step's hidden state "
                                  f"through fc (max diff {(got - want).abs().max():.2e}){hint}")
    s.check("forward: logits from the hidden state after the last time step", forward_values)

    def batch_one():
        for kind, v, e, h in configs[:3]:
            m = build(kind, v, e, h)
            with torch.no_grad():
                out = m(torch.randint(0, v, (1, 4)))
            _require(tuple(out.shape) == (1,), f"{kind}: batch of one gave shape {tuple(out.shape)}, expected (1,)")
    s.check("batch size 1 keeps its batch dimension", batch_one)

    def init():
        for kind in ("rnn", "lstm", "gru"):
            m = build(kind, 100, 50, 20, seed=5)
            w = m.rnn.weight_ih_l0.detach()
            std, mean = w.std().item(), w.mean().item()
            _require(0.0008 < std < 0.0012 and abs(mean) < 0.0002,
                     f"{kind}: weight_ih_l0 has mean {mean:.2g} and std {std:.2g}, expected N(0, 0.001)")
    s.check("input kernel initialised N(0, 0.001)", init)
    return s.finish()


# ------------------------------------------------------------ parameters

class _Tied(nn.Module):
    """Output layer shares the embedding matrix (weight tying)."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(40, 6)
        self.rnn = nn.GRU(6, 6, batch_first=True)
        self.decoder = nn.Linear(6, 40)
        self.decoder.weight = self.embedding.weight


class _Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Embedding(30, 4), nn.LSTM(4, 3, batch_first=True))
        self.head = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
        self.dropout = nn.Dropout(0.1)


def check_count_parameters(count_parameters, points=2):
    s = _SeededScorer("test_count_parameters", points)

    def compare(model, what):
        got = count_parameters(model)
        _require(isinstance(got, dict), f"{what}: expected a dict, got {type(got).__name__}")
        want = ref.count_parameters(model)
        got = {k: (int(v) if isinstance(v, (int, np.integer, torch.Tensor)) else v) for k, v in got.items()}
        _require(got == want, f"{what}: got {got}, expected {want}")
        _require(list(got) == list(want), f"{what}: keys in order {list(got)}, expected {list(want)}")

    with _own_rng(0):
        sentiment = ref.SentimentRNN("rnn", 2000, 50, 5)
        lstm = ref.SentimentRNN("lstm", 500, 20, 8)
    s.check("SentimentRNN(rnn): 100,000 + 285 + 6 = 100,291", lambda: compare(sentiment, "default model"))
    s.check("LSTM model", lambda: compare(lstm, "lstm model"))

    def frozen():
        m = copy.deepcopy(sentiment)
        m.embedding.weight.requires_grad_(False)
        compare(m, "frozen embedding")
    s.check("frozen (non-trainable) parameters count too", frozen)

    def tied():
        with _own_rng(1):
            compare(_Tied(), "tied embedding/decoder weights")
    s.check("a shared (tied) tensor counts once", tied)

    def nested():
        with _own_rng(2):
            compare(_Nested(), "nested Sequential layers")
    s.check("nested layers and parameter-free layers", nested)
    return s.finish()


# --------------------------------------------------------------- training

class _BagModel(nn.Module):
    """Logit = mean of one learned score per token + bias: any order, any length."""

    def __init__(self, vocab=20, scale=1.5):
        super().__init__()
        self.emb = nn.Embedding(vocab, 1)
        self.bias = nn.Parameter(torch.zeros(1))
        with torch.no_grad():
            self.emb.weight.normal_(0.0, scale)

    def forward(self, x):
        return self.emb(x).squeeze(-1).mean(dim=1) + self.bias


def _toy_data(n=60, t=6, vocab=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n, t), generator=gen)
    y = (x == 3).any(dim=1).float()  # positive iff token 3 occurs
    return x, y


def _history_ok(hist, epochs):
    _require(isinstance(hist, dict), f"train_model should return a dict, got {type(hist).__name__}")
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        _require(key in hist, f"history has no key {key!r}")
        _require(len(hist[key]) == epochs, f"history[{key!r}] has {len(hist[key])} entries for {epochs} epochs")
        for v in hist[key]:
            _require(isinstance(v, (float, int, np.floating)) and math.isfinite(float(v)),
                     f"history[{key!r}] should hold plain numbers, found {type(v).__name__}")


def check_train_model(train_model, evaluate, points=4):
    s = _SeededScorer("test_train_model", points)

    def history_shape():
        with _own_rng(0):
            model = _BagModel()
        x, y = _toy_data()
        _history_ok(train_model(model, x, y, epochs=3, batch_size=16, lr=0.01), 3)
    s.check("returns a history: loss, accuracy, val_loss, val_accuracy per epoch", history_shape)

    def evaluate_values():
        with _own_rng(1):
            model = _BagModel(scale=1.0)
        x, y = _toy_data(n=90, seed=1)
        logits = model(x).detach()
        _require(((logits > 0) & (logits < 0.5)).any(), "internal: no logit in (0, 0.5)")
        got = evaluate(model, x, y)
        _require(len(got) == 2, "evaluate should return (loss, accuracy)")
        want = ref.evaluate(model, x, y)
        _require(abs(float(got[0]) - want[0]) < 1e-5,
                 f"evaluate loss {float(got[0]):.5f}, expected mean binary cross-entropy {want[0]:.5f}")
        _require(abs(float(got[1]) - want[1]) < 1e-9,
                 f"evaluate accuracy {float(got[1]):.4f}, expected {want[1]:.4f} "
                 "(a logit above 0 means probability above 0.5)")
    s.check("evaluate: mean BCE on logits, accuracy with the logit-0 threshold", evaluate_values)

    def frozen_run(validation_split):
        # lr=0: the weights never change, so every metric is a plain evaluation.
        with _own_rng(2):
            model = _BagModel(scale=1.0)
        x, y = _toy_data(n=75, seed=2)
        y[-20:] = 1 - y[-20:]  # the tail differs from the rest, so a wrong split shows
        hist = train_model(model, x, y, epochs=2, batch_size=16, lr=0.0, validation_split=validation_split)
        _history_ok(hist, 2)
        split_at = int(len(x) * (1.0 - validation_split))
        return hist, ref.evaluate(model, x[:split_at], y[:split_at]), ref.evaluate(model, x[split_at:], y[split_at:])

    def validation_metrics():
        for vs in (0.2, 0.3):
            hist, _, (vl, va) = frozen_run(vs)
            for e in range(2):
                _require(abs(hist["val_loss"][e] - vl) < 1e-5 and abs(hist["val_accuracy"][e] - va) < 1e-9,
                         f"validation_split={vs}: epoch {e} val_loss/val_accuracy "
                         f"{hist['val_loss'][e]:.4f}/{hist['val_accuracy'][e]:.4f}, expected {vl:.4f}/{va:.4f} "
                         "on the LAST part of the data")
    s.check("validation metrics on the last validation_split of the data", validation_metrics)

    def training_metrics():
        hist, (tl, ta), _ = frozen_run(0.2)
        for e in range(2):
            _require(abs(hist["loss"][e] - tl) < 1e-5,
                     f"epoch {e} loss {hist['loss'][e]:.5f}, expected {tl:.5f} (mean over the training examples)")
            _require(abs(hist["accuracy"][e] - ta) < 1e-9,
                     f"epoch {e} accuracy {hist['accuracy'][e]:.4f}, expected {ta:.4f}")
    s.check("training loss and accuracy: means over the epoch's examples", training_metrics)

    def optimiser_steps(name, lr):
        x, y = _toy_data(n=50, seed=4)
        with _own_rng(4):
            mine = _BagModel(scale=0.5)
        theirs = copy.deepcopy(mine)
        # One batch per epoch: the updates do not depend on the shuffling.
        kwargs = dict(epochs=3, batch_size=64, optimizer=name, lr=lr, validation_split=0.2)
        ref.train_model(mine, x, y, **kwargs)
        train_model(theirs, x, y, **kwargs)
        for (n, a), b in zip(mine.named_parameters(), theirs.parameters()):
            if not torch.allclose(a, b, atol=1e-6):
                raise CheckFailed(f"optimizer={name!r}, lr={lr}: after 3 full-batch epochs `{n}` differs from "
                                  f"the reference by {(a - b).abs().max():.2e} (loss, optimizer or data used?)")
    s.check("Adam steps on the mean BCE-with-logits loss of the training part",
            lambda: optimiser_steps("adam", 0.05))
    s.check("optimizer='rmsprop' uses RMSprop with the given lr", lambda: optimiser_steps("rmsprop", 0.01))

    def learns():
        with _own_rng(5):
            model = _BagModel(scale=0.1)
        x, y = _toy_data(n=400, seed=5)
        hist = train_model(model, x, y, epochs=8, batch_size=16, lr=0.2, seed=1)
        _history_ok(hist, 8)
        _require(hist["loss"][-1] < hist["loss"][0], "training loss did not go down")
        _require(hist["val_accuracy"][-1] >= 0.9,
                 f"val_accuracy {hist['val_accuracy'][-1]:.3f} after 8 epochs on an easy task (reference: 1.0)")
    s.check("mini-batch training learns an easy task", learns)

    def callback():
        with _own_rng(6):
            model = _BagModel()
        x, y = _toy_data(seed=6)
        calls = []
        hist = train_model(model, x, y, epochs=3, batch_size=16, lr=0.01,
                           callback=lambda epoch, logs, m: calls.append((epoch, dict(logs), m)))
        _require([c[0] for c in calls] == [0, 1, 2], f"callback epochs {[c[0] for c in calls]}, expected [0, 1, 2]")
        _require(all(c[2] is model for c in calls), "callback should receive the model being trained")
        for epoch, logs, _ in calls:
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                _require(key in logs and abs(float(logs[key]) - hist[key][epoch]) < 1e-9,
                         f"callback logs[{key!r}] at epoch {epoch} differ from the history")
    s.check("callback(epoch, logs, model) after every epoch", callback)
    return s.finish()


# ------------------------------------------------------------- best epoch

def check_best_epoch(best_epoch, keep_best_class, points=3):
    s = _SeededScorer("test_best_epoch", points)
    history = {"loss": [0.69, 0.55, 0.45, 0.36, 0.30, 0.25],
               "accuracy": [0.55, 0.70, 0.78, 0.84, 0.88, 0.91],
               "val_loss": [0.67, 0.58, 0.54, 0.56, 0.61, 0.66],
               "val_accuracy": [0.58, 0.69, 0.73, 0.74, 0.72, 0.71]}

    def selects():
        got = best_epoch(history)
        _require(int(got) == 3, f"best_epoch gave {got}, expected 3 (highest val_accuracy; "
                 "0-based; training loss keeps falling while the model overfits)")
        rng = np.random.default_rng(9)
        for _ in range(20):
            h = {k: list(rng.random(7)) for k in history}
            _require(int(best_epoch(h)) == ref.best_epoch(h), "best_epoch disagrees on a random history")
    s.check("best epoch = highest validation accuracy", selects)

    def ties():
        h = dict(history, val_accuracy=[0.5, 0.8, 0.7, 0.8, 0.8, 0.6])
        _require(int(best_epoch(h)) == 1, f"best_epoch gave {best_epoch(h)} for a tie, expected the first (1)")
    s.check("ties: the earliest best epoch", ties)

    def run_keeper(keeper):
        """Fake training: weights change in place every epoch, as an optimiser does."""
        with _own_rng(3):
            model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 1))
        snapshots = []
        for epoch in range(len(history["loss"])):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.1 * (epoch + 1))
            snapshots.append(copy.deepcopy(model.state_dict()))
            keeper.update(epoch, {k: v[epoch] for k, v in history.items()}, model)
        return model, snapshots

    def tracks():
        keeper = keep_best_class()
        run_keeper(keeper)
        _require(keeper.best_epoch == 3, f"best_epoch attribute {keeper.best_epoch}, expected 3")
        _require(abs(float(keeper.best_score) - 0.74) < 1e-12, f"best_score {keeper.best_score}, expected 0.74")
    s.check("KeepBest tracks the best epoch and score", tracks)

    def restores():
        keeper = keep_best_class()
        model, snapshots = run_keeper(keeper)
        out = keeper.restore(model)
        target = out if isinstance(out, nn.Module) else model
        for k, v in target.state_dict().items():
            if not torch.equal(v, snapshots[3][k]):
                last = torch.equal(v, snapshots[-1][k])
                raise CheckFailed(f"restored `{k}` is not epoch 3's" +
                                  (" but the last epoch's: keep a copy, state_dict() tensors change "
                                   "in place while training" if last else ""))
    s.check("restore() brings back the best epoch's weights", restores)

    def improved_flag():
        keeper = keep_best_class()
        model = nn.Linear(2, 1)
        flags = [bool(keeper.update(e, {"val_accuracy": a}, model)) for e, a in enumerate([0.5, 0.6, 0.6, 0.55, 0.7])]
        _require(flags == [True, True, False, False, True], f"update() returned {flags}, expected "
                 "[True, True, False, False, True] (True only on a strict improvement)")
    s.check("update() says whether the score improved", improved_flag)
    return s.finish()


# -------------------------------------------------------- parameter ratio

def check_param_ratio(recurrent_param_count, points=2):
    s = _SeededScorer("test_param_ratio", points)
    sizes = [(50, 5), (1, 1), (10, 3), (32, 64), (50, 100), (7, 128)]

    def torch_counts(bias):
        for kind, cls in ref.RECURRENT.items():
            for d, h in sizes:
                want = sum(p.numel() for p in cls(d, h, bias=bias).parameters())
                got = recurrent_param_count(kind, d, h, biases=2 if bias else 0)
                _require(int(got) == want, f"{kind}(input {d}, hidden {h}, biases={2 if bias else 0}): "
                         f"{got}, expected {want} (count of torch.nn.{cls.__name__})")
    s.check("matches torch.nn.RNN/LSTM/GRU (two bias vectors)", lambda: torch_counts(True))
    s.check("biases=0 matches bias=False", lambda: torch_counts(False))

    def keras():
        got = int(recurrent_param_count("rnn", 50, 5, biases=1))
        _require(got == 280, f"Keras SimpleRNN(5) on 50 features: {got}, expected 280 (one bias vector)")
        got = int(recurrent_param_count("lstm", 50, 5, biases=1))
        _require(got == ref.recurrent_param_count("lstm", 50, 5, 1), f"Keras LSTM(5) on 50 features: {got}")
    s.check("biases=1 gives the Keras counts (280 for the SimpleRNN)", keras)

    def ratio():
        for d, h in sizes:
            r = Fraction(int(recurrent_param_count("gru", d, h)), int(recurrent_param_count("lstm", d, h)))
            _require(r == Fraction(3, 4), f"GRU:LSTM for input {d}, hidden {h} is {r}, expected exactly 3/4")
    s.check("GRU:LSTM is exactly 3:4 for any sizes", ratio)
    return s.finish()


# ------------------------------------------------------------------- plot

def _panel(fig, word):
    found = [ax for ax in fig.axes if word in f"{ax.get_title()} {ax.get_ylabel()}".lower()]
    _require(len(found) == 1, f"expected one panel whose title or y label says '{word}', found {len(found)}")
    return found[0]


def _line(ax, which, values, panel):
    matches = [ln for ln in ax.get_lines() if which in str(ln.get_label()).lower()
               and not str(ln.get_label()).startswith("_")]
    if which == "train":
        matches = [ln for ln in matches if "val" not in str(ln.get_label()).lower()]
    _require(len(matches) == 1, f"{panel} panel: expected one line labelled with '{which}', found "
             f"{[ln.get_label() for ln in ax.get_lines()]}")
    ln = matches[0]
    y = np.asarray(ln.get_ydata(), dtype=float)
    _require(y.shape == (len(values),) and np.allclose(y, values),
             f"{panel} panel: the '{ln.get_label()}' line shows {np.round(y, 3).tolist()}, expected {values}")
    return ln


def check_plot_history(plot_history, points=2):
    import matplotlib
    import matplotlib.pyplot as plt

    s = _SeededScorer("test_plot_history", points)
    history = {"loss": [0.69, 0.52, 0.41, 0.33], "accuracy": [0.52, 0.74, 0.81, 0.86],
               "val_loss": [0.66, 0.55, 0.53, 0.58], "val_accuracy": [0.60, 0.71, 0.74, 0.72]}
    figs = []

    def make():
        before = set(plt.get_fignums())
        fig = plot_history(history)
        figs.extend(plt.figure(n) for n in set(plt.get_fignums()) - before)
        _require(isinstance(fig, matplotlib.figure.Figure),
                 f"plot_history should return the matplotlib Figure, got {type(fig).__name__}")
        figs.append(fig)
        return fig

    state = {}

    def figure():
        state["fig"] = make()
        _require(len([ax for ax in state["fig"].axes if ax.get_lines()]) == 2,
                 "expected two panels with lines (loss and accuracy)")
    s.check("returns a Figure with two panels", figure)

    def panel(word, keys):
        fig = state.get("fig")
        _require(fig is not None, "no figure")
        ax = _panel(fig, word)
        _line(ax, "train", history[keys[0]], word)
        _line(ax, "val", history[keys[1]], word)
        _require(ax.get_legend() is not None, f"{word} panel has no legend")
        return ax
    s.check("loss panel: labelled train and validation loss", lambda: panel("loss", ("loss", "val_loss")))
    s.check("accuracy panel: labelled train and validation accuracy",
            lambda: panel("acc", ("accuracy", "val_accuracy")))

    def x_axis():
        fig = state.get("fig")
        _require(fig is not None, "no figure")
        for ax in fig.axes:
            for ln in ax.get_lines():
                if str(ln.get_label()).startswith("_"):
                    continue
                x = np.asarray(ln.get_xdata(), dtype=float)
                _require(np.array_equal(x, [1, 2, 3, 4]), f"line '{ln.get_label()}' has x {x.tolist()}, "
                         "expected epochs 1..4")
    s.check("x axis: epochs 1..E", x_axis)

    def side_by_side():
        fig = state.get("fig")
        _require(fig is not None, "no figure")
        loss, acc = _panel(fig, "loss"), _panel(fig, "acc")
        lb, ab = loss.get_position(), acc.get_position()
        _require(lb.x1 <= ab.x0 + 1e-6 and abs(lb.y0 - ab.y0) < 0.05,
                 "the loss panel should be left of the accuracy panel, side by side")
    s.check("loss left, accuracy right", side_by_side)
    for fig in figs:
        plt.close(fig)
    return s.finish()
