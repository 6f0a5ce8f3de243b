"""Speech Commands for assignment 1: file lists, clips and MFCC features.

Reads the real dataset's on-disk layout (``<word>/<speaker>_nohash_<n>.wav`` plus
``validation_list.txt`` and ``testing_list.txt``). The offline stand-in uses the
same layout, so this code cannot tell them apart except by its ``SYNTHETIC`` marker.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .paths import dataset_dir, save_npz_atomic, shown

NAME = "speech_commands"
CLASSES = ("one", "two", "three")
SAMPLE_RATE = 16000
SPLITS = ("train", "validation", "test")
_FEATURE_VERSION = 1  # bump when the feature code changes, to retire old caches


@dataclass
class SpeechCommands:
    """File lists of one copy of the data. Each split is a list of (path, label),
    label being the index of the word in ``classes``."""
    root: Path
    source: str
    classes: tuple[str, ...]
    train: list[tuple[Path, int]] = field(default_factory=list)
    validation: list[tuple[Path, int]] = field(default_factory=list)
    test: list[tuple[Path, int]] = field(default_factory=list)

    def split(self, name: str) -> list[tuple[Path, int]]:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {name!r}")
        return getattr(self, name)


def load_speech_commands(root=None, classes=CLASSES, build_if_missing: bool = True,
                         verbose: bool = True) -> SpeechCommands:
    """List the clips of ``classes``, split by the dataset's own validation/testing lists.

    ``root=None`` picks the real data if it has been fetched, else the offline
    synthetic stand-in (built on first use when ``build_if_missing``).
    """
    root = Path(root) if root is not None else _default_root(build_if_missing)
    classes = tuple(classes)
    held_out = {name: set(_read_list(root / f"{name}_list.txt")) for name in ("validation", "testing")}
    source = "offline synthetic stand-in" if (root / "SYNTHETIC").exists() else "real"
    data = SpeechCommands(root=root, source=source, classes=classes)
    for label, word in enumerate(classes):
        folder = root / word
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing: this copy of Speech Commands "
                                    f"has no class {word!r}")
        for wav in sorted(folder.glob("*.wav")):
            rel = f"{word}/{wav.name}"
            split = ("validation" if rel in held_out["validation"] else
                     "test" if rel in held_out["testing"] else "train")
            data.split(split).append((wav, label))
    if verbose:
        sizes = ", ".join(f"{s} {len(data.split(s))}" for s in SPLITS)
        what = ("REAL Google Speech Commands v0.02" if source == "real" else
                "OFFLINE SYNTHETIC stand-in (espeak-ng voices, not real recordings)")
        print(f"Speech Commands: using {what} at {shown(root)} ({sizes} clips)")
    return data


def _default_root(build_if_missing: bool) -> Path:
    real, offline = dataset_dir(NAME, offline=False), dataset_dir(NAME, offline=True)
    if real.is_dir():
        return real
    if offline.is_dir():
        return offline
    if not build_if_missing:
        raise FileNotFoundError(
            f"no Speech Commands data at {real} or {offline}. Fetch the real data with "
            "data_scripts.fetch_real('speech_commands') or build the stand-in with "
            "data_scripts.build_offline('speech_commands').")
    import data_scripts

    print("Speech Commands: no data found, building the offline synthetic stand-in ...")
    return data_scripts.build_offline(NAME)


def _read_list(path: Path) -> list[str]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; the split cannot be made without it")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_clip(path, length: int = SAMPLE_RATE) -> np.ndarray:
    """One clip as float32 in [-1, 1], zero-padded or cut to ``length`` samples."""
    import soundfile

    audio, sr = soundfile.read(str(path), dtype="float32", always_2d=False)
    if sr != SAMPLE_RATE or audio.ndim != 1:
        raise ValueError(f"{path}: expected 16 kHz mono, got {sr} Hz with shape {audio.shape}")
    out = np.zeros(length, dtype=np.float32)
    out[:min(length, len(audio))] = audio[:length]
    return out


def mfcc_features(dataset: SpeechCommands, split: str, n_mfcc: int = 20, hop_length: int = 512,
                  n_fft: int = 2048, length: int = SAMPLE_RATE, cache: bool = True,
                  batch: int = 256):
    """MFCCs of one split: ``X`` float32 (N, frames, n_mfcc), time-major (32 frames for
    1 s), and ``y`` int64 (N,). Cached in ``<root>/features`` keyed on the parameters
    and the file list, so later calls only read the cache."""
    items = dataset.split(split)
    params = dict(n_mfcc=n_mfcc, hop_length=hop_length, n_fft=n_fft, length=length,
                  sr=SAMPLE_RATE, version=_FEATURE_VERSION)
    key_data = json.dumps([params, [(p.relative_to(dataset.root).as_posix(), y) for p, y in items]])
    key = hashlib.sha256(key_data.encode()).hexdigest()[:16]
    path = Path(dataset.root) / "features" / f"mfcc-{split}-{key}.npz"
    if cache and path.exists():
        try:
            with np.load(path) as z:
                return z["X"], z["y"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # a damaged cache is recomputed

    import librosa  # slow import and numba compile on first use: only when computing

    y = np.array([label for _, label in items], dtype=np.int64)
    X = np.zeros((len(items), 1 + length // hop_length, n_mfcc), dtype=np.float32)
    for start in range(0, len(items), batch):
        clips = np.stack([load_clip(p, length) for p, _ in items[start:start + batch]])
        # librosa works on the last axis, so a whole batch goes in one call.
        m = librosa.feature.mfcc(y=clips, sr=SAMPLE_RATE, n_mfcc=n_mfcc,
                                 hop_length=hop_length, n_fft=n_fft)
        X[start:start + len(clips)] = m.transpose(0, 2, 1)
    if cache:
        save_npz_atomic(path, "features", X=X, y=y)
    return X, y
