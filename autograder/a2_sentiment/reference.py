"""Reference answers for a2_sentiment, written independently of the notebook.

The hidden checks in ``a2_sentiment.checks`` compare student code with these. Conventions
follow Keras where the coursework used Keras (``pad_sequences``, IMDB indexing,
``validation_split``) and PyTorch elsewhere (logits out, BCE-with-logits loss).
"""
from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import torch
from torch import nn

RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
BLOCKS = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks (gates) per recurrent layer


# ------------------------------------------------------------------ data

def pad_sequences(sequences, maxlen=None, padding="pre", truncating="pre", value=0):
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError("padding and truncating must be 'pre' or 'post'")
    seqs = [list(s) for s in sequences]
    if maxlen is None:
        maxlen = max((len(s) for s in seqs), default=0)
    out = np.full((len(seqs), maxlen), value, dtype=np.int64)
    for row, s in enumerate(seqs):
        if len(s) > maxlen:
            s = s[len(s) - maxlen:] if truncating == "pre" else s[:maxlen]
        if not s:
            continue
        if padding == "post":
            out[row, :len(s)] = s
        else:
            out[row, maxlen - len(s):] = s
    return out


def build_word_index(docs):
    counts = Counter()
    for doc in docs:
        counts.update(doc)
    return {w: rank for rank, (w, _) in enumerate(counts.most_common(), start=1)}


def docs_to_sequences(docs, word_index, num_words=None, start_char=1, oov_char=2, index_from=3):
    out = []
    for doc in docs:
        seq = [] if start_char is None else [start_char]
        for w in doc:
            i = word_index[w] + index_from if w in word_index else oov_char
            if num_words is not None and i >= num_words:
                i = oov_char
            seq.append(i)
        out.append(seq)
    return out


# ----------------------------------------------------------------- model

class SentimentRNN(nn.Module):
    def __init__(self, kind="rnn", vocab_size=2000, embed_dim=50, hidden_size=5):
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = RECURRENT[kind](embed_dim, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)
        nn.init.normal_(self.rnn.weight_ih_l0, 0.0, 0.001)

    def forward(self, x):
        out, _ = self.rnn(self.embedding(x))
        return self.fc(out[:, -1, :]).squeeze(-1)


def forward_like(model: nn.Module, kind: str, x: torch.Tensor) -> torch.Tensor:
    """What a correct forward gives with ``model``'s own embedding, rnn and fc weights."""
    rnn = model.rnn
    ref = RECURRENT[kind](rnn.input_size, rnn.hidden_size, batch_first=True, bias=rnn.bias)
    ref.load_state_dict(rnn.state_dict())
    ref = ref.to(x.device)
    emb = nn.functional.embedding(x, model.embedding.weight)
    out, _ = ref(emb)
    return model.fc(out[:, -1, :]).squeeze(-1)


def count_parameters(model: nn.Module) -> dict:
    seen, table = set(), {}
    for name, child in model.named_children():
        n = 0
        for p in child.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        table[name] = n
    table["total"] = sum(p.numel() for p in model.parameters())
    return table


def recurrent_param_count(kind, input_size, hidden_size, biases=2):
    return BLOCKS[kind] * (hidden_size * (input_size + hidden_size) + biases * hidden_size)


# -------------------------------------------------------------- training

@torch.no_grad()
def evaluate(model, x, y, batch_size=256):
    x = torch.as_tensor(x).long()
    y = torch.as_tensor(y).float()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits = model(xb)
        loss_sum += nn.functional.binary_cross_entropy_with_logits(logits, yb, reduction="sum").item()
        correct += ((logits > 0).float() == yb).sum().item()
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def train_model(model, x, y, epochs=5, batch_size=64, optimizer="adam", lr=1e-3,
                validation_split=0.2, seed=0, callback=None):
    x = torch.as_tensor(x).long()
    y = torch.as_tensor(y).float()
    split_at = int(len(x) * (1.0 - validation_split))
    x_tr, y_tr, x_val, y_val = x[:split_at], y[:split_at], x[split_at:], y[split_at:]
    device = next(model.parameters()).device
    opt = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[optimizer](model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_tr), generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(x_tr), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = x_tr[idx].to(device), y_tr[idx].to(device)
            logits = model(xb)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += ((logits.detach() > 0).float() == yb).sum().item()
        val_loss, val_acc = evaluate(model, x_val, y_val)
        logs = {"loss": loss_sum / len(x_tr), "accuracy": correct / len(x_tr),
                "val_loss": val_loss, "val_accuracy": val_acc}
        for k, v in logs.items():
            history[k].append(v)
        if callback is not None:
            callback(epoch, logs, model)
    return history


def best_epoch(history):
    acc = list(history["val_accuracy"])
    return acc.index(max(acc))


class KeepBest:
    def __init__(self, monitor="val_accuracy"):
        self.monitor = monitor
        self.best_epoch = None
        self.best_score = -float("inf")
        self.state = None

    def update(self, epoch, logs, model):
        score = float(logs[self.monitor])
        if score > self.best_score:
            self.best_epoch, self.best_score = epoch, score
            self.state = copy.deepcopy(model.state_dict())
            return True
        return False

    def restore(self, model):
        model.load_state_dict(self.state)
        return model


# ------------------------------------------------------------------ plots

def plot_history(history, title=""):
    import matplotlib.pyplot as plt

    epochs = range(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, name in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, history[key], marker="o", label=f"train {name}")
        ax.plot(epochs, history[f"val_{key}"], marker="o", label=f"validation {name}")
        ax.set(xlabel="epoch", ylabel=name, title=name.capitalize())
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
