# cell: rnn_model
# loses: test_rnn_model_lstm, test_rnn_model_gru, test_rnn_model_rnn_tanh, test_rnn_model_rnn_relu
# Uses torch.nn.LSTM/GRU/RNN instead of the cells (not allowed), and has no rnn_cell_list.
import math

import torch
from torch import nn


class RNNModel(nn.Module):
    def __init__(self, mode, input_size, hidden_size, num_layers, bias, output_size):
        super().__init__()
        self.mode = mode
        if mode == "LSTM":
            self.rnn = nn.LSTM(input_size, hidden_size, num_layers, bias=bias, batch_first=True)
        elif mode == "GRU":
            self.rnn = nn.GRU(input_size, hidden_size, num_layers, bias=bias, batch_first=True)
        else:
            self.rnn = nn.RNN(input_size, hidden_size, num_layers, bias=bias, batch_first=True,
                              nonlinearity="tanh" if mode == "RNN_TANH" else "relu")
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, input, hx=None):
        out, _ = self.rnn(input, hx)
        return self.fc(out[:, -1])
