"""Checked downloads and all-or-nothing output folders.

A file only ever appears under its final name once its SHA-256 matched the
pinned value, so a half-finished or corrupted download is never mistaken for
a good one on the next run.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

from .registry import DatasetSpec

CHUNK = 1 << 20
TIMEOUT_S = 60


class DownloadError(RuntimeError):
    """The file could not be fetched (network, missing URL, connection cut)."""


class ChecksumMismatch(DownloadError):
    """The fetched bytes are not the pinned file."""


class ArchiveError(RuntimeError):
    """A downloaded archive is damaged or lacks something the course needs."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(spec: DatasetSpec, cache_dir: Path, quiet: bool = False) -> Path:
    """Return ``cache_dir/spec.filename`` with verified content, downloading it if needed."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / spec.filename
    if target.exists():
        got = sha256_of(target)
        if got == spec.sha256:
            return target
        # A cached copy that no longer matches (disk damage, manual edit) is not trusted.
        if not quiet:
            print(f"{target} does not match its pinned SHA-256 (got {got}); downloading again.")
        target.unlink()

    fd, part_name = tempfile.mkstemp(dir=cache_dir, prefix=spec.filename + ".", suffix=".part")
    part = Path(part_name)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _stream(spec, out, quiet)
        if got != spec.sha256:
            raise ChecksumMismatch(
                f"SHA-256 mismatch for {spec.url}\n"
                f"  expected {spec.sha256}\n  got      {got}\n"
                "The partial file was deleted. The server may have sent a different "
                "or damaged file; try again later, or download it yourself, check it, "
                f"and place it at {target}.")
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target


def _stream(spec: DatasetSpec, out, quiet: bool) -> str:
    """Copy the URL's bytes into ``out``; return their SHA-256."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(spec.url, timeout=TIMEOUT_S) as resp:
            length = resp.headers.get("Content-Length")
            expected = int(length) if length else spec.size_bytes
            with tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=spec.filename, disable=quiet) as bar:
                while chunk := resp.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DownloadError(
            f"could not download {spec.url}: the server answered {exc.code} {exc.reason}.\n"
            "Nothing was kept. If the file has moved, update its entry in "
            "data_scripts/registry.py.") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # http.client errors (IncompleteRead, RemoteDisconnected) derive from these too.
        raise DownloadError(
            f"could not download {spec.url}: {exc}\n"
            "Nothing was kept. Check the network connection (or proxy) and try again.") from exc
    # urllib does not complain when a server closes before Content-Length; do it here.
    if length and received != int(length):
        raise DownloadError(
            f"download of {spec.url} stopped after {received} of {length} bytes; "
            "nothing was kept. Try again.")
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_directory(dest: Path) -> Iterator[Path]:
    """Yield an empty temp folder next to ``dest``; on success it becomes ``dest``
    (replacing an old one), on any error it is removed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        yield tmp
        if not dest.exists():
            os.replace(tmp, dest)
            return
        # Two renames: a folder cannot replace a non-empty folder in one step.
        old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
        os.replace(dest, old / dest.name)
        try:
            os.replace(tmp, dest)
        except BaseException:
            os.replace(old / dest.name, dest)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
