"""A few real Quick, Draw! drawings for the book: from a local sample when there is one, else downloaded.

The chapters show real drawings, and they run in three places: on a reader's machine or in Colab
(internet, no sample folder), and on the machine that builds the website (a folder of samples next
to the repository, no internet). :func:`quickdraw_examples` serves both with the same drawings:

1. a local folder of ``<category>.ndjson`` files in Google's *simplified* format, looked up in this
   order: the ``folder`` argument; the environment variable ``SKETCHLIB_QUICKDRAW_SAMPLES``; a
   ``shared/data/quickdraw_simplified_sample`` folder in the current directory or one of its
   parents, or beside the installed package (``../shared/data`` next to a source checkout);
2. the cache, ``cache_dir()/quickdraw_examples/<category>.ndjson``, from an earlier download;
3. the official file ``https://storage.googleapis.com/quickdraw_dataset/full/simplified/<category>.ndjson``,
   read as a stream and closed after the first ``n`` drawings (a few kB, not the whole file of
   100+ MB), then cached atomically.

The sample folder holds the FIRST drawings of each official file, so all three sources give the
same drawings in the same order. Each drawing is the ndjson record as Google wrote it: a ``dict``
with ``word``, ``countrycode``, ``timestamp``, ``recognized``, ``key_id`` and ``drawing``, a list
of strokes ``[[x0, x1, ...], [y0, y1, ...]]`` of ABSOLUTE points in a 0..255 box (y down).
:func:`sketchlib.data.quickdraw.simplified_to_stroke3` turns one into stroke-3.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from sketchlib.data.download import DEADLINE_S, MIN_RATE, RATE_WINDOW_S, _LimitReached, _Pace
from sketchlib.data.fileio import atomic_write, cache_dir
from sketchlib.data.quickdraw import _check_category, parse_ndjson

#: Where Google publishes one simplified ndjson file per category.
SIMPLIFIED_BASE_URL = "https://storage.googleapis.com/quickdraw_dataset/full/simplified/"
#: Environment variable naming a local folder of ``<category>.ndjson`` samples.
SAMPLES_ENV = "SKETCHLIB_QUICKDRAW_SAMPLES"
#: The sample folder's place relative to a directory that holds ``shared/``.
SAMPLE_SUBDIR = Path("shared") / "data" / "quickdraw_simplified_sample"


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return n


def simplified_url(category: str) -> str:
    """URL of Google's simplified ndjson file of ``category`` (spaces URL-quoted: ``The%20Eiffel%20Tower``)."""
    return SIMPLIFIED_BASE_URL + urllib.parse.quote(_check_category(category)) + ".ndjson"


def sample_folders() -> list[Path]:
    """The local sample folders that exist, in the order :func:`quickdraw_examples` tries them
    (after its ``folder`` argument): ``$SKETCHLIB_QUICKDRAW_SAMPLES``, then
    ``shared/data/quickdraw_simplified_sample`` in the current directory or a parent of it, then
    the same beside the installed package."""
    found: list[Path] = []
    env = os.environ.get(SAMPLES_ENV, "").strip()
    if env:
        found.append(Path(env).expanduser())
    cwd = Path.cwd().resolve()
    here = Path(__file__).resolve().parent
    for start in (cwd, here):
        for d in (start, *start.parents):
            found.append(d / SAMPLE_SUBDIR)
    seen, out = set(), []
    for f in found:
        if f.is_dir() and f not in seen:
            seen.add(f)
            out.append(f)
    return out


def _first_records(path: Path, n: int) -> list[dict] | None:
    """The first ``n`` drawings of a local ndjson file, or None when it has fewer."""
    records = parse_ndjson(path, limit=n)
    return records if len(records) == n else None


def _stream_first_lines(url: str, n: int, timeout: float, deadline: float | None = DEADLINE_S,
                        min_rate: float = MIN_RATE) -> list[bytes]:
    """Read ``url`` line by line until ``n`` non-blank lines; close the connection there.

    ``timeout`` bounds each read; ``deadline`` (seconds) the whole transfer and ``min_rate`` (bytes/s
    over every 30 s) a server that trickles, as for :func:`sketchlib.data.download.download`."""
    lines: list[bytes] = []
    pace = _Pace(url, deadline, min_rate, RATE_WINDOW_S)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            pace.begin()
            pending = b""
            while len(lines) < n:
                chunk = resp.read1(65536)  # what has arrived, so the limits are checked as it trickles in
                pace.update(len(chunk))
                *complete, pending = (pending + chunk).split(b"\n") if chunk else (pending, b"")
                lines += [line + b"\n" for line in complete if line.strip()]
                if not chunk:
                    break
    except _LimitReached:
        raise
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError) as e:
        raise OSError(f"could not read Quick, Draw! drawings from {url}: {e}") from e
    return lines[:n]


def quickdraw_examples(category: str, n: int = 5, *, folder=None, url: str | None = None, cache=None,
                       timeout: float = 60.0, deadline: float | None = DEADLINE_S) -> list[dict]:
    """The first ``n`` drawings of a Quick, Draw! ``category``, as ndjson records (see the module docstring).

    ``folder``: a folder of ``<category>.ndjson`` samples to try first. ``url``: where to download
    from (default :func:`simplified_url`; tests use a ``file://`` URL). ``cache``: the cache folder
    (default ``cache_dir()/quickdraw_examples``). A local file with fewer than ``n`` drawings is
    skipped in favour of the next source. Raises ``ValueError`` for a bad category or ``n``,
    corrupt ndjson (naming the file and line), or a source with fewer than ``n`` drawings, and
    ``OSError`` when the download fails (``TimeoutError`` past ``deadline`` seconds or when the
    server trickles).
    """
    _check_category(category)
    _check_n(n)
    folders = ([Path(folder)] if folder is not None else []) + sample_folders()
    for f in folders:
        path = f / f"{category}.ndjson"
        if path.is_file():
            records = _first_records(path, n)
            if records is not None:
                return records
    cached = (Path(cache) if cache is not None else cache_dir() / "quickdraw_examples") / f"{category}.ndjson"
    if cached.is_file():
        records = _first_records(cached, n)
        if records is not None:
            return records
    source = url or simplified_url(category)
    lines = _stream_first_lines(source, n, timeout, deadline)
    try:  # validate before caching: a corrupt download is never cached
        records = parse_ndjson(lines)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
    if len(records) < n:
        raise ValueError(f"{source}: only {len(records)} drawings, {n} requested")
    atomic_write(cached, b"".join(lines))
    return records
