"""A sketch as HTML for the explorers (inline SVG in a fixed box) and, for the static website where
no kernel runs, a matplotlib animation over a list of sketches (its JS-HTML has its own slider)."""

from __future__ import annotations

import html
from typing import Sequence

from sketchlib import render

#: What an empty result says (the model drew nothing: its first pen state was p3).
EMPTY_TEXT = "(empty: the model stopped at once)"


def svg_html(sketch, size: int = 240, *, stroke_colors=None, caption: str | None = None,
             empty_text: str = EMPTY_TEXT) -> str:
    """A sketch as inline SVG in a fixed ``size`` x ``size`` box (so the layout does not jump between redraws);
    ``empty_text`` in the box when the sketch has no points."""
    if render.to_stroke3(sketch).shape[0] == 0:
        body = f'<span style="color:#888">{html.escape(empty_text)}</span>'
    else:
        body = render.to_svg(sketch, size=size - 8, stroke_width=2.5, stroke_colors=stroke_colors)
    cap = "" if caption is None else f'<div style="text-align:center;font-size:12px">{html.escape(caption)}</div>'
    return (f'<div style="width:{size}px"><div style="width:{size}px;height:{size}px;display:flex;'
            f'align-items:center;justify-content:center;border:1px solid #ddd;background:white">{body}</div>'
            f"{cap}</div>")


def sequence_animation(sketches: Sequence, titles: Sequence[str] | None = None, *, interval: int = 300,
                       fig_size: float = 3.0, dpi: int = 72, **draw_kwargs):
    """A matplotlib ``FuncAnimation`` whose frame ``m`` shows ``sketches[m]`` (titled ``titles[m]``).

    ``sketchlib.render.jshtml(anim)`` is self-contained HTML with a slider and play buttons: the static website's
    stand-in for an explorer's slider. ``draw_kwargs`` go to :func:`sketchlib.render.draw`.
    """
    from matplotlib.animation import FuncAnimation
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sketches = list(sketches)
    if not sketches:
        raise ValueError("sequence_animation: no sketches")
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != len(sketches):
            raise ValueError(f"sequence_animation: {len(titles)} titles for {len(sketches)} sketches")
    fig = Figure(figsize=(fig_size, fig_size * (1.12 if titles else 1.0)), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 0.89 if titles else 1.0))

    def update(m: int):
        ax.clear()
        render.draw(sketches[m], ax, **draw_kwargs)
        if titles:
            fig.suptitle(titles[m], fontsize=10, y=0.98)
        return list(ax.lines)

    return FuncAnimation(fig, update, frames=len(sketches), interval=interval, blit=False,
                         cache_frame_data=False, repeat=True)
