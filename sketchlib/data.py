"""From a dataset name to training batches: ``load_dataset``, ``SketchData`` and ``StrokeBatches``.

``load_dataset(name)`` gets stroke-3 sketches from one of the sources (KanjiVG, a Sketch-RNN ``.npz``,
a Quick, Draw! ``.ndjson`` or category, or several of them joined: ``"cat,dog"``) and prepares them
as the reference does:

1. clamp every offset to ``[-1000, 1000]``;
2. drop sketches longer than the requested ``N_max`` (and say how many);
3. the scale: ``sigma = std({dx} U {dy})`` pooled over the TRAINING set (no mean subtraction);
4. divide every split by ``sigma``;
5. set ``N_max`` to the longest sketch kept.

``StrokeBatches`` then draws training batches ``(strokes [B, N_max + 1, 5], lengths [B])`` as a pure
function of ``(seed, step, rank)``: B random sketches without replacement from the rank's shard,
each randomly scaled (x, y by independent ``U(1 - f, 1 + f)``) and then thinned
(``augment_stroke_prob``), exactly the reference's ``random_batch`` order, then padded to stroke-5.
Nothing is kept between calls, so a job resumed at step t sees exactly the batches it would have
seen, and DDP ranks draw from disjoint shards. ``iter_fixed`` gives in-order, unaugmented
batches for validation and test.

The plain PyTorch path (``StrokeDataset`` + ``collate_stroke5`` + ``make_loader``) is there for
people who prefer a ``DataLoader``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from sketchlib import strokes

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
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def _known_npz(name: str, cache, progress: bool) -> Path:
    from sketchlib.download import download
    from sketchlib.fileio import cache_dir

    url, sha = KNOWN_NPZ[name]
    local = _shared_data_dir() / f"{name}.npz"
    if local.is_file():
        return local
    folder = Path(cache) if cache is not None else cache_dir()
    return download(url, folder / f"{name}.npz", sha256=sha, progress=progress)


def _raw_splits(name, limit, seed, cache, url, progress):
    """-> (display name, {split: [stroke-3]}, {split: [label]}). ``cache`` overrides ``cache_dir()``."""
    from sketchlib import npz, quickdraw

    text = str(name)
    if "," in text:  # several datasets as one (the reference's list-valued data_set): splits joined
        return _joined_splits(text, limit, seed, cache, url, progress)
    sub = (lambda folder: Path(cache) / folder) if cache is not None else (lambda folder: None)
    if text == "kanjivg":
        from sketchlib.kanjivg import build_kanjivg

        ks = build_kanjivg(cache=sub("kanjivg"), progress=progress, limit=limit)
        return "kanjivg", {s: ks.split(s) for s in SPLITS}, ks.labels
    if text in KNOWN_NPZ:
        path = _known_npz(text, cache, progress)
        return _npz_splits(text, npz.load_npz(path), path, limit)
    path = Path(text).expanduser()
    if path.suffix == ".npz":
        if not path.is_file():
            raise ValueError(f"dataset file not found: {path}")
        return _npz_splits(path.stem, npz.load_npz(path), path, limit)
    if path.suffix == ".ndjson":
        if not path.is_file():
            raise ValueError(f"dataset file not found: {path}")
        sketches, words = quickdraw.ndjson_to_stroke3(path, limit=limit)
        if not sketches:
            raise ValueError(f"{path}: no drawings")
        idx = _split_indices(len(sketches), seed)
        return (path.stem, {s: [sketches[i] for i in idx[s]] for s in SPLITS},
                {s: [words[i] for i in idx[s]] for s in SPLITS})
    if path.suffix or path.exists() or "/" in text or "\\" in text:
        raise ValueError(f"unknown dataset {text!r}: expected 'kanjivg', 'omniglot', a Quick, Draw! category, "
                         "or a path to a .npz / .ndjson file")
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
    from sketchlib.npz import validate_sketches

    kept, kept_labels, dropped = {}, {}, {}
    for s in SPLITS:
        items = list(splits.get(s, []))
        lab = labels.get(s, [])
        if lab and len(lab) != len(items):
            raise ValueError(f"{name}: split {s!r} has {len(items)} sketches but {len(lab)} labels")
        validate_sketches(items, f"{name}: split {s!r}")
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
    display, splits, labels = _raw_splits(name_or_path, limit, seed, cache, url, progress)
    return prepare(display, splits, labels, max_seq_len)


# --------------------------------------------------------------------------- batches
def _check_sketches(sketches: Sequence, max_seq_len: int) -> list[np.ndarray]:
    if len(sketches) == 0:
        raise ValueError("no sketches")
    return [strokes.validate_stroke3(s, index=i, max_len=max_seq_len).astype(np.float32, copy=False)
            for i, s in enumerate(sketches)]


def _augment(s3: np.ndarray, rng: np.random.Generator, random_scale_factor: float,
             augment_stroke_prob: float) -> np.ndarray:
    """The reference's order: random scale first, then the point drop."""
    if random_scale_factor > 0:
        s3 = strokes.augment_scale(s3, random_scale_factor, rng)
    if augment_stroke_prob > 0:
        s3 = strokes.augment_drop(s3, augment_stroke_prob, rng)
    return s3


