"""A reader's drawing (points under a mouse, a finger or a pen) -> model input, as the data were made.

The drawing canvases (the notebook's ipycanvas pad, :mod:`sketchlib.book.widgets`, and the website's
``book/_static/live/drawing.mjs``, which mirrors this module line by line and is tested equal to it)
both call this conversion. A drawing is a list of strokes, each a list of absolute canvas points
``(x, y)`` in pixels, y down, on a square canvas of ``canvas_size`` pixels. Steps:

1. **Grid.** Map the canvas square onto the box the data's drawings live in: ``grid_size`` units
   (KanjiVG: its 109 x 109 SVG grid) for ``canvas_size`` pixels, ``p_grid = p_px * grid / canvas``.
2. **Simplify** every stroke with RDP at ``epsilon`` grid units (:func:`sketchlib.data.strokes.rdp`),
   the epsilon the data were simplified with (KanjiVG: 1.0, :data:`sketchlib.data.kanjivg.DEFAULT_EPSILON`).
3. **Long straight strokes** (the one step the data did not need; see below): a stroke at least
   ``long_stroke`` grid units long that RDP reduced to its two end points keeps, in addition, the
   reader's point at half its arc length.
4. **Offsets** with :func:`sketchlib.data.strokes.lines_to_stroke3`: the first row is the offset of
   the first point from the grid's corner (0, 0), exactly as the KanjiVG pipeline forms it (a model
   reconstructs the same characters far worse when only this first offset follows another
   convention); ``lift = 1`` after the last point of every stroke.
5. **Scale**: divide dx, dy by the training set's std (the checkpoint's ``hp.extra["scale"]``).
6. **stroke-5** (for the encoder): :func:`sketchlib.data.strokes.stroke3_to_stroke5`, padded to N_max.

Why step 3. Measured on the KanjiVG training set (RDP 1.0): a character has at least 8 rows
(1st percentile; median 36), and only 12.5 % of the strokes longer than 60 grid units (33 % of
those of 40-60) are a bare two-point line: KanjiVG's strokes are brush strokes, with an entry and an
exit that RDP keeps. A mouse draws ruler-straight lines, so a mouse 十 becomes 2 + 2 points, 4 rows,
shorter than any training character: the LSTM 256 model then reconstructs it as three unrelated
lines, while the data set's 十 (4 + 3 points) comes back right. Keeping one more of the reader's own
points on long straight strokes (a point the reader did draw) brings the drawing back into the
range of the data, and the same 十 is reconstructed (``tests/test_drawing.py``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sketchlib.data.strokes import lines_to_stroke3, rdp, stroke3_to_stroke5

#: The canvas side in pixels the demos use (the live page scales CSS pixels to it).
CANVAS_SIZE = 256.0
#: A stroke at least this long (grid units) keeps its middle point when RDP leaves only its ends.
LONG_STROKE = 40.0


def _stroke_array(points, k: int) -> np.ndarray:
    a = np.asarray(points, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"drawing stroke {k}: expected a list of points (x, y), got shape {list(a.shape)}")
    if not np.isfinite(a).all():
        raise ValueError(f"drawing stroke {k}: NaN or infinite coordinates")
    return a


def keep_middle(raw: np.ndarray, simplified: np.ndarray, long_stroke: float = LONG_STROKE) -> np.ndarray:
    """Step 3: a two-point ``simplified`` stroke whose ``raw`` path is at least ``long_stroke`` long
    gets the raw point at half the arc length (the first point at or past it) between its ends."""
    if simplified.shape[0] != 2 or raw.shape[0] < 3:
        return simplified
    seg = np.sqrt(((raw[1:] - raw[:-1]) ** 2).sum(axis=1))  # [n - 1]
    arc = np.concatenate([[0.0], np.cumsum(seg)])  # [n]
    if arc[-1] < long_stroke:
        return simplified
    i = int(np.searchsorted(arc, arc[-1] / 2))  # first index with arc >= half
    i = min(max(i, 1), raw.shape[0] - 2)
    return np.stack([simplified[0], raw[i], simplified[1]])


def drawing_to_lines(strokes: Sequence, *, canvas_size: float = CANVAS_SIZE, grid_size: float = 109.0,
                     epsilon: float = 1.0, long_stroke: float = LONG_STROKE) -> list[np.ndarray]:
    """Steps 1-3: canvas strokes (pixels) -> simplified polylines in grid units. Empty strokes are skipped."""
    if not (canvas_size > 0 and grid_size > 0):
        raise ValueError(f"canvas_size and grid_size must be positive, got {canvas_size}, {grid_size}")
    if not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    units = float(grid_size) / float(canvas_size)
    lines = []
    for k, pts in enumerate(strokes):
        if len(pts) == 0:
            continue
        raw = _stroke_array(pts, k) * units  # [n, 2] grid units
        lines.append(keep_middle(raw, rdp(raw, epsilon), long_stroke))
    if not lines:
        raise ValueError("the drawing is empty: draw something first")
    return lines


def drawing_to_stroke3(strokes: Sequence, scale: float, *, canvas_size: float = CANVAS_SIZE,
                       grid_size: float = 109.0, epsilon: float = 1.0,
                       long_stroke: float = LONG_STROKE) -> np.ndarray:
    """Steps 1-5: the reader's strokes -> a normalised float32 stroke-3 sketch ``[N, 3]``."""
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    lines = drawing_to_lines(strokes, canvas_size=canvas_size, grid_size=grid_size, epsilon=epsilon,
                             long_stroke=long_stroke)
    s3 = lines_to_stroke3(lines, origin=(0.0, 0.0))  # float64: first row from the grid's corner
    s3[:, :2] /= float(scale)
    return s3.astype(np.float32)


def drawing_to_stroke5(strokes: Sequence, scale: float, max_len: int, **kwargs) -> tuple[np.ndarray, int]:
    """Steps 1-6: ``(stroke-5 [max_len + 1, 5] with S_0 in row 0, N_s)``; ValueError if longer than ``max_len``."""
    s3 = drawing_to_stroke3(strokes, scale, **kwargs)
    if s3.shape[0] > max_len:
        raise ValueError(f"the drawing has {s3.shape[0]} points after simplification, more than the model's "
                         f"N_max = {max_len}: draw fewer or simpler strokes")
    return stroke3_to_stroke5(s3, max_len=max_len), int(s3.shape[0])
