# cell: abc_answers
# loses: test_abc_answers
# Right idea, wrong spelling: the answers must be exactly 'RNN', 'LSTM', 'GRU'.
import math

import torch
from torch import nn


A_model, B_model, C_model = "rnn", "lstm", "gru"
