"""Reference answers for A1 (instructor only): the five classes of the notebook.

Contract (what the notebook asks for and what the checks compare against):

* ``BasicRNNCell(input_size, hidden_size, bias=True, nonlinearity="tanh"|"relu")`` (given to
  students): ``x2h = nn.Linear(D, H, bias)``, ``h2h = nn.Linear(H, H, bias)``;
  ``forward(input (B, D), hx (B, H) or None) -> h (B, H)``.
* ``LSTMCell(input_size, hidden_size, bias=True)``: ``x2h`` Linear(D, 4H), ``h2h`` Linear(H, 4H);
  ``forward(input (B, D), hx=None | (h, c)) -> (h, c)``, each (B, H); gate blocks in the order
  input, forget, cell, output; ``hx=None`` means zeros. ``reset_parameters()`` draws every
  parameter uniform in [-1/sqrt(H), 1/sqrt(H)].
* ``GRUCell(input_size, hidden_size, bias=True)``: ``x2h`` Linear(D, 3H), ``h2h`` Linear(H, 3H);
  ``forward(input, hx=None) -> h``; blocks reset, update, new;
  n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) * n + z * h.
* ``RNNModel(mode, input_size, hidden_size, num_layers, bias, output_size)``, mode one of
  "LSTM", "GRU", "RNN_TANH", "RNN_RELU": ``rnn_cell_list`` (nn.ModuleList, one cell per layer,
  built from the module-level ``LSTMCell``/``GRUCell``/``BasicRNNCell``; layer 0 reads D
  features, the others H) and ``fc`` = Linear(H, output_size);
  ``forward(input (B, T, D), hx=None) -> (B, output_size)`` = fc(top layer's state after the
  last step). ``hx`` follows torch.nn.LSTM/GRU/RNN: (h0, c0) for LSTM, else h0, each
  (num_layers, B, H); None means zeros.
* ``BidirRecurrentModel(same arguments)``: ``rnn_cell_list`` (forward stack),
  ``rnn_cell_list_rev`` (a separate reverse stack), ``fc`` = Linear(2H, output_size). Layers above
  the first read the 2H concatenation [forward, reverse] of the layer below at each step, as
  torch.nn.LSTM/GRU/RNN(bidirectional=True, batch_first=True) do. Output: fc(cat(top forward
  state at the last step, top reverse state at the first step)). ``forward(input)``, zero
  initial state.

With weights copied (x2h <-> weight_ih/bias_ih, h2h <-> weight_hh/bias_hh) these agree with
torch.nn; ``tests/assignments/a1/test_reference.py`` checks that.
"""
from __future__ import annotations

import math

import torch
from torch import nn

MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")


class _TwoLinearCell(nn.Module):
    """Shared layout: ``x2h`` and ``h2h`` produce ``blocks`` gate blocks of size H each."""

    blocks = 1

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.x2h = nn.Linear(input_size, self.blocks * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, self.blocks * hidden_size, bias=bias)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _zeros(self, input):
        # new_zeros keeps the input's device and dtype (CPU or CUDA alike).
        return input.new_zeros(input.size(0), self.hidden_size)


class BasicRNNCell(_TwoLinearCell):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        h = self._zeros(input) if hx is None else hx
        pre = self.x2h(input) + self.h2h(h)
        return torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)


class LSTMCell(_TwoLinearCell):
    blocks = 4

    def forward(self, input, hx=None):
        if hx is None:
            h = c = self._zeros(input)
        else:
            h, c = hx
        i, f, g, o = (self.x2h(input) + self.h2h(h)).chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        return h_new, c_new


class GRUCell(_TwoLinearCell):
    blocks = 3

    def forward(self, input, hx=None):
        h = self._zeros(input) if hx is None else hx
        x_r, x_z, x_n = self.x2h(input).chunk(3, dim=1)
        h_r, h_z, h_n = self.h2h(h).chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)  # the reset gate scales the projected state
        return (1 - z) * n + z * h


def _make_cell(mode, input_size, hidden_size, bias):
    # Looked up in this module's globals at call time, like the notebook's classes.
    if mode == "LSTM":
        return LSTMCell(input_size, hidden_size, bias)
    if mode == "GRU":
        return GRUCell(input_size, hidden_size, bias)
    if mode in ("RNN_TANH", "RNN_RELU"):
        return BasicRNNCell(input_size, hidden_size, bias, nonlinearity=mode[4:].lower())
    raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


class RNNModel(nn.Module):
    def __init__(self, mode, input_size, hidden_size, num_layers, bias, output_size):
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.output_size = output_size
        self.rnn_cell_list = nn.ModuleList(
            _make_cell(mode, input_size if layer == 0 else hidden_size, hidden_size, bias)
            for layer in range(num_layers))
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, input, hx=None):
        lstm = self.mode == "LSTM"
        # Per-layer states; None lets each cell start from zeros.
        if hx is None:
            states = [None] * self.num_layers
        elif lstm:
            states = list(zip(hx[0].unbind(0), hx[1].unbind(0)))
        else:
            states = list(hx.unbind(0))
        for x in input.unbind(1):
            for layer, cell in enumerate(self.rnn_cell_list):
                states[layer] = cell(x, states[layer])
                x = states[layer][0] if lstm else states[layer]
        return self.fc(x)


class BidirRecurrentModel(nn.Module):
    def __init__(self, mode, input_size, hidden_size, num_layers, bias, output_size):
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.output_size = output_size
        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
        self.rnn_cell_list = nn.ModuleList(_make_cell(mode, s, hidden_size, bias) for s in sizes)
        self.rnn_cell_list_rev = nn.ModuleList(_make_cell(mode, s, hidden_size, bias) for s in sizes)
        self.fc = nn.Linear(2 * hidden_size, output_size)

    def _run(self, cell, steps):
        """Hidden states of one cell over ``steps`` (a list of (B, in) tensors), in order."""
        state, hs = None, []
        for x in steps:
            state = cell(x, state)
            hs.append(state[0] if self.mode == "LSTM" else state)
        return hs

    def forward(self, input):
        steps = list(input.unbind(1))
        for fwd_cell, rev_cell in zip(self.rnn_cell_list, self.rnn_cell_list_rev):
            fwd = self._run(fwd_cell, steps)
            rev = self._run(rev_cell, steps[::-1])[::-1]  # back in time order
            steps = [torch.cat([f, r], dim=1) for f, r in zip(fwd, rev)]
        # The reverse direction finishes at the first step.
        return self.fc(torch.cat([fwd[-1], rev[0]], dim=1))
