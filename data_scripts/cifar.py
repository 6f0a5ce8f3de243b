"""CIFAR-10 (Krizhevsky 2009): unpack the real python-pickle batches, or write an offline
stand-in of real grayscale images in the same format.

Both give the layout of the real archive::

    cifar-10-batches-py/data_batch_1 ... data_batch_5   pickled dicts: b"data" (n, 3072) uint8,
    cifar-10-batches-py/test_batch                        b"labels" list of int, b"filenames", b"batch_label"
    cifar-10-batches-py/batches.meta                      b"label_names", b"num_cases_per_batch", b"num_vis"

A row of ``data`` is the red plane (32x32, row-major), then green, then blue. ``read_cifar``
reads either folder the same way. The stand-in also holds ``STANDIN`` and ``README.txt``.
"""
from __future__ import annotations

import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from .download import ArchiveError, atomic_directory, fetch
from .fashion_mnist import FASHION_DIR, source_images
from .registry import DatasetSpec, register

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
MEMBERS = (*TRAIN_BATCHES, "test_batch", "batches.meta", "readme.html")
# SHA-256 as pinned by Keras (keras/datasets/cifar10.py, ``file_hash`` of this URL); the
# size and the official MD5 c58f30108f718f92721af3b95e74349a are those of the same file.
CIFAR10 = DatasetSpec(
    name="cifar10",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    filename="cifar-10-python.tar.gz",
    size_bytes=170_498_071,
    description="CIFAR-10 (Krizhevsky 2009): 50,000 train and 10,000 test 32x32 colour images, 10 classes",
)


# ---------------------------------------------------------------- reading

