"""Kernel side of the a1 checks: build the student's objects, run them, send back data.

This module's SOURCE is sent into the student's kernel during grading (see the checks
harness), so it imports only torch, numpy and the standard library and holds no
reference implementation. A probe ``fn(student, **inputs)`` builds the
student's class, copies in the weights the grader drew (torch.nn's layout: ``weight_ih``
goes to ``x2h.weight``, ``weight_hh`` to ``h2h.weight``, likewise the biases), runs it on
the grader's inputs and returns outputs, gradients and shapes. It never compares with
expected values: the grader's a1 checks do that.

While probes run (``probe_context``): torch's RNG is forked and seeded, Python's and
numpy's are put back, gradients are on, TF32 is off, and fresh ``torch.empty``-style
tensors are NaN, so a default state that is never written shows.

Models are graded apart from the student's cells: while a model probe runs, the names
``LSTMCell``, ``GRUCell`` and ``BasicRNNCell`` in the model's module globals point at
the small stand-in cells below, built on torch's own cell kernels (the only code whose
calls of those kernels the kernel's op guard lets through, ``TRUSTED_OP_CALLERS``).

Torch's recurrent layers are not allowed in a1. Every object a probe builds, and every
dotted name in the graded class's methods, is noted (as "module.name" of the torch class
or function behind it); each probe sends the unit's notes so far with its value
(``{"value": ..., "notes": [...]}``) and the grader decides (its ``guards``). The
notes live in this module's namespace, which the kernel creates once per unit.
"""
from __future__ import annotations

import builtins
import contextlib
import functools
import inspect
import io
import os
import textwrap
import tokenize
import types

import torch
from torch import nn

if "ProbeError" not in globals():  # the kernel provides it; this is for plain imports
    class ProbeError(Exception):
        """A message about the student's code, shown as is."""

SEED = 20240501
CELL_NAMES = ("LSTMCell", "GRUCell", "BasicRNNCell")
# What this unit's probes saw: guard notes [kind, where, name, "module.name"] and the
# classes already read.
_SEEN = {"notes": [], "classes": set()}


# --------------------------------------------------------------------------- environment

def _device() -> torch.device:
    """Where the student's code runs: as coursekit.get_device (COURSE_DEVICE, else CUDA if present)."""
    choice = os.environ.get("COURSE_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _nan_filled(factory):
    @functools.wraps(factory)
    def wrapper(*args, **kwargs):
        t = factory(*args, **kwargs)
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()):
            with torch.no_grad():
                t.fill_(float("nan"))
        return t
    return wrapper


def _legacy_new(base_new):
    """torch.Tensor(2, 3) (sizes, not data) is uninitialised memory too."""
    def new(cls, *args, **kwargs):
        t = base_new(cls, *args, **kwargs)
        sizes = args and (all(type(a) is int for a in args)
                          or (len(args) == 1 and isinstance(args[0], torch.Size)))
        if cls is torch.Tensor and sizes and t.is_floating_point():
            with torch.no_grad():
                t.fill_(float("nan"))
        return t
    return staticmethod(new)


@contextlib.contextmanager
def _visible_uninitialised():
    """torch.empty, empty_like, empty_strided, Tensor.new_empty and torch.Tensor(sizes)
    give NaN while probes run; everything is put back afterwards."""
    names = [n for n in ("empty", "empty_like", "empty_strided") if hasattr(torch, n)]
    saved = {n: getattr(torch, n) for n in names}
    methods = {"new_empty": _nan_filled, "__new__": _legacy_new}
    own = {n: vars(torch.Tensor).get(n) for n in methods}  # None: inherited, delete afterwards
    try:
        for n in names:
            setattr(torch, n, _nan_filled(saved[n]))
        for n, wrap in methods.items():
            setattr(torch.Tensor, n, wrap(getattr(torch.Tensor, n)))
        yield
    finally:
        for n in names:
            setattr(torch, n, saved[n])
        for n, old in own.items():
            if old is None:
                if n in vars(torch.Tensor):
                    delattr(torch.Tensor, n)
            else:
                setattr(torch.Tensor, n, old)


