"""A small, explicit training loop for sequence classifiers.

Validation runs every ``eval_every`` steps; the test accuracy reported is the one
measured when validation accuracy was at its best (not the last one), which is how
the course compares models.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .runtime import get_device, is_grading


@dataclass
class History:
    """What one training run produced."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    best_val_acc: float = 0.0
    best_step: int = 0
    test_acc_at_best: float = float("nan")
    seconds: float = 0.0
    best_state: dict | None = field(default=None, repr=False)


def make_loader(x, y, batch_size: int = 100, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """Wrap arrays (N, T, D) and labels (N,) in a DataLoader of float32/int64 tensors."""
    xs = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    ys = torch.as_tensor(np.asarray(y), dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(xs, ys), batch_size=batch_size, shuffle=shuffle, generator=gen)


@torch.no_grad()
def accuracy(model: nn.Module, loader: DataLoader, device=None) -> float:
    """Fraction of correctly classified examples (argmax over logits)."""
    device = device or get_device()
    model.eval()
    correct = total = 0
    for xb, yb in loader:
        logits = model(xb.to(device))
        correct += (logits.argmax(dim=1).cpu() == yb).sum().item()
        total += len(yb)
    model.train()
    return correct / max(total, 1)


def train_classifier(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    test_loader: DataLoader | None = None,
    epochs: int = 5,
    lr: float = 1e-3,
    eval_every: int = 20,
    max_steps: int | None = None,
    device=None,
    progress: bool | None = None,
    desc: str = "training",
) -> History:
    """Train with Adam and cross-entropy; validate every ``eval_every`` steps.

    Returns a :class:`History`; the model is left holding its best-validation weights.
    """
    device = device or get_device()
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    hist = History()
    show = (not is_grading()) if progress is None else progress
    total = epochs * len(train_loader)
    if max_steps is not None:
        total = min(total, max_steps)
    start = time.perf_counter()
    step = 0
    bar = progress_bar(total, desc, show)
    for _ in range(epochs):
        for xb, yb in train_loader:
            if max_steps is not None and step >= max_steps:
                break
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            step += 1
            hist.steps.append(step)
            hist.train_loss.append(float(loss.item()))
            if step % eval_every == 0 or step == total:
                _evaluate(model, val_loader, test_loader, device, step, hist)
                bar.set_postfix(val_acc=f"{hist.val_acc[-1]:.3f}")
            bar.update(1)
    bar.close()
    if hist.best_state is not None:
        model.load_state_dict(hist.best_state)
    hist.seconds = time.perf_counter() - start
    return hist


def _evaluate(model, val_loader, test_loader, device, step, hist: History) -> None:
    acc = accuracy(model, val_loader, device)
    hist.eval_steps.append(step)
    hist.val_acc.append(acc)
    if acc > hist.best_val_acc or hist.best_state is None:
        hist.best_val_acc, hist.best_step = acc, step
        hist.best_state = copy.deepcopy(model.state_dict())
        if test_loader is not None:
            hist.test_acc_at_best = accuracy(model, test_loader, device)


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def progress_bar(total: int, desc: str, show: bool):
    """A tqdm bar (notebook-aware), or a stand-in with the same methods when ``show`` is off."""
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)
