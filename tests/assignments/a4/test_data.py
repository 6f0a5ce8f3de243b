"""Image data for a4: CIFAR-10's pickle batches and MNIST's idx files (readers, checked
downloads, unpacking) on hand-made fixtures in the real formats, and the offline stand-ins."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from coursekit import vision
from data_scripts import cifar, mnist
from data_scripts.download import ArchiveError, ChecksumMismatch, fetch
from data_scripts.registry import REGISTRY


# ------------------------------------------------------------------ fixtures in the real formats

def _cifar_batch(n: int, first_label: int = 0) -> bytes:
    """A batch as the real files hold it: bytes keys, data (n, 3072) uint8 = R plane, G plane, B plane."""
    data = np.zeros((n, 3072), np.uint8)
    data[:, :1024], data[:, 1024:2048], data[:, 2048:] = 10, 20, 30
    data[:, 1 * 32 + 2] = 200                       # red at row 1, column 2
    labels = [(first_label + i) % 10 for i in range(n)]
    d = {b"batch_label": b"training batch", b"labels": labels, b"data": data,
         b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    return pickle.dumps(d, protocol=2)


def _cifar_tar(path: Path, members=cifar.MEMBERS, n: int = 3) -> Path:
    meta = pickle.dumps({b"label_names": [n.encode() for n in vision.CIFAR_NAMES], b"num_cases_per_batch": n,
                         b"num_vis": 3072}, protocol=2)
    with tarfile.open(path, "w:gz") as tar:
        for name in members:
            body = meta if name == "batches.meta" else b"<html></html>" if name == "readme.html" else _cifar_batch(n, len(name))
            info = tarfile.TarInfo(f"{cifar.FOLDER}/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        evil = tarfile.TarInfo("../outside.txt")   # never extracted
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))
    return path


def _idx(path: Path, array: np.ndarray) -> Path:
    """An idx file written by hand: 0, 0, type 0x08, ndim, big-endian dims, bytes; gzipped."""
    head = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(head + array.astype(np.uint8).tobytes()))
    return path


def _mnist_dir(folder: Path, n_train: int = 40, n_test: int = 20) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


def _spec_for(spec, path: Path, sha: str | None = None):
    sha = sha or hashlib.sha256(path.read_bytes()).hexdigest()
    return dataclasses.replace(spec, url=path.as_uri(), sha256=sha)


# ------------------------------------------------------------------ CIFAR-10

def test_registry_pins_cifar_and_mnist():
    spec = REGISTRY["cifar10"]
    assert spec.url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert spec.sha256 == "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    assert spec.size_bytes == 170_498_071
    names = {f"mnist/{f}" for f in mnist.FILES}
    assert names <= set(REGISTRY)
    assert REGISTRY["mnist/train-images-idx3-ubyte.gz"].sha256.startswith("440fcabf73cc546f")


def test_cifar_batch_layout_is_planes_of_rows(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(_cifar_batch(4))
    x, y = cifar.read_batch(path)
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.uint8
    assert x[0, 0, 0].tolist() == [10, 20, 30] and x[0, 1, 2, 0] == 200 and x[0, 2, 1, 0] == 10
    assert y.tolist() == [0, 1, 2, 3]


def test_prepare_real_unpacks_only_the_batches(tmp_path):
    archive = _cifar_tar(tmp_path / "cifar-10-python.tar.gz")
    dest = cifar.prepare_real(archive, tmp_path / "real")
    assert sorted(p.name for p in (dest / cifar.FOLDER).iterdir()) == sorted(cifar.MEMBERS)
    assert not (tmp_path / "outside.txt").exists()
    data = vision.load_cifar10(root=dest)
    assert data["source"] == "real" and data["x_train"].shape == (15, 32, 32, 3)
    assert data["x_test"].shape == (3, 32, 32, 3) and data["label_names"] == list(vision.CIFAR_NAMES)


def test_prepare_real_rejects_incomplete_or_damaged_archives(tmp_path):
    partial = _cifar_tar(tmp_path / "partial.tar.gz", members=cifar.MEMBERS[:3])
    with pytest.raises(ArchiveError, match="lacks"):
        cifar.prepare_real(partial, tmp_path / "a")
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(_cifar_tar(tmp_path / "ok.tar.gz").read_bytes()[:500])
    with pytest.raises(ArchiveError, match="damaged"):
        cifar.prepare_real(damaged, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cifar_checksum_mismatch_is_a_clear_error_and_leaves_nothing(tmp_path):
    archive = _cifar_tar(tmp_path / "src.tar.gz")
    spec = _spec_for(cifar.CIFAR10, archive, sha=cifar.CIFAR10.sha256)   # the pinned sum, other bytes
    with pytest.raises(ChecksumMismatch, match="SHA-256 mismatch") as err:
        fetch(spec, tmp_path / "downloads", quiet=True)
    assert cifar.CIFAR10.sha256 in str(err.value)
    assert list((tmp_path / "downloads").iterdir()) == []


def test_cifar_fetch_real_end_to_end_from_a_file_url(tmp_path, monkeypatch):
    archive = _cifar_tar(tmp_path / "src.tar.gz")
    monkeypatch.setattr(cifar, "CIFAR10", _spec_for(cifar.CIFAR10, archive))
    dest = cifar.fetch_real(tmp_path / "real", tmp_path / "downloads")
    assert cifar.read_cifar(dest)["y_test"].tolist() == [10 % 10, 11 % 10, 12 % 10]


# ------------------------------------------------------------------ MNIST

def test_idx_reader_on_a_hand_written_fixture(tmp_path):
    folder = _mnist_dir(tmp_path / "m")
    data = mnist.read_mnist(folder)
    assert data["x_train"].shape == (40, 28, 28) and data["y_test"].tolist() == [i % 10 for i in range(20)]
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    mnist.write_idx(tmp_path / "a.gz", arr)
    assert np.array_equal(mnist.read_idx(tmp_path / "a.gz"), arr)
    (tmp_path / "b.gz").write_bytes(gzip.compress(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\0\0\0\0"))
    with pytest.raises(ArchiveError, match="unsigned bytes"):
        mnist.read_idx(tmp_path / "b.gz")
    (tmp_path / "c.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + b"\0" * 3))
    with pytest.raises(ArchiveError, match="header says"):
        mnist.read_idx(tmp_path / "c.gz")


def test_mnist_fetch_checks_every_file(tmp_path, monkeypatch):
    src = _mnist_dir(tmp_path / "src")
    good = {f: _spec_for(mnist.SPECS[f], src / f) for f in mnist.FILES}
    monkeypatch.setattr(mnist, "SPECS", good)
    dest = mnist.fetch_real(tmp_path / "real", tmp_path / "dl")
    assert mnist.read_mnist(dest)["x_test"].shape == (20, 28, 28)
    bad = dict(good)
    bad[mnist.FILES[1]] = _spec_for(mnist.SPECS[mnist.FILES[1]], src / mnist.FILES[1], sha="0" * 64)
    monkeypatch.setattr(mnist, "SPECS", bad)
    with pytest.raises(ChecksumMismatch, match="SHA-256 mismatch"):
        mnist.fetch_real(tmp_path / "real2", tmp_path / "dl2")
    assert not (tmp_path / "real2").exists()
    assert not list((tmp_path / "dl2").glob("*labels*"))


# ------------------------------------------------------------------ offline stand-ins

@pytest.fixture
def fake_debian(tmp_path):
    """A folder laid out like the Debian package dataset-fashion-mnist (idx files, 10 classes)."""
    return _mnist_dir(tmp_path / "fashion", n_train=200, n_test=60)


def test_cifar_standin_from_fashion_is_cifar_format_and_says_what_it_is(tmp_path, fake_debian):
    dest = cifar.build_offline(tmp_path / "off", n_train=100, n_test=30, fashion_dir=fake_debian)
    data = cifar.read_cifar(dest)
    assert data["x_train"].shape == (100, 32, 32, 3) and data["x_test"].shape == (30, 32, 32, 3)
    assert np.bincount(data["y_train"]).tolist() == [10] * 10
    assert data["label_names"][0] == "T-shirt/top"
    assert "Fashion-MNIST" in (dest / "STANDIN").read_text() and "not CIFAR-10" in (dest / "STANDIN").read_text()
    gray = data["x_train"].astype(float) @ [0.299, 0.587, 0.114]
    assert gray.std() > 10, "the colourised images keep their contrast in grayscale"
    again = cifar.build_offline(tmp_path / "off2", n_train=100, n_test=30, fashion_dir=fake_debian)
    for name in cifar.MEMBERS[:-1]:
        assert (dest / cifar.FOLDER / name).read_bytes() == (again / cifar.FOLDER / name).read_bytes()


def test_standins_without_debian_use_the_real_sklearn_digits(tmp_path):
    dest = cifar.build_offline(tmp_path / "c", fashion_dir=tmp_path / "absent")
    data = cifar.read_cifar(dest)
    assert len(data["x_train"]) + len(data["x_test"]) <= 1797 and len(data["x_test"]) > 100
    assert data["label_names"] == [str(d) for d in range(10)]
    assert "digits" in (dest / "STANDIN").read_text()
    m = mnist.build_offline(tmp_path / "m", fashion_dir=tmp_path / "absent")
    md = mnist.read_mnist(m)
    assert md["x_train"].shape[1:] == (28, 28) and len(md["x_train"]) + len(md["x_test"]) == 1797
    assert md["x_train"].max() == 255 and "digits" in (m / "STANDIN").read_text()


def test_mnist_standin_copies_the_debian_files(tmp_path, fake_debian, monkeypatch, capsys):
    dest = mnist.build_offline(tmp_path / "m", fashion_dir=fake_debian)
    for f in mnist.FILES:
        assert (dest / f).read_bytes() == (fake_debian / f).read_bytes()
    data = vision.load_mnist(root=dest, n_train=15)
    assert data["source"] == "offline stand-in" and data["label_names"][9] == "Ankle boot"
    assert len(data["x_train"]) == 15 and "not the MNIST digits" in capsys.readouterr().out


def test_loader_builds_the_standin_on_first_use(tmp_path, monkeypatch, fake_debian):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    import data_scripts

    from dataclasses import replace

    small = replace(data_scripts.REGISTRY["cifar10"],
                    build_offline=lambda dest: cifar.build_offline(dest, n_train=100, n_test=30, fashion_dir=fake_debian))
    monkeypatch.setitem(data_scripts.REGISTRY, "cifar10", small)
    data = vision.load_cifar10(n_train=20)
    assert data["source"] == "offline stand-in" and data["x_train"].shape == (20, 32, 32, 3)
    with pytest.raises(FileNotFoundError, match="course data --real mnist"):
        vision.load_mnist(build_if_missing=False)
