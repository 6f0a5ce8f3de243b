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
