"""The data format between the student's kernel and the grader.

A probe's inputs and outputs cross the process boundary as JSON built only from plain
values: None, bool, int, float (NaN and infinities included), str, lists, dicts, and
tagged objects for tensors, arrays, tuples, non-string dict keys and exceptions. Decoding
never runs code and never unpickles, so a forged payload can at worst be wrong data.

This module is also sent, as source text, into the kernel: it imports only the standard
library at the top and torch or numpy only when a value needs them.
"""
from __future__ import annotations

import base64
import json
import math
import re

MIME = "application/vnd.seqcourse.probe+json"
MAX_PAYLOAD = 64 * 1024 * 1024   # characters of one encoded payload the grader reads
MAX_DEPTH = 40


class WireError(ValueError):
    """A value that cannot be encoded, or a payload that is not valid wire data."""


def _float(x: float):
    if math.isnan(x):
        return {"__float__": "nan"}
    if math.isinf(x):
        return {"__float__": "inf" if x > 0 else "-inf"}
    return x


def encode(value, _depth: int = 0):
    """A JSON-able form of ``value`` (see the module docstring for what is allowed)."""
    if _depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2 ** 63 else {"__bigint__": str(value)}
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, (list, tuple)):
        items = [encode(v, _depth + 1) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            if any(k.startswith("__") and k.endswith("__") for k in value):
                return {"__dict__": [[k, encode(v, _depth + 1)] for k, v in value.items()]}
            return {k: encode(v, _depth + 1) for k, v in value.items()}
        return {"__dict__": [[encode(k, _depth + 1), encode(v, _depth + 1)] for k, v in value.items()]}
    if isinstance(value, BaseException):
        return {"__exception__": [type(value).__name__, str(value)[:500]]}
    kind = type(value).__module__.split(".")[0]
    if kind == "torch":
        import torch

        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            if t.is_complex() or t.dtype in (torch.bfloat16,) or t.is_quantized:
                t = t.to(torch.float32)
            return {"__tensor__": [str(t.dtype).replace("torch.", ""), list(t.shape),
                                   base64.b64encode(t.numpy().tobytes()).decode("ascii")]}
        if isinstance(value, torch.Size):
            return {"__tuple__": [int(v) for v in value]}
        if isinstance(value, torch.dtype):
            return {"__dtype__": str(value).replace("torch.", "")}
    if kind == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            a = np.ascontiguousarray(value)
            if a.dtype == object:
                return {"__tuple__": [encode(v, _depth + 1) for v in a.tolist()]}
            return {"__ndarray__": [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode("ascii")]}
        if isinstance(value, np.generic):
            return encode(value.item(), _depth + 1)
    raise WireError(f"cannot send a value of type {type(value).__module__}.{type(value).__qualname__}")


_TENSOR_DTYPES = {"float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"}


def _array(dtype: str, shape, data: str, *, numpy_dtype: bool):
    import numpy as np

    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
        raise WireError("bad array shape")
    if not isinstance(data, str):
        raise WireError("bad array data")
    dt = np.dtype(dtype)
    if dt.kind not in "biuf":
        raise WireError(f"array dtype {dtype!r} not allowed")
    raw = base64.b64decode(data.encode("ascii"), validate=True)
    n = math.prod(shape)
    if len(raw) != n * dt.itemsize:
        raise WireError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def decode(value, _depth: int = 0):
    """The value ``encode`` described; raises WireError on anything else."""
    if _depth > MAX_DEPTH:
        raise WireError("payload nested too deeply")
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return [decode(v, _depth + 1) for v in value]
    if not isinstance(value, dict):
        raise WireError(f"unexpected {type(value).__name__} in payload")
    if len(value) == 1:
        (tag, body), = value.items()
        if tag == "__float__":
            if body not in ("nan", "inf", "-inf"):
                raise WireError("bad float")
            return float(body)
        if tag == "__bigint__":
            return int(str(body)[:400])
        if tag == "__tuple__":
            if not isinstance(body, list):
                raise WireError("bad tuple")
            return tuple(decode(v, _depth + 1) for v in body)
        if tag == "__dict__":
            if not isinstance(body, list) or not all(isinstance(p, list) and len(p) == 2 for p in body):
                raise WireError("bad dict")
            out = {}
            for k, v in body:
                k = decode(k, _depth + 1)
                try:
                    hash(k)
                except TypeError:
                    raise WireError("unhashable dict key") from None
                out[k] = decode(v, _depth + 1)
            return out
        if tag == "__exception__":
            if not (isinstance(body, list) and len(body) == 2 and all(isinstance(b, str) for b in body)):
                raise WireError("bad exception")
            return RemoteError(body[0], body[1])
        if tag == "__dtype__":
            if body not in _TENSOR_DTYPES:
                raise WireError("bad dtype")
            return body
        if tag in ("__tensor__", "__ndarray__"):
            if not (isinstance(body, list) and len(body) == 3 and isinstance(body[0], str)):
                raise WireError("bad array")
            dtype, shape, data = body
            if tag == "__tensor__":
                import torch

                if dtype not in _TENSOR_DTYPES:
                    raise WireError(f"tensor dtype {dtype!r} not allowed")
                return torch.from_numpy(_array(dtype, shape, data, numpy_dtype=False))
            return _array(dtype, shape, data, numpy_dtype=True)
    return {k: decode(v, _depth + 1) for k, v in value.items() if isinstance(k, str)}


class RemoteError:
    """An exception the student's code raised (or returned) in the kernel, as data."""

    def __init__(self, name: str, message: str):
        self.name, self.message = name, message

    def __repr__(self):
        return f"{self.name}({self.message!r})"

    def __eq__(self, other):
        return isinstance(other, RemoteError) and (self.name, self.message) == (other.name, other.message)


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: fast on long base64 strings
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """Deepest bracket nesting of JSON ``text``, outside strings (no recursion)."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if m.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _depth_of(value) -> int:
    """Deepest nesting of lists and dicts in an already-parsed value (no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if deepest > MAX_NESTING:
                return deepest
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


MAX_NESTING = 4 * MAX_DEPTH  # tagged values add levels; real payloads stay far below


def parse_bounded(body):
    """The JSON value of a probe output (text or already parsed), refused with a WireError
    that says why when it is too large or nested too deeply to be real probe data."""
    if isinstance(body, str):
        if len(body) > MAX_PAYLOAD:
            raise WireError(f"payload of {len(body)} characters, over the limit of {MAX_PAYLOAD}")
        if _nesting(body) > MAX_NESTING:
            raise WireError(f"payload nested more than {MAX_NESTING} levels deep")
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise WireError(f"unreadable payload ({type(exc).__name__})") from None
    if _depth_of(body) > MAX_NESTING:
        raise WireError(f"payload nested more than {MAX_NESTING} levels deep")
    return body


def dumps(value) -> str:
    return json.dumps(encode(value), allow_nan=False, separators=(",", ":"))


def loads(text: str):
    if not isinstance(text, str):
        raise WireError("payload missing")
    value = parse_bounded(text)
    try:
        return decode(value)
    except WireError:
        raise
    except Exception as exc:  # malformed JSON, bad base64, recursion
        raise WireError(f"unreadable payload ({type(exc).__name__})") from None
