"""Training batches: ``StrokeBatches`` draws ``(strokes [B, N_max + 1, 5], lengths [B])`` as a pure
function of ``(seed, step, rank)``.

B random sketches without replacement from the rank's shard, each randomly scaled (x, y by
independent ``U(1 - f, 1 + f)``) and then thinned (``augment_stroke_prob``), exactly the
reference's ``random_batch`` order, then padded to stroke-5. Nothing is kept between calls, so a
job resumed at step t sees exactly the batches it would have seen, and DDP ranks draw from
disjoint shards. ``iter_fixed`` gives in-order, unaugmented batches for validation and test.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from sketchlib.data import strokes


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
