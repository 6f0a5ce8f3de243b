"""Speech Commands: real-archive unpacking, the synthetic stand-in, the loader, MFCCs."""
from __future__ import annotations

import hashlib
import io
import re
import sys
import tarfile
import wave
from pathlib import Path

import numpy as np
import pytest

import data_scripts
from coursekit.paths import dataset_dir
from coursekit.speech import load_clip, load_speech_commands, mfcc_features
from data_scripts import speech_commands as sc
from data_scripts.registry import DatasetSpec

WORDS = ("one", "two", "three")


def wav_bytes(n: int, value: int = 1000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.full(n, value, dtype="<i2").tobytes())
    return buf.getvalue()


def make_archive(path: Path, lists: bool = True) -> Path:
    """A small archive in the real one's format: ./<word>/<speaker>_nohash_<n>.wav for
    one/two/three plus an unrelated word and the noise folder; lists name all words."""
    members = {}
    for word in WORDS + ("four",):
        for spk in ("aaaa1111", "bbbb2222", "cccc3333", "dddd4444"):
            members[f"./{word}/{spk}_nohash_0.wav"] = wav_bytes(16000 - 1000 * len(word))
    members["./_background_noise_/white_noise.wav"] = wav_bytes(48000)
    members["./LICENSE"] = b"CC BY 4.0\n"
    if lists:
        members["./validation_list.txt"] = "".join(
            f"{w}/bbbb2222_nohash_0.wav\n" for w in ("four",) + WORDS).encode()
        members["./testing_list.txt"] = "".join(
            f"{w}/cccc3333_nohash_0.wav\n" for w in WORDS + ("four",)).encode()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------- real format

def test_prepare_real_keeps_three_classes_and_filters_lists(tmp_path):
    dest = sc.prepare_real(make_archive(tmp_path / "sc.tar.gz"), tmp_path / "real")
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["one", "two", "three", "validation_list.txt", "testing_list.txt", "LICENSE"])
    for word in WORDS:
        assert len(list((dest / word).glob("*.wav"))) == 4
    assert (dest / "validation_list.txt").read_text().split() == [
        f"{w}/bbbb2222_nohash_0.wav" for w in WORDS]
    assert (dest / "testing_list.txt").read_text().split() == [
        f"{w}/cccc3333_nohash_0.wav" for w in WORDS]

    data = load_speech_commands(dest)
    assert data.source == "real" and data.classes == WORDS
    def names(split):
        return sorted((p.parent.name, p.name[:8], label) for p, label in data.split(split))
    assert names("validation") == sorted((w, "bbbb2222", i) for i, w in enumerate(WORDS))
    assert names("test") == sorted((w, "cccc3333", i) for i, w in enumerate(WORDS))
    assert names("train") == sorted((w, s, i) for i, w in enumerate(WORDS)
                                    for s in ("aaaa1111", "dddd4444"))


@pytest.mark.parametrize("damage", ["truncated", "no_lists"])
def test_prepare_real_damaged_archive_writes_nothing(tmp_path, damage):
    archive = make_archive(tmp_path / "sc.tar.gz", lists=(damage != "no_lists"))
    if damage == "truncated":
        archive.write_bytes(archive.read_bytes()[:600])
    with pytest.raises(sc.ArchiveError):
        sc.prepare_real(archive, tmp_path / "out" / "real")
    assert list((tmp_path / "out").iterdir()) == []


def test_fetch_real_end_to_end_and_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    archive = make_archive(tmp_path / "sc.tar.gz")
    spec = DatasetSpec("speech_commands", archive.as_uri(),
                       hashlib.sha256(archive.read_bytes()).hexdigest(), "sc.tar.gz")
    monkeypatch.setattr(sc, "SPEECH_COMMANDS", spec)
    dest = data_scripts.fetch_real("speech_commands")
    assert dest == dataset_dir("speech_commands", offline=False)
    assert (data_scripts.download_dir() / "sc.tar.gz").exists()
    data = load_speech_commands()  # real data present -> used
    assert data.root == dest and data.source == "real"
    assert [len(data.split(s)) for s in ("train", "validation", "test")] == [6, 3, 3]


