"""Quick, Draw! data: the per-category Sketch-RNN ``.npz`` files, and the ``.ndjson`` drawings.

Google publishes the Quick, Draw! drawings in several forms. Two matter here:

* **Sketch-RNN files**: one ``<category>.npz`` per category in the public bucket
  ``https://storage.googleapis.com/quickdraw_dataset/sketchrnn/`` with ``train`` / ``valid`` /
  ``test`` object arrays of int16 stroke-3 sketches (70k / 2.5k / 2.5k), already simplified.
  :func:`fetch_category` downloads one into the cache and loads it with the safe reader
  :func:`sketchlib.data.npz.load_npz`.
* **ndjson** (one JSON object per line, ``drawing`` = list of strokes): the *simplified* files have
  strokes ``[[x...], [y...]]`` in a 0-255 box, already simplified; the *raw* files have
  ``[[x...], [y...], [t...]]`` in screen pixels. :func:`simplified_to_stroke3` and
  :func:`raw_to_stroke3` turn a drawing into stroke-3; the latter first applies the Quick, Draw!
  preprocessing (align to the top-left corner, scale the longest side to 255, resample with
  1-pixel spacing, RDP with epsilon 2.0).
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import math
import urllib.parse
from pathlib import Path
from typing import Iterable

import numpy as np

from sketchlib.data.download import download
from sketchlib.data.fileio import cache_dir
from sketchlib.data.npz import load_npz
from sketchlib.data.strokes import lines_to_stroke3, rdp

#: The public bucket of the per-category Sketch-RNN ``.npz`` files.
SKETCHRNN_BASE_URL = "https://storage.googleapis.com/quickdraw_dataset/sketchrnn/"
#: |x| and |y| of an ndjson point must be below this (screen pixels; the simplified files use 0-255).
MAX_COORD = 1e6


@functools.lru_cache(maxsize=1)
def categories() -> tuple[str, ...]:
    """The 345 Quick, Draw! category names (shipped in ``quickdraw_categories.txt``), as Google spells them."""
    text = importlib.resources.files("sketchlib.data").joinpath("quickdraw_categories.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def closest_categories(name: str, n: int = 3) -> list[str]:
    """Up to ``n`` category names closest to ``name`` (:func:`difflib.get_close_matches`, case-insensitive)."""
    by_lower = {c.lower(): c for c in categories()}
    return [by_lower[m] for m in difflib.get_close_matches(str(name).lower(), list(by_lower), n=n, cutoff=0.6)]


# --------------------------------------------------------------------------- Sketch-RNN .npz files
def _check_category(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"Quick, Draw! category must be a non-empty string, got {name!r}")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"Quick, Draw! category {name!r} must not contain a path separator")
    return name


def category_url(name: str) -> str:
    """URL of the Sketch-RNN ``.npz`` of category ``name`` (spaces kept, URL-quoted: ``The%20Eiffel%20Tower``)."""
    return SKETCHRNN_BASE_URL + urllib.parse.quote(_check_category(name)) + ".npz"


def fetch_category(name: str, cache=None, url: str | None = None, sha256: str | None = None,
                   progress: bool = True) -> dict[str, list[np.ndarray]]:
    """Download (once) and load the Sketch-RNN ``.npz`` of a Quick, Draw! category.

    The file goes to ``cache`` (default ``cache_dir()/quickdraw``) as ``<name>.npz``, and only
    once it has loaded as a valid Sketch-RNN ``.npz`` (an HTML error page or a transfer cut short
    is never cached); a cached copy that no longer loads is moved to ``<name>.npz.corrupt`` with a
    warning and downloaded again. ``url`` overrides :func:`category_url` (tests use a ``file://``
    URL); without it ``name`` must be one of :func:`categories`.
    Returns ``{'train': [...], 'valid': [...], 'test': [...]}`` of int16 stroke-3 arrays.
    """
    _check_category(name)
    if url is None and name not in categories():
        close = closest_categories(name)
        raise ValueError(f"{name!r} is not a Quick, Draw! category"
                         + (f"; did you mean {' or '.join(map(repr, close))}?" if close else ""))
    folder = Path(cache) if cache is not None else cache_dir() / "quickdraw"
    loaded = {}

    def parse(path):  # download's validate: the file is kept only if it loads; loaded once, here
        loaded["splits"] = load_npz(path)

    download(url or category_url(name), folder / f"{name}.npz", sha256=sha256, progress=progress, validate=parse)
    return loaded["splits"]


# --------------------------------------------------------------------------- ndjson
def _check_drawing(drawing, where: str) -> None:
    """A drawing is a non-empty list of strokes; a stroke is 2 (x, y) or 3 (x, y, t) equal-length lists of numbers."""
    if not isinstance(drawing, list) or not drawing:
        raise ValueError(f"{where}: 'drawing' must be a non-empty list of strokes")
    for k, stroke in enumerate(drawing):
        if not isinstance(stroke, list) or len(stroke) not in (2, 3):
            raise ValueError(f"{where}, stroke {k}: expected [[x...], [y...]] or [[x...], [y...], [t...]]")
        n = None
        for r, row in enumerate(stroke):
            if not isinstance(row, list) or not row:
                raise ValueError(f"{where}, stroke {k}: every row must be a non-empty list of numbers")
            if n is not None and len(row) != n:
                raise ValueError(f"{where}, stroke {k}: x, y (and t) must have the same length, "
                                 f"got {[len(r) if isinstance(r, list) else None for r in stroke]}")
            n = len(row)
            bound = MAX_COORD if r < 2 else math.inf  # x, y bounded; t (ms) only finite
            for v in row:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not -bound < v < bound:
                    if not isinstance(v, bool) and (isinstance(v, int) or isinstance(v, float) and math.isfinite(v)):
                        raise ValueError(f"{where}, stroke {k}: coordinate {v!r} is out of range "
                                         f"(|x|, |y| must be below {MAX_COORD:g})")
                    raise ValueError(f"{where}, stroke {k}: {v!r} is not a finite number")


def parse_ndjson(path_or_lines, limit: int | None = None) -> list[dict]:
    """Parse Quick, Draw! ndjson: a path, or an iterable of lines (``str`` or ``bytes``).

    Returns one dict per drawing (blank lines skipped), at most ``limit``. Corrupt JSON, a missing
    or malformed ``drawing`` raise ``ValueError`` naming the file and the 1-based line number.
    """
    if isinstance(path_or_lines, (str, Path)):
        source = str(path_or_lines)
        with open(path_or_lines, "rb") as f:
            return _parse_lines(f, source, limit)
    return _parse_lines(path_or_lines, "<lines>", limit)


def _parse_lines(lines: Iterable, source: str, limit: int | None) -> list[dict]:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    out: list[dict] = []
    for lineno, line in enumerate(lines, start=1):
        if limit is not None and len(out) >= limit:
            break
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{source}: line {lineno}: not UTF-8 ({e})") from None
        if not line.strip():
            continue
        where = f"{source}: line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: corrupt JSON ({e.msg} at column {e.colno})") from None
        except RecursionError:
            raise ValueError(f"{where}: JSON nested too deeply to be a drawing") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if "drawing" not in obj:
            raise ValueError(f"{where}: missing 'drawing'")
        _check_drawing(obj["drawing"], where)
        out.append(obj)
    return out


def _stroke_arrays(drawing, where: str = "drawing", checked: bool = False) -> list[np.ndarray]:
    if not checked:
        _check_drawing(drawing, where)
    return [np.asarray(stroke[:2], dtype=np.float64).T for stroke in drawing]  # each [n, 2]


def simplified_to_stroke3(drawing, _checked: bool = False) -> np.ndarray:
    """A *simplified* drawing (strokes ``[[x...], [y...]]``, 0-255, already RDP'd) -> float32 stroke-3.

    The first row is the offset of the first point from the origin (0, 0), as the reference's
    ``lines_to_strokes`` does; the last point of every stroke has ``lift = 1``.
    """
    return lines_to_stroke3(_stroke_arrays(drawing, checked=_checked)).astype(np.float32)


def resample(points: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    """Resample a polyline ``[n, 2]`` at equal arc-length ``spacing`` (first and last point kept)."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape[0] < 2:
        return np.repeat(p, 2, axis=0)  # a dot: two equal points, as in the simplified files
    seg = np.hypot(*np.diff(p, axis=0).T)  # [n - 1]
    s = np.concatenate([[0.0], np.cumsum(seg)])  # arc length at each point
    total = s[-1]
    if total == 0:
        return p[[0, -1]].copy()
    t = np.arange(0.0, total, spacing)
    if total - t[-1] > 1e-9:
        t = np.append(t, total)
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], axis=1)


