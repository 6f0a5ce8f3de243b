"""The idx format of MNIST and Fashion-MNIST: a big-endian header (two zero bytes, type
0x08 for unsigned bytes, the number of dimensions, then each dimension as a 4-byte
integer) followed by the values, usually gzipped."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .download import ArchiveError


def read_idx(path: Path) -> np.ndarray:
    """An idx file of unsigned bytes (gzipped or not): (n,) labels or (n, rows, cols) images."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"could not read {path} ({exc})") from exc
    if len(raw) < 8 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ArchiveError(f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ArchiveError(f"{path}: the header says {shape}, the file holds {body.size} values")
    return body.reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped idx file (mtime 0, so equal data gives equal bytes)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(header + array.tobytes())