@contextlib.contextmanager
def _no_tf32():
    """Full float32 matmuls on CUDA; TF32 would need far looser tolerances."""
    if not torch.cuda.is_available():
        yield
        return
    saved = []
    for get, put in (
        (torch.get_float32_matmul_precision, torch.set_float32_matmul_precision),
        (lambda: torch.backends.cuda.matmul.allow_tf32,
         lambda v: setattr(torch.backends.cuda.matmul, "allow_tf32", v)),
    ):
        try:
            old = get()
            put("highest" if isinstance(old, str) else False)
            saved.append((put, old))
        except Exception:  # API differences between torch versions: best effort
            pass
    try:
        yield
    finally:
        for put, old in reversed(saved):
            try:
                put(old)
            except Exception:
                pass


# The harness's probe_context (kernel_side) seeds torch with this, and runs every probe with
# gradients on, TF32 off and fresh torch.empty-style tensors NaN.
PROBE_SEED = SEED
PROBE_CONTEXTS = (torch.enable_grad, _no_tf32, _visible_uninitialised)


# --------------------------------------------------------------------------- guard notes

def _torch_name(obj) -> str | None:
    """"module.name" of the torch class behind a class or module instance, or of a torch
    function; None for anything else."""
    if isinstance(obj, nn.Module):
        obj = type(obj)
    if isinstance(obj, type):
        for k in obj.__mro__:
            if k.__module__.split(".")[0] == "torch":
                return f"{k.__module__}.{k.__qualname__}"
        return None
    if isinstance(obj, (types.BuiltinFunctionType, types.FunctionType)):
        module = getattr(obj, "__module__", None) or ""
        if module.split(".")[0] == "torch":
            return f"{module}.{obj.__name__}"
    return None


def _note(kind: str, where: str, name: str, obj) -> None:
    """Remember ``obj``'s torch name; an attribute's torch class is kept once (first path)."""
    target = _torch_name(obj)
    if not target:
        return
    notes = _SEEN["notes"]
    if kind == "attribute" and any(e[0] == kind and e[3] == target for e in notes):
        return
    entry = [kind, where, name, target]
    if entry not in notes:
        notes.append(entry)


def _own_functions(cls):
    """Functions the student wrote: methods of ``cls`` and of its non-torch bases."""
    for k in cls.__mro__:
        if k is object or k.__module__.split(".")[0] == "torch":
            continue
        for value in vars(k).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                yield from (f for f in (value.fget, value.fset) if f is not None)
            elif isinstance(value, types.FunctionType):
                try:  # a decorated method: the student's function, not the decorator's
                    value = inspect.unwrap(value)
                except ValueError:
                    pass
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
    """Follow ``a.b.c`` through modules and classes only (no student code runs)."""
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


def note_class(cls) -> None:
    """Note the torch class ``cls`` derives from and what its methods' dotted names are."""
    if not isinstance(cls, type) or id(cls) in _SEEN["classes"]:
        return
    _SEEN["classes"].add(id(cls))
    _note("derives", cls.__name__, "", cls)
    for fn in _own_functions(cls):
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):  # no source (typed into a console): the instance notes remain
            continue
        for chain in _dotted_names(source):
            _note("uses", f"{cls.__name__}.{fn.__name__}", ".".join(chain), _resolve(chain, fn.__globals__))


def note_object(obj) -> None:
    """Note every submodule of ``obj`` and the classes, modules and torch functions kept
    in its attributes (also inside plain lists, tuples and dicts)."""
    if not isinstance(obj, nn.Module):
        _note("attribute", "the object itself", "", obj)
        return
    for path, module in obj.named_modules():
        _note("attribute", path or "the object itself", "", module)
        for name, value in vars(module).items():
            if name in ("_modules", "_parameters", "_buffers"):  # seen as submodules; tensors
                continue
            items = value.values() if isinstance(value, dict) else \
                value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                _note("attribute", f"{path}.{name}" if path else name, "", item)


def _reports(probe):
    """Send the unit's guard notes along with what ``probe`` returned."""
    @functools.wraps(probe)
    def reporting(student, **inputs):
        value = probe(student, **inputs)
        return {"value": value, "notes": [list(e) for e in _SEEN["notes"]]}
    return reporting