def _get(d: dict, key: str):
    """A value of a CIFAR dict whose keys may be bytes (the real files) or str."""
    if key.encode() in d:
        return d[key.encode()]
    if key in d:
        return d[key]
    raise ArchiveError(f"a CIFAR batch has no {key!r} entry")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images uint8 (n, 32, 32, 3) (height, width, RGB) and labels int64 (n,)."""
    try:
        with open(path, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise ArchiveError(f"could not read the CIFAR batch {path} ({exc})") from exc
    data = np.asarray(_get(d, "data"), dtype=np.uint8)
    labels = np.asarray(_get(d, "labels"), dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ArchiveError(f"{path}: expected data (n, 3072) and n labels, got {data.shape} and {len(labels)}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def read_cifar(root: Path) -> dict:
    """``root/cifar-10-batches-py`` -> dict of x_train, y_train, x_test, y_test, label_names."""
    folder = Path(root) / FOLDER
    if not folder.is_dir():
        raise ArchiveError(f"no {FOLDER} folder in {root}")
    parts = [read_batch(folder / name) for name in TRAIN_BATCHES]
    x_test, y_test = read_batch(folder / "test_batch")
    with open(folder / "batches.meta", "rb") as fh:
        meta = pickle.load(fh, encoding="bytes")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in _get(meta, "label_names")]
    return {"x_train": np.concatenate([p[0] for p in parts]), "y_train": np.concatenate([p[1] for p in parts]),
            "x_test": x_test, "y_test": y_test, "label_names": names}


# ---------------------------------------------------------------- real data

def fetch_real(dest: Path, download_dir: Path) -> Path:
    """Download (or reuse) the checked archive and unpack the batches into ``dest``."""
    return prepare_real(fetch(CIFAR10, download_dir), dest)


def prepare_real(archive: Path, dest: Path) -> Path:
    """Extract ``cifar-10-batches-py/*`` (the six batches, meta, readme) into ``dest``.
    Nothing else is written; all or nothing."""
    found = set()
    try:
        with atomic_directory(dest) as tmp:
            (tmp / FOLDER).mkdir()
            with tarfile.open(archive, "r|gz") as tar:
                for member in tar:
                    parts = PurePosixPath(member.name).parts
                    if member.isfile() and len(parts) == 2 and parts[0] == FOLDER and parts[1] in MEMBERS:
                        (tmp / FOLDER / parts[1]).write_bytes(tar.extractfile(member).read())
                        found.add(parts[1])
            missing = [m for m in MEMBERS[:-1] if m not in found]
            if missing:
                raise ArchiveError(f"{archive} lacks {', '.join(missing)}; is it cifar-10-python.tar.gz?")
            read_batch(tmp / FOLDER / "test_batch")  # readable, or the folder is not kept
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"could not unpack {archive} ({exc}); it looks damaged. "
                           "Delete it and fetch it again.") from exc
    return dest


def write_batches(folder: Path, x_train, y_train, x_test, y_test, label_names, batch_label: str) -> None:
    """Write images uint8 (n, 32, 32, 3) as CIFAR's five train batches, test batch and meta."""
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name, x, y, label):
        rows = np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072), dtype=np.uint8)
        d = {b"batch_label": label.encode(), b"labels": [int(v) for v in y], b"data": rows,
             b"filenames": [f"{name}_{i:05d}.png".encode() for i in range(len(x))]}
        with open(folder / name, "wb") as fh:
            pickle.dump(d, fh, protocol=2)

    for i, idx in enumerate(np.array_split(np.arange(len(x_train)), len(TRAIN_BATCHES)), start=1):
        dump(f"data_batch_{i}", x_train[idx], y_train[idx], f"training batch {i} of 5 ({batch_label})")
    dump("test_batch", x_test, y_test, f"testing batch 1 of 1 ({batch_label})")
    meta = {b"label_names": [n.encode() for n in label_names], b"num_cases_per_batch": len(x_train) // 5,
            b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)


# ------------------------------------------------------ offline stand-in

def colourise(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, 32, 32, 3) uint8: 2 px border, each image blended between a random
    background and foreground colour whose luma differ by at least 0.25 (either way round)."""
    n = len(gray)
    a = np.pad(gray, ((0, 0), (2, 2), (2, 2))).astype(np.float32)[..., None] / 255.0
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    bg, fg = np.empty((n, 3), np.float32), np.empty((n, 3), np.float32)
    for i in range(n):
        while True:
            b, f = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
            if abs(float(b @ luma - f @ luma)) >= 0.25:
                break
        bg[i], fg[i] = b, f
    img = bg[:, None, None, :] * (1 - a) + fg[:, None, None, :] * a
    img += rng.normal(0, 0.02, size=img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def build_offline(dest: Path, seed: int = 0, n_train: int = 10_000, n_test: int = 2_000,
                  fashion_dir: Path = FASHION_DIR) -> Path:
    """Write real images, colourised to 32x32 RGB, as a CIFAR-10 stand-in in ``dest``.

    Up to ``n_train`` / ``n_test`` images, balanced over the 10 classes, drawn at random
    (``seed``) from the source's own train / test split. The same arguments give
    byte-identical files.
    """
    (xtr, ytr), (xte, yte), names, what = source_images(fashion_dir)
    rng = np.random.default_rng(seed)

    def pick(y, n):
        per = n // 10
        idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per] for c in range(10)])
        return rng.permutation(idx)

    tr, te = pick(ytr, n_train), pick(yte, n_test)
    with atomic_directory(dest) as tmp:
        write_batches(tmp / FOLDER, colourise(xtr[tr], rng), ytr[tr], colourise(xte[te], rng), yte[te], names,
                      "offline stand-in")
        (tmp / "STANDIN").write_text(f"Offline stand-in for CIFAR-10: {what}; not CIFAR-10.\n")
        (tmp / "README.txt").write_text(f"""OFFLINE STAND-IN for CIFAR-10 -- not CIFAR-10 photographs.

Images: {what}.
Each grayscale image was padded to 32x32 and drawn in two random colours (a background and a
foreground colour whose brightness differs by at least 0.25, either way round) plus a little
noise, so that it is an RGB image like CIFAR's and a grayscale conversion has work to do.
Classes: {', '.join(names)}.
Split: {len(tr)} training images (from the source's training split), {len(te)} test images
(from its test split), balanced over the classes, chosen at random (seed {seed}).
Format: CIFAR-10's python pickle batches (data_batch_1..5, test_batch, batches.meta).

Accuracy on this data says nothing about accuracy on CIFAR-10.
""")
    return dest


CIFAR10 = register(CIFAR10, build_offline=build_offline, fetch_real=fetch_real)
