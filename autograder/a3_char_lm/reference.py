"""Reference answers for a3_char_lm, written independently of the notebook.

The hidden checks in ``a3_char_lm.checks`` compare student code with these, in the grader's
process only (this module is never sent into a student's kernel). The semantics are
the ones the notebook's docstrings state: a sorted character vocabulary, windows
``ids[i:i+T] -> ids[i+T]``, a split by position with no window across the boundary,
``CharModel`` = embedding -> nn.RNN/LSTM/GRU -> optional ReLU layer -> linear, and
char-rnn style sampling that carries the recurrent state.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4}  # weight blocks per layer (tanh RNN, GRU r/z/n, LSTM i/f/g/o)


# ------------------------------------------------------------------ data

def build_vocab(text: str):
    chars = sorted(set(text))
    return chars, {ch: i for i, ch in enumerate(chars)}


def encode(text: str, stoi: dict) -> torch.Tensor:
    for ch in text:
        if ch not in stoi:
            raise KeyError(f"character {ch!r} is not in the vocabulary")
    return torch.tensor([stoi[ch] for ch in text], dtype=torch.long)


def decode(ids, chars) -> str:
    return "".join(chars[int(i)] for i in ids)


def make_windows(ids, seq_len: int):
    ids = torch.as_tensor(ids, dtype=torch.long)
    n = len(ids) - seq_len
    if n <= 0:
        return torch.zeros((0, seq_len), dtype=torch.long), torch.zeros((0,), dtype=torch.long)
    x = ids.unfold(0, seq_len, 1)[:n].clone()
    return x, ids[seq_len:].clone()


def split_point(n_chars: int, val_fraction: float) -> int:
    """First character of the validation part: the last ``val_fraction`` of the text."""
    return int(n_chars * (1 - val_fraction))


def train_val_windows(text: str, seq_len: int, val_fraction: float = 0.2):
    chars, stoi = build_vocab(text)  # the whole text: validation characters need an index too
    cut = split_point(len(text), val_fraction)
    train = make_windows(encode(text[:cut], stoi), seq_len)
    val = make_windows(encode(text[cut:], stoi), seq_len)
    return chars, stoi, train, val


# ----------------------------------------------------------------- model

class CharModel(nn.Module):
    def __init__(self, vocab_size, hidden_size, cell="lstm", num_layers=1, embedding_dim=32, head_hidden=None):
        super().__init__()
        if cell not in RECURRENT:
            raise ValueError(f"cell must be one of {sorted(RECURRENT)}, not {cell!r}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = RECURRENT[cell](embedding_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = (nn.Sequential(nn.Linear(hidden_size, head_hidden), nn.ReLU())
                     if head_hidden else None)
        self.fc = nn.Linear(head_hidden or hidden_size, vocab_size)

    def forward(self, x, state=None):
        out, state = self.rnn(self.embedding(x), state)
        if self.head is not None:
            out = self.head(out)
        return self.fc(out), state


def param_count(vocab_size, hidden_size, cell="lstm", num_layers=1, embedding_dim=32, head_hidden=None) -> int:
    """CharModel's parameter count from its sizes (no layer built)."""
    g = GATES[RECURRENT[cell]]
    n = vocab_size * embedding_dim
    for layer in range(num_layers):
        d = embedding_dim if layer == 0 else hidden_size
        n += g * (hidden_size * (d + hidden_size) + 2 * hidden_size)
    top = hidden_size
    if head_hidden:
        n += head_hidden * (hidden_size + 1)
        top = head_hidden
    return n + vocab_size * (top + 1)


def macs_per_step(model: nn.Module) -> int:
    total = 0
    for m in model.modules():
        if isinstance(m, tuple(GATES)):
            dirs = 2 if m.bidirectional else 1
            for layer in range(m.num_layers):
                d = m.input_size if layer == 0 else m.hidden_size * dirs
                total += dirs * GATES[type(m)] * m.hidden_size * (d + m.hidden_size)
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
    return total


def _flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


def counted_macs(model: CharModel) -> int:
    """MACs of one step of one sequence as torch's FlopCounterMode counts them (FLOPs / 2).

    torch 2.13's counter sees the matrix products of nn.RNN and nn.GRU, but not nn.LSTM's
    fused CPU kernel (it reports 0); an LSTM is therefore counted on an equivalent step
    built from nn.Linear (input and recurrent products of each layer, 4 gates)."""
    rnn = model.rnn
    x = torch.zeros((1, 1), dtype=torch.long)
    if isinstance(rnn, nn.LSTM):
        h = rnn.hidden_size

        def step():
            inp = model.embedding(x)[:, 0]
            for layer in range(rnn.num_layers):
                d = rnn.input_size if layer == 0 else h
                gates = nn.Linear(d, 4 * h)(inp) + nn.Linear(h, 4 * h)(torch.zeros(1, h))
                i, f, g, o = gates.chunk(4, -1)
                inp = torch.sigmoid(o) * torch.tanh(torch.sigmoid(i) * torch.tanh(g))
            out = model.head(inp) if model.head is not None else inp
            model.fc(out)
        return _flops(step) // 2
    return _flops(lambda: model(x)) // 2


def model_size_bytes(model: nn.Module) -> int:
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


# --------------------------------------------------------------- metrics

def accuracy(logits, targets) -> float:
    return (logits.argmax(-1) == targets).double().mean().item()


def bits_per_char(logits, targets) -> float:
    v = logits.shape[-1]
    nats = F.cross_entropy(logits.reshape(-1, v).double(), targets.reshape(-1))
    return nats.item() / math.log(2)


@torch.no_grad()
def evaluate(model, X, y, batch_size=256):
    """(mean cross-entropy in nats, accuracy) over every predicted character: the last
    position when ``y`` is (N,), every position when ``y`` is (N, T)."""
    was = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for i in range(0, len(X), batch_size):
        logits, _ = model(X[i:i + batch_size])
        yb = y[i:i + batch_size]
        if yb.dim() == 1:
            logits = logits[:, -1]
        v = logits.shape[-1]
        loss_sum += F.cross_entropy(logits.reshape(-1, v), yb.reshape(-1), reduction="sum").item()
        correct += (logits.argmax(-1) == yb).sum().item()
        count += yb.numel()
    model.train(was)
    return loss_sum / count, correct / count


@torch.no_grad()
def generate(model, prefix, n_chars, stoi, chars, temperature=1.0, generator=None) -> str:
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, state = model(torch.tensor([[stoi[c] for c in prefix]], dtype=torch.long, device=device))
    last = logits[0, -1]
    out = []
    for _ in range(n_chars):
        if temperature == 0:
            idx = int(last.argmax())
        else:
            probs = torch.softmax(last / temperature, -1)
            idx = int(torch.multinomial(probs, 1, generator=generator))
        out.append(chars[idx])
        logits, state = model(torch.tensor([[idx]], dtype=torch.long, device=device), state)
        last = logits[0, -1]
    model.train(was)
    return "".join(out)