# --------------------------------------------------------------------------- stand-in cells

class _StandInCell(nn.Module):
    """The notebook's cell API (x2h, h2h, forward(input, hx=None)) on torch's cell kernels."""

    blocks = 1

    def __init__(self, input_size, hidden_size, bias=True) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        width = self.blocks * hidden_size
        self.x2h, self.h2h = nn.Linear(input_size, width, bias), nn.Linear(hidden_size, width, bias)
        self.reset_parameters()

    def reset_parameters(self):
        limit = self.hidden_size ** -0.5
        with torch.no_grad():
            for tensor in self.parameters():
                tensor.uniform_(-limit, limit)

    def _zeros(self, input):
        return torch.zeros(len(input), self.hidden_size, dtype=input.dtype, device=input.device)

    def _params(self):
        """Weights and biases in the order torch's cell kernels take them."""
        return self.x2h.weight, self.h2h.weight, self.x2h.bias, self.h2h.bias


class LSTMCell(_StandInCell):
    blocks = 4

    def forward(self, input, hx=None):
        if hx is None:
            hx = (self._zeros(input), self._zeros(input))
        return torch.lstm_cell(input, tuple(hx), *self._params())


class GRUCell(_StandInCell):
    blocks = 3

    def forward(self, input, hx=None):
        return torch.gru_cell(input, self._zeros(input) if hx is None else hx, *self._params())


class BasicRNNCell(_StandInCell):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh") -> None:
        if nonlinearity not in {"tanh", "relu"}:
            raise ValueError(f"BasicRNNCell: unknown nonlinearity {nonlinearity!r} (tanh or relu)")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        # Chosen per call: a kernel kept as an attribute would read as the student's own use.
        kernel = torch.rnn_relu_cell if self.nonlinearity == "relu" else torch.rnn_tanh_cell
        return kernel(input, self._zeros(input) if hx is None else hx, *self._params())


STAND_INS = {"LSTMCell": LSTMCell, "GRUCell": GRUCell, "BasicRNNCell": BasicRNNCell}
# The only callers whose own calls of torch's recurrent kernels the kernel's op guard lets
# through while a1's units are probed (kernel_side): the stand-ins above.
TRUSTED_OP_CALLERS = (LSTMCell.forward, GRUCell.forward, BasicRNNCell.forward)


@contextlib.contextmanager
def _stand_in_cells(cls):
    """Point the cell names in ``cls``'s methods' globals at the stand-ins, then put back."""
    spaces = []
    for fn in _own_functions(cls) if isinstance(cls, type) else []:
        ns = getattr(fn, "__globals__", None)
        if isinstance(ns, dict) and all(ns is not s for s in spaces):
            spaces.append(ns)
    missing = object()
    saved = [(ns, {n: ns.get(n, missing) for n in STAND_INS}) for ns in spaces]
    try:
        for ns in spaces:
            ns.update(STAND_INS)
        yield
    finally:
        for ns, old in saved:
            for n, v in old.items():
                if v is missing:
                    ns.pop(n, None)
                else:
                    ns[n] = v


# --------------------------------------------------------------------------- helpers

def _class(student):
    cls = student["cls"]
    if not callable(cls):
        raise ProbeError(f"expected a class, got {type(cls).__name__}")
    return cls


def _build(cls, *args, **kwargs):
    note_class(cls)
    obj = cls(*args, **kwargs)
    note_object(obj)
    if not isinstance(obj, nn.Module):
        raise ProbeError(f"expected an nn.Module, got {type(obj).__name__}")
    return obj.to(_device())


def _copy(dst, src, what):
    if not isinstance(dst, torch.Tensor):
        raise ProbeError(f"{what} is missing")
    if tuple(dst.shape) != tuple(src.shape):
        raise ProbeError(f"{what} has shape {tuple(dst.shape)}, expected {tuple(src.shape)}")
    with torch.no_grad():
        dst.copy_(src)


