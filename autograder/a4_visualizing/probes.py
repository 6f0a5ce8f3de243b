"""Probe functions of a4_visualizing, run in the student's kernel during grading.

This file's SOURCE is sent into the kernel, so it imports only torch, numpy and the
standard library, and it never compares anything with a reference: each probe builds
what the grader described (a small network from weights it sent, a SummaryWriter in a
temp folder), calls the student's code and returns plain data (see ``autograder.wire``).
The grader (``a4_visualizing.checks``) judges that data.
"""
import os
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if "ProbeError" not in globals():  # the kernel side defines it; a plain import does not
    class ProbeError(Exception):
        """A message about the student's code."""


# The harness's probe_context (kernel_side): a fixed torch seed (dropout, default init), one thread.
PROBE_SEED = 0
PROBE_THREADS = 1


class ProbeNet(nn.Module):
    """The network the grader describes: conv1 -> ReLU -> 2x2 max-pool -> flatten -> fc.

    ``spec``: conv1_weight (F, 1, k, k), conv1_bias (F,), padding, fc_weight (10, D), fc_bias (10,).
    """

    def __init__(self, spec):
        super().__init__()
        w = spec["conv1_weight"]
        self.conv1 = nn.Conv2d(1, w.shape[0], kernel_size=w.shape[-1], padding=int(spec["padding"]))
        self.fc = nn.Linear(spec["fc_weight"].shape[1], spec["fc_weight"].shape[0])
        with torch.no_grad():
            self.conv1.weight.copy_(w)
            self.conv1.bias.copy_(spec["conv1_bias"])
            self.fc.weight.copy_(spec["fc_weight"])
            self.fc.bias.copy_(spec["fc_bias"])

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv1(x)), 2).flatten(1))


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _same(before, model):
    return all(torch.equal(a, p.detach()) for a, p in zip(before, model.parameters()))


# ------------------------------------------------------------------ to_grayscale

def grayscale(student, images, as_numpy=False):
    data = images.numpy().copy() if as_numpy else images.clone()
    out = student["to_grayscale"](data)
    unchanged = bool(np.array_equal(np.asarray(data), images.numpy()))
    return {"out": out, "unchanged": unchanged}


# ------------------------------------------------------------------ SmallCNN

def small_cnn(student, x, filters):
    cls = student["SmallCNN"]
    model = cls()
    conv = getattr(model, "conv1", None)
    facts = {"conv1": type(conv).__name__ if conv is not None else None,
             "is_conv2d": isinstance(conv, nn.Conv2d)}
    if isinstance(conv, nn.Conv2d):
        facts.update(in_channels=conv.in_channels, out_channels=conv.out_channels)
    try:
        model.eval()
        with torch.no_grad():
            facts["logits"] = model(x)
            facts["first_alone"] = model(x[:1])
        other = cls(conv1_filters=filters)
        oconv = getattr(other, "conv1", None)
        facts["custom_out_channels"] = oconv.out_channels if isinstance(oconv, nn.Conv2d) else None
        with torch.no_grad():
            facts["custom_logits_shape"] = list(other.eval()(x).shape)
        model.train()
        model.zero_grad()
        model(x).pow(2).mean().backward()
        grad = getattr(getattr(model, "conv1", None), "weight", None)
        grad = None if grad is None else grad.grad
        facts["conv1_grad"] = None if grad is None else float(grad.abs().sum())
    except Exception as exc:  # conv1's facts still count; the rest reports the error
        facts["error"] = f"your code raised {type(exc).__name__}: {str(exc)[:300]}"
    return facts


# ------------------------------------------------------------------ log_run

def log_run(student, history):
    """Run log_run against a SummaryWriter in a temp folder; return the files it left."""
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as tmp:
        writer = SummaryWriter(log_dir=tmp)
        try:
            student["log_run"](writer, {k: list(v) for k, v in history.items()})
        finally:
            writer.close()
        files = []
        for root, _, names in os.walk(tmp):
            for name in sorted(names):
                path = os.path.join(root, name)
                with open(path, "rb") as fh:
                    data = fh.read(4 * 1024 * 1024)
                files.append([os.path.relpath(path, tmp), torch.from_numpy(np.frombuffer(data, np.uint8).copy())])
        return files


# ------------------------------------------------------------------ filter_grid

def filter_grid(student, weights, nrow=None):
    fn = student["filter_grid"]
    w = weights.clone()
    out = fn(w) if nrow is None else fn(w, nrow=nrow)
    return {"out": out, "unchanged": bool(torch.equal(w, weights))}


# ------------------------------------------------------------------ activation_stats

def activation_stats(student, net, images):
    model = ProbeNet(net).eval()
    out = student["activation_stats"](model, images.clone())
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ProbeError(f"activation_stats must return (mean, std), got {type(out).__name__}")
    return [out[0], out[1]]


# ------------------------------------------------------------------ maximize_activation

def maximize(student, net, filter_index, steps, lr, seed):
    model = ProbeNet(net).train()  # the function must switch to eval mode itself
    before = _params(model)
    gen = torch.Generator().manual_seed(int(seed))
    x = student["maximize_activation"](model, filter_index, steps, lr, generator=gen)
    return {"x": x, "weights_same": _same(before, model), "training": bool(model.training)}


# ------------------------------------------------------------------ deconv_project

def deconv(student, net, image, filter_index):
    model = ProbeNet(net).eval()
    before = _params(model)
    img = image.clone()
    out = student["deconv_project"](model, img, filter_index)
    return {"out": out, "unchanged": bool(torch.equal(img, image)), "weights_same": _same(before, model)}


# ------------------------------------------------------------------ occlusion_map

def occlusion(student, net, image, label, patch=None, stride=None, fill=None):
    model = ProbeNet(net).eval()
    img = image.clone()
    kwargs = {k: v for k, v in (("patch", patch), ("stride", stride), ("fill", fill)) if v is not None}
    out = student["occlusion_map"](model, img, label, **kwargs)
    return {"out": out, "unchanged": bool(torch.equal(img, image))}


# ------------------------------------------------------------------ RowRNN

def row_rnn(student, cell, hidden, layers, rnn_state, fc_state, x):
    """Build the student's RowRNN, give its recurrent layer and classifier the grader's
    weights, and return the logits on ``x``."""
    model = student["RowRNN"](cell, hidden, num_layers=layers)
    recurrent = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == 10]
    if len(recurrent) != 1:
        raise ProbeError(f"RowRNN should hold exactly one nn.RNN/nn.LSTM/nn.GRU, found {len(recurrent)}")
    rnn = recurrent[0]
    facts = {"type": type(rnn).__name__, "input_size": rnn.input_size, "hidden_size": rnn.hidden_size,
             "num_layers": rnn.num_layers, "bidirectional": bool(rnn.bidirectional)}
    if len(heads) != 1 or heads[0].in_features != hidden:
        raise ProbeError("RowRNN should end with one nn.Linear(hidden_size, 10) on the last step's output")
    try:
        rnn.load_state_dict(rnn_state)
    except RuntimeError as exc:
        facts["load_error"] = str(exc)[:200]
        return facts
    heads[0].load_state_dict(fc_state)
    model.eval()
    with torch.no_grad():
        facts["logits"] = model(x.clone())
    return facts
