"""a3_char_lm's hidden checks for accuracy, bits_per_char, evaluate and generate (see ``checks``)."""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import probes
from .. import reference as ref
from ...harness import CheckFailed, Probe, Unit, require
from .common import _build, _number, _text


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


accuracy_unit = Unit("accuracy", grade_id="test_accuracy", threads=1, probes=probes, objects=("accuracy",))
accuracy_unit.check("(N, V) logits: fraction of argmax == target", weight=1)(_metric_check(
    "accuracy", ref.accuracy, lambda r: ((40, 17), "right"), "last-position predictions", 1e-6))
accuracy_unit.check("(B, T, V) logits: over every position", weight=1)(_metric_check(
    "accuracy", ref.accuracy, lambda r: ((3, 5, 11), "right"), "every position", 1e-6))
accuracy_unit.check("one sequence of one position", weight=1)(_metric_check(
    "accuracy", ref.accuracy, lambda r: ((1, 1, 13), "right"), "a single prediction", 1e-6))
check_accuracy = accuracy_unit.entry_point()

bpc_unit = Unit("bits_per_char", grade_id="test_bits_per_char", threads=1, probes=probes, objects=("bits_per_char",))
bpc_unit.check("uniform predictions cost log2(V) bits", weight=1)(_metric_check(
    "bits_per_char", ref.bits_per_char, lambda r: ((12, 40), "uniform"), "uniform logits", 1e-4))
bpc_unit.check("(N, V) logits: mean cross-entropy in bits", weight=1)(_metric_check(
    "bits_per_char", ref.bits_per_char, lambda r: ((40, 17), None), "random logits", 1e-4))
bpc_unit.check("(B, T, V) logits: over every position", weight=1)(_metric_check(
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


evaluate_unit = Unit("evaluate", grade_id="test_evaluate", threads=1, probes=probes, objects=("evaluate",))


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


evaluate_unit.check("last-position targets (N,), last batch smaller than the others", weight=1)(_evaluate_check(False, "uneven", "lstm"))
evaluate_unit.check("every-position targets (N, T), last batch smaller", weight=1)(_evaluate_check(True, "uneven", "gru"))
evaluate_unit.check("one batch larger than the data", weight=1)(_evaluate_check(False, "one", "rnn"))


@evaluate_unit.check("no gradients are tracked while evaluating", weight=1)
def _evaluate_no_grad(rng):
    config, weights, model = _fixture(rng, "gru")
    x = torch.from_numpy(rng.integers(0, config["vocab_size"], size=(20, 5)).astype(np.int64))
    y = torch.from_numpy(rng.integers(0, config["vocab_size"], size=(20,)).astype(np.int64))

    def judge(out):
        require(not out["grad"], "the model ran with gradients enabled: wrap evaluation in torch.no_grad()")
    return Probe("evaluate_case", config=config, weights=weights, X=x, y=y, batch_size=8), judge


check_evaluate = evaluate_unit.entry_point()

generate_unit = Unit("generate", grade_id="test_generate", threads=1, probes=probes, objects=("generate",))


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


generate_unit.check("temperature 0: greedy argmax, state carried from step to step", weight=1)(_generate_check(
    [0], "feed the prefix once, then each new character with the state returned by the previous call", "gru"))
generate_unit.check("temperature 1: torch.multinomial(softmax(logits), 1, generator=generator)", weight=1)(_generate_check(
    [1.0], "sample with the given generator, in the order the docstring gives", "lstm"))
generate_unit.check("temperature 0.5 and 2: logits divided by the temperature before the softmax", weight=1)(_generate_check(
    [0.5, 2.0], "softmax(logits / temperature), then torch.multinomial with the generator", "rnn"))


@generate_unit.check("returns only the n_chars new characters; eval mode, no gradients", weight=1)
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
