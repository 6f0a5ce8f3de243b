"""Get the course datasets: fetch the real ones (checked downloads) or build
offline stand-ins in the same on-disk format.

Every dataset is one ``DatasetSpec`` in ``registry.REGISTRY``, registered by its own
module (URL and checksum of the real data, its offline builder and real fetcher; see
``registry``). Adding a dataset = one module that registers its spec, imported below.
"""
from __future__ import annotations

from pathlib import Path

from . import cifar, imdb, mnist, shakespeare, speech_commands  # importing a module registers its DatasetSpec
from .paths import data_dir, dataset_dir
from .download import ArchiveError, ChecksumMismatch, DownloadError, fetch
from .registry import REGISTRY, DatasetSpec, datasets


def offline_names() -> list[str]:
    """Names of the datasets that have an offline stand-in."""
    return sorted(name for name, spec in datasets().items() if spec.build_offline)


def download_dir() -> Path:
    """Where downloaded archives are kept: ``<data_dir>/downloads``."""
    return data_dir() / "downloads"


def build_offline(name: str, force: bool = False) -> Path:
    """Build the offline stand-in of ``name`` (unless present) and return its folder."""
    builder = _lookup(name, "build_offline", "offline stand-in")
    dest = dataset_dir(name, offline=True)
    if force or not dest.is_dir():
        builder(dest)
    return dest


def fetch_real(name: str, force: bool = False) -> Path:
    """Download (checked) and unpack the real ``name`` (unless present); return its folder."""
    fetcher = _lookup(name, "fetch_real", "real-data fetcher")
    dest = dataset_dir(name, offline=False)
    if force or not dest.is_dir():
        fetcher(dest, download_dir())
    return dest


def _lookup(name: str, function: str, what: str):
    spec = datasets().get(name)
    if spec is None or getattr(spec, function) is None:
        known = sorted(n for n, s in datasets().items() if getattr(s, function))
        raise KeyError(f"no {what} for {name!r}; known: {known}")
    return getattr(spec, function)


__all__ = ["REGISTRY", "DatasetSpec", "datasets", "offline_names", "ChecksumMismatch",
           "DownloadError", "build_offline", "download_dir", "fetch", "fetch_real"]
