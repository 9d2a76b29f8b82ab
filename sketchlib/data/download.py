"""Download one file, verified and atomically, with a progress bar.

``download(url, dest)`` streams ``url`` (``http(s)://`` or ``file://``) into a temporary file beside
``dest``, checks the transfer (bytes received = ``Content-Length`` when the server sends one, more
than 0 bytes, the SHA-256 when one is given, and the caller's ``validate`` -- e.g. "parses as an
``.npz``" -- when one is given), and only then renames it to ``dest``. A failed, truncated, too slow
or invalid transfer leaves nothing behind.

A ``dest`` that already exists is reused without touching the network when it passes the same
checks (``sha256``, ``validate``). One that fails ``validate`` is set aside as ``<dest>.corrupt``
(with a warning naming the problem) and fetched again, so a bad copy never sticks in the cache.

Time limits: ``timeout`` bounds each network read (a silent server); ``deadline`` bounds the whole
transfer and ``min_rate`` refuses a server that trickles (fewer than ``min_rate * rate_window`` bytes
in any ``rate_window`` seconds), each with a message saying which limit stopped it.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Callable

from sketchlib.data.fileio import atomic_path

_CHUNK = 1 << 16
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: Defaults of the time limits: one hour for a whole file, at least 1 kB/s over any 30 s.
DEADLINE_S, MIN_RATE, RATE_WINDOW_S = 3600.0, 1024.0, 30.0


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


class _LimitReached(TimeoutError):
    """The overall deadline or the minimum rate stopped a transfer (the message says which)."""


class _Pace:
    """The overall ``deadline`` and the ``min_rate`` over every ``window`` seconds of one transfer."""

    def __init__(self, url: str, deadline: float | None, min_rate: float, window: float):
        for name, v in (("deadline", deadline), ("min_rate", min_rate), ("rate_window", window)):
            if v is not None and not v >= 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        self.url, self.deadline, self.min_rate, self.window = url, deadline, min_rate, window
        self.begin()

    def begin(self) -> None:
        """Start the clock (when the transfer starts)."""
        self.start = self.mark = time.monotonic()
        self.received = self.at_mark = 0

    def update(self, n: int) -> None:
        self.received += n
        now = time.monotonic()
        if self.deadline is not None and now - self.start > self.deadline:
            raise _LimitReached(f"download of {self.url} stopped: the overall deadline of {self.deadline:g} s "
                               f"passed ({self.received} bytes received)")
        if now - self.mark >= self.window > 0:
            rate = (self.received - self.at_mark) / (now - self.mark)
            if rate < self.min_rate:
                raise _LimitReached(f"download of {self.url} stopped: {rate:.1f} bytes/s over the last "
                                   f"{now - self.mark:.1f} s, below the minimum rate of {self.min_rate:g} bytes/s")
            self.mark, self.at_mark = now, self.received


def _existing(dest: Path, expected: str | None, validate: Callable | None) -> bool:
    """True when ``dest`` can be reused; a copy that fails ``validate`` is renamed to ``.corrupt``."""
    if not (dest.is_file() and dest.stat().st_size > 0):
        return False
    if expected is not None and file_sha256(dest) != expected:
        return False  # stale: replaced by the download
    if validate is not None:
        try:
            validate(dest)
        except ValueError as e:
            aside = dest.with_name(dest.name + ".corrupt")
            dest.replace(aside)
            warnings.warn(f"cached file {dest} is corrupt ({e}); moved it to {aside.name} and downloading it again",
                          stacklevel=3)
            return False
    return True


def _stream(url, tmp, timeout, pace: _Pace, progress: bool, desc: str):
    """Copy ``url`` into ``tmp``; -> ``(bytes received, Content-Length or None, sha256 hex)``."""
    from tqdm.auto import tqdm  # third-party, not sketchlib: tqdm.auto probes for Jupyter when first imported

    digest = hashlib.sha256()
    pace.begin()
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
        length = resp.headers.get("Content-Length")
        total = int(length) if length is not None and length.isdigit() else None
        read = getattr(resp, "read1", resp.read)  # read1: what has arrived, so the limits are checked often
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                  disable=not progress, leave=False) as bar:
            while True:
                chunk = read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
                pace.update(len(chunk))
    return pace.received, total, digest.hexdigest()


def download(url: str, dest, sha256: str | None = None, progress: bool = True, timeout: float = 60.0, *,
             validate: Callable[[Path], object] | None = None, deadline: float | None = DEADLINE_S,
             min_rate: float = MIN_RATE, rate_window: float = RATE_WINDOW_S) -> Path:
    """Fetch ``url`` into ``dest`` and return ``dest`` as a :class:`~pathlib.Path`.

    ``validate(path)`` raises ``ValueError`` when a file is not what the caller expects (it is
    called on the downloaded temporary file before it becomes ``dest``, and on an existing
    ``dest`` before it is reused). ``timeout``: seconds per network read; ``deadline``: seconds
    for the whole transfer (None: no limit); ``min_rate`` bytes/s over every ``rate_window``
    seconds (0: no minimum). Raises ``ValueError`` for a truncated, empty or invalid transfer or a
    SHA-256 mismatch (the message names the expected and the actual digest), ``TimeoutError`` (an
    ``OSError``) when a time limit stops it, and ``OSError`` when the URL cannot be fetched; in
    every failure case no file (neither ``dest`` nor a temporary one) is left behind.
    """
    dest = Path(dest)
    expected = _check_sha(sha256)
    pace = _Pace(url, deadline, min_rate, rate_window)  # checks the limits' values before anything else
    if _existing(dest, expected, validate):
        return dest  # already here (and verified): no network
    with atomic_path(dest) as tmp:
        try:
            received, total, actual = _stream(url, tmp, timeout, pace, progress, dest.name)
        except http.client.IncompleteRead as e:
            got = pace.received + len(e.partial)
            raise ValueError(f"download of {url} was truncated: got {got} bytes, "
                             f"expected {got + (e.expected or 0)}") from e
        except _LimitReached:
            raise
        except TimeoutError as e:
            raise TimeoutError(f"download of {url} failed: no data for {timeout:g} s ({e})") from e
        except (urllib.error.URLError, http.client.HTTPException) as e:
            raise OSError(f"download of {url} failed: {e}") from e
        if total is not None and received != total:
            raise ValueError(f"download of {url} was truncated: got {received} of {total} bytes")
        if received == 0:
            raise ValueError(f"download of {url} is empty (0 bytes)")
        if expected is not None and actual != expected:
            raise ValueError(f"download of {url}: sha256 mismatch, expected {expected}, got {actual}")
        if validate is not None:
            try:
                validate(tmp)
            except ValueError as e:
                raise ValueError(f"download of {url} is not valid, nothing cached: {e}") from None
    return dest
