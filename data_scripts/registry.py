"""Pinned download locations and checksums of the real datasets.

A checksum is only ever copied from a published source (noted next to each
entry), never computed from a download we happened to get.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    url: str
    sha256: str
    filename: str
    size_bytes: int | None = None
    description: str = ""


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    REGISTRY[spec.name] = spec
    return spec


# SHA-256 and size as listed in TensorFlow Datasets
# (tensorflow_datasets/url_checksums/speech_commands.txt); torchaudio's
# SPEECHCOMMANDS pins the same SHA-256 for this URL.
SPEECH_COMMANDS = register(DatasetSpec(
    name="speech_commands",
    url="http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
    sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
    filename="speech_commands_v0.02.tar.gz",
    size_bytes=2_428_923_189,
    description="Google Speech Commands v0.02 (Warden 2018), 35 words, "
                "16 kHz WAV, CC BY 4.0",
))
