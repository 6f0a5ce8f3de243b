"""Helpers for the notebooks' visible tests: compare a student's module with torch.nn.

The visible tests copy the (random) weights of a ``torch.nn`` module into the student's
module, run both on the same input and print the largest difference, e.g.
``h': max |diff| = 6.0e-08, should be < 1e-05``. A failed comparison names the likely
mistake: either a hint given by the test, or a known wrong variant that the output
matches exactly. Nothing here grades; the hidden tests do that.
"""
from __future__ import annotations

import contextlib
import dis
import functools
import types
from collections.abc import Mapping

import torch
from torch import nn

TOL = 1e-5  # float32 on both sides; a real mistake differs by 1e-2 or more


def max_abs_diff(got: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest absolute difference of two tensors of the same shape (float64)."""
    return (got.detach().double().cpu() - expected.detach().double().cpu()).abs().max().item()


def check_close(what: str, got, expected: torch.Tensor, hint: str = "", tol: float = TOL,
                mistakes: Mapping[str, torch.Tensor] | None = None) -> float:
    """Print ``what: max |diff| = ..., should be < tol`` and assert it.

    Args:
        what: the quantity, as the message should name it ("h'", "output").
        got: the student's tensor.  expected: what torch.nn computes.
        hint: the likely mistake, added to the message when they differ.
        mistakes: {description: tensor} of known wrong results; when ``got`` matches one,
            the message says so (it is more precise than the hint).
    Returns:
        the maximum absolute difference.
    """
    assert isinstance(got, torch.Tensor), f"{what}: expected a tensor, got {type(got).__name__}"
    assert tuple(got.shape) == tuple(expected.shape), \
        f"{what}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if torch.isnan(got.detach()).any() and not torch.isnan(expected.detach()).any():
        print(f"{what}: contains NaN")
        raise AssertionError(f"{what} contains NaN: a tensor made with torch.empty (or similar) is used "
                             "before it is filled; a default state must be zeros")
    diff = max_abs_diff(got, expected)
    print(f"{what}: max |diff| = {diff:.1e}, should be < {tol:g}")
    if diff < tol:
        return diff
    match = next((name for name, wrong in (mistakes or {}).items()
                  if tuple(wrong.shape) == tuple(got.shape) and max_abs_diff(got, wrong) < tol), None)
    why = f"it equals {match}" if match else hint
    raise AssertionError(f"{what} differs from torch.nn (max |diff| {diff:.2e})" + (f": {why}" if why else ""))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_parameter_count(what: str, module: nn.Module, expected: int, hint: str = "") -> None:
    """Print and assert the number of parameter values of ``module``."""
    got = count_parameters(module)
    print(f"{what}: {got:,} parameters, should be {expected:,}")
    assert got == expected, f"{what} has {got:,} parameters, expected {expected:,}" + (f": {hint}" if hint else "")


# ---------------------------------------------------------------- copying weights

def _copy(dst, src: torch.Tensor, what: str) -> None:
    assert isinstance(dst, torch.Tensor), f"{what} is missing"
    assert tuple(dst.shape) == tuple(src.shape), \
        f"{what} has shape {tuple(dst.shape)}, torch.nn's has {tuple(src.shape)}"
    with torch.no_grad():
        dst.copy_(src)


def copy_cell_weights(theirs: nn.Module, cell: nn.Module, suffix: str = "", where: str = "cell") -> None:
    """Copy torch's ``weight_ih{suffix}``, ``bias_ih{suffix}`` into ``cell.x2h`` and
    ``weight_hh{suffix}``, ``bias_hh{suffix}`` into ``cell.h2h``.

    ``suffix`` selects a layer of a stack: ``"_l1"``, ``"_l0_reverse"``; "" for a cell."""
    for ours, tag in (("x2h", "ih"), ("h2h", "hh")):
        lin = getattr(cell, ours, None)
        assert lin is not None, f"{where} has no attribute {ours}"
        _copy(getattr(lin, "weight", None), getattr(theirs, f"weight_{tag}{suffix}"), f"{where}.{ours}.weight")
        bias = getattr(theirs, f"bias_{tag}{suffix}", None)
        if bias is None:
            assert getattr(lin, "bias", None) is None, f"{where}.{ours} has a bias although bias=False"
        else:
            assert getattr(lin, "bias", None) is not None, f"{where}.{ours} has no bias although bias=True"
            _copy(lin.bias, bias, f"{where}.{ours}.bias")


def copy_stack_weights(theirs: nn.RNNBase, model: nn.Module, fc: nn.Linear) -> None:
    """Copy a torch.nn.LSTM/GRU/RNN (one or two directions) and ``fc`` into a model
    with ``rnn_cell_list`` (and ``rnn_cell_list_rev``) and ``fc``."""
    lists = [("rnn_cell_list", "")] + ([("rnn_cell_list_rev", "_reverse")] if theirs.bidirectional else [])
    for attr, direction in lists:
        cells = getattr(model, attr, None)
        assert cells is not None, f"the model has no attribute {attr}"
        assert len(cells) == theirs.num_layers, f"{attr} holds {len(cells)} cells, expected {theirs.num_layers}"
        for layer, cell in enumerate(cells):
            copy_cell_weights(theirs, cell, f"_l{layer}{direction}", f"{attr}[{layer}]")
    assert isinstance(getattr(model, "fc", None), nn.Linear), "the model has no nn.Linear called fc"
    _copy(model.fc.weight, fc.weight, "fc.weight")
    _copy(model.fc.bias, fc.bias, "fc.bias")


# ---------------------------------------------------------------- isolation

class _TorchLSTMCell(nn.Module):
    """An LSTMCell computed by torch's own kernel (same x2h/h2h layout as the notebook's)."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.x2h = nn.Linear(input_size, 4 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size, bias=bias)

    def forward(self, input, hx=None):
        if hx is None:
            zeros = input.new_zeros(input.size(0), self.hidden_size)
            hx = (zeros, zeros)
        return torch.lstm_cell(input, tuple(hx), self.x2h.weight, self.h2h.weight, self.x2h.bias, self.h2h.bias)


