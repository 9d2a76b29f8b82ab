"""From any sketch a function of the book accepts to absolute polylines, their bounds, and stroke colours.

The pen walk: ``P_i = P_{i-1} + (dx_i, dy_i)`` from ``P_0 = (0, 0)``; one polyline per stroke
(:func:`sketchlib.data.strokes.stroke3_to_lines`). Stroke-3 ``[N, 3]`` or stroke-5 ``[N, 5]`` (told
apart by the number of columns), numpy arrays, nested lists or torch tensors (torch is never
imported here). What :mod:`sketchlib.render` and the SVG writer draw.
"""

from __future__ import annotations

import colorsys

import numpy as np

from sketchlib.data import strokes as _strokes

#: matplotlib's "tab10" palette: the colours ``stroke_colors="cycle"`` uses for up to 10 strokes.
TAB10 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip

# ----------------------------------------------------------------------------------------------
# From any accepted input to absolute polylines


def _as_numpy(sketch) -> np.ndarray:
    if hasattr(sketch, "detach"):  # a torch tensor: no grad, on the CPU
        sketch = sketch.detach().cpu()
    try:
        return np.asarray(sketch)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"sketch: not a rectangular array of numbers ({exc})") from exc


def to_stroke3(sketch, *, start_token: bool | None = None) -> np.ndarray:
    """Any accepted sketch -> stroke-3 ``[N, 3]`` float array (``N`` may be 0 for an empty sketch)."""
    a = _as_numpy(sketch)
    if (a.ndim == 1 and a.size == 0) or (a.ndim == 2 and a.shape[0] == 0 and a.shape[1] in (3, 5)):
        return np.zeros((0, 3))
    if a.ndim != 2 or a.shape[1] not in (3, 5):
        raise ValueError(f"sketch: expected stroke-3 [N, 3] or stroke-5 [N, 5], got shape {list(a.shape)}")
    if a.shape[1] == 5:
        if start_token is None:
            start_token = bool(np.array_equal(a[0], _strokes.START_TOKEN))
        return _strokes.stroke5_to_stroke3(a, start_token=start_token)
    return _strokes.validate_stroke3(a)


def _lines(sketch, start_token=None) -> list[np.ndarray]:
    """Absolute polylines ``[n_k, 2]`` (float64), one per stroke; ``[]`` for an empty sketch."""
    s3 = to_stroke3(sketch, start_token=start_token)
    if s3.shape[0] == 0:
        return []
    return [line.astype(np.float64) for line in _strokes.stroke3_to_lines(s3)]


def _bounds(lines: list[np.ndarray]) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) of all points; a unit box for an empty sketch."""
    if not lines:
        return 0.0, 1.0, 0.0, 1.0
    p = np.concatenate(lines)
    return float(p[:, 0].min()), float(p[:, 0].max()), float(p[:, 1].min()), float(p[:, 1].max())


def _square_limits(lines, pad: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Square x and y limits around the drawing, with ``pad`` times its larger side on every side."""
    xmin, xmax, ymin, ymax = _bounds(lines)
    extent = max(xmax - xmin, ymax - ymin)
    extent = extent if extent > 0 else 1.0
    half = extent * (0.5 + pad)
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    return (cx - half, cx + half), (cy - half, cy + half)


def stroke_palette(n: int, color="black", stroke_colors=None) -> list:
    """The colour of each of ``n`` strokes.

    ``stroke_colors=None``: every stroke in ``color``. ``"cycle"``: a distinct colour per stroke
    (tab10 for up to 10 strokes, else ``n`` evenly spaced hues). A list: stroke ``k`` gets
    ``stroke_colors[k % len(stroke_colors)]``.
    """
    if stroke_colors is None:
        return [color] * n
    if isinstance(stroke_colors, str):
        if stroke_colors != "cycle":
            raise ValueError(f'stroke_colors must be None, "cycle" or a list of colours, got {stroke_colors!r}')
        if n <= len(TAB10):
            return list(TAB10[:n])
        rgb = [colorsys.hsv_to_rgb(k / n, 0.85, 0.85) for k in range(n)]
        return ["#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in col)) for col in rgb]
    colors = list(stroke_colors)
    if not colors:
        raise ValueError("stroke_colors: an empty list")
    return [colors[k % len(colors)] for k in range(n)]