def collate_stroke5(sketches: Sequence, max_seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A list of stroke-3 sketches -> ``(strokes float32 [B, N_max + 1, 5], lengths int64 [B])``."""
    batch, lengths = strokes.pad_batch(sketches, max_seq_len)
    return torch.from_numpy(batch), torch.from_numpy(lengths)


class StrokeBatches:
    """Stateless batches: ``batch(step)`` depends on ``(seed, step, rank)`` only.

    The random generator of a step is ``np.random.default_rng([seed, step, rank])``; it picks
    ``batch_size`` sketches without replacement from this rank's shard (``indices rank::world_size``)
    and, with ``augment=True``, draws the augmentation of each picked sketch.
    """

    def __init__(self, sketches: Sequence, batch_size: int, max_seq_len: int, augment: bool,
                 random_scale_factor: float = 0.15, augment_stroke_prob: float = 0.10, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        if not (isinstance(world_size, int) and world_size >= 1 and isinstance(rank, int) and 0 <= rank < world_size):
            raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not 0 <= random_scale_factor < 1 or not 0 <= augment_stroke_prob < 1:
            raise ValueError("random_scale_factor and augment_stroke_prob must be in [0, 1)")
        self.sketches = _check_sketches(sketches, max_seq_len)
        self.batch_size, self.max_seq_len, self.augment = batch_size, max_seq_len, bool(augment)
        self.random_scale_factor, self.augment_stroke_prob = float(random_scale_factor), float(augment_stroke_prob)
        self.seed, self.rank, self.world_size = int(seed), rank, world_size
        self.shard = np.arange(rank, len(self.sketches), world_size)  # this rank's sketches
        if len(self.shard) < batch_size:
            raise ValueError(f"rank {rank} has {len(self.shard)} sketches, fewer than batch_size {batch_size}")

    def __len__(self) -> int:
        return len(self.sketches)

    def rng(self, step: int) -> np.random.Generator:
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return np.random.default_rng([self.seed, int(step), self.rank])

    def indices(self, step: int) -> np.ndarray:
        """Indices (into ``sketches``) of the batch of ``step``."""
        return self._draw(self.rng(step))

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        return self.shard[rng.choice(len(self.shard), size=self.batch_size, replace=False)]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(strokes float32 [B, N_max + 1, 5], lengths int64 [B])`` of training step ``step``."""
        rng = self.rng(step)
        picked = [self.sketches[i] for i in self._draw(rng)]
        if self.augment:
            picked = [_augment(s, rng, self.random_scale_factor, self.augment_stroke_prob) for s in picked]
        return collate_stroke5(picked, self.max_seq_len)

    def iter_fixed(self, batch_size: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every sketch once, in order, unaugmented (the last batch may be smaller): for valid / test."""
        bs = self.batch_size if batch_size is None else int(batch_size)
        if bs <= 0:
            raise ValueError(f"batch_size must be positive, got {bs}")
        for start in range(0, len(self.sketches), bs):
            yield collate_stroke5(self.sketches[start : start + bs], self.max_seq_len)


class StrokeDataset(torch.utils.data.Dataset):
    """A ``torch.utils.data.Dataset`` of stroke-3 sketches (float32 numpy arrays).

    ``dataset[i]`` is sketch ``i``; with ``augment=True`` it is augmented with a generator seeded
    by torch's RNG. ``dataset[(i, seed)]`` (what :func:`make_loader`'s sampler asks for) seeds the
    augmentation with ``seed`` instead, so a loader's epochs are reproducible from its own seed,
    whatever ``num_workers`` is.
    """

    def __init__(self, sketches: Sequence, max_seq_len: int, augment: bool, random_scale_factor: float = 0.15,
                 augment_stroke_prob: float = 0.10):
        self.sketches = _check_sketches(sketches, max_seq_len)
        self.max_seq_len, self.augment = max_seq_len, bool(augment)
        self.random_scale_factor, self.augment_stroke_prob = float(random_scale_factor), float(augment_stroke_prob)

    def __len__(self) -> int:
        return len(self.sketches)

    def __getitem__(self, key) -> np.ndarray:
        i, seed = key if isinstance(key, tuple) else (key, None)
        s = self.sketches[i]
        if not self.augment:
            return s
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        return _augment(s, np.random.default_rng(seed), self.random_scale_factor, self.augment_stroke_prob)


class SeededSampler(torch.utils.data.Sampler):
    """Yields ``(index, augmentation seed)`` pairs, an epoch at a time, from a ``torch.Generator``:
    a permutation when ``shuffle`` (else ``0..n-1``) and one seed per item."""

    def __init__(self, n: int, shuffle: bool, generator: torch.Generator):
        self.n, self.shuffle, self.generator = n, shuffle, generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=self.generator)
        return iter(zip(order.tolist(), seeds.tolist()))


def make_loader(sketches: Sequence, hp, train: bool, seed: int = 0,
                num_workers: int = 0) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` yielding ``(strokes [B, N_max + 1, 5], lengths [B])`` with ``hp``'s batch size,
    N_max and augmentation. ``train=True`` shuffles, augments and drops the last partial batch; the
    order and the augmentation come from ``seed`` only (a new permutation every epoch)."""
    ds = StrokeDataset(sketches, hp.max_seq_len, augment=train, random_scale_factor=hp.random_scale_factor,
                       augment_stroke_prob=hp.augment_stroke_prob)
    sampler = SeededSampler(len(ds), shuffle=train, generator=torch.Generator().manual_seed(int(seed)))
    return torch.utils.data.DataLoader(ds, batch_size=hp.batch_size, sampler=sampler, drop_last=train,
                                       num_workers=num_workers,
                                       collate_fn=functools.partial(collate_stroke5, max_seq_len=hp.max_seq_len))