# ------------------------------------------------------ synthetic stand-in

TINY = dict(n_speakers=10, takes=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return sc.build_offline(tmp_path_factory.mktemp("offline") / "speech", seed=3, **TINY)


def test_offline_build_is_deterministic(tiny, tmp_path):
    again = sc.build_offline(tmp_path / "again", seed=3, **TINY)
    assert tree_digest(again) == tree_digest(tiny)
    other = sc.build_offline(tmp_path / "other", seed=4, **TINY)
    assert tree_digest(other) != tree_digest(tiny)


def test_offline_layout_and_format(tiny):
    assert (tiny / "SYNTHETIC").exists()
    readme = (tiny / "README.txt").read_text()
    assert "SYNTHETIC" in readme and "espeak-ng" in readme and "Seed: 3" in readme
    pattern = re.compile(r"^[0-9a-f]{8}_nohash_[0-9]+\.wav$")
    for word in WORDS:
        files = sorted((tiny / word).iterdir())
        assert len(files) == TINY["n_speakers"] * TINY["takes"]
        for f in files:
            assert pattern.match(f.name), f.name
            with wave.open(str(f)) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
                assert 4000 < w.getnframes() <= 16000
                audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
            assert np.abs(audio).max() > 3000  # a spoken word, not silence


def test_offline_split_by_speaker(tiny):
    data = load_speech_commands(tiny)
    assert data.source == "offline synthetic stand-in"
    speakers = {s: {p.name[:8] for p, _ in data.split(s)} for s in ("train", "validation", "test")}
    assert all(speakers.values())
    assert not (speakers["train"] & speakers["validation"])
    assert not (speakers["train"] & speakers["test"])
    assert not (speakers["validation"] & speakers["test"])
    assert len(speakers["train"]) == 8
    for name in ("validation_list.txt", "testing_list.txt"):
        for line in (tiny / name).read_text().split():
            assert (tiny / line).is_file() and not line.startswith("/")
    # every word of a held-out speaker is held out too
    for split in ("validation", "test"):
        assert len(data.split(split)) == len(speakers[split]) * len(WORDS) * TINY["takes"]


def test_default_root_builds_offline_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        load_speech_commands(build_if_missing=False)
    from dataclasses import replace

    small = replace(data_scripts.REGISTRY["speech_commands"],
                    build_offline=lambda dest: sc.build_offline(dest, n_speakers=8, takes=1))
    monkeypatch.setitem(data_scripts.REGISTRY, "speech_commands", small)
    data = load_speech_commands()
    assert data.root == dataset_dir("speech_commands", offline=True)
    assert data.source == "offline synthetic stand-in"
    assert sum(len(data.split(s)) for s in ("train", "validation", "test")) == 24


# ------------------------------------------------------------ clips, MFCCs

def test_load_clip_pads_and_truncates(tmp_path):
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    short.write_bytes(wav_bytes(8000, 16384))
    long.write_bytes(wav_bytes(20000, -8192))
    a, b = load_clip(short), load_clip(long)
    assert a.shape == b.shape == (16000,) and a.dtype == b.dtype == np.float32
    assert np.allclose(a[:8000], 0.5) and not a[8000:].any()
    assert np.allclose(b, -0.25)


def test_mfcc_shape_and_cache(tiny, monkeypatch):
    data = load_speech_commands(tiny)
    X, y = mfcc_features(data, "train")
    n = len(data.train)
    assert X.shape == (n, 32, 20) and X.dtype == np.float32
    assert y.dtype == np.int64 and sorted(set(y.tolist())) == [0, 1, 2]
    assert np.isfinite(X).all() and X.std() > 1.0

    monkeypatch.setitem(sys.modules, "librosa", None)  # any import of librosa now fails
    X2, y2 = mfcc_features(load_speech_commands(tiny), "train")
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    with pytest.raises(ImportError):  # other parameters are a different cache entry
        mfcc_features(data, "train", n_mfcc=13)
