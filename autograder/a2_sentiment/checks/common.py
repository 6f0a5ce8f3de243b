"""What a2's check modules share: probe calls of the generic ``call`` probe, and readers of
returned values."""
from __future__ import annotations

import numpy as np
import torch

from ...harness import Probe, integer_of, require

KINDS = ("rnn", "lstm", "gru")

def _case(*args, **kwargs) -> dict:
    return {"args": list(args), "kwargs": kwargs}

def _calls(fn: str, cases: list[dict], **extra) -> Probe:
    return Probe("call", fn=fn, cases=cases, **extra)

def _kind(value) -> str:
    """How a returned value reads in a message (probes send unsendable objects as '<T object>')."""
    if isinstance(value, str) and value.startswith("<"):
        return value
    return type(value).__name__

def _int_lists(value, n: int, what: str) -> list[list[int]]:
    require(isinstance(value, (list, tuple)) and len(value) == n,
            f"{what}: expected a list of {n} sequences, got {_kind(value)}"


            + (f" of length {len(value)}" if isinstance(value, (list, tuple)) else ""))
    out = []
    for seq in value:
        if isinstance(seq, (torch.Tensor, np.ndarray)):
            seq = seq.reshape(-1).tolist()
        require(isinstance(seq, (list, tuple)), f"{what}: a sequence is a {_kind(seq)}, expected a list of int")
        out.append([integer_of(v, what) for v in seq])
    return out

def _float32(array) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float32))

def _words(rng, n: int) -> list[str]:
    """``n`` distinct made-up lowercase words."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: list[str] = []
    while len(words) < n:
        w = "".join(rng.choice(letters, size=int(rng.integers(3, 8))))
        if w not in words:
            words.append(w)
    return words
