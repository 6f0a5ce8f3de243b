"""a2's hidden checks for train_model/evaluate and best_epoch/KeepBest (see ``checks``)."""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import probes as kit  # helper models: the grader builds the kernel's models again
from .. import reference as ref
from ...harness import CheckFailed, Probe, Unit, integer_of, require
from .common import _calls, _case, _float32, _kind


# ============================================================ train_model

train = Unit("train_model/evaluate", grade_id="test_train_model", objects=("train_model", "evaluate"), probes=kit)
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


@train.check("returns a history: loss, accuracy, val_loss, val_accuracy per epoch", weight=1)
def _history_shape(rng):
    epochs = 3
    x, y = _toy_data(rng, 60)
    return (_train_probe(_bag_weights(rng, 1.5), x, y, epochs=epochs, batch_size=16, lr=0.01),
            lambda out: _history_ok(out["history"], epochs))


@train.check("evaluate: mean BCE on logits, accuracy with the logit-0 threshold", weight=1)
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


@train.check("validation metrics on the last validation_split of the data", weight=1)
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


@train.check("training loss and accuracy: means over the epoch's examples", weight=1)
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


def _optimiser(optimizer: str, lr_range: tuple[float, float]):
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


train.check("Adam steps on the mean BCE-with-logits loss of the training part", weight=1)(
    _optimiser("adam", (0.03, 0.08)))
train.check("optimizer='rmsprop' uses RMSprop with the given lr", weight=1)(_optimiser("rmsprop", (0.005, 0.02)))


# Epochs of the "learns" check: enough that a training loop which learns slowly but in the
# right direction always gets there (a sigmoid applied before BCEWithLogitsLoss reached 90%
# in 8 epochs on 97% of the draws, so its penalty depended on the secret; in 12, on 200 of
# 200), while a loop that does not learn still fails.
LEARN_EPOCHS = 12


@train.check("mini-batch training learns an easy task", weight=1)
def _learns(rng):
    kwargs = dict(epochs=LEARN_EPOCHS, batch_size=16, lr=0.2)
    while True:  # a draw on which the reference reaches 95% (it nearly always reaches 100%)
        weights, (x, y), seed = _bag_weights(rng, 0.1), _toy_data(rng, 400), int(rng.integers(0, 1000))
        hist = ref.train_model(kit.bag_model(weights), x, y, seed=seed, **kwargs)
        if hist["val_accuracy"][-1] >= 0.95 and hist["loss"][-1] < hist["loss"][0]:
            break

    def judge(out):
        hist = out["history"]
        _history_ok(hist, LEARN_EPOCHS)
        require(hist["loss"][-1] < hist["loss"][0], "training loss did not go down")
        require(hist["val_accuracy"][-1] >= 0.9,
                f"val_accuracy {hist['val_accuracy'][-1]:.3f} after {LEARN_EPOCHS} epochs on an easy task (reference: "
                f"{ref_acc:.3f})")
    ref_acc = hist["val_accuracy"][-1]
    return _train_probe(weights, x, y, seed=seed, **kwargs), judge


@train.check("callback(epoch, logs, model) after every epoch", weight=1)
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

best = Unit("best_epoch/KeepBest", grade_id="test_best_epoch", objects=("best_epoch", "keep_best_class"), probes=kit)


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


@best.check("best epoch = highest validation accuracy", weight=1)
def _selects(rng):
    history, peak = _peaked(rng)
    randoms = [{k: [float(v) for v in rng.random(7)] for k in HISTORY_KEYS} for _ in range(20)]

    def judge(outs):
        got = integer_of(outs[0], "best_epoch")
        require(got == peak, f"best_epoch gave {got}, expected {peak} (highest val_accuracy; "
                "0-based; training loss keeps falling while the model overfits)")
        for h, out in zip(randoms, outs[1:]):
            got, want = integer_of(out, "best_epoch"), ref.best_epoch(h)
            require(got == want, f"best_epoch disagrees on a random history: {got}, expected {want} "
                    f"for val_accuracy {np.round(h['val_accuracy'], 3).tolist()}")
    return _calls("best_epoch", [_case(h) for h in [history] + randoms]), judge


@best.check("ties: the earliest best epoch", weight=1)
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
        got = integer_of(outs[0], "best_epoch")
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


@best.check("KeepBest tracks the best epoch and score", weight=1)
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


@best.check("restore() brings back the best epoch's weights", weight=1)
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


@best.check("update() says whether the score improved", weight=1)
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
