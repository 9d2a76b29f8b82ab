"""Stroke formats: absolute polylines, stroke-3 and stroke-5, and the data steps between them.

A sketch is the record of a pen. Sketch-RNN writes it in two offset formats:

* **stroke-3**, shape ``[N, 3]``: rows ``(dx, dy, lift)``. ``(dx, dy)`` is the offset of point
  ``i`` from point ``i - 1`` and ``lift = 1`` means the pen leaves the paper *after* this point.
* **stroke-5**, shape ``[N_max + 1, 5]``: rows ``S_i = (dx, dy, p1, p2, p3)`` with a one-hot pen
  state: ``p1`` the pen stays down (draw to the next point), ``p2`` the pen lifts after this
  point, ``p3`` the drawing has ended. Row 0 is the start token ``S_0 = (0, 0, 1, 0, 0)``; the real
  points follow with ``p1 = 1 - lift, p2 = lift``; every row after the sketch is ``(0, 0, 0, 0, 1)``.

Everything here is numpy only (no torch, no files), so it can be read and tested on its own.
Bad input raises ``ValueError`` naming the problem and, where given, which sketch.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

#: The start token S_0 = (0, 0, 1, 0, 0): "pen down at the origin", fed to the decoder at step 1.
START_TOKEN = np.array([0.0, 0.0, 1.0, 0.0, 0.0], dtype=np.float32)
#: The end-of-sketch row (0, 0, 0, 0, 1) that fills a stroke-5 array after the last real point.
END_TOKEN = np.array([0.0, 0.0, 0.0, 0.0, 1.0], dtype=np.float32)
#: Offsets are clamped to +-this before normalisation, as the reference does.
CLAMP_LIMIT = 1000.0


def _where(index) -> str:
    return "sketch" if index is None else f"sketch {index}"


def _as_float(a: np.ndarray) -> np.ndarray:
    """Keep float32/float64 as they are; turn integer data (int16 in the .npz files) into float32."""
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)


def _asarray(x, where: str) -> np.ndarray:
    """``np.asarray`` that names the sketch when the input is ragged; a torch tensor is detached first."""
    if hasattr(x, "detach"):  # a torch tensor (duck-typed: this module never imports torch)
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: not a rectangular array of numbers ({exc})") from exc


def _check_numeric(a: np.ndarray, where: str) -> None:
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{where}: expected real numbers, got dtype {a.dtype}")


def _check_finite(a: np.ndarray, where: str) -> None:
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        row = int(np.argwhere(~np.isfinite(a))[0][0])
        raise ValueError(f"{where}: NaN or inf at row {row}")


def validate_stroke3(sketch, index=None, max_len: int | None = None) -> np.ndarray:
    """Check that ``sketch`` is a stroke-3 array and return it as a float array (no copy if possible).

    Raises ``ValueError`` for a wrong shape or dtype, NaN or inf, a pen value other than 0/1, an
    empty sketch, or (with ``max_len``) a sketch longer than ``max_len``. ``index`` names the sketch
    in the message.
    """
    where = _where(index)
    a = _asarray(sketch, where)
    _check_numeric(a, where)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"{where}: stroke-3 must have shape [N, 3], got {list(a.shape)}")
    if a.shape[0] == 0:
        raise ValueError(f"{where}: empty sketch (0 points)")
    _check_finite(a, where)
    pen = a[:, 2]
    bad = (pen != 0) & (pen != 1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{where}: pen value {pen[row].item()!r} at row {row}; stroke-3 pen must be 0 or 1")
    if max_len is not None and a.shape[0] > max_len:
        raise ValueError(f"{where}: {a.shape[0]} points is longer than N_max = {max_len}")
    return _as_float(a)


def validate_stroke5(sketch, index=None) -> np.ndarray:
    """Check a stroke-5 array ``[N, 5]``: finite offsets and a one-hot pen state on every row."""
    where = _where(index)
    a = _asarray(sketch, where)
    _check_numeric(a, where)
    if a.ndim != 2 or a.shape[1] != 5:
        raise ValueError(f"{where}: stroke-5 must have shape [N, 5], got {list(a.shape)}")
    _check_finite(a, where)
    pen = a[:, 2:]
    onehot = np.isin(pen, (0, 1)).all(axis=1) & (pen.sum(axis=1) == 1)
    if not onehot.all():
        row = int(np.argmin(onehot))
        raise ValueError(f"{where}: pen state {pen[row].tolist()} at row {row} is not one-hot (p1, p2, p3)")
    return _as_float(a)


def stroke3_to_stroke5(sketch, max_len: int | None = None, index=None) -> np.ndarray:
    """stroke-3 ``[N, 3]`` -> stroke-5 ``[max_len + 1, 5]`` with the start token in row 0.

    ``max_len`` defaults to ``N`` (no end rows). A sketch of exactly ``max_len`` points has no p3
    row at all: its end is the end of the array.
    """
    s3 = validate_stroke3(sketch, index=index, max_len=max_len)
    n = s3.shape[0]
    max_len = n if max_len is None else max_len
    out = np.zeros((max_len + 1, 5), dtype=s3.dtype)
    out[0] = START_TOKEN
    out[1 : n + 1, :2] = s3[:, :2]
    out[1 : n + 1, 2] = 1 - s3[:, 2]  # p1: the pen stays down
    out[1 : n + 1, 3] = s3[:, 2]  # p2: the pen lifts after this point
    out[n + 1 :, 4] = 1  # p3: the sketch has ended
    return out


def stroke5_to_stroke3(sketch, *, start_token: bool = True, index=None) -> np.ndarray:
    """stroke-5 -> stroke-3, cut at the first p3 row (the rows after it are padding).

    With ``start_token=True`` (the layout :func:`stroke3_to_stroke5` returns) row 0 must be S_0 and
    is skipped; anything else there raises ``ValueError`` rather than silently dropping a real point.
    The result may have 0 rows when the very first point is p3 (the reference's
    ``to_normal_strokes`` returns the whole array in that case; an empty sketch is the honest answer).
    """
    s5 = validate_stroke5(sketch, index=index)
    if start_token:
        if s5.shape[0] == 0 or not np.array_equal(s5[0], START_TOKEN):
            first = s5[0].tolist() if s5.shape[0] else "nothing"
            raise ValueError(
                f"{_where(index)}: start_token=True but row 0 is {first}, not S_0 = (0, 0, 1, 0, 0); "
                "pass start_token=False for a stroke-5 array without the start token"
            )
        s5 = s5[1:]
    ends = np.flatnonzero(s5[:, 4] == 1)
    n = int(ends[0]) if ends.size else s5.shape[0]
    out = np.empty((n, 3), dtype=s5.dtype)
    out[:, :2] = s5[:n, :2]
    out[:, 2] = s5[:n, 3]
    return out


def lines_to_stroke3(lines: Sequence, origin=(0.0, 0.0), index=None) -> np.ndarray:
    """Absolute polylines (a list of ``[n_k, 2]`` point arrays, one per stroke) -> stroke-3.

    The first row is the offset of the first point from ``origin``; the last point of every
    polyline gets ``lift = 1``. Inverse of :func:`stroke3_to_lines`.
    """
    where = _where(index)
    if len(lines) == 0:
        raise ValueError(f"{where}: no strokes")
    pts, lift = [], []
    for k, line in enumerate(lines):
        a = _asarray(line, f"{where}, stroke {k}")
        _check_numeric(a, f"{where}, stroke {k}")
        if a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"{where}, stroke {k}: a polyline must have shape [n, 2], got {list(a.shape)}")
        if a.shape[0] == 0:
            raise ValueError(f"{where}, stroke {k}: empty stroke (0 points)")
        _check_finite(a, f"{where}, stroke {k}")
        pts.append(a)
        flag = np.zeros(a.shape[0])
        flag[-1] = 1
        lift.append(flag)
    p = _as_float(np.concatenate(pts))
    out = np.empty((p.shape[0], 3), dtype=p.dtype)
    out[0, :2] = p[0] - np.asarray(origin, dtype=p.dtype)
    out[1:, :2] = p[1:] - p[:-1]
    out[:, 2] = np.concatenate(lift)
    return out


def stroke3_to_lines(sketch, origin=(0.0, 0.0), index=None) -> list[np.ndarray]:
    """stroke-3 -> absolute polylines: ``P_i = P_{i-1} + (dx_i, dy_i)``, split after each lift."""
    s3 = validate_stroke3(sketch, index=index)
    p = np.cumsum(s3[:, :2], axis=0, dtype=s3.dtype) + np.asarray(origin, dtype=s3.dtype)
    cuts = np.flatnonzero(s3[:, 2] == 1) + 1
    return [seg for seg in np.split(p, cuts) if seg.shape[0] > 0]


def num_strokes(sketch) -> int:
    """Number of strokes (pen-down runs): the lifts, plus a final stroke left without one."""
    s3 = validate_stroke3(sketch)
    return int(s3[:, 2].sum()) + int(s3[-1, 2] == 0)


def rdp(points, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker simplification of one polyline ``[n, 2]`` (compiled, via ``simplification``).

    Keeps the first and last point and every point farther than ``epsilon`` from the simplified line.
    """
    from simplification.cutil import simplify_coords

    a = np.ascontiguousarray(points, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"rdp: points must have shape [n, 2], got {list(a.shape)}")
    if epsilon < 0:
        raise ValueError(f"rdp: epsilon must be >= 0, got {epsilon}")
    if a.shape[0] <= 2:
        return a.copy()
    return np.asarray(simplify_coords(a, float(epsilon)), dtype=np.float64).reshape(-1, 2)


