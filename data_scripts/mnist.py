"""MNIST (LeCun, Cortes and Burges): download the four checked idx files, or write an
offline stand-in of real images in the same format.

Both folders hold::

    train-images-idx3-ubyte.gz   (n, 28, 28) uint8      train-labels-idx1-ubyte.gz   (n,) uint8
    t10k-images-idx3-ubyte.gz    (m, 28, 28) uint8      t10k-labels-idx1-ubyte.gz    (m,) uint8

in the idx format (big-endian header: two zero bytes, type 0x08, number of dimensions,
then each dimension as a 4-byte integer). ``read_mnist`` reads either the same way.
The stand-in also holds ``STANDIN`` and ``README.txt`` saying what it is.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from . import fashion_mnist
from .download import ArchiveError, atomic_directory, fetch
from .idx import read_idx, write_idx
from .registry import DatasetSpec, register

MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's mirror of yann.lecun.com
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# SHA-256 and sizes of the original files as pinned in public code: nixpkgs' Haskell
# tensorflow-mnist-input-data and Guild AI's mnist package list the same four digests
# (torchvision's mirror serves the same files; it pins their MD5 only).
_PINNED = {
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
}
SPECS = {f: register(DatasetSpec(
    name=f"mnist/{f}", url=MIRROR + f, sha256=sha, filename=f, size_bytes=size,
    description="MNIST handwritten digits (LeCun, Cortes and Burges), idx format")) for f, (sha, size) in _PINNED.items()}


# ---------------------------------------------------------------- reading

def read_mnist(root: Path) -> dict:
    """A folder of the four files -> dict of x_train, y_train, x_test, y_test (uint8 / int64)."""
    root = Path(root)
    missing = [f for f in FILES if not (root / f).is_file()]
    if missing:
        raise ArchiveError(f"{root} lacks {', '.join(missing)}")
    xtr, ytr, xte, yte = (read_idx(root / f) for f in FILES)
    for x, y, split in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ArchiveError(f"{root}: {split} images {x.shape} and labels {y.shape} do not fit together")
    return {"x_train": xtr, "y_train": ytr.astype(np.int64), "x_test": xte, "y_test": yte.astype(np.int64)}


# ---------------------------------------------------------------- real data

def fetch_real(dest: Path, download_dir: Path) -> Path:
    """Download (or reuse) the four checked files and copy them into ``dest``."""
    paths = [fetch(SPECS[f], download_dir) for f in FILES]
    with atomic_directory(dest) as tmp:
        for p in paths:
            shutil.copyfile(p, tmp / p.name)
        read_mnist(tmp)  # readable, or the folder is not kept
    return dest


# ------------------------------------------------------ offline stand-in

def build_offline(dest: Path, fashion_dir: Path | None = None) -> Path:
    """Write real images in MNIST's format into ``dest``: Fashion-MNIST (the Debian package's
    files, copied unchanged) when installed, else scikit-learn's digits upscaled to 28x28."""
    fashion_dir = Path(fashion_dir or fashion_mnist.FASHION_DIR)
    with atomic_directory(dest) as tmp:
        if all((fashion_dir / f).is_file() for f in FILES):
            for f in FILES:
                shutil.copyfile(fashion_dir / f, tmp / f)
            what = ("Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 70,000 real 28x28 grayscale photos of "
                    "clothing in 10 classes, the Debian package dataset-fashion-mnist's files unchanged")
            names = fashion_mnist.FASHION_NAMES
        else:
            (xtr, ytr), (xte, yte), names, what = fashion_mnist.source_images(fashion_dir)
            for f, arr in zip(FILES, (xtr, ytr, xte, yte)):
                write_idx(tmp / f, arr)
        read_mnist(tmp)
        (tmp / "STANDIN").write_text(f"Offline stand-in for MNIST: {what}; not the MNIST digits.\n")
        (tmp / "CLASSES").write_text("\n".join(names) + "\n")
        (tmp / "README.txt").write_text(f"""OFFLINE STAND-IN for MNIST -- not the MNIST handwritten digits.

Images: {what}.
Format: MNIST's four gzipped idx files, so the same loader reads this folder and the real one.
Classes (label 0..9): {', '.join(names)}.

Accuracy on this data says nothing about accuracy on MNIST.
""")
    return dest


MNIST = register(DatasetSpec(
    name="mnist", url=MIRROR, files=tuple(spec.name for spec in SPECS.values()),
    description="MNIST handwritten digits (LeCun, Cortes and Burges): 60,000 train and 10,000 test "
                "28x28 grayscale images, idx format",
    build_offline=build_offline, fetch_real=fetch_real))