def _load_cell(cell, weights, suffix, where) -> dict:
    """Copy torch's ``weight_ih{suffix}`` & co. into ``cell.x2h``/``cell.h2h``; returns
    {torch name: the student's parameter}."""
    params = {}
    for ours, tag in (("x2h", "ih"), ("h2h", "hh")):
        lin = getattr(cell, ours, None)
        if lin is None:
            raise ProbeError(f"{where} has no attribute {ours}")
        weight, bias = getattr(lin, "weight", None), getattr(lin, "bias", None)
        key = f"weight_{tag}{suffix}"
        _copy(weight, weights[key], f"{where}.{ours}.weight")
        params[key] = weight
        key = f"bias_{tag}{suffix}"
        if key not in weights:
            if bias is not None:
                raise ProbeError(f"{where}.{ours} has a bias although bias=False")
        else:
            if bias is None:
                raise ProbeError(f"{where}.{ours}.bias is missing although bias=True")
            _copy(bias, weights[key], f"{where}.{ours}.bias")
            params[key] = bias
    return params


def _leaf(t, grads):
    """A fresh leaf on the student's device (the grader's copy stays untouched)."""
    return t.detach().to(_device(), copy=True).requires_grad_(grads)


def _tensor(value, what):
    if not isinstance(value, torch.Tensor):
        raise ProbeError(f"{what}: expected a tensor, got {type(value).__name__}")
    return value


def _grad(t):
    return None if t.grad is None else t.grad.detach().cpu()


def _backward(outs, grad_weights, inputs, states, params) -> dict | None:
    """Gradients of sum(out * w) w.r.t. inputs, states and parameters; None when an
    output has the wrong shape (its comparison fails anyway)."""
    if any(tuple(o.shape) != tuple(w.shape) for o, w in zip(outs, grad_weights)):
        return None
    sum((o * w.to(o.device)).sum() for o, w in zip(outs, grad_weights)).backward()
    return {"input": _grad(inputs), "state": [_grad(s) for s in states],
            "params": {name: _grad(p) for name, p in params.items()}}


def _shape(value):
    return list(value.shape) if isinstance(value, torch.Tensor) else None


# --------------------------------------------------------------------------- cell probes

@_reports
def cell_layout(student, D, H):
    """For bias True and False: shapes of x2h/h2h weight and bias, whether they are
    registered, and the number of parameter values."""
    cls = _class(student)
    out = []
    for bias in (True, False):
        cell = _build(cls, D, H, bias=bias)
        own = {id(p) for p in cell.parameters()}
        entry = {"bias": bias, "count": sum(p.numel() for p in cell.parameters())}
        for name in ("x2h", "h2h"):
            lin = getattr(cell, name, None)
            w, b = getattr(lin, "weight", None), getattr(lin, "bias", None)
            entry[name] = {"weight": _shape(w), "bias": _shape(b), "has_bias": b is not None,
                           "registered": all(id(t) in own for t in (w, b) if t is not None)}
        out.append(entry)
    return out


@_reports
def cell_parameters(student, D, H, reset=False):
    """Named parameters after construction, or after filling them with 10 and calling
    ``reset_parameters()``."""
    cell = _build(_class(student), D, H)
    if reset:
        with torch.no_grad():
            for p in cell.parameters():
                p.fill_(10.0)
        if not callable(getattr(cell, "reset_parameters", None)):
            raise ProbeError("the cell has no reset_parameters() method")
        cell.reset_parameters()
    return [[name, p.detach().cpu()] for name, p in cell.named_parameters()]


@_reports
def cell_case(student, kind, D, H, bias, weights, x, state=None, grad_weights=None):
    """One forward (and backward) of the student's cell with torch.nn's weights.

    ``state``: [h] or [h, c], or None for the default state. Returns the outputs, the
    state tensors as they are after the call, and gradients when ``grad_weights`` is given."""
    cell = _build(_class(student), D, H, bias=bias)
    params = _load_cell(cell, weights, "", "cell")
    grads = grad_weights is not None
    xs = _leaf(x, grads)
    ss = [_leaf(s, grads) for s in state or []]
    if ss:
        out = cell(xs, tuple(ss) if kind == "LSTM" else ss[0])
    else:
        out = cell(xs)
    if kind == "LSTM":
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ProbeError(f"forward must return a tuple (h, c), got {type(out).__name__}")
        outs = [_tensor(out[0], "h'"), _tensor(out[1], "c'")]
    else:
        outs = [_tensor(out, "h'")]
    result = {"out": [o.detach().cpu() for o in outs], "state_after": [s.detach().cpu() for s in ss]}
    if grads:
        result["grads"] = _backward(outs, grad_weights, xs, ss, params)
    return result


