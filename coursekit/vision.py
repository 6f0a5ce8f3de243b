"""Images for a4_visualizing: CIFAR-10 and MNIST (or their offline stand-ins), a small
training loop that records per-epoch curves, and the plots the notebook shares.

Graded code is not here: the notebook's cells write it.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .paths import dataset_dir
from .runtime import get_device, is_grading

CIFAR_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _root(name: str, build_if_missing: bool) -> Path:
    """The real data when fetched, else the offline stand-in (built on first use)."""
    import data_scripts

    real, offline = dataset_dir(name, offline=False), dataset_dir(name, offline=True)
    if real.is_dir():
        return real
    if offline.is_dir():
        return offline
    if not build_if_missing:
        raise FileNotFoundError(f"no {name} data at {real} or {offline}. Fetch the real data with "
                                f"`course data --real {name}` or build the stand-in with `course data {name}`.")
    print(f"{name}: no data found, building the offline stand-in ...")
    return data_scripts.build_offline(name)


def _describe(root: Path, real_name: str) -> tuple[str, str]:
    marker = Path(root) / "STANDIN"
    if marker.exists():
        return "offline stand-in", marker.read_text().strip()
    return "real", f"the real {real_name}"


def _subset(x, y, n, seed):
    if n is None or n >= len(x):
        return x, y
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[idx], y[idx]


def load_cifar10(n_train: int | None = None, n_test: int | None = None, root=None, seed: int = 0,
                 build_if_missing: bool = True) -> dict:
    """CIFAR-10 as uint8 images (N, 32, 32, 3) and int64 labels, optionally a random subset.

    Returns a dict with x_train, y_train, x_test, y_test, label_names, source ("real" or
    "offline stand-in") and what (a sentence saying which images these are).
    """
    from data_scripts.cifar import read_cifar

    root = Path(root) if root is not None else _root("cifar10", build_if_missing)
    data = read_cifar(root)
    source, what = _describe(root, "CIFAR-10 (Krizhevsky 2009)")
    data["x_train"], data["y_train"] = _subset(data["x_train"], data["y_train"], n_train, seed)
    data["x_test"], data["y_test"] = _subset(data["x_test"], data["y_test"], n_test, seed + 1)
    data.update(source=source, what=what)
    print(f"CIFAR-10 data: {what}\n  {len(data['x_train'])} train / {len(data['x_test'])} test images")
    return data


def load_mnist(n_train: int | None = None, n_test: int | None = None, root=None, seed: int = 0,
               build_if_missing: bool = True) -> dict:
    """MNIST as uint8 images (N, 28, 28) and int64 labels, optionally a random subset (same keys
    as :func:`load_cifar10`; label_names from the stand-in's CLASSES file, else the digits)."""
    from data_scripts.mnist import read_mnist

    root = Path(root) if root is not None else _root("mnist", build_if_missing)
    data = read_mnist(root)
    source, what = _describe(root, "MNIST handwritten digits")
    classes = Path(root) / "CLASSES"
    data["label_names"] = (classes.read_text().split("\n")[:10] if classes.exists()
                           else [str(d) for d in range(10)])
    data["x_train"], data["y_train"] = _subset(data["x_train"], data["y_train"], n_train, seed)
    data["x_test"], data["y_test"] = _subset(data["x_test"], data["y_test"], n_test, seed + 1)
    data.update(source=source, what=what)
    print(f"MNIST data: {what}\n  {len(data['x_train'])} train / {len(data['x_test'])} test images")
    return data


# ---------------------------------------------------------------- training

OPTIMIZERS = {"sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on tensors ``x``, ``y`` in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    loss = correct = 0.0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size].to(device))
        yb = y[i:i + batch_size].to(device)
        loss += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += float((logits.argmax(1) == yb).sum())
    return loss / max(len(x), 1), correct / max(len(x), 1)


def train(model: nn.Module, x_train, y_train, x_test, y_test, *, epochs: int = 3, lr: float = 1e-3,
          optimizer: str = "adam", batch_size: int = 64, seed: int = 0, progress: bool | None = None,
          desc: str = "training") -> dict:
    """Train with cross-entropy; return per-epoch train_loss, train_accuracy, test_accuracy
    (lists, one float per epoch) and seconds. ``optimizer``: "sgd", "rmsprop" or "adam".
    Trains on the GPU when there is one (``coursekit.get_device``); the model is returned on the CPU."""
    from tqdm.auto import tqdm

    key = optimizer.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, not {optimizer!r}")
    device = get_device()
    model.to(device)
    opt = OPTIMIZERS[key](model.parameters(), lr=lr)
    x_train, y_train = torch.as_tensor(x_train), torch.as_tensor(y_train)
    x_test, y_test = torch.as_tensor(x_test), torch.as_tensor(y_test)
    gen = torch.Generator().manual_seed(seed)
    history = {"train_loss": [], "train_accuracy": [], "test_accuracy": []}
    show = (not is_grading()) if progress is None else progress
    start = time.perf_counter()
    bar = tqdm(total=epochs * ((len(x_train) + batch_size - 1) // batch_size), desc=desc, disable=not show,
               leave=False)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total_loss = correct = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = x_train[idx].to(device), y_train[idx].to(device)
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(idx)
            correct += float((logits.argmax(1) == yb).sum())
            bar.update(1)
        history["train_loss"].append(total_loss / len(order))
        history["train_accuracy"].append(correct / len(order))
        history["test_accuracy"].append(evaluate(model, x_test, y_test)[1])
        bar.set_postfix(test_acc=f"{history['test_accuracy'][-1]:.3f}")
    bar.close()
    history["seconds"] = time.perf_counter() - start
    model.cpu()  # the notebook's analyses (filters, activations, occlusion) run on the CPU
    return history


def fresh_run_dir(log_dir, name: str) -> Path:
    """``log_dir/name``, emptied: one TensorBoard event folder per run. Re-running a cell
    would otherwise add a second event file beside the first, and TensorBoard would draw
    both runs' points as one jagged curve."""
    import shutil

    run_dir = Path(log_dir) / name
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    return run_dir


# ---------------------------------------------------------------- plots

def plot_curves(histories: dict, title: str = ""):
    """Training loss, training accuracy and test accuracy per epoch, one line per run
    (the curves TensorBoard shows, drawn with matplotlib)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    panels = (("train_loss", "training loss"), ("train_accuracy", "training accuracy"),
              ("test_accuracy", "test accuracy"))
    for ax, (key, label) in zip(axes, panels):
        for name, h in histories.items():
            ax.plot(range(1, len(h[key]) + 1), h[key], marker=".", label=name)
        ax.set(xlabel="epoch", ylabel=label, title=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 1.25
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_grid(grid: torch.Tensor, title: str = "", ax=None):
    """Draw a 2-D grid of values in [0, 1] (from ``filter_grid``) in gray."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(grid.detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    return ax


# conv1 filters of SmallCNN trained longer, once, offline (benchmarks/train_a4_filters.py made the file;
# its digest is pinned here so that a changed or damaged file is noticed, not shown).
TRAINED_LONGER = Path(__file__).resolve().parent / "assets" / "a4_conv1_trained_longer.json"
TRAINED_LONGER_SHA256 = "a24013d518642e210313e21ce1236f1064244c5dc36912dffba43c07422dfd83"


def trained_longer_filters() -> tuple[torch.Tensor, dict]:
    """(filters (32, 1, 5, 5), how they were trained) of a SmallCNN trained for longer on the
    offline stand-in than the notebook has time for, to show next to a student's own."""
    import hashlib
    import json

    raw = TRAINED_LONGER.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != TRAINED_LONGER_SHA256:
        raise ValueError(f"{TRAINED_LONGER.name} has SHA-256 {digest}, expected {TRAINED_LONGER_SHA256}: "
                         "reinstall the course package (or rerun benchmarks/train_a4_filters.py and pin its digest)")
    record = json.loads(raw)
    return torch.tensor(record.pop("filters")), record
