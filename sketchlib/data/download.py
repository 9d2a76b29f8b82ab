"""Download one file, verified and atomically, with a progress bar.

``download(url, dest)`` streams ``url`` (``http(s)://`` or ``file://``) into a temporary file beside
``dest``, checks the transfer (bytes received = ``Content-Length`` when the server sends one, more
than 0 bytes, and the SHA-256 when one is given), and only then renames it to ``dest``. A failed or
truncated transfer, or a wrong checksum, leaves nothing behind. A ``dest`` that already exists (and
matches ``sha256`` when one is given) is reused without touching the network.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.request
from pathlib import Path

from sketchlib.data.fileio import atomic_path

_CHUNK = 1 << 16
_HEX64 = re.compile(r"[0-9a-f]{64}")


def file_sha256(path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_sha(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    s = str(sha256).strip().lower()
    if not _HEX64.fullmatch(s):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    return s


def download(url: str, dest, sha256: str | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``dest`` and return ``dest`` as a :class:`~pathlib.Path`.

    Raises ``ValueError`` for a truncated or empty transfer or a SHA-256 mismatch (the message names
    the expected and the actual digest) and ``OSError`` when the URL cannot be fetched; in every
    failure case no file (neither ``dest`` nor a temporary one) is left behind.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    expected = _check_sha(sha256)
    if dest.is_file() and dest.stat().st_size > 0:
        if expected is None or file_sha256(dest) == expected:
            return dest  # already here (and verified): no network
    with atomic_path(dest) as tmp:
        digest = hashlib.sha256()
        received = 0
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                length = resp.headers.get("Content-Length")
                total = int(length) if length is not None and length.isdigit() else None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                          disable=not progress, leave=False) as bar:
                    while True:
                        chunk = resp.read(_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        except http.client.IncompleteRead as e:
            raise ValueError(f"download of {url} was truncated: got {received + len(e.partial)} bytes, "
                             f"expected {received + len(e.partial) + (e.expected or 0)}") from e
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError) as e:
            raise OSError(f"download of {url} failed: {e}") from e
        if total is not None and received != total:
            raise ValueError(f"download of {url} was truncated: got {received} of {total} bytes")
        if received == 0:
            raise ValueError(f"download of {url} is empty (0 bytes)")
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise ValueError(f"download of {url}: sha256 mismatch, expected {expected}, got {actual}")
    return dest
