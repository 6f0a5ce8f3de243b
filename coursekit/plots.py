"""Plots and tables the notebooks share."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from .training import History


def plot_histories(histories: Mapping[str, "History"], title: str = ""):
    """Training loss (left) and validation accuracy (right) for several runs."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4))
    for name, h in histories.items():
        ax_loss.plot(h.steps, h.train_loss, label=name, alpha=0.8)
        ax_acc.plot(h.eval_steps, h.val_acc, label=name, marker=".")
    ax_loss.set(xlabel="step", ylabel="training loss", title="Training loss")
    ax_acc.set(xlabel="step", ylabel="validation accuracy", title="Validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def results_table(histories: Mapping[str, "History"]):
    """One row per run: best validation accuracy, test accuracy at best, time."""
    import pandas as pd

    rows = [
        {
            "model": name,
            "best val acc": round(h.best_val_acc, 4),
            "test acc at best val": round(h.test_acc_at_best, 4),
            "best step": h.best_step,
            "seconds": round(h.seconds, 1),
        }
        for name, h in histories.items()
    ]
    return pd.DataFrame(rows).set_index("model")


def seed_table(runs: Mapping[str, list["History"]]):
    """One row per variant, over its seeds: mean +- sd of the best validation accuracy and
    of the test accuracy at that point, the mean time, and how many seeds."""
    import numpy as np
    import pandas as pd

    def spread(values):
        values = np.asarray(values, dtype=float)
        sd = values.std(ddof=1) if len(values) > 1 else float("nan")
        return f"{values.mean():.3f} ± {sd:.3f}" if len(values) > 1 else f"{values.mean():.3f}"

    rows = [{"model": name,
             "best val acc": spread([h.best_val_acc for h in hs]),
             "test acc at best val": spread([h.test_acc_at_best for h in hs]),
             "seconds per run": round(float(np.mean([h.seconds for h in hs])), 1),
             "seeds": len(hs)} for name, hs in runs.items()]
    return pd.DataFrame(rows).set_index("model")


def plot_seed_curves(runs: Mapping[str, list["History"]], title: str = ""):
    """Validation accuracy per variant: the mean over seeds, and a band of +-1 sd."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name, hs in runs.items():
        n = min(len(h.val_acc) for h in hs)
        acc = np.array([h.val_acc[:n] for h in hs])
        mean, sd = acc.mean(axis=0), acc.std(axis=0)
        line, = ax.plot(hs[0].eval_steps[:n], mean, label=name, marker=".",
                        linestyle="-" if name.startswith("RNN") else "--")
        if len(hs) > 1:
            ax.fill_between(hs[0].eval_steps[:n], mean - sd, mean + sd, color=line.get_color(), alpha=0.12)
    ax.set(xlabel="training step", ylabel="validation accuracy", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
