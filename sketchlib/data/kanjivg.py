"""KanjiVG, the project's default dataset: stroke-ordered kanji from the ``kanjivg`` package's SVGs.

`KanjiVG <https://kanjivg.tagaini.net>`_ (Ulrich Apel, CC BY-SA 3.0) draws every character on a
109 x 109 grid as one SVG ``<path>`` per stroke, in the order a person writes them. The ``kanjivg``
PyPI package installs those files as a top-level ``kanji/`` folder (``04e00.svg``; variant forms
such as ``04e14-Kaisho.svg`` are skipped unless ``variants=True``).

From SVG to stroke-3, per character:

1. take every ``<path d="...">`` of the ``kvg:StrokePaths_*`` group in document order (= stroke order);
2. parse ``d`` with :func:`sketchlib.data.svg_path.parse_path` (our own parser: M/m L/l H/h V/v
   C/c S/s Q/q T/t Z/z, implicit repeated commands, numbers such as ``1.2-3.4`` and ``.5.5``);
   every segment becomes a cubic Bezier (lines and quadratics exactly);
3. sample each cubic at ``samples_per_segment`` values of t (all segments at once, one matrix product);
4. simplify every stroke with RDP (:func:`sketchlib.data.strokes.rdp`) at ``epsilon`` grid units;
5. stroke-3 with :func:`sketchlib.data.strokes.lines_to_stroke3` (first row = offset from the grid
   origin, as the reference's ``lines_to_strokes``; coordinates stay in grid units, y down, float32).

**Choice of epsilon.** The reference's KanjiVG data is "KanjiVG at RDP 1.0" with a pooled offset
std of about 20. We keep KanjiVG's own 109 x 109 grid (no rescaling) and simplify at
``epsilon = 1.0`` grid unit (under 1 % of the character box: strokes keep their hooks and curves).
Measured on kanjivg 20260714 (6703 characters, no variants): pooled std of the training offsets
20.4, mean length 36 points, longest 81 -- the same scale as the reference's data, so its
hyperparameters (and N_max = 250, which drops nothing here) carry over. Nothing downstream depends
on the absolute scale anyway: :mod:`sketchlib.data` divides by the training std.

**Split.** ``train`` / ``valid`` / ``test`` ~ 90 / 5 / 5 by a hash (SHA-256) of the code point, so
it is deterministic across machines and Python versions, disjoint, stable when KanjiVG adds
characters, and variants of a character always land in the same split.

**Cache.** :func:`build_kanjivg` stores the processed set in ``cache_dir()/kanjivg/`` as an ``.npz``
WITHOUT pickle (all points concatenated ``[P, 3]`` + ``offsets [S + 1]`` + ``codepoints`` + ``split``
+ a JSON ``meta`` + the SHA-256 ``digest`` of all of them), written atomically and keyed by the
kanjivg version and every processing parameter. A cache file that does not load, does not match
its key or its digest, or is inconsistent (e.g. a sketch that does not end with a pen lift) is
rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchlib.data.fileio import atomic_path, cache_dir
from sketchlib.data.npz import read_arrays
from sketchlib.data.strokes import lines_to_stroke3, rdp
# The SVG path parser lives in svg_path; parse_path, sample_cubics and path_to_polylines stay
# importable from here, where the first edition had them.
from sketchlib.data.svg_path import (  # noqa: F401
    DEFAULT_SAMPLES_PER_SEGMENT, _bernstein, parse_path, path_to_polylines, sample_cubics)

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
#: Fractions of the hash-based split.
SPLIT_FRACTIONS = (0.90, 0.05, 0.05)
#: RDP epsilon in KanjiVG grid units (the grid is 109 x 109); see the module docstring.
DEFAULT_EPSILON = 1.0
#: Bump when the processing or the cache layout changes; part of the cache key.
CACHE_FORMAT = 2  # 2: a content digest
GRID_SIZE = 109


# --------------------------------------------------------------------------- KanjiVG files
def kanjivg_version() -> str:
    """Version of the installed ``kanjivg`` distribution (part of the cache key)."""
    try:
        return importlib.metadata.version("kanjivg")
    except importlib.metadata.PackageNotFoundError:
        raise ValueError("the 'kanjivg' package is not installed (pip install kanjivg)") from None


def kanjivg_folder() -> Path:
    """The ``kanji/`` folder of SVGs the ``kanjivg`` package installs in site-packages."""
    try:
        dist = importlib.metadata.distribution("kanjivg")
        folder = Path(dist.locate_file("kanji"))
        if folder.is_dir():
            return folder
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("kanji")  # a namespace package: no __init__.py
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if any(Path(loc).glob("*.svg")):
                return Path(loc)
    raise ValueError("KanjiVG SVGs not found: install the 'kanjivg' package (pip install kanjivg)")


_FILE = re.compile(r"^([0-9a-f]{5})(-[A-Za-z0-9]+)?\.svg$")


def kanji_files(variants: bool = False, folder=None) -> list[tuple[int, Path]]:
    """``(codepoint, path)`` of every KanjiVG SVG, sorted by file name; variants only if asked."""
    folder = Path(folder) if folder is not None else kanjivg_folder()
    out = []
    for p in sorted(folder.glob("*.svg")):
        m = _FILE.match(p.name)
        if m is None or (m.group(2) and not variants):
            continue
        out.append((int(m.group(1), 16), p))
    if not out:
        raise ValueError(f"no KanjiVG SVG files in {folder}")
    return out


_GROUP = re.compile(r"""<g\b[^>]*\bid=["']kvg:StrokePaths_""")
_PATH_TAG = re.compile(r"<path\b")
_PATH_D = re.compile(r"""<path\b[^>]*?\sd=(["'])(.*?)\1""", re.S)


