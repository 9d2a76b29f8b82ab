"""The drawing canvas' plain functions: the reader's points -> stroke-3, and back; reconstruct; complete.

Completing a drawing (:func:`complete`) is :func:`sketchlib.sample.sample` with the reader's points as
its ``prefix``: from ``[h_0; c_0] = tanh(W_z z + b_z)`` the decoder reads ``x_i = [S_{i-1}; z]`` for
the drawn S_1..S_N (teacher forcing), then draws S_{N+1}, S_{N+2}, ... from ``y_i`` and feeds each
back, until p3.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from sketchlib import render, sample as _sample
from sketchlib.book.latent import _generator, _hp, _require_conditional, encode_means, single_thread
from sketchlib.data import strokes as _strokes
from sketchlib.data.drawing import drawing_to_stroke3

#: KanjiVG draws every character on a 109 x 109 grid (``sketchlib.data.kanjivg.GRID_SIZE``).
KANJIVG_GRID = 109
#: Colour of the model's own strokes when a drawing is completed (matplotlib's "tab:red").
MODEL_COLOR = "#d62728"
#: Colour of the reader's strokes.
READER_COLOR = "#222222"


def model_scale(model, scale: float | None = None) -> float:
    """The data's normalising scale for ``model``: ``scale`` if given, else ``model.hp.extra["scale"]``."""
    if scale is None:
        scale = _hp(model).extra.get("scale")
        if scale is None:
            raise ValueError("the model's hp.extra has no 'scale': pass scale= (the checkpoint's "
                             "info['extra']['scale'], the std the training data was divided by)")
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    return scale


def drawing_box(model) -> float:
    """The side of the box the model's training drawings live in, in data units (before the scale):
    ``hp.extra["grid_size"]`` if set, else 109 for KanjiVG (its SVG grid) and 256 for anything else
    (Quick, Draw!'s simplified drawings fill a 0..255 box)."""
    extra = _hp(model).extra
    if "grid_size" in extra:
        return float(extra["grid_size"])
    return float(KANJIVG_GRID) if extra.get("dataset") == "kanjivg" else 256.0


def strokes_from_canvas_points(strokes: Sequence, scale: float, *, canvas_size: float = 256.0,
                               grid_size: float = 109.0, epsilon: float = 1.0) -> np.ndarray:
    """The reader's drawing -> a normalised stroke-3 sketch, prepared as the training data was:
    :func:`sketchlib.data.drawing.drawing_to_stroke3` (the one conversion, shared with the website)."""
    return drawing_to_stroke3(strokes, scale, canvas_size=canvas_size, grid_size=grid_size, epsilon=epsilon)


def stroke3_to_canvas_lines(sketch, scale: float, *, canvas_size: float = 256.0, grid_size: float = 109.0,
                            origin=(0.0, 0.0)) -> list[np.ndarray]:
    """Inverse of :func:`strokes_from_canvas_points` (without the RDP): polylines in canvas pixels.

    ``origin`` is the absolute data position the sketch starts from (for a continuation: where the
    reader's drawing ended)."""
    s3 = render.to_stroke3(sketch)
    if s3.shape[0] == 0:
        return []
    px = float(canvas_size) / float(grid_size) * float(scale)
    o = np.asarray(origin, dtype=np.float64) / float(scale)
    return [line * px for line in _strokes.stroke3_to_lines(s3.astype(np.float64), origin=o)]


def reconstruct_drawing(model, sketch, temperature: float = 0.25, greedy: bool = False, seed: int = 0) -> np.ndarray:
    """Encode a normalised stroke-3 sketch to its mean code and decode it again (seeded): stroke-3."""
    _require_conditional(model, "reconstruct")
    s3 = _strokes.validate_stroke3(sketch, max_len=_hp(model).max_seq_len)
    with single_thread():
        return _sample.reconstruct(model, [s3], temperature=temperature, greedy=greedy,
                                   generator=_generator(seed))[0]


def complete(model, sketch, *, z=None, temperature: float = 0.25, greedy: bool = False, seed: int = 0,
             max_len: int | None = None) -> np.ndarray:
    """Let the decoder go on drawing after ``sketch`` (normalised stroke-3): the continuation, stroke-3.

    The drawn points are fed through the decoder as if it had drawn them itself: from
    ``initial_state(z)`` the inputs S_0, S_1, ..., S_{N-1} bring it to the state
    after point N, then it samples S_{N+1}, S_{N+2}, ... from there, feeding each back, until p3 or
    ``max_len`` points in all (default N_max). The first row of the result is the offset from the
    last drawn point.

    ``z`` (conditional model; ignored by an unconditional one): default ``z = 0``, the centre of the
    prior N(0, I), "some character"; the drawn points then decide what it becomes. ``z="drawing"``
    uses the encoder's code of the unfinished drawing itself (:func:`encode_means`): that code
    describes the drawing AS IT IS, so the decoder tends to stop soon (the book shows both).
    It is :func:`sketchlib.sample.sample` with ``prefix=sketch`` and the noise from ``seed``, so
    completing the first n points of a greedy sample gives back the rest of that sample.
    """
    hp = _hp(model)
    s3 = _strokes.validate_stroke3(sketch)
    if not hp.conditional:
        z = None
    elif z is None:
        z = torch.zeros(1, hp.z_size)
    elif isinstance(z, str):
        if z != "drawing":
            raise ValueError(f'z must be None, "drawing" or a latent vector, got {z!r}')
        z = encode_means(model, [s3])
    with single_thread():
        return _sample.sample(model, 1, z=z, temperature=temperature, greedy=greedy, max_len=max_len,
                              generator=_generator(seed), prefix=s3)[0]


def joined(sketch, continuation) -> tuple[np.ndarray, list[str]]:
    """The drawing followed by its continuation as one stroke-3, and a colour per stroke
    (the reader's strokes dark, the model's red) for :func:`sketchlib.render.draw` / ``to_svg``."""
    a = _strokes.validate_stroke3(sketch).copy()
    a[-1, 2] = 1  # the reader's last stroke ends where the model takes over
    b = np.asarray(continuation, dtype=a.dtype).reshape(-1, 3)
    both = np.concatenate([a, b]) if len(b) else a
    n_a = _strokes.num_strokes(a)
    n_all = _strokes.num_strokes(both)
    return both, [READER_COLOR] * n_a + [MODEL_COLOR] * (n_all - n_a)
