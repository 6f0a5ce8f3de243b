"""What a3_char_lm's check modules share: drawing helpers and readers of returned values."""
from __future__ import annotations

import numpy as np
import torch

from .. import reference as ref
from ...harness import number_of


POOL = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()\n\téßø—")
CELLS = ("rnn", "lstm", "gru")


def _build(config, dtype=None) -> ref.CharModel:
    """A reference CharModel, built without touching the notebook's torch RNG."""
    with torch.random.fork_rng(devices=[]):
        model = ref.CharModel(**config)
    return model.to(dtype) if dtype is not None else model


def _counted(config) -> int:
    with torch.random.fork_rng(devices=[]):
        return ref.counted_macs(ref.CharModel(**config))


def _number(out, what):
    """A returned number (out: the probe's {"value", "type"}) as a Python float."""
    return number_of(out["value"], what, kind=out["type"])


def _text(rng, n, alphabet_size=None, alphabet=None):
    if alphabet is None:
        k = alphabet_size or 16
        alphabet = [POOL[i] for i in rng.choice(len(POOL), size=k, replace=False)]
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=n))


def _ids(rng, n, vocab):
    return torch.from_numpy(rng.integers(0, vocab, size=n).astype(np.int64))