def stroke_paths_xml(svg) -> list[str]:
    """The ``d`` of every ``<path>`` of the ``kvg:StrokePaths_*`` group, in document (= stroke) order,
    read with a real XML parser (the reference for :func:`stroke_paths`)."""
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as e:
        raise ValueError(f"KanjiVG SVG does not parse: {e}") from None
    groups = [e for e in root.iter() if e.get("id", "").startswith("kvg:StrokePaths_")]
    if len(groups) != 1:
        raise ValueError(f"KanjiVG SVG: expected one kvg:StrokePaths group, found {len(groups)}")
    ds = [e.get("d") for e in groups[0].iter() if e.tag.rsplit("}", 1)[-1] == "path"]
    if not ds or any(not d for d in ds):
        raise ValueError("KanjiVG SVG: no stroke paths (or a path without d)")
    return ds


def stroke_paths(svg) -> list[str]:
    """The ``d`` of every ``<path>`` of the ``kvg:StrokePaths_*`` group, in document (= stroke) order.

    A fast scan of the KanjiVG file layout (the group's text up to the ``StrokeNumbers`` group; one
    ``d`` per ``<path``) -- ten times quicker than building the XML tree, which is what keeps the
    whole build fast. Anything unexpected falls back to :func:`stroke_paths_xml`.
    """
    text = svg.decode("utf-8") if isinstance(svg, (bytes, bytearray)) else svg
    m = _GROUP.search(text)
    if m is not None and _GROUP.search(text, m.end()) is None:
        end = text.find("kvg:StrokeNumbers_", m.end())
        region = text[m.end() : end if end >= 0 else len(text)]
        ds = [g[1] for g in _PATH_D.findall(region)]
        if ds and len(ds) == len(_PATH_TAG.findall(region)) and all(ds) and "&" not in "".join(ds):
            return ds
    return stroke_paths_xml(svg)


def kanji_to_stroke3(svg, epsilon: float = DEFAULT_EPSILON,
                     samples_per_segment: int = DEFAULT_SAMPLES_PER_SEGMENT) -> np.ndarray:
    """One KanjiVG SVG (text or bytes) -> float32 stroke-3 in grid units, strokes in writing order.

    Every stroke (subpath) is sampled (all Bezier segments of the character in ONE matrix product),
    simplified with RDP at ``epsilon`` and becomes one pen-down run.
    """
    subpaths = [c for d in stroke_paths(svg) for c in parse_path(d)]  # each [K_j, 4, 2]
    if not subpaths:
        raise ValueError("KanjiVG SVG: the stroke paths draw nothing")
    n = int(samples_per_segment)
    if n < 1:
        raise ValueError(f"samples_per_segment must be >= 1, got {samples_per_segment}")
    pts = np.matmul(_bernstein(n), np.concatenate(subpaths))  # [sum K_j, n, 2]
    lines, k = [], 0
    for c in subpaths:
        poly = np.concatenate([c[:1, 0], pts[k : k + len(c)].reshape(-1, 2)])  # [K_j * n + 1, 2]
        k += len(c)
        lines.append(rdp(poly, epsilon))
    return lines_to_stroke3(lines).astype(np.float32)


