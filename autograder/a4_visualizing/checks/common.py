"""What a4_visualizing's check modules share: drawing helpers and readers of returned values."""
from __future__ import annotations

import numpy as np
import torch

from .. import probes

def _torch(rng, *shape, scale=1.0) -> torch.Tensor:
    return torch.from_numpy(rng.normal(0.0, scale, size=shape).astype(np.float32))


def _net(rng, filters: int = 8, kernel: int = 5, padding: int = 2, size: int = 32) -> dict:
    """Weights of a ProbeNet: conv1 with varied filter scales, a 10-way fc."""
    pooled = (size + 2 * padding - kernel + 1) // 2
    scales = rng.uniform(0.1, 0.6, size=(filters, 1, 1, 1)).astype(np.float32)
    return {"conv1_weight": _torch(rng, filters, 1, kernel, kernel) * torch.from_numpy(scales),
            "conv1_bias": _torch(rng, filters, scale=0.1), "padding": padding,
            "fc_weight": _torch(rng, 10, filters * pooled * pooled, scale=0.05),
            "fc_bias": _torch(rng, 10, scale=0.1)}


def _model(net: dict):
    return probes.ProbeNet(net).eval()


def _images(rng, n: int, size: int = 32) -> torch.Tensor:
    """Smooth-ish images in [0, 1]: random blobs plus noise, (n, 1, size, size)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, 1, size, size), np.float32)
    for i in range(n):
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        out[i, 0] = np.clip(0.6 * blob + 0.4 * rng.uniform(size=(size, size)), 0, 1)
    return torch.from_numpy(out)
