# cell: rnn_model
# loses: test_rnn_model_lstm, test_rnn_model_gru, test_rnn_model_rnn_tanh, test_rnn_model_rnn_relu
# Default state from torch.empty (uninitialised), not zeros.
import math

import torch
from torch import nn


class RNNModel(nn.Module):
    def __init__(self, mode, input_size, hidden_size, num_layers, bias, output_size):
        super().__init__()
        self.mode = mode
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn_cell_list = nn.ModuleList()
        for layer in range(num_layers):
            size_in = input_size if layer == 0 else hidden_size
            if mode == "LSTM":
                self.rnn_cell_list.append(LSTMCell(size_in, hidden_size, bias))
            elif mode == "GRU":
                self.rnn_cell_list.append(GRUCell(size_in, hidden_size, bias))
            elif mode == "RNN_TANH":
                self.rnn_cell_list.append(BasicRNNCell(size_in, hidden_size, bias, "tanh"))
            else:
                self.rnn_cell_list.append(BasicRNNCell(size_in, hidden_size, bias, "relu"))
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, input, hx=None):
        B, T, _ = input.shape
        if hx is None:
            zeros = torch.empty(self.num_layers, B, self.hidden_size)
            hx = (zeros, zeros) if self.mode == "LSTM" else zeros
        if self.mode == "LSTM":
            h, c = list(hx[0]), list(hx[1])
        else:
            h = list(hx)
        for t in range(T):
            x = input[:, t, :]
            for l, cell in enumerate(self.rnn_cell_list):
                if self.mode == "LSTM":
                    h[l], c[l] = cell(x, (h[l], c[l]))
                else:
                    h[l] = cell(x, h[l])
                x = h[l]
        return self.fc(h[-1])