# --------------------------------------------------------------------------- model probes

def _cell_lists(bidir):
    return [("rnn_cell_list", "")] + ([("rnn_cell_list_rev", "_reverse")] if bidir else [])


@_reports
def model_layout(student, bidir, D, H, L, K):
    """The cell lists (type, length, each cell's class name, x2h.weight shape and
    nonlinearity), whether the two directions share modules, and fc.weight's shape."""
    cls = _class(student)
    with _stand_in_cells(cls):
        model = _build(cls, student.options.get("mode"), D, H, L, True, K)
        lists, members = {}, []
        for attr, _ in _cell_lists(bidir):
            cells = getattr(model, attr, None)
            entry = {"type": type(cells).__name__, "module_list": isinstance(cells, nn.ModuleList)}
            if entry["module_list"]:
                entry["cells"] = [{"type": type(c).__name__,
                                   "x2h": _shape(getattr(getattr(c, "x2h", None), "weight", None)),
                                   "nonlinearity": _plain(getattr(c, "nonlinearity", None))} for c in cells]
                members.append({id(m) for m in cells.modules()})
            lists[attr] = entry
        shared = len(members) == 2 and bool(members[0] & members[1])
        fc = _shape(getattr(getattr(model, "fc", None), "weight", None))
    return {"lists": lists, "shared": shared, "fc": fc}


def _plain(value):
    return value if value is None or isinstance(value, (str, int, float, bool)) else repr(value)[:60]


@_reports
def model_case(student, bidir, D, H, L, bias, K, weights, x, state=None, grad_weights=None):
    """One forward (and backward) of the student's model, its cells replaced by the
    stand-ins, with torch.nn's weights. ``state``: [h0] or [h0, c0] (each (L, B, H)) or
    None. An LSTM model that rejects (h0, c0) is called with h0 alone (some course
    templates use one tensor as both); ``hx_form`` says which call worked."""
    cls = _class(student)
    mode = student.options.get("mode")
    with _stand_in_cells(cls):
        model = _build(cls, mode, D, H, L, bias, K)
        params = {}
        for attr, suffix in _cell_lists(bidir):
            cells = getattr(model, attr, None)
            if cells is None:
                raise ProbeError(f"the model has no attribute {attr}")
            if len(cells) != L:
                raise ProbeError(f"{attr} holds {len(cells)} cells, expected num_layers={L}")
            for layer, cell in enumerate(cells):
                params.update(_load_cell(cell, weights, f"_l{layer}{suffix}", f"{attr}[{layer}]"))
        for name in ("weight", "bias"):
            p = getattr(getattr(model, "fc", None), name, None)
            _copy(p, weights[f"fc.{name}"], f"fc.{name}")
            params[f"fc.{name}"] = p
        grads = grad_weights is not None
        xs = _leaf(x, grads)
        ss = [_leaf(s, grads) for s in state or []]
        form = None
        if not ss:
            out = model(xs)
        elif mode == "LSTM":
            try:
                out, form = model(xs, tuple(ss)), "pair"
            except Exception:
                out, form = model(xs, ss[0]), "single"
        else:
            out = model(xs, ss[0])
        out = _tensor(out, "output")
        result = {"out": out.detach().cpu(), "hx_form": form}
        if grads:
            result["grads"] = _backward([out], [grad_weights], xs, ss, params)
    return result


# --------------------------------------------------------------------------- figure question

def answer(student, variable):
    """The value of ``variable``: ["str", text] for a string, else ["other", a short repr]."""
    value = student[variable]
    if isinstance(value, str):
        return ["str", value[:200]]
    try:
        text = repr(value)[:80]
    except Exception:
        text = f"a {type(value).__name__}"
    return ["other", text]
