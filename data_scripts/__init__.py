"""Get the course datasets: fetch the real ones (checked downloads) or build
offline stand-ins in the same on-disk format.

Adding a dataset = one module plus one entry in ``OFFLINE_BUILDERS`` and/or
``REAL_FETCHERS``:

* offline builder: ``builder(dest: Path) -> Path`` writes the stand-in to ``dest``;
* real fetcher: ``fetcher(dest: Path, download_dir: Path) -> Path`` downloads into
  ``download_dir`` (see ``download.fetch``) and unpacks into ``dest``.

Both must leave ``dest`` complete or untouched (``download.atomic_directory``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable


from . import cifar, imdb, mnist, shakespeare, speech_commands  # importing a module registers its DatasetSpec
from .paths import data_dir, dataset_dir
from .download import ArchiveError, ChecksumMismatch, DownloadError, fetch
from .registry import REGISTRY, DatasetSpec

OFFLINE_BUILDERS: dict[str, Callable[[Path], Path]] = {
    "speech_commands": speech_commands.build_offline,
    "imdb": imdb.build_offline,
    "tiny_shakespeare": shakespeare.build_offline,
    "cifar10": cifar.build_offline,
    "mnist": mnist.build_offline,
}
REAL_FETCHERS: dict[str, Callable[[Path, Path], Path]] = {
    "speech_commands": speech_commands.fetch_real,
    "imdb": imdb.fetch_real,
    "tiny_shakespeare": shakespeare.fetch_real,
    "cifar10": cifar.fetch_real,
    "mnist": mnist.fetch_real,
}


def download_dir() -> Path:
    """Where downloaded archives are kept: ``<data_dir>/downloads``."""
    return data_dir() / "downloads"


def build_offline(name: str, force: bool = False) -> Path:
    """Build the offline stand-in of ``name`` (unless present) and return its folder."""
    builder = _lookup(OFFLINE_BUILDERS, name, "offline stand-in")
    dest = dataset_dir(name, offline=True)
    if force or not dest.is_dir():
        builder(dest)
    return dest


def fetch_real(name: str, force: bool = False) -> Path:
    """Download (checked) and unpack the real ``name`` (unless present); return its folder."""
    fetcher = _lookup(REAL_FETCHERS, name, "real-data fetcher")
    dest = dataset_dir(name, offline=False)
    if force or not dest.is_dir():
        fetcher(dest, download_dir())
    return dest


def _lookup(table: dict, name: str, what: str):
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"no {what} for {name!r}; known: {sorted(table)}") from None


__all__ = ["OFFLINE_BUILDERS", "REAL_FETCHERS", "REGISTRY", "DatasetSpec", "ChecksumMismatch",
           "DownloadError", "build_offline", "download_dir", "fetch", "fetch_real"]
