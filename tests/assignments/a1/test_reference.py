"""The A1 reference classes agree with torch.nn (weights copied), in float64 so that any
difference beyond rounding means different semantics."""
import itertools
import math

import pytest
import torch
from torch import nn

from autograder.a1_rnn_cells import reference as ref

TOL = dict(atol=1e-10, rtol=1e-8)
TORCH_STACK = {"LSTM": (nn.LSTM, {}), "GRU": (nn.GRU, {}),
               "RNN_TANH": (nn.RNN, {"nonlinearity": "tanh"}), "RNN_RELU": (nn.RNN, {"nonlinearity": "relu"})}


def copy_cell(cell, theirs, suffix=""):
    """x2h <- weight_ih/bias_ih, h2h <- weight_hh/bias_hh; returns (ours, theirs) parameter pairs."""
    pairs = []
    with torch.no_grad():
        for ours, tag in (("x2h", "ih"), ("h2h", "hh")):
            lin = getattr(cell, ours)
            for kind in ("weight", "bias"):
                src = getattr(theirs, f"{kind}_{tag}{suffix}", None)
                dst = getattr(lin, kind)
                assert (src is None) == (dst is None)
                if src is not None:
                    dst.copy_(src)
                    pairs.append((dst, src))
    return pairs


def assert_grads(pairs):
    for ours, theirs in pairs:
        torch.testing.assert_close(ours.grad, theirs.grad, **TOL)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("given", [True, False])
def test_cells_match_torch(kind, bias, batch, given):
    torch.manual_seed(0)
    D, H = 5, 4
    if kind == "LSTM":
        ours, theirs = ref.LSTMCell(D, H, bias), nn.LSTMCell(D, H, bias)
    elif kind == "GRU":
        ours, theirs = ref.GRUCell(D, H, bias), nn.GRUCell(D, H, bias)
    else:
        nl = kind[4:].lower()
        ours, theirs = ref.BasicRNNCell(D, H, bias, nl), nn.RNNCell(D, H, bias, nonlinearity=nl)
    ours.double(), theirs.double()
    pairs = copy_cell(ours, theirs)
    x = torch.randn(batch, D, dtype=torch.double)
    state = [torch.randn(batch, H, dtype=torch.double) for _ in range(2 if kind == "LSTM" else 1)]
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    ss = [[s.clone().requires_grad_() for s in state] for _ in range(2)]
    outs = []
    for i, module in enumerate((ours, theirs)):
        hx = (tuple(ss[i]) if kind == "LSTM" else ss[i][0]) if given else None
        out = module(xs[i], hx) if given else module(xs[i])
        out = list(out) if kind == "LSTM" else [out]
        assert all(o.shape == (batch, H) for o in out)
        outs.append(out)
    w = [torch.randn(batch, H, dtype=torch.double) for _ in outs[0]]
    for out in outs:
        sum((o * wi).sum() for o, wi in zip(out, w)).backward()
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, **TOL)
    if given:
        for a, b in zip(*ss):
            torch.testing.assert_close(a.grad, b.grad, **TOL)
    assert_grads(pairs)


def build_pair(mode, bidir, D, H, L, bias, K):
    maker, extra = TORCH_STACK[mode]
    cls = ref.BidirRecurrentModel if bidir else ref.RNNModel
    ours = cls(mode, D, H, L, bias, K).double()
    theirs = maker(D, H, L, bias=bias, batch_first=True, bidirectional=bidir, **extra).double()
    fc = nn.Linear((2 if bidir else 1) * H, K).double()
    pairs = []
    lists = [(ours.rnn_cell_list, "")] + ([(ours.rnn_cell_list_rev, "_reverse")] if bidir else [])
    for cells, suffix in lists:
        assert len(cells) == L
        for layer, cell in enumerate(cells):
            pairs += copy_cell(cell, theirs, f"_l{layer}{suffix}")
    with torch.no_grad():
        ours.fc.weight.copy_(fc.weight)
        ours.fc.bias.copy_(fc.bias)
    pairs += [(ours.fc.weight, fc.weight), (ours.fc.bias, fc.bias)]
    return ours, theirs, fc, pairs