def split_of(codepoint: int, fractions=SPLIT_FRACTIONS) -> str:
    """Deterministic split of a character: ``u = SHA-256("kanjivg:<codepoint>")`` as a number in [0, 1)."""
    h = hashlib.sha256(f"kanjivg:{int(codepoint)}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2.0**64
    if u < fractions[0]:
        return "train"
    return "valid" if u < fractions[0] + fractions[1] else "test"


# --------------------------------------------------------------------------- the processed set
@dataclass
class KanjiVGSet:
    """The processed KanjiVG: per split, float32 stroke-3 sketches (grid units) and their code points."""

    train: list[np.ndarray]
    valid: list[np.ndarray]
    test: list[np.ndarray]
    codepoints: dict[str, list[int]]
    version: str
    params: dict = field(default_factory=dict)

    def split(self, name: str) -> list[np.ndarray]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    @property
    def labels(self) -> dict[str, list[str]]:
        """The characters, per split (``chr(codepoint)``)."""
        return {s: [chr(c) for c in self.codepoints[s]] for s in SPLITS}

    def find(self, char: str) -> tuple[str, int]:
        """``(split, index)`` of a character (the first one, when variants are included)."""
        cp = ord(char)
        for s in SPLITS:
            if cp in self.codepoints[s]:
                return s, self.codepoints[s].index(cp)
        raise ValueError(f"character {char!r} (U+{cp:04X}) is not in this KanjiVG set")


def _params(epsilon, samples_per_segment, variants) -> dict:
    return {"epsilon": float(epsilon), "samples_per_segment": int(samples_per_segment),
            "variants": bool(variants), "split_fractions": list(SPLIT_FRACTIONS), "format": CACHE_FORMAT}


def cache_path(version: str, params: dict, cache=None) -> Path:
    """Where the processed set for ``(version, params)`` is cached."""
    folder = Path(cache) if cache is not None else cache_dir() / "kanjivg"
    key = hashlib.sha256(json.dumps({"version": version, **params}, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"kanjivg-{version}-{key}.npz"


def _process(files, epsilon, samples_per_segment, progress):
    from tqdm.auto import tqdm  # third-party, not sketchlib: imported when a build runs (tqdm.auto probes for Jupyter)

    sketches, cps = [], []
    for cp, path in tqdm(files, desc="KanjiVG", unit="char", disable=not progress, leave=False):
        try:
            sketches.append(kanji_to_stroke3(path.read_bytes(), epsilon, samples_per_segment))
        except ValueError as e:
            raise ValueError(f"{path.name}: {e}") from None
        cps.append(cp)
    return sketches, cps


_CONTENT = ("points", "offsets", "codepoints", "split", "meta")


def _digest(arrays: dict) -> str:
    """SHA-256 over the content arrays (dtype, shape and bytes of each, in a fixed order)."""
    h = hashlib.sha256()
    for key in _CONTENT:
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _to_arrays(sketches, cps, meta) -> dict[str, np.ndarray]:
    lengths = np.array([len(s) for s in sketches], dtype=np.int64)
    arrays = {
        "points": np.concatenate(sketches).astype(np.float32),  # [P, 3] all sketches end to end
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),  # [S + 1]
        "codepoints": np.asarray(cps, dtype=np.int64),  # [S]
        "split": np.array([SPLITS.index(split_of(c, meta["params"]["split_fractions"])) for c in cps],
                          dtype=np.int8),  # [S] 0 train, 1 valid, 2 test
        "meta": np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8),
    }
    arrays["digest"] = np.frombuffer(_digest(arrays).encode(), dtype=np.uint8)  # 64 hex digits
    return arrays


def _from_arrays(arrays: dict, meta: dict) -> KanjiVGSet:
    """Check a cached set thoroughly (any mismatch -> ValueError) and unpack it."""
    need = {*_CONTENT, "digest"}
    if set(arrays) != need:
        raise ValueError(f"cache has arrays {sorted(arrays)}, expected {sorted(need)}")
    claimed, actual = arrays["digest"].astype(np.uint8).tobytes().decode("ascii", "replace"), _digest(arrays)
    if claimed != actual:
        raise ValueError(f"cache: content digest mismatch (stored {claimed[:16]}..., content {actual[:16]}...)")
    stored = json.loads(arrays["meta"].astype(np.uint8).tobytes().decode())
    if stored != json.loads(json.dumps(meta, sort_keys=True)):
        raise ValueError(f"cache key mismatch: {stored} != {meta}")
    pts, off, cps, spl = arrays["points"], arrays["offsets"], arrays["codepoints"], arrays["split"]
    if pts.dtype != np.float32 or pts.ndim != 2 or pts.shape[1] != 3 or not np.isfinite(pts).all():
        raise ValueError("cache: bad points array")
    if not np.isin(pts[:, 2], (0.0, 1.0)).all():
        raise ValueError("cache: pen values other than 0/1")
    s = cps.shape[0]
    if off.shape != (s + 1,) or off[0] != 0 or off[-1] != pts.shape[0] or np.any(np.diff(off) <= 0):
        raise ValueError("cache: offsets do not match the points")
    if not (pts[off[1:] - 1, 2] == 1.0).all():  # every sketch ends with a pen lift: boundaries are right
        raise ValueError("cache: a sketch does not end with a pen lift (shifted sketch boundaries)")
    if spl.shape != (s,) or cps.ndim != 1:
        raise ValueError("cache: split / codepoints have the wrong shape")
    expected = [SPLITS.index(split_of(c, meta["params"]["split_fractions"])) for c in cps.tolist()]
    if spl.tolist() != expected:
        raise ValueError("cache: split does not match the code points")
    sketches = np.split(pts, off[1:-1])
    return _assemble(sketches, cps.tolist(), spl.tolist(), meta)


def _assemble(sketches, cps, split_idx, meta) -> KanjiVGSet:
    parts = {s: [] for s in SPLITS}
    cpd = {s: [] for s in SPLITS}
    for sk, cp, k in zip(sketches, cps, split_idx):
        parts[SPLITS[k]].append(sk)
        cpd[SPLITS[k]].append(int(cp))
    return KanjiVGSet(parts["train"], parts["valid"], parts["test"], cpd, meta["version"], meta["params"])


def build_kanjivg(epsilon: float = DEFAULT_EPSILON, samples_per_segment: int = DEFAULT_SAMPLES_PER_SEGMENT,
                  variants: bool = False, cache=None, use_cache: bool = True, progress: bool = False,
                  limit: int | None = None) -> KanjiVGSet:
    """Build (or reload from the cache) the processed KanjiVG set.

    ``cache`` is the cache FOLDER (default ``cache_dir()/kanjivg``); ``use_cache=False`` neither
    reads nor writes it. ``limit`` processes only the first ``limit`` files (sorted by code point;
    for quick experiments and tests; part of the cache key). A cached file is used only if it loads
    safely, carries the same key (kanjivg version + every parameter) and passes the consistency
    checks; otherwise it is rebuilt and replaced (atomically).
    """
    if not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    version = kanjivg_version()
    params = _params(epsilon, samples_per_segment, variants)
    if limit is not None:
        params["limit"] = int(limit)
    meta = {"version": version, "params": params}
    path = cache_path(version, params, cache)
    if use_cache and path.exists():
        try:
            return _from_arrays(read_arrays(path), meta)
        except (ValueError, UnicodeDecodeError, json.JSONDecodeError) as e:
            warnings.warn(f"KanjiVG cache {path} is invalid ({e}); rebuilding it", stacklevel=2)
    files = kanji_files(variants=variants)
    if limit is not None:
        files = files[: int(limit)]
    sketches, cps = _process(files, epsilon, samples_per_segment, progress)
    arrays = _to_arrays(sketches, cps, meta)
    if use_cache:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        log.info("KanjiVG: cached %d characters in %s", len(sketches), path)
    return _assemble(sketches, cps, arrays["split"].tolist(), meta)
