"""From a dataset name to prepared sketches: ``load_dataset`` and ``SketchData``.

``load_dataset(name)`` gets stroke-3 sketches from one of the sources (KanjiVG, a Sketch-RNN ``.npz``,
a Quick, Draw! ``.ndjson`` or category, or several of them joined: ``"cat,dog"``) and prepares them
as the reference does:

1. clamp every offset to ``[-1000, 1000]``;
2. drop sketches longer than the requested ``N_max`` (and say how many);
3. the scale: ``sigma = std({dx} U {dy})`` pooled over the TRAINING set (no mean subtraction);
4. divide every split by ``sigma``;
5. set ``N_max`` to the longest sketch kept.

Training batches are drawn from a ``SketchData`` by :class:`sketchlib.data.batches.StrokeBatches`.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchlib.data import npz, quickdraw, strokes
from sketchlib.data.download import download
from sketchlib.data.fileio import cache_dir
from sketchlib.data.kanjivg import build_kanjivg

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
#: Fractions used to split a single ``.ndjson`` file (which has no split of its own).
NDJSON_SPLIT = (0.90, 0.05, 0.05)
#: Known Sketch-RNN ``.npz`` datasets besides Quick, Draw!: name -> (url, sha256).
KNOWN_NPZ = {
    "omniglot": ("https://github.com/hardmaru/sketch-rnn-datasets/raw/master/omniglot/omniglot.npz",
                 "bd5277621a8c577919491dfa729a59a8b5c216cff9e4fda9cef532db29f120c7"),
}


@dataclass
class SketchData:
    """A prepared dataset. ``train`` / ``valid`` / ``test`` are float32 stroke-3 arrays ALREADY
    divided by ``scale`` (the pooled std of the training offsets, computed before normalising);
    ``max_seq_len`` is the longest kept sketch (<= the requested N_max); ``labels`` maps a split to
    one label per sketch (e.g. the KanjiVG characters; empty when the source has none);
    ``dropped`` counts, per split, the sketches longer than the requested N_max."""

    name: str
    train: list[np.ndarray]
    valid: list[np.ndarray]
    test: list[np.ndarray]
    scale: float
    max_seq_len: int
    labels: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def split(self, name: str) -> list[np.ndarray]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def summary(self) -> str:
        sizes = "/".join(str(len(self.split(s))) for s in SPLITS)
        lengths = [len(s) for sp in SPLITS for s in self.split(sp)]
        return (f"{self.name}: {sizes} sketches (train/valid/test), mean length {np.mean(lengths):.1f}, "
                f"N_max {self.max_seq_len}, scale {self.scale:.4g}, dropped {sum(self.dropped.values())}")


# --------------------------------------------------------------------------- sources
def _split_indices(n: int, seed: int, fractions=NDJSON_SPLIT) -> dict[str, np.ndarray]:
    """A deterministic shuffle of ``range(n)`` cut into train / valid / test (each >= 1 when n >= 3)."""
    perm = np.random.default_rng([int(seed), n]).permutation(n)
    n_valid = int(round(n * fractions[1]))
    n_test = int(round(n * fractions[2]))
    if n >= 3:
        n_valid, n_test = max(n_valid, 1), max(n_test, 1)
    n_train = n - n_valid - n_test
    return {"train": np.sort(perm[:n_train]), "valid": np.sort(perm[n_train : n_train + n_valid]),
            "test": np.sort(perm[n_train + n_valid :])}


def _shared_data_dir() -> Path:
    """``../shared/data`` beside a source checkout (where the project's test data lives)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _known_npz(name: str, cache, progress: bool) -> Path:
    url, sha = KNOWN_NPZ[name]
    local = _shared_data_dir() / f"{name}.npz"
    if local.is_file():
        return local
    folder = Path(cache) if cache is not None else cache_dir()
    return download(url, folder / f"{name}.npz", sha256=sha, progress=progress, validate=npz.read_arrays)


def _dataset_file(path: Path) -> Path:
    if path.is_dir():
        raise ValueError(f"dataset {str(path)!r} is a directory; expected a {path.suffix} file")
    if not path.is_file():
        raise ValueError(f"dataset file not found: {path}")
    return path


def unknown_dataset_message(text: str) -> str:
    """Why ``text`` names no dataset, and the closest names it might have meant."""
    builtin = ["kanjivg", *KNOWN_NPZ]
    close = difflib.get_close_matches(text.lower(), builtin, n=2, cutoff=0.6)
    close += [c for c in quickdraw.closest_categories(text) if c not in close][: 3 - len(close)]
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return (f"unknown dataset {text!r}: it is neither a built-in dataset ({', '.join(builtin)}), nor an "
            f"existing .npz / .ndjson file, nor one of the {len(quickdraw.categories())} Quick, Draw! "
            f"categories.{hint}")


def _raw_splits(name, limit, seed, cache, url, progress):
    """-> (display name, {split: [stroke-3]}, {split: [label]}). ``cache`` overrides ``cache_dir()``."""
    text = str(name)
    if "," in text:  # several datasets as one (the reference's list-valued data_set): splits joined
        return _joined_splits(text, limit, seed, cache, url, progress)
    sub = (lambda folder: Path(cache) / folder) if cache is not None else (lambda folder: None)
    if text == "kanjivg":
        ks = build_kanjivg(cache=sub("kanjivg"), progress=progress, limit=limit)
        return "kanjivg", {s: ks.split(s) for s in SPLITS}, ks.labels
    if text in KNOWN_NPZ:
        path = _known_npz(text, cache, progress)
        return _npz_splits(text, npz.load_npz(path), path, limit)
    path = Path(text).expanduser()
    if path.suffix == ".npz":
        return _npz_splits(path.stem, npz.load_npz(_dataset_file(path)), path, limit)
    if path.suffix == ".ndjson":
        sketches, words = quickdraw.ndjson_to_stroke3(_dataset_file(path), limit=limit)
        if not sketches:
            raise ValueError(f"{path}: no drawings")
        idx = _split_indices(len(sketches), seed)
        return (path.stem, {s: [sketches[i] for i in idx[s]] for s in SPLITS},
                {s: [words[i] for i in idx[s]] for s in SPLITS})
    if url is None and text not in quickdraw.categories():  # url= names the file of any category
        if path.is_dir():
            raise ValueError(f"dataset {text!r} is a directory; expected a .npz or .ndjson file, "
                             "a built-in dataset or a Quick, Draw! category")
        raise ValueError(unknown_dataset_message(text))
    data = quickdraw.fetch_category(text, cache=sub("quickdraw"), url=url, progress=progress)
    return _npz_splits(text, data, text, limit)


def _joined_splits(text, limit, seed, cache, url, progress):
    """``"cat,dog,..."``: each part loaded as above, split by split end to end; labels name the part."""
    parts = [p.strip() for p in text.split(",")]
    if any(not p for p in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"dataset list {text!r}: names must be non-empty and distinct, separated by commas")
    if url is not None:
        raise ValueError(f"dataset list {text!r}: url= names one file; download a list's files one by one")
    splits = {s: [] for s in SPLITS}
    labels = {s: [] for s in SPLITS}
    for part in parts:
        _, sp, _ = _raw_splits(part, limit, seed, cache, url, progress)
        for s in SPLITS:
            splits[s].extend(sp[s])
            labels[s].extend([part] * len(sp[s]))
    return ",".join(parts), splits, labels


def _npz_splits(display, data, where, limit):
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise ValueError(f"{where}: missing split(s) {missing}; a Sketch-RNN .npz has train, valid and test")
    out = {s: data[s][:limit] if limit is not None else data[s] for s in SPLITS}
    return display, out, {}


# --------------------------------------------------------------------------- preparation
def _check_max_len(max_seq_len) -> int:
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, (int, np.integer)) or max_seq_len <= 0:
        raise ValueError(f"max_seq_len must be a positive integer, got {max_seq_len!r}")
    return int(max_seq_len)


