"""a2's hidden checks for plot_history (see ``checks``)."""
from __future__ import annotations

import numpy as np

from .. import probes as kit  # helper models: the grader builds the kernel's models again
from ...harness import Probe, Unit, per_case, require


# ================================================================= plot

plot = Unit("plot_history", grade_id="test_plot_history", objects=("plot_history",), probes=kit)
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


def _plotted(compare):
    """A check: ``compare(history, figure description)`` on what plot_history draws for a
    fresh random history."""
    return per_case(lambda histories: [Probe("plot", history=h) for h in histories], compare)(
        lambda rng: [_plot_history(rng)])


@plot.check("returns a Figure with two panels", weight=1)
@_plotted
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


plot.check("loss panel: labelled train and validation loss", weight=1)(
    _plotted(_metric_panel("loss", ("loss", "val_loss"))))
plot.check("accuracy panel: labelled train and validation accuracy", weight=1)(
    _plotted(_metric_panel("acc", ("accuracy", "val_accuracy"))))


@plot.check("x axis: epochs 1..E", weight=1)
@_plotted
def _x_axis(history, out):
    epochs = list(range(1, len(history["loss"]) + 1))
    for ax in _figure(out):
        for ln in _labelled(ax):
            x = ln["x"]
            require(x is not None and np.array_equal(x, epochs), f"line '{ln['label']}' has x "
                    f"{x.tolist() if x is not None else 'that are not numbers'}, expected epochs 1..{len(epochs)}")


@plot.check("loss left, accuracy right", weight=1)
@_plotted
def _side_by_side(history, out):
    axes = _figure(out)
    lb, ab = _panel(axes, "loss")["position"], _panel(axes, "acc")["position"]
    require(lb[2] <= ab[0] + 1e-6 and abs(lb[1] - ab[1]) < 0.05,
            "the loss panel should be left of the accuracy panel, side by side")


check_plot_history = plot.entry_point()