class _TorchGRUCell(nn.Module):
    """A GRUCell computed by torch's own kernel (same x2h/h2h layout as the notebook's)."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.x2h = nn.Linear(input_size, 3 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)

    def forward(self, input, hx=None):
        if hx is None:
            hx = input.new_zeros(input.size(0), self.hidden_size)
        return torch.gru_cell(input, hx, self.x2h.weight, self.h2h.weight, self.x2h.bias, self.h2h.bias)


@contextlib.contextmanager
def torch_cells(namespace: dict):
    """Inside the block, the names ``LSTMCell`` and ``GRUCell`` in ``namespace`` (the
    notebook's ``globals()``) are cells computed by torch itself.

    A model built inside the block is tested on its own: a mistake in your cells shows in
    the cells' tests, not in the model's."""
    swap = {"LSTMCell": _TorchLSTMCell, "GRUCell": _TorchGRUCell}
    saved = {name: namespace.get(name) for name in swap}
    namespace.update(swap)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def _nan_filled(factory):
    @functools.wraps(factory)
    def wrapper(*args, **kwargs):
        t = factory(*args, **kwargs)
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            with torch.no_grad():
                t.fill_(float("nan"))
        return t
    return wrapper


@contextlib.contextmanager
def uninitialised_is_nan():
    """Inside the block ``torch.empty``, ``torch.empty_like`` and ``Tensor.new_empty``
    return NaN: a state that is used before it is filled then shows as NaN (outside, such
    memory holds whatever was there, often zeros, so the mistake hides)."""
    names = ("empty", "empty_like")
    saved = {n: getattr(torch, n) for n in names}
    own_new_empty = vars(torch.Tensor).get("new_empty")
    try:
        for n in names:
            setattr(torch, n, _nan_filled(saved[n]))
        torch.Tensor.new_empty = _nan_filled(torch.Tensor.new_empty)
        yield
    finally:
        for n, f in saved.items():
            setattr(torch, n, f)
        if own_new_empty is None:
            if "new_empty" in vars(torch.Tensor):
                del torch.Tensor.new_empty
        else:
            torch.Tensor.new_empty = own_new_empty


# ---------------------------------------------------------------- the rules

FORBIDDEN = frozenset({"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "RNNBase", "RNNCellBase",
                       "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "_VF"})


def _codes(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _is_torch_recurrence(obj) -> bool:
    if isinstance(obj, type):
        return issubclass(obj, (nn.RNNBase, nn.RNNCellBase))
    return getattr(obj, "__name__", None) in FORBIDDEN and "torch" in str(getattr(obj, "__module__", "") or "torch")


def builtin_recurrence(cls: type) -> list[str]:
    """Names of torch's recurrent layers or kernels that the methods of ``cls`` use:
    ``nn.LSTM``, ``torch.lstm_cell``, ``torch._VF``, or such a layer imported by name.

    The notebook's own ``LSTMCell`` (a global name, not ``nn.LSTMCell``) is fine."""
    found = set()
    for value in vars(cls).values():
        fn = getattr(value, "__func__", value)
        code = getattr(fn, "__code__", None)
        if not isinstance(code, types.CodeType):
            continue
        space = getattr(fn, "__globals__", {})
        for sub in _codes(code):
            for ins in dis.get_instructions(sub):
                if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and ins.argval in FORBIDDEN:
                    found.add(ins.argval)
                elif ins.opname == "LOAD_GLOBAL" and _is_torch_recurrence(space.get(ins.argval)):
                    found.add(ins.argval)
    return sorted(found)
