# cell: abc_answers
# loses: test_abc_answers
# The same answer for every curve: at most one can be right, whatever the key.
import math

import torch
from torch import nn


A_model = B_model = C_model = "LSTM"
