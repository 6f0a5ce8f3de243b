"""data_scripts.download: checked, all-or-nothing downloads."""
from __future__ import annotations

import hashlib
import http.server
import threading
import urllib.request

import pytest

from data_scripts.download import ChecksumMismatch, DownloadError, atomic_directory, fetch
from data_scripts.registry import REGISTRY, DatasetSpec

PAYLOAD = b"speech commands stand-in bytes\n" * 1000


def spec_for(url: str, data: bytes = PAYLOAD, sha: str | None = None) -> DatasetSpec:
    return DatasetSpec(name="toy", url=url, sha256=sha or hashlib.sha256(data).hexdigest(),
                       filename="toy.tar.gz", size_bytes=len(data))


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "server" / "toy.tar.gz"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def test_registry_pins_speech_commands():
    spec = REGISTRY["speech_commands"]
    assert spec.url == "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
    assert spec.sha256 == "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
    assert spec.size_bytes == 2_428_923_189


def test_fetch_file_url_and_reuse_cache(tmp_path, source, monkeypatch):
    cache = tmp_path / "cache"
    got = fetch(spec_for(source.as_uri()), cache, quiet=True)
    assert got == cache / "toy.tar.gz"
    assert got.read_bytes() == PAYLOAD
    assert sorted(p.name for p in cache.iterdir()) == ["toy.tar.gz"]  # no .part left

    def no_network(*args, **kwargs):
        raise AssertionError("a verified cached file must not be downloaded again")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert fetch(spec_for(source.as_uri()), cache, quiet=True) == got


def test_checksum_mismatch_leaves_nothing(tmp_path, source):
    cache = tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatch) as err:
        fetch(spec_for(source.as_uri(), sha=wrong), cache, quiet=True)
    msg = str(err.value)
    assert wrong in msg and hashlib.sha256(PAYLOAD).hexdigest() in msg and source.as_uri() in msg
    assert list(cache.iterdir()) == []


def test_cached_file_is_reverified(tmp_path, source):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "toy.tar.gz").write_bytes(b"damaged")
    got = fetch(spec_for(source.as_uri()), cache, quiet=True)
    assert got.read_bytes() == PAYLOAD


def test_missing_url_leaves_nothing(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        fetch(spec_for((tmp_path / "nope.tar.gz").as_uri()), cache, quiet=True)
    assert not isinstance(err.value, ChecksumMismatch)
    assert list(cache.iterdir()) == []


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/missing":
            self.send_error(404)
            return
        # Promise the whole file, send a tenth of it, hang up.
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 10])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path", ["/cut", "/missing"])
def test_failed_http_download_leaves_nothing(tmp_path, server, path):
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        fetch(spec_for(server + path), cache, quiet=True)
    assert not isinstance(err.value, ChecksumMismatch)
    assert server + path in str(err.value)
    assert list(cache.iterdir()) == []


def test_atomic_directory_all_or_nothing(tmp_path):
    dest = tmp_path / "data"
    with pytest.raises(RuntimeError):
        with atomic_directory(dest) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("build failed")
    assert list(tmp_path.iterdir()) == []

    with atomic_directory(dest) as tmp:
        (tmp / "a.txt").write_text("first")
    with atomic_directory(dest) as tmp:
        (tmp / "b.txt").write_text("second")
    assert [p.name for p in dest.iterdir()] == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
