"""download: http (a local server on 127.0.0.1) and file:// URLs, checksum, truncation, reuse."""

from __future__ import annotations

import hashlib
import http.server

import pytest

from conftest import local_http_server

from sketchlib.data.download import download, file_sha256

PAYLOAD = bytes(range(256)) * 300  # 76.8 kB, more than one read chunk
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).hits.append(self.path)
        if self.path == "/data.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/truncated.bin":  # promises everything, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_error(404)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server():
    with local_http_server(_Handler) as url:
        yield url


def _files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_http_download_verified_and_reused(server, tmp_path):
    _Handler.hits.clear()
    dest = tmp_path / "d" / "data.bin"
    assert download(f"{server}/data.bin", dest, sha256=SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _files(tmp_path) == ["data.bin"]
    download(f"{server}/data.bin", dest, sha256=SHA, progress=True)  # verified copy: no request
    download(f"{server}/data.bin", dest)
    assert _Handler.hits == ["/data.bin"]


def test_file_url(tmp_path):
    src = tmp_path / "src dir" / "payload.bin"  # a space, quoted in the URI
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    dest = download(src.as_uri(), tmp_path / "out" / "p.bin", sha256=SHA.upper(), progress=False)
    assert dest.read_bytes() == PAYLOAD and file_sha256(dest) == SHA


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    bad = "0" * 64
    with pytest.raises(ValueError, match=f"expected {bad}, got {SHA}"):
        download(f"{server}/data.bin", tmp_path / "data.bin", sha256=bad, progress=False)
    assert _files(tmp_path) == []


def test_wrong_checksum_file_url_leaves_nothing(tmp_path):
    src = tmp_path / "src" / "p.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        download(src.as_uri(), tmp_path / "out" / "p.bin", sha256="f" * 64, progress=False)
    assert _files(tmp_path / "out") == []


def test_truncated_transfer_leaves_nothing(server, tmp_path):
    with pytest.raises(ValueError, match="truncated"):
        download(f"{server}/truncated.bin", tmp_path / "t.bin", progress=False)
    assert _files(tmp_path) == []


def test_http_error_leaves_nothing(server, tmp_path):
    with pytest.raises(OSError, match="404"):
        download(f"{server}/missing.bin", tmp_path / "m.bin", progress=False)
    assert _files(tmp_path) == []


def test_empty_file_is_refused(tmp_path):
    src = tmp_path / "empty.bin"
    src.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        download(src.as_uri(), tmp_path / "out" / "e.bin", progress=False)
    assert _files(tmp_path / "out") == []


def test_stale_file_is_replaced(tmp_path):
    src = tmp_path / "p.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "p.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"stale")
    download(src.as_uri(), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_bad_sha_argument(tmp_path):
    with pytest.raises(ValueError, match="64 hex digits"):
        download("file:///nonexistent", tmp_path / "x", sha256="abc")
