# cell: bidir_model
# loses: test_bidir_model_lstm, test_bidir_model_gru, test_bidir_model_rnn_tanh, test_bidir_model_rnn_relu
# fc reads [reverse, forward] instead of [forward, reverse].
import math

import torch
from torch import nn


class BidirRecurrentModel(nn.Module):
    def __init__(self, mode, input_size, hidden_size, num_layers, bias, output_size):
        super().__init__()
        self.mode = mode
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn_cell_list = nn.ModuleList()
        self.rnn_cell_list_rev = nn.ModuleList()
        for layer in range(num_layers):
            size_in = input_size if layer == 0 else 2 * hidden_size
            self.rnn_cell_list.append(self._cell(size_in, bias))
            self.rnn_cell_list_rev.append(self._cell(size_in, bias))
        self.fc = nn.Linear(2 * hidden_size, output_size)

    def _cell(self, size_in, bias):
        if self.mode == "LSTM":
            return LSTMCell(size_in, self.hidden_size, bias)
        if self.mode == "GRU":
            return GRUCell(size_in, self.hidden_size, bias)
        return BasicRNNCell(size_in, self.hidden_size, bias, "tanh" if self.mode == "RNN_TANH" else "relu")

    def _direction(self, cell, xs):
        state, out = None, []
        for x in xs:
            state = cell(x, state)
            out.append(state[0] if self.mode == "LSTM" else state)
        return out

    def forward(self, input):
        xs = [input[:, t, :] for t in range(input.size(1))]
        for l in range(self.num_layers):
            fwd = self._direction(self.rnn_cell_list[l], xs)
            rev = self._direction(self.rnn_cell_list_rev[l], xs[::-1])[::-1]
            xs = [torch.cat([f, r], dim=1) for f, r in zip(fwd, rev)]
        return self.fc(torch.cat([rev[0], fwd[-1]], dim=1))
