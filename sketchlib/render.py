"""Drawing sketches: matplotlib axes, grids, SVG, rasters, and animations of the pen.

A stroke-3 sketch is drawn by walking the pen: the absolute point ``P_i = P_{i-1} + (dx_i, dy_i)``
starting from ``P_0 = (0, 0)``; a line joins ``P_{i-1}`` to ``P_i`` only when the pen was down at
``P_{i-1}`` (``lift_{i-1} = 0``). The move after a lift is a pen-up move and is never drawn. So the
picture is one polyline per stroke (:func:`sketchlib.data.strokes.stroke3_to_lines`).

Every function accepts

* stroke-3 ``[N, 3]`` or stroke-5 ``[N, 5]`` (told apart by the number of columns). For stroke-5,
  ``start_token=None`` (the default) treats row 0 as S_0 when it equals ``(0, 0, 1, 0, 0)``; pass
  ``True``/``False`` to say so explicitly. A stroke-5 array is cut at its first p3 row.
* numpy arrays, nested lists, or torch tensors (detached and moved to the CPU; torch is never
  imported here).
* an empty sketch (0 rows, e.g. a sample whose first step was p3): nothing is drawn, nothing fails.

Quick, Draw! and KanjiVG store y pointing DOWN (screen coordinates), so ``invert_y=True`` (the
default) shows them upright. The reference's ``draw_strokes`` writes SVG, whose y also points down,
so its pictures and ours agree. matplotlib is imported inside the functions that use it
(the Agg backend suffices: nothing here needs a display).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from sketchlib.lines import TAB10, _bounds, _lines, _square_limits, stroke_palette, to_stroke3  # noqa: F401
from sketchlib.fonts import CJK_FONT_FAMILY, use_cjk_font  # noqa: F401  (render.use_cjk_font, as the chapters call it)

# ----------------------------------------------------------------------------------------------
# matplotlib


def _style_axes(ax, lines, *, pad: float, invert_y: bool, title=None) -> None:
    (x0, x1), (y0, y1) = _square_limits(lines, pad)
    ax.set_xlim(x0, x1)
    ax.set_ylim((y1, y0) if invert_y else (y0, y1))
    ax.set_aspect("equal")
    ax.axis("off")
    if title is not None:  # the family too: an Axes made before use_cjk_font keeps its old title font
        import matplotlib

        ax.set_title(str(title), fontfamily=matplotlib.rcParams["font.family"])


def _plot_lines(ax, lines, colors, linewidth) -> list:
    """One Line2D per stroke; a one-point stroke is a dot of the line's width."""
    artists = []
    for line, c in zip(lines, colors):
        if line.shape[0] == 1:
            (art,) = ax.plot(line[:, 0], line[:, 1], linestyle="none", marker="o", color=c,
                             markersize=linewidth, markeredgewidth=0)
        else:
            (art,) = ax.plot(line[:, 0], line[:, 1], color=c, linewidth=linewidth,
                             solid_capstyle="round", solid_joinstyle="round")
        artists.append(art)
    return artists


def draw(
    sketch,
    ax=None,
    *,
    start_token: bool | None = None,
    color="black",
    stroke_colors=None,
    linewidth: float = 2,
    show_start: bool = False,
    invert_y: bool = True,
    pad: float = 0.05,
    title=None,
):
    """Draw one sketch on ``ax`` (a new pyplot figure when ``None``) and return the Axes.

    One ``Line2D`` per stroke (in stroke order; pen-up moves are not drawn), equal aspect, square
    limits padded by ``pad`` times the drawing's larger side, axis off. ``stroke_colors`` as in
    :func:`stroke_palette`. ``show_start`` marks the first point of the drawing with a hollow
    circle (an extra Line2D with ``gid="start"``). ``invert_y=True`` puts y downwards, as the data is.
    """
    lines = _lines(sketch, start_token)
    use_cjk_font()
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(3, 3))
    _plot_lines(ax, lines, stroke_palette(len(lines), color, stroke_colors), linewidth)
    if show_start and lines:
        x, y = lines[0][0]
        ax.plot([x], [y], linestyle="none", marker="o", markersize=3 * linewidth, markerfacecolor="none",
                markeredgecolor="tab:red", markeredgewidth=max(1.0, linewidth / 2), gid="start")
    _style_axes(ax, lines, pad=pad, invert_y=invert_y, title=title)
    return ax


_NOTEBOOK_DISPLAY_READY = False


def _enable_notebook_display() -> None:
    """Inside IPython, resolve pyplot's backend once: that registers the inline backend's PNG
    formatter for Figure objects, without which a Figure returned as a cell's value prints only as
    text (``<Figure size ...>``) in a kernel where nothing has touched pyplot yet."""
    import sys

    ipython = sys.modules.get("IPython")
    if ipython is None or ipython.get_ipython() is None:
        return
    import matplotlib.pyplot as plt

    backend = plt.get_backend()
    if "inline" in backend and not _NOTEBOOK_DISPLAY_READY:
        plt.switch_backend(backend)  # imports the backend module, whose import registers the formatter
        globals()["_NOTEBOOK_DISPLAY_READY"] = True


