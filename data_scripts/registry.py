"""The course's datasets: where each real one is downloaded from (checked by SHA-256) and
how its offline stand-in is built, one ``DatasetSpec`` each.

A dataset module registers its spec once it has defined the spec's functions:
``build_offline(dest)`` writes the stand-in into ``dest``; ``fetch_real(dest,
download_dir)`` downloads (see ``download.fetch``) and unpacks into ``dest``; both leave
``dest`` complete or untouched. A dataset downloaded as several files (MNIST) lists them
in ``files``, each a spec of its own with its URL and checksum. A checksum is only ever
copied from a published source (noted next to each entry), never computed from a
download we happened to get.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    url: str = ""
    sha256: str = ""
    filename: str = ""
    size_bytes: int | None = None
    description: str = ""
    build_offline: Callable[[Path], Path] | None = field(default=None, compare=False, repr=False)
    fetch_real: Callable[[Path, Path], Path] | None = field(default=None, compare=False, repr=False)
    files: tuple[str, ...] = ()  # names of the specs of the files a dataset is downloaded as


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec, **functions) -> DatasetSpec:
    """Add ``spec`` (with ``build_offline``/``fetch_real`` set from ``functions``) to the
    registry and return what was registered."""
    if functions:
        spec = replace(spec, **functions)
    REGISTRY[spec.name] = spec
    return spec


def datasets() -> dict[str, DatasetSpec]:
    """The datasets notebooks load (the specs with a builder or fetcher), by name."""
    return {name: s for name, s in REGISTRY.items() if s.build_offline or s.fetch_real}