def rdp_line(points, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker with the distance to the infinite LINE through the end points.

    This is the classic formulation (and the one of the ``rdp`` package Quick, Draw! was processed
    with). :func:`sketchlib.data.strokes.rdp` measures the distance to the SEGMENT instead; the two agree
    except where a stroke doubles back past an end point: there the line version drops the
    overshoot, as the published simplified files do. Measured on the raw/simplified samples
    (same ``key_id``): 1001 of 1009 strokes match exactly with this variant, 841 with the segment one.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"rdp_line: points must have shape [n, 2], got {list(p.shape)}")
    if epsilon < 0:
        raise ValueError(f"rdp_line: epsilon must be >= 0, got {epsilon}")
    n = p.shape[0]
    if n <= 2:
        return p.copy()
    keep = np.zeros(n, dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, d = p[i], p[j] - p[i]
        rel = p[i + 1 : j] - a  # [j - i - 1, 2]
        length = float(np.hypot(d[0], d[1]))
        if length == 0.0:  # closed loop: distance to the point itself
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:  # |cross(d, rel)| / |d|
            dist = np.abs(d[0] * rel[:, 1] - d[1] * rel[:, 0]) / length
        k = int(np.argmax(dist))
        if dist[k] > epsilon:
            m = i + 1 + k
            keep[m] = True
            stack.extend(((i, m), (m, j)))
    return p[keep]


def raw_to_stroke3(drawing, epsilon: float = 2.0, resample_spacing: float = 1.0,
                   round_to_int: bool = True, rdp_variant: str = "line", _checked: bool = False) -> np.ndarray:
    """A *raw* drawing (screen pixels, optional ``t`` row ignored) -> stroke-3, preprocessed as Quick, Draw!.

    The steps Google applied to make the simplified data: (1) align the drawing to the top-left
    corner (min x = min y = 0); (2) scale uniformly so the longest side is 255; (3) resample every
    stroke with ``resample_spacing`` (1 pixel; a dot becomes two equal points); (4) simplify every
    stroke with RDP, ``epsilon`` 2.0; then, like the simplified files, round to integers
    (``round_to_int``). The result lies in the 0..255 box. ``rdp_variant``: ``"line"``
    (:func:`rdp_line`, what the published files match) or ``"segment"`` (:func:`sketchlib.data.strokes.rdp`).
    On the samples in ``shared/data`` this reproduces Google's simplified drawing of the same
    ``key_id`` exactly for 99% of the strokes.
    """
    if rdp_variant not in ("line", "segment"):
        raise ValueError(f"rdp_variant must be 'line' or 'segment', got {rdp_variant!r}")
    simplify = rdp_line if rdp_variant == "line" else rdp
    lines = _stroke_arrays(drawing, checked=_checked)
    allp = np.concatenate(lines)
    lo = allp.min(axis=0)
    extent = float((allp.max(axis=0) - lo).max())
    factor = 255.0 / extent if extent > 0 else 1.0
    out = []
    for line in lines:
        q = simplify(resample((line - lo) * factor, resample_spacing), epsilon)
        if round_to_int:
            q = np.rint(q)
        out.append(np.clip(q, 0.0, 255.0))
    return lines_to_stroke3(out).astype(np.float32)


def drawing_to_stroke3(drawing, _checked: bool = False, **raw_kwargs) -> np.ndarray:
    """Dispatch on the format: strokes with a ``t`` row are raw (:func:`raw_to_stroke3`), else simplified."""
    if not _checked:
        _check_drawing(drawing, "drawing")
    if all(len(stroke) == 3 for stroke in drawing):
        return raw_to_stroke3(drawing, _checked=True, **raw_kwargs)
    return simplified_to_stroke3(drawing, _checked=True)


def ndjson_to_stroke3(path_or_lines, limit: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Parse an ndjson file and convert every drawing: ``(sketches, words)``."""
    records = parse_ndjson(path_or_lines, limit=limit)
    sketches, words = [], []
    for i, rec in enumerate(records):
        try:
            sketches.append(drawing_to_stroke3(rec["drawing"], _checked=True))  # parse_ndjson checked it
        except ValueError as e:
            raise ValueError(f"drawing {i} (key_id {rec.get('key_id')}): {e}") from None
        words.append(str(rec.get("word", "")))
    return sketches, words