def _new_figure(figsize, dpi=100):
    """A Figure with an Agg canvas, NOT registered with pyplot: no global state, freed when unused,
    and shown exactly once when it is a notebook cell's value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _enable_notebook_display()
    use_cjk_font()
    fig = Figure(figsize=figsize, dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def draw_grid(sketches, titles=None, ncols: int = 5, cell_size: float = 2.0, **draw_kwargs):
    """A grid of sketches, ``ncols`` per row, each in a ``cell_size``-inch square; returns the Figure.

    One Axes per sketch (``fig.axes`` has exactly ``len(sketches)``), titled by ``titles`` if given.
    ``draw_kwargs`` go to :func:`draw`. The figure is not registered with pyplot (see
    ``_new_figure``): make it the cell's value or ``display(fig)`` it.
    """
    sketches = list(sketches)
    if not sketches:
        raise ValueError("draw_grid: no sketches")
    if titles is not None:
        titles = list(titles)
        if len(titles) != len(sketches):
            raise ValueError(f"draw_grid: {len(titles)} titles for {len(sketches)} sketches")
    if ncols < 1:
        raise ValueError(f"draw_grid: ncols must be >= 1, got {ncols}")
    ncols = min(ncols, len(sketches))
    nrows = math.ceil(len(sketches) / ncols)
    fig = _new_figure((ncols * cell_size, nrows * cell_size * (1.15 if titles else 1.0)))
    for k, s in enumerate(sketches):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        try:
            draw(s, ax, title=None if titles is None else titles[k], **draw_kwargs)
        except ValueError as exc:
            raise ValueError(f"draw_grid: sketch {k}: {exc}") from exc
    fig.tight_layout()
    return fig


def to_image(sketch, size: int = 64, *, linewidth_px: float | None = None, start_token: bool | None = None,
             invert_y: bool = True, pad: float = 0.05) -> np.ndarray:
    """Rasterise a sketch through the Agg canvas: a ``uint8 [size, size]`` grayscale image,
    255 = paper, 0 = ink. The drawing is centred and fills the square up to ``pad``.
    Lines are ``linewidth_px`` pixels wide (default ``max(1, size / 32)``), antialiased.
    """
    size = int(size)
    if size < 4:
        raise ValueError(f"to_image: size must be >= 4 pixels, got {size}")
    lw_px = max(1.0, size / 32) if linewidth_px is None else float(linewidth_px)
    fig = _new_figure((1.0, 1.0), dpi=size)
    ax = fig.add_axes((0, 0, 1, 1))
    draw(sketch, ax, start_token=start_token, linewidth=lw_px * 72.0 / size, invert_y=invert_y, pad=pad)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba(), dtype=np.float64)  # [size, size, 4]
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# SVG (pure string building)


def _num(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def to_svg(sketch, *, size: float = 256, stroke_width: float = 2.0, color="black", stroke_colors=None,
           start_token: bool | None = None, invert_y: bool = True, pad: float = 0.05,
           background: str | None = "white") -> str:
    """The sketch as an SVG document: one ``<path>`` per stroke, pen-up moves absent.

    Each path is ``M x0 y0 L x1 y1 x2 y2 ...``: one pen-down, then lines, so there is no
    move inside a path and nothing joins two strokes. Coordinates are in pixels: the drawing's
    larger side, plus ``pad`` of it on each side, spans ``size`` px, and the ``viewBox``
    ``0 0 W H`` is fitted to the drawing's bounding box. ``stroke_width`` is in those pixels.
    SVG's y points down like the data's, so ``invert_y=True`` leaves y alone (``False`` flips it).
    A one-point stroke is a zero-length line, shown as a dot by the round caps.
    """
    lines = _lines(sketch, start_token)
    xmin, xmax, ymin, ymax = _bounds(lines)
    extent = max(xmax - xmin, ymax - ymin)
    extent = extent if extent > 0 else 1.0
    margin = pad * extent
    scale = float(size) / (extent + 2 * margin)
    width = (xmax - xmin + 2 * margin) * scale
    height = (ymax - ymin + 2 * margin) * scale
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}">'
    ]
    if background is not None:
        out.append(f'<rect x="0" y="0" width="{_num(width)}" height="{_num(height)}" fill={quoteattr(str(background))}/>')
    for line, c in zip(lines, stroke_palette(len(lines), color, stroke_colors)):
        x = (line[:, 0] - xmin + margin) * scale
        y = (line[:, 1] - ymin + margin) * scale
        if not invert_y:
            y = height - y
        pts = [f"{_num(a)} {_num(b)}" for a, b in zip(x, y)]
        if len(pts) == 1:
            pts.append(pts[0])
        d = f"M {pts[0]} L " + " ".join(pts[1:])
        out.append(
            f'<path d="{d}" fill="none" stroke={quoteattr(str(c))} stroke-width="{_num(stroke_width)}" '
            'stroke-linecap="round" stroke-linejoin="round"/>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _atomic_write(path, data) -> Path:
    from sketchlib.data.fileio import atomic_write

    return atomic_write(path, data)


def save_svg(sketch, path, **svg_kwargs) -> Path:
    """Write :func:`to_svg` to ``path`` atomically (a temp file beside it, then ``os.replace``)."""
    return _atomic_write(path, to_svg(sketch, **svg_kwargs))


# ----------------------------------------------------------------------------------------------
# Animation


def animate(sketch, *, interval: int = 40, fig_size: float = 3.0, dpi: int = 72, start_token: bool | None = None,
            color="black", stroke_colors=None, linewidth: float = 2, invert_y: bool = True, pad: float = 0.05,
            show_pen: bool = True):
    """A ``FuncAnimation`` of the pen drawing the sketch point by point, in order.

    ``N + 1`` frames: frame 0 is the finished drawing (what a page shows before play is pressed),
    then frame ``i`` (``1 <= i <= N``) shows the first ``i`` points.
    Each stroke is one Line2D that grows; pen-up moves leave no ink, while the pen marker (a red dot,
    ``show_pen``) jumps to the next stroke. ``interval`` is ms per frame. The figure is not
    registered with pyplot, so a notebook shows only the animation (:func:`animation_html`).
    """
    from matplotlib.animation import FuncAnimation

    lines = _lines(sketch, start_token)
    points = np.concatenate(lines) if lines else np.zeros((0, 2))  # [N, 2] absolute, in drawing order
    starts = np.cumsum([0] + [len(line) for line in lines])  # point index where each stroke begins

    fig = _new_figure((fig_size, fig_size), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    colors = stroke_palette(len(lines), color, stroke_colors)
    artists = [
        ax.plot([], [], color=c, linewidth=linewidth, solid_capstyle="round", solid_joinstyle="round",
                marker="o" if len(line) == 1 else None, markersize=linewidth, markeredgewidth=0)[0]
        for line, c in zip(lines, colors)
    ]
    pen = ax.plot([], [], linestyle="none", marker="o", markersize=2.5 * linewidth, color="tab:red",
                  alpha=0.8 if show_pen else 0.0, gid="pen")[0]
    _style_axes(ax, lines, pad=pad, invert_y=invert_y)

    def update(i: int):
        for k, art in enumerate(artists):
            seg = lines[k][: max(0, min(i - starts[k], len(lines[k])))]
            art.set_data(seg[:, 0], seg[:, 1])
        if i > 0:
            pen.set_data([points[i - 1, 0]], [points[i - 1, 1]])
        else:
            pen.set_data([], [])
        return [*artists, pen]

    n = len(points)
    order = [n, *range(1, n + 1)] if n else [0]  # open on the finished drawing, then replay it
    return FuncAnimation(fig, update, frames=order, interval=interval, blit=False,
                         cache_frame_data=False, repeat=True)


#: matplotlib's player buttons (Font Awesome 4 icons) as plain characters.
_PLAYER_ICONS = {"fa-fast-backward": "\u21e4", "fa-step-backward": "\u2039", "fa-play fa-flip-horizontal": "\u25c0",
                 "fa-pause": "\u275a\u275a", "fa-play": "\u25b6", "fa-step-forward": "\u203a",
                 "fa-fast-forward": "\u21e5", "fa-minus": "\u2212", "fa-plus": "+"}  # glyphs common fonts have


def jshtml(animation) -> str:
    """``animation.to_jshtml()`` with nothing fetched from another site: matplotlib's player links Font
    Awesome from a CDN for its button icons; here the link is dropped and the icons are characters."""
    html = re.sub(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">', "", animation.to_jshtml())
    for name, glyph in _PLAYER_ICONS.items():
        html = html.replace(f'<i class="fa {name}"></i>', glyph)
    return html


def animation_html(sketch, **animate_kwargs) -> str:
    """The animation as self-contained JavaScript + HTML (:func:`jshtml`; needs no ffmpeg, no CDN)."""
    return jshtml(animate(sketch, **animate_kwargs))


def save_gif(sketch, path, *, fps: float = 25, **animate_kwargs) -> Path:
    """Write the animation as a GIF with matplotlib's ``PillowWriter``, atomically (a ``.gif``
    temp file beside ``path``, renamed on success, removed on error)."""
    from matplotlib.animation import PillowWriter

    from sketchlib.data.fileio import atomic_path

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"save_gif: {path} must end in .gif (Pillow picks the format from the suffix)")
    anim = animate(sketch, **animate_kwargs)
    with atomic_path(path) as tmp:
        anim.save(str(tmp), writer=PillowWriter(fps=fps))
    return path