CASES = list(itertools.product(["LSTM", "GRU", "RNN_TANH", "RNN_RELU"], [1, 2, 3], [True, False]))


@pytest.mark.parametrize("mode,layers,bias", CASES)
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("given", [True, False])
def test_rnn_model_matches_torch(mode, layers, bias, batch, given):
    torch.manual_seed(1)
    D, H, T, K = 3, 4, 5, 2
    ours, theirs, fc, pairs = build_pair(mode, False, D, H, layers, bias, K)
    x = torch.randn(batch, T, D, dtype=torch.double)
    state = [torch.randn(layers, batch, H, dtype=torch.double) for _ in range(2 if mode == "LSTM" else 1)]
    xs = [x.clone().requires_grad_() for _ in range(2)]
    ss = [[s.clone().requires_grad_() for s in state] for _ in range(2)]
    hx = [(tuple(s) if mode == "LSTM" else s[0]) if given else None for s in ss]
    out = ours(xs[0], hx[0])
    _, h_n = theirs(xs[1], hx[1])
    expected = fc((h_n[0] if mode == "LSTM" else h_n)[-1])
    assert out.shape == (batch, K)
    torch.testing.assert_close(out, expected, **TOL)
    w = torch.randn(batch, K, dtype=torch.double)
    (out * w).sum().backward()
    (expected * w).sum().backward()
    torch.testing.assert_close(xs[0].grad, xs[1].grad, **TOL)
    if given:
        for a, b in zip(*ss):
            torch.testing.assert_close(a.grad, b.grad, **TOL)
    assert_grads(pairs)


@pytest.mark.parametrize("mode,layers,bias", CASES)
@pytest.mark.parametrize("batch", [1, 2])
def test_bidir_model_matches_torch(mode, layers, bias, batch):
    torch.manual_seed(2)
    D, H, T, K = 3, 4, 5, 2
    ours, theirs, fc, pairs = build_pair(mode, True, D, H, layers, bias, K)
    assert all(a is not b for a, b in zip(ours.rnn_cell_list, ours.rnn_cell_list_rev))
    x = torch.randn(batch, T, D, dtype=torch.double)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    out = ours(xs[0])
    _, h_n = theirs(xs[1])
    h_n = h_n[0] if mode == "LSTM" else h_n
    expected = fc(torch.cat([h_n[-2], h_n[-1]], dim=1))  # top forward, top reverse
    assert out.shape == (batch, K)
    torch.testing.assert_close(out, expected, **TOL)
    w = torch.randn(batch, K, dtype=torch.double)
    (out * w).sum().backward()
    (expected * w).sum().backward()
    torch.testing.assert_close(xs[0].grad, xs[1].grad, **TOL)
    assert_grads(pairs)


@pytest.mark.parametrize("cls", [ref.LSTMCell, ref.GRUCell, ref.BasicRNNCell])
def test_cell_initialisation_range(cls):
    torch.manual_seed(3)
    cell = cls(4, 25)
    bound = 1 / math.sqrt(25)
    for p in cell.parameters():
        assert p.abs().max() <= bound and p.abs().max() > 0.8 * bound
    with torch.no_grad():
        for p in cell.parameters():
            p.fill_(10.0)
    cell.reset_parameters()
    assert all(p.abs().max() <= bound for p in cell.parameters())


def test_layer_sizes_and_bad_mode():
    m = ref.BidirRecurrentModel("GRU", 3, 4, 3, True, 2)
    assert [c.x2h.in_features for c in m.rnn_cell_list] == [3, 8, 8]
    assert m.fc.in_features == 8
    assert [c.x2h.in_features for c in ref.RNNModel("LSTM", 3, 4, 3, True, 2).rnn_cell_list] == [3, 4, 4]
    with pytest.raises(ValueError):
        ref.RNNModel("TRANSFORMER", 3, 4, 1, True, 2)
    with pytest.raises(ValueError):
        ref.BasicRNNCell(3, 4, nonlinearity="sigmoid")