def simplify_lines(lines: Iterable, epsilon: float) -> list[np.ndarray]:
    """Apply :func:`rdp` to every polyline of a sketch."""
    return [rdp(line, epsilon) for line in lines]


def clamp(sketch, limit: float = CLAMP_LIMIT) -> np.ndarray:
    """Clip the offsets to ``[-limit, limit]`` (a copy); the pen column is untouched."""
    s3 = validate_stroke3(sketch).copy()
    np.clip(s3[:, :2], -limit, limit, out=s3[:, :2])
    return s3


def scale_factor(sketches: Sequence) -> float:
    """The normalising scale: the standard deviation of all dx and dy of ``sketches`` pooled together.

    Computed on the TRAINING set only; train, valid and test are then divided by it.
    """
    if len(sketches) == 0:
        raise ValueError("scale_factor: no sketches")
    offsets = np.concatenate([validate_stroke3(s, index=i)[:, :2].ravel() for i, s in enumerate(sketches)])
    scale = float(np.std(offsets, dtype=np.float64))
    if not scale > 0:
        raise ValueError("scale_factor: all offsets are equal; the scale would be 0")
    return scale


def normalize(sketches: Sequence, scale: float) -> list[np.ndarray]:
    """Divide the offsets of every sketch by ``scale`` (no mean subtraction, as the reference)."""
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"normalize: scale must be a positive number, got {scale}")
    out = []
    for i, s in enumerate(sketches):
        s3 = validate_stroke3(s, index=i).astype(np.float32, copy=True)
        s3[:, :2] /= scale
        out.append(s3)
    return out


