"""The a4 reference answers against independent computations (hand values, autograd identities,
tensorboard's own reader)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.a4_visualizing import reference as ref


def test_grayscale_uses_bt601_luma():
    img = np.zeros((2, 32, 32, 3), np.uint8)
    img[0, ..., 0], img[1] = 255, [10, 100, 200]
    g = ref.to_grayscale(img)
    assert g.shape == (2, 1, 32, 32) and g.dtype == torch.float32
    assert float(g[0, 0, 5, 5]) == pytest.approx(0.299)
    assert float(g[1, 0, 0, 0]) == pytest.approx((0.299 * 10 + 0.587 * 100 + 0.114 * 200) / 255, abs=1e-6)


def test_small_cnn_shapes():
    net = ref.SmallCNN()
    assert (net.conv1.in_channels, net.conv1.out_channels) == (1, 32)
    assert net(torch.rand(3, 1, 32, 32)).shape == (3, 10)


def test_log_run_reads_back_with_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    history = {"train_loss": [2.0, 1.0, 0.5], "train_accuracy": [0.1, 0.5, 0.7], "test_accuracy": [0.2, 0.4, 0.6]}
    with SummaryWriter(tmp_path) as w:
        ref.log_run(w, history)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    for key, tag in ref.TAGS.items():
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        assert got == [(i + 1, pytest.approx(v)) for i, v in enumerate(history[key])]


def test_filter_grid_by_hand():
    w = torch.tensor([[[[1.0, 3.0], [5.0, 9.0]]], [[[2.0, 2.0], [2.0, 2.0]]], [[[-1.0, 0.0], [0.0, 1.0]]]])
    g = ref.filter_grid(w, nrow=2)
    assert g.shape == (7, 7)
    assert g[1:3, 1:3].tolist() == [[0.0, 0.25], [0.5, 1.0]]
    assert g[1:3, 4:6].tolist() == [[0.0, 0.0], [0.0, 0.0]]          # constant filter
    assert g[4:6, 1:3].tolist() == [[0.0, 0.5], [0.5, 1.0]]
    assert float(g[4:6, 4:6].abs().sum()) == 0 and float(g[0].abs().sum()) == 0


def test_activation_stats_against_numpy():
    torch.manual_seed(0)
    net = ref.SmallCNN(conv1_filters=4)
    x = torch.rand(3, 1, 32, 32)
    mean, std = ref.activation_stats(net, x)
    act = np.maximum(net.conv1(x).detach().numpy(), 0)
    assert np.allclose(mean.numpy(), act.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(std.numpy(), act.std(axis=(0, 2, 3), ddof=1), atol=1e-6)


def test_maximize_activation_climbs_and_leaves_the_model_alone():
    torch.manual_seed(0)
    net = ref.SmallCNN(conv1_filters=4).train()
    before = [p.clone() for p in net.parameters()]
    x = ref.maximize_activation(net, 2, steps=30, lr=80.0, generator=torch.Generator().manual_seed(3))
    start = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    objective = lambda img: F.relu(net.conv1(img))[0, 2].mean().item()
    assert objective(x) > objective(start)
    assert float(x.min()) >= 0 and float(x.max()) <= 1 and not net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    again = ref.maximize_activation(net, 2, steps=30, lr=80.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, again)


@pytest.mark.parametrize("kernel, padding", [(5, 2), (3, 0), (3, 1)])
def test_deconv_projection_is_the_gradient_of_the_pooled_map(kernel, padding):
    """At the first layer the deconvnet path (switches, ReLU, transposed filters) equals the gradient
    of sum(p * p.detach()) over the kept pooled map p: pooled maxima are where the ReLU passes."""
    torch.manual_seed(kernel + padding)
    net = nn.Module()
    net.conv1 = nn.Conv2d(1, 6, kernel, padding=padding)
    image = torch.rand(1, 32, 32)
    for f in range(6):
        x = image.reshape(1, 1, 32, 32).clone().requires_grad_(True)
        pooled = F.max_pool2d(F.relu(net.conv1(x)), 2)
        (pooled[:, f] * pooled[:, f].detach()).sum().backward()
        got = ref.deconv_project(net, image, f)
        assert got.shape == (1, 32, 32)
        assert torch.allclose(got, x.grad[0], atol=1e-5)


def test_occlusion_map_by_hand():
    class Mean(nn.Module):   # class 0's logit: 50 * (mean - 0.5), others 0
        def forward(self, x):
            z = torch.zeros(len(x), 10)
            z[:, 0] = 50 * (x.mean(dim=(1, 2, 3)) - 0.5)
            return z

    img = torch.zeros(1, 32, 32)
    img[:, :8, :8] = 1.0
    m = ref.occlusion_map(Mean(), img, 0)
    assert m.shape == (7, 7)
    covered = img.clone()
    covered[:, 4:12, 8:16] = 0.5
    assert float(m[1, 2]) == pytest.approx(float(F.softmax(Mean()(covered[None]), 1)[0, 0]))
    assert ref.occlusion_map(Mean(), img, 0, patch=10, stride=11).shape == (3, 3)
    assert torch.equal(img[:, :8, :8], torch.ones(1, 8, 8))


@pytest.mark.parametrize("cell, cls", [("rnn", nn.RNN), ("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_row_rnn_reads_rows_and_classifies_from_the_last_step(cell, cls):
    torch.manual_seed(0)
    net = ref.RowRNN(cell, 12, num_layers=2).eval()
    assert isinstance(net.rnn, cls) and net.rnn.input_size == 28
    x = torch.rand(3, 28, 28)
    # Step by step with the layer itself: feeding rows one at a time gives the same last output.
    state, out = None, None
    for t in range(28):
        out, state = net.rnn(x[:, t:t + 1], state)
    assert torch.allclose(net(x), net.fc(out[:, -1]), atol=1e-5)
    with pytest.raises(ValueError):
        ref.RowRNN("transformer", 4)


def test_training_helper_records_one_value_per_epoch_and_learns():
    from coursekit.vision import evaluate, train

    torch.manual_seed(0)
    x = torch.randn(200, 1, 4, 4)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    h = train(model, x, y, x[:50], y[:50], epochs=4, lr=0.2, optimizer="sgd", batch_size=20, progress=False)
    assert set(h) == {"train_loss", "train_accuracy", "test_accuracy", "seconds"}
    assert all(len(h[k]) == 4 for k in ("train_loss", "train_accuracy", "test_accuracy"))
    assert h["train_loss"][-1] < h["train_loss"][0] and h["test_accuracy"][-1] > 0.8
    assert next(model.parameters()).device.type == "cpu"
    assert evaluate(model, x[:50], y[:50])[1] == pytest.approx(h["test_accuracy"][-1])
    with pytest.raises(ValueError, match="optimizer"):
        train(model, x, y, x, y, optimizer="lbfgs")
