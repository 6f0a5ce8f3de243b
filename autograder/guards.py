"""Detect torch's own recurrent layers inside a student's class.

A1 asks for cells written from ``nn.Linear`` and tensor operations. Using
``torch.nn.LSTM``/``LSTMCell``/``GRU``/``GRUCell``/``RNN``/``RNNCell`` or torch's fused kernels
(``torch.lstm``, ``torch.lstm_cell``, ``torch._VF.gru_cell``, ...) earns no credit. Two views:

* the class: its bases, and every dotted name in its methods' source (comments and strings
  ignored) that resolves, through the methods' globals, to a forbidden class or kernel;
* an instance: every submodule and plain attribute.

Each function returns a message naming what was found, or None.
"""
from __future__ import annotations

import builtins
import inspect
import io
import textwrap
import tokenize
import types

import torch
from torch import nn

FORBIDDEN_TYPES = (nn.RNNBase, nn.RNNCellBase)  # LSTM, GRU, RNN and their cells
_KERNEL_NAMES = ("lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell",
                 "rnn_tanh_cell", "rnn_relu_cell", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell")
_KERNELS = {getattr(ns, n) for ns in (torch, torch._C._VariableFunctions) for n in _KERNEL_NAMES
            if hasattr(ns, n)}


def _describe(obj) -> str | None:
    if isinstance(obj, type) and issubclass(obj, FORBIDDEN_TYPES):
        return f"torch.nn.{_torch_base(obj).__name__}"
    if isinstance(obj, FORBIDDEN_TYPES):
        return f"torch.nn.{_torch_base(type(obj)).__name__}"
    try:
        if obj in _KERNELS:
            return f"torch.{obj.__name__}"
    except TypeError:  # unhashable
        pass
    return None


def _torch_base(t: type) -> type:
    """The torch.nn class behind ``t`` (``t`` itself or the torch class it derives from)."""
    for k in t.__mro__:
        if k.__module__.startswith("torch.nn"):
            return k
    return t


def _own_functions(cls):
    """Functions defined by the student: methods of ``cls`` and of its non-torch bases."""
    for k in cls.__mro__:
        if k is object or k.__module__.split(".")[0] == "torch":
            continue
        for value in vars(k).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                yield from (f for f in (value.fget, value.fset) if f is not None)
            elif isinstance(value, types.FunctionType):
                yield value


def _dotted_names(source: str):
    """Dotted names (``torch.nn.LSTM``) in ``source``, skipping comments and strings."""
    chain: list[str] = []
    expect_name = True
    tokens = tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline)
    try:
        for tok in tokens:
            if tok.type == tokenize.NAME and expect_name:
                chain.append(tok.string)
                expect_name = False
            elif tok.type == tokenize.OP and tok.string == "." and chain and not expect_name:
                expect_name = True
            else:
                if chain:
                    yield chain
                chain = [tok.string] if tok.type == tokenize.NAME else []
                expect_name = tok.type != tokenize.NAME
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    if chain:
        yield chain


def _resolve(chain, namespace):
    """Follow ``a.b.c`` through modules and classes only (no user code runs)."""
    if chain[0] in namespace:
        obj = namespace[chain[0]]
    elif hasattr(builtins, chain[0]):
        obj = getattr(builtins, chain[0])
    else:
        return None
    for part in chain[1:]:
        if not isinstance(obj, (types.ModuleType, type)):
            return None
        try:
            obj = inspect.getattr_static(obj, part) if isinstance(obj, type) else getattr(obj, part)
        except AttributeError:
            return None
    return obj


def forbidden_in_class(cls) -> str | None:
    """A message if ``cls`` derives from or refers to a forbidden torch class or kernel."""
    if not isinstance(cls, type):
        return None
    found = _describe(cls)
    if found:
        return f"{cls.__name__} derives from {found}, which this assignment does not allow"
    for fn in _own_functions(cls):
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):  # no source available (e.g. defined in a console)
            continue
        for chain in _dotted_names(source):
            found = _describe(_resolve(chain, fn.__globals__))
            if found:
                name = ".".join(chain)
                also = "" if name == found else f" ({found})"
                return f"{cls.__name__}.{fn.__name__} uses {name}{also}, which this assignment does not allow"
    return None


def forbidden_in_module(module) -> str | None:
    """A message if ``module`` holds a forbidden layer (as a submodule or plain attribute)."""
    candidates = []
    if isinstance(module, nn.Module):
        candidates += [(name or "the model", m) for name, m in module.named_modules()]
    for name, value in vars(module).items():
        items = value.values() if isinstance(value, dict) else \
            value if isinstance(value, (list, tuple)) else [value]
        candidates += [(name, v) for v in items]
    for name, obj in candidates:
        found = _describe(obj)
        if found:
            return f"attribute {name} is a {found}, which this assignment does not allow"
    return None