def prepare(name: str, splits: dict, labels: dict, max_seq_len: int = 250) -> SketchData:
    """Steps 1-5 of the module docstring on raw stroke-3 splits (any numeric dtype)."""
    max_seq_len = _check_max_len(max_seq_len)
    kept, kept_labels, dropped = {}, {}, {}
    for s in SPLITS:
        items = list(splits.get(s, []))
        lab = labels.get(s, [])
        if lab and len(lab) != len(items):
            raise ValueError(f"{name}: split {s!r} has {len(items)} sketches but {len(lab)} labels")
        npz.validate_sketches(items, f"{name}: split {s!r}")
        keep = [i for i, sk in enumerate(items) if len(sk) <= max_seq_len]
        kept[s] = [items[i] for i in keep]
        kept_labels[s] = [lab[i] for i in keep] if lab else []
        dropped[s] = len(items) - len(keep)
    if not kept["train"]:
        raise ValueError(f"{name}: no training sketch of at most {max_seq_len} points")
    n_dropped = sum(dropped.values())
    if n_dropped:
        log.warning("%s: dropped %d sketches longer than N_max = %d (%s)", name, n_dropped, max_seq_len,
                    ", ".join(f"{s} {dropped[s]}" for s in SPLITS))
    # Each split as ONE stroke-3 array (all sketches end to end): clamp, scale and normalise are
    # then one call each (the pooled std is the same), and the result is cut back into sketches.
    joined = {s: strokes.clamp(np.concatenate(kept[s])) for s in SPLITS if kept[s]}  # float, +-1000
    scale = strokes.scale_factor([joined["train"]])
    norm = {s: [] for s in SPLITS}
    for s, big in joined.items():
        cuts = np.cumsum([len(sk) for sk in kept[s]])[:-1]
        norm[s] = np.split(strokes.normalize([big], scale)[0], cuts)
    longest = max(len(sk) for s in SPLITS for sk in norm[s])
    data = SketchData(name, norm["train"], norm["valid"], norm["test"], scale, int(longest),
                      {s: kept_labels[s] for s in SPLITS} if any(kept_labels.values()) else {}, dropped)
    log.info("%s", data.summary())
    return data


def load_dataset(name_or_path="kanjivg", max_seq_len: int = 250, *, limit: int | None = None, seed: int = 0,
                 cache=None, url: str | None = None, progress: bool = True) -> SketchData:
    """Load and prepare a dataset (see the module docstring for the steps).

    ``name_or_path``: ``"kanjivg"`` (default; built from the ``kanjivg`` package and cached),
    ``"omniglot"``, a path to a Sketch-RNN ``.npz``, a path to a Quick, Draw! ``.ndjson`` (split
    90/5/5 by a shuffle seeded with ``seed``), or a Quick, Draw! category name such as ``"cat"``
    (downloaded once to the cache; ``url`` overrides where from), or several of these separated by
    commas (``"cat,dog,apple"``): their splits are joined, each sketch labelled with its source, and
    one scale is computed over the joined training set, as the reference does for a list of
    files. ``limit`` keeps the first
    ``limit`` sketches of each split (of the file, for KanjiVG / ndjson) for quick experiments.
    """
    _check_max_len(max_seq_len)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be an integer >= 1 or None, got {limit!r}")
    display, splits, labels = _raw_splits(name_or_path, limit, seed, cache, url, progress)
    return prepare(display, splits, labels, max_seq_len)
