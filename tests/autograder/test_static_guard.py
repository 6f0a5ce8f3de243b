"""The trusted side's source scan for torch's recurrent layers (autograder/static_guard.py)."""
import pytest

from autograder.static_guard import EVERYTHING, scan

HONEST = '''
import torch
from torch import nn

class LSTMCell(nn.Module):
    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.x2h = nn.Linear(input_size, 4 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size, bias=bias)

    def forward(self, x, hx=None):
        i, f, g, o = (self.x2h(x) + self.h2h(hx[0])).chunk(4, 1)
        c = torch.sigmoid(f) * hx[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

class RNNModel(nn.Module):
    def __init__(self, mode, *a):
        super().__init__()
        self.rnn_cell_list = nn.ModuleList([LSTMCell(3, 4)])
'''


def test_honest_code_is_clean():
    assert scan([HONEST, "MODE = 'LSTM'\nmodel = RNNModel(MODE, 3)"]) == {}


@pytest.mark.parametrize("code, name", [
    ("class LSTMCell(nn.Module):\n    def __init__(s, a, b):\n        super().__init__()\n        s.c = nn.LSTMCell(a, b)", "LSTMCell"),
    ("import torch.nn as tnn\nclass GRUCell(tnn.GRUCell):\n    pass", "GRUCell"),
    ("from torch.nn import LSTMCell as Cell\nclass LSTMCell(Cell):\n    pass", "LSTMCell"),
    ("import torch\ndef f(x, h):\n    return torch.lstm_cell(x, h, 1, 2)\nclass LSTMCell:\n    forward = f", "LSTMCell"),
    ("import torch\nclass GRUCell:\n    def forward(s, x, h):\n        return torch._VF.gru_cell(x, h)", "GRUCell"),
    ("class GRUCell:\n    def __init__(s):\n        s.m = getattr(nn, 'GRU' + 'Cell')(3, 4)", "GRUCell"),
    ("class GRUCell:\n    def __init__(s):\n        s.m = getattr(nn, 'GRUCell')(3, 4)", "GRUCell"),
    ("import torch\nclass GRUCell:\n    def __init__(s):\n        s.m = torch.nn.modules.rnn.__dict__['GRU' + 'Cell'](3, 4)", "GRUCell"),
    ("import importlib\nclass RNNModel:\n    def __init__(s):\n        s.m = importlib.import_module('torch.nn').LSTM(3, 4)", "RNNModel"),
])
def test_forbidden_layers_are_named(code, name):
    found = scan([code])
    assert name in found and "does not allow" in found[name]


def test_flag_follows_names_and_run_time_rebinding():
    helper = "import torch\nclass Wrapped(torch.nn.Module):\n    def __init__(s):\n        super().__init__()\n        s.m = torch.nn.LSTMCell(3, 4)"
    found = scan([helper, "class LSTMCell(Wrapped):\n    pass"])
    assert "LSTMCell" in found
    hook = "def swap(lines):\n    globals()['LSTMCell'] = Wrapped\n    return lines\nget_ipython().input_transformers_post.append(swap)"
    assert EVERYTHING in scan([helper, "class LSTMCell:\n    pass", hook])
