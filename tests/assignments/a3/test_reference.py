"""a3_char_lm reference implementations against torch and against hand-worked values."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from autograder.a3_char_lm import reference as ref


def test_vocab_encode_decode_round_trip():
    chars, stoi = ref.build_vocab("hello world\n")
    assert chars == ["\n", " ", "d", "e", "h", "l", "o", "r", "w"]
    assert stoi == {c: i for i, c in enumerate(chars)}
    ids = ref.encode("hello", stoi)
    assert ids.dtype == torch.long and ids.tolist() == [4, 3, 5, 5, 6]
    assert ref.decode(ids, chars) == "hello" and ref.decode([8, 6], chars) == "wo"
    assert ref.encode("", stoi).shape == (0,)


def test_encode_unknown_character_names_it():
    _, stoi = ref.build_vocab("abc")
    with pytest.raises(KeyError, match="'z'"):
        ref.encode("abz", stoi)


def test_make_windows_by_hand():
    x, y = ref.make_windows(torch.arange(6), 3)
    assert x.tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]] and y.tolist() == [3, 4, 5]
    assert x.dtype == y.dtype == torch.long
    x, y = ref.make_windows(torch.arange(3), 3)
    assert x.shape == (0, 3) and y.shape == (0,)


def test_train_val_windows_keep_to_their_side():
    text = "abcdefghij" * 4 + "XYZ" * 4  # 52 characters; X, Y, Z only in the last part
    chars, stoi, (xt, yt), (xv, yv) = ref.train_val_windows(text, 5, 0.25)
    assert "X" in chars
    cut = ref.split_point(len(text), 0.25)
    assert cut == 39
    assert len(xt) == cut - 5 and len(xv) == len(text) - cut - 5
    assert ref.decode(xv[0], chars) == text[cut:cut + 5] and chars[yv[0]] == text[cut + 5]
    assert chars[yt[-1]] == text[cut - 1]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers,head", [(1, None), (2, 24)])
def test_char_model_counts_and_shapes(cell, layers, head):
    m = ref.CharModel(30, 16, cell=cell, num_layers=layers, embedding_dim=8, head_hidden=head)
    assert sum(p.numel() for p in m.parameters()) == ref.param_count(30, 16, cell, layers, 8, head)
    logits, state = m(torch.randint(0, 30, (2, 7)))
    assert logits.shape == (2, 7, 30)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (layers, 2, 16)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers,head", [(1, None), (3, 20)])
def test_macs_formula_agrees_with_flop_counter(cell, layers, head):
    m = ref.CharModel(40, 24, cell=cell, num_layers=layers, embedding_dim=12, head_hidden=head)
    assert ref.macs_per_step(m) == ref.counted_macs(m)


def test_lstm_fused_kernel_is_invisible_to_the_counter():
    """Why counted_macs needs its nn.Linear stand-in for the LSTM (torch 2.13, CPU)."""
    with FlopCounterMode(display=False) as counter:
        nn.LSTM(8, 16, batch_first=True)(torch.zeros(1, 1, 8))
    assert counter.get_total_flops() == 0


def test_model_size_counts_buffers_and_frozen_parameters():
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).double()
    m[0].weight.requires_grad_(False)
    # params: 6 + 2 + 2 + 2 doubles; buffers: 2 + 2 doubles and one int64 counter
    assert ref.model_size_bytes(m) == (12 + 4) * 8 + 8


def test_accuracy_and_bits_per_char():
    logits = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]], [[0.0, 0.0, 5.0], [1.0, 0.0, 0.0]]])
    targets = torch.tensor([[0, 2], [2, 1]])
    assert ref.accuracy(logits, targets) == 0.5
    assert ref.accuracy(logits.reshape(4, 3), targets.reshape(4)) == 0.5
    assert ref.bits_per_char(torch.zeros(5, 8), torch.arange(5)) == pytest.approx(3.0)
    nats = nn.functional.cross_entropy(logits.reshape(4, 3), targets.reshape(4)).item()
    assert ref.bits_per_char(logits, targets) == pytest.approx(nats / math.log(2))


def test_evaluate_weights_every_character_equally():
    torch.manual_seed(0)
    m = ref.CharModel(11, 8, cell="gru", embedding_dim=4)
    x = torch.randint(0, 11, (37, 6))
    y = torch.randint(0, 11, (37,))
    loss, acc = ref.evaluate(m, x, y, batch_size=10)
    logits = m(x)[0][:, -1]
    assert loss == pytest.approx(nn.functional.cross_entropy(logits, y).item(), rel=1e-6)
    assert acc == pytest.approx(ref.accuracy(logits, y))
    y2 = torch.randint(0, 11, (37, 6))
    loss2, acc2 = ref.evaluate(m, x, y2, batch_size=8)
    assert acc2 == pytest.approx(ref.accuracy(m(x)[0], y2))


def test_generate_greedy_and_sampled_are_repeatable():
    torch.manual_seed(1)
    chars, stoi = ref.build_vocab("abcdefg ")
    m = ref.CharModel(len(chars), 12, cell="lstm", embedding_dim=5)
    greedy = ref.generate(m, "abc", 15, stoi, chars, temperature=0)
    assert len(greedy) == 15 and greedy == ref.generate(m, "abc", 15, stoi, chars, temperature=0)
    a = ref.generate(m, "abc", 30, stoi, chars, 1.0, torch.Generator().manual_seed(5))
    b = ref.generate(m, "abc", 30, stoi, chars, 1.0, torch.Generator().manual_seed(5))
    assert a == b and set(a) <= set(chars)
    assert m.training  # the mode is given back