def augment_scale(sketch, factor: float = 0.15, rng: np.random.Generator | None = None) -> np.ndarray:
    """Scale x and y independently by U(1 - factor, 1 + factor) (training-time augmentation)."""
    if not 0.0 <= factor < 1.0:
        raise ValueError(f"augment_scale: factor must be in [0, 1), got {factor}")
    rng = np.random.default_rng() if rng is None else rng
    s3 = validate_stroke3(sketch).copy()
    sx, sy = rng.uniform(1.0 - factor, 1.0 + factor, size=2)
    s3[:, 0] *= sx
    s3[:, 1] *= sy
    return s3


def augment_drop(sketch, prob: float = 0.10, rng: np.random.Generator | None = None) -> np.ndarray:
    """Drop interior points of strokes with probability ``prob``, as the reference's ``augment_strokes``.

    A row is only a candidate when it and the previously kept row are both pen-down and it is at
    least the fourth row of its stroke; a stroke's first three rows and its pen-lift row are never
    dropped. The dropped offset is added to the previous kept row, which therefore moves to where
    the dropped point was: in absolute positions the first two points of every stroke, its last
    point, every pen-lift point and the total displacement are unchanged, and every kept position
    is one of the original ones. One uniform is drawn per row, as the reference's loop does.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"augment_drop: prob must be in [0, 1], got {prob}")
    rng = np.random.default_rng() if rng is None else rng
    s3 = validate_stroke3(sketch)
    u = rng.random(s3.shape[0])
    out = [s3[0].copy()]  # the reference starts from prev = (0, 0, 1), so point 0 is always kept
    count = 0
    for i in range(1, s3.shape[0]):
        cand, prev = s3[i], out[-1]
        count = 0 if (cand[2] == 1 or prev[2] == 1) else count + 1
        if cand[2] == 0 and prev[2] == 0 and count > 2 and u[i] < prob:
            prev[:2] += cand[:2]
        else:
            out.append(cand.copy())
    return np.stack(out)


def pad_batch(sketches: Sequence, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad stroke-3 sketches into one stroke-5 batch.

    Returns ``(batch, lengths)``: ``batch`` float32 ``[B, max_len + 1, 5]`` (row 0 is S_0, then the
    real points, then p3 rows) and ``lengths`` int64 ``[B]``, the number of real points N_s.
    """
    if len(sketches) == 0:
        raise ValueError("pad_batch: no sketches")
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"pad_batch: max_len must be a positive integer, got {max_len!r}")
    batch = np.empty((len(sketches), max_len + 1, 5), dtype=np.float32)
    lengths = np.empty(len(sketches), dtype=np.int64)
    for i, s in enumerate(sketches):
        s3 = validate_stroke3(s, index=i, max_len=max_len)
        batch[i] = stroke3_to_stroke5(s3, max_len=max_len, index=i)
        lengths[i] = s3.shape[0]
    return batch, lengths
