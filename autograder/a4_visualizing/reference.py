"""Reference answers for a4_visualizing (grader only: never sent to a student's kernel).

Each function is the behaviour the notebook's docstrings specify; the hidden checks in
``a4_visualizing.checks`` compare the student's results with these on inputs drawn per grading run.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B


def to_grayscale(images) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB -> float32 (N, 1, H, W) luma in [0, 1]."""
    x = torch.as_tensor(np.asarray(images)).to(torch.float32) / 255.0
    gray = x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2]
    return gray.unsqueeze(1)


class SmallCNN(nn.Module):
    """conv1 (5x5, padding 2) -> ReLU -> pool -> conv2 (3x3) -> ReLU -> pool -> fc -> fc."""

    def __init__(self, conv1_filters: int = 32, conv2_filters: int = 32, hidden: int = 64,
                 dropout: float = 0.0, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, conv1_filters, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(conv1_filters, conv2_filters, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(conv2_filters * 8 * 8, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(self.drop(F.relu(self.fc1(x.flatten(1)))))


TAGS = {"train_loss": "train/loss", "train_accuracy": "train/accuracy", "test_accuracy": "test/accuracy"}


def log_run(writer, history: dict) -> None:
    """One scalar per epoch and key, at steps 1, 2, ..."""
    for key, tag in TAGS.items():
        for epoch, value in enumerate(history[key], start=1):
            writer.add_scalar(tag, float(value), epoch)


def filter_grid(weights: torch.Tensor, nrow: int = 4) -> torch.Tensor:
    """(F, 1, k, k) filters -> 2-D grid, each filter min-max scaled on its own, 1 px of 0 between."""
    w = weights.detach().to(torch.float32)
    n, _, kh, kw = w.shape
    flat = w.reshape(n, -1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    span = hi - lo
    scaled = torch.where(span[:, None] > 0, (flat - lo[:, None]) / span.clamp_min(1e-30)[:, None],
                         torch.zeros_like(flat)).reshape(n, kh, kw)
    rows = math.ceil(n / nrow)
    grid = torch.zeros(rows * (kh + 1) + 1, nrow * (kw + 1) + 1)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = 1 + r * (kh + 1), 1 + c * (kw + 1)
        grid[top:top + kh, left:left + kw] = scaled[i]
    return grid


@torch.no_grad()
def activation_stats(model: nn.Module, images: torch.Tensor):
    """Per-filter mean and (unbiased) std of ReLU(conv1(images)) over images and positions."""
    act = F.relu(model.conv1(images.to(torch.float32)))
    act = act.transpose(0, 1).reshape(act.shape[1], -1)
    return act.mean(dim=1), act.std(dim=1)


def maximize_activation(model: nn.Module, filter_index: int, steps: int, lr: float,
                        generator: torch.Generator | None = None, size: int = 32) -> torch.Tensor:
    """Gradient ascent on the mean of ReLU(conv1(x))[filter_index]; x clipped to [0, 1] each step."""
    model.eval()
    x = torch.rand((1, 1, size, size), generator=generator)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        objective = F.relu(model.conv1(x))[0, filter_index].mean()
        (grad,) = torch.autograd.grad(objective, x)
        x = (x + lr * grad).clamp(0.0, 1.0)
    return x.detach()


@torch.no_grad()
def deconv_project(model: nn.Module, image: torch.Tensor, filter_index: int) -> torch.Tensor:
    """Project one pooled first-layer map back to pixels: unpool (switches), ReLU, conv_transpose."""
    conv = model.conv1
    x = image.reshape(1, 1, *image.shape[-2:]).to(torch.float32)
    fmap = F.relu(conv(x))
    pooled, switches = F.max_pool2d(fmap, 2, stride=2, return_indices=True)
    keep = torch.zeros_like(pooled)
    keep[:, filter_index] = pooled[:, filter_index]
    up = F.relu(F.max_unpool2d(keep, switches, 2, stride=2, output_size=fmap.shape[-2:]))
    out = F.conv_transpose2d(up, conv.weight, stride=conv.stride, padding=conv.padding)
    return out.reshape(1, *out.shape[-2:])


@torch.no_grad()
def occlusion_map(model: nn.Module, image: torch.Tensor, label: int, patch: int = 8, stride: int = 4,
                  fill: float = 0.5) -> torch.Tensor:
    """(rows, cols) true-class probability with a fill-valued patch at each top-left position."""
    model.eval()
    h, w = image.shape[-2:]
    tops, lefts = range(0, h - patch + 1, stride), range(0, w - patch + 1, stride)
    batch = []
    for top in tops:
        for left in lefts:
            x = image.reshape(1, h, w).clone().to(torch.float32)
            x[:, top:top + patch, left:left + patch] = fill
            batch.append(x)
    probs = F.softmax(model(torch.stack(batch)), dim=1)[:, label]
    return probs.reshape(len(tops), len(lefts))


CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RowRNN(nn.Module):
    """(N, 28, 28) images read as 28 steps of 28 features; logits from the last step."""

    def __init__(self, cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1, num_classes: int = 10,
                 input_size: int = 28):
        super().__init__()
        key = str(cell).lower()
        if key not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, not {cell!r}")
        self.rnn = CELLS[key](input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        out, _ = self.rnn(x.reshape(x.shape[0], x.shape[-2], x.shape[-1]))
        return self.fc(out[:, -1])
