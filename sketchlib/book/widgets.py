"""Interactive explorers of a trained Sketch-RNN (ipywidgets): sliders over z, interpolation, a drawing canvas.

Every explorer is a thin layer of wiring over PLAIN functions that are tested on their own and live
in their own modules (re-exported here, the name the chapters use: ``widgets.decode_along`` ...):

* :mod:`sketchlib.book.latent` -- PCA of the codes, decoding along it, interpolation frames;
* :mod:`sketchlib.book.canvas` -- the reader's canvas points -> stroke-3, reconstruct, complete;
* :mod:`sketchlib.book.views` -- a sketch as inline SVG, an animation for the static site;
* :mod:`sketchlib.book.latency` -- :func:`decode_latency`, the time the explorers wait for a sketch.

The widgets (:func:`z_slider_explorer`, :func:`interpolation_explorer`, :func:`drawing_canvas`)
need a running kernel (JupyterLab, Colab). A redraw decodes one sketch with
:func:`sketchlib.sample.sample` (the loop :func:`decode_latency` times) and renders it as SVG into an
``ipywidgets.HTML`` (about a millisecond, much cheaper than a matplotlib figure). Each explorer
records what it drew and how long it took (:attr:`Explorer.timings`).

Every word a reader sees (labels, buttons, titles, status lines) is written here in English and passed
through :func:`sketchlib.book.edition.words` where the widget is built, so a Chinese session shows
the Chinese of ``sketchlib/book/locale/zh-widgets.md``. The code never reads a label back: the buttons
are keyed (and act) by their English name, the dropdown by its values.

This module is a leaf: ipywidgets and ipycanvas are imported inside the functions that build widgets.
"""

from __future__ import annotations

import html
import time
from typing import Callable, Sequence

import numpy as np

from sketchlib.book.canvas import (  # noqa: F401  (re-exported for the chapters)
    KANJIVG_GRID, MODEL_COLOR, READER_COLOR, complete, drawing_box, joined, model_scale, reconstruct_drawing,
    stroke3_to_canvas_lines, strokes_from_canvas_points)
from sketchlib.book.edition import words as _w
from sketchlib.book.latency import decode_latency  # noqa: F401
from sketchlib.book.latent import (  # noqa: F401
    LatentDirections, decode_along, decode_z, direction_sweep, encode_means, interpolation_codes,
    interpolation_frames, latent_directions, latent_point, single_thread)
from sketchlib.book.views import EMPTY_TEXT, sequence_animation, svg_html  # noqa: F401

#: What the canvas' result pane shows before the reader has drawn anything (English; shown as ``_w(DRAW_PROMPT)``).
DRAW_PROMPT = "Draw on the left, then press Reconstruct or Complete: the result appears here."
#: Slider and dropdown labels take the width they need (a fixed width cut them off in JupyterLab).
LABEL_STYLE = {"description_width": "initial"}


class Explorer:
    """Controls (ipywidgets with a ``.value``) wired to ``compute(**values) -> sketch``, drawn as SVG.

    Changing any control's value calls :meth:`redraw` exactly once. Attributes for tests and
    curious readers: ``sketch`` (the last drawing), ``redraws`` (how many), ``timings``
    (``decode_ms``/``render_ms`` of the last redraw). Display it by making it a cell's value.
    """

    def __init__(self, controls: dict, compute: Callable[..., np.ndarray], *, size: int = 240,
                 side: Sequence = (), title: str | None = None):
        import ipywidgets as W

        self.controls = dict(controls)
        self.compute = compute
        self.size = size
        self.view = W.HTML()
        self.info = W.HTML()
        self.redraws = 0
        self.sketch: np.ndarray | None = None
        self.timings: dict = {}
        for w in self.controls.values():
            w.observe(self._changed, names="value")
        head = [W.HTML(f"<b>{html.escape(title)}</b>")] if title else []  # the caller's words (already translated)
        self.widget = W.VBox(head + [W.HBox([*side, self.view, W.VBox([*self.controls.values(), self.info])])])
        self.redraw()

    def values(self) -> dict:
        return {name: w.value for name, w in self.controls.items()}

    def _changed(self, change) -> None:
        self.redraw()

    def redraw(self) -> np.ndarray:
        t0 = time.perf_counter()
        sketch = self.compute(**self.values())
        t1 = time.perf_counter()
        self.view.value = svg_html(sketch, self.size, empty_text=_w(EMPTY_TEXT))
        t2 = time.perf_counter()
        self.sketch = sketch
        self.redraws += 1
        self.timings = dict(decode_ms=(t1 - t0) * 1e3, render_ms=(t2 - t1) * 1e3, points=len(sketch))
        line = _w(f"{len(sketch)} points · decode {self.timings['decode_ms']:.0f} ms "
                  f"· render {self.timings['render_ms']:.1f} ms")
        self.info.value = f"<small>{html.escape(line)}</small>"
        return sketch

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _slider(description: str, value: float, lo: float, hi: float, step: float, continuous_update: bool):
    """A float slider labelled ``description`` (pass it translated: ``_slider(_w("..."), ...)``)."""
    import ipywidgets as W

    return W.FloatSlider(value=value, min=lo, max=hi, step=step, description=description,
                         continuous_update=continuous_update, readout_format=".2f",
                         style=LABEL_STYLE, layout=W.Layout(width="360px"))


def z_slider_explorer(model, sketches: Sequence, k: int = 4, *, latent: LatentDirections | None = None,
                      temperature: float = 0.25, greedy: bool = False, seed: int = 0, span: float = 3.0,
                      size: int = 240, continuous_update: bool = False) -> Explorer:
    """k sliders over the principal directions of the codes of ``sketches`` (in standard deviations,
    ``-span..span``) plus a temperature slider; every change redraws :func:`decode_along`'s sketch.

    Pass ``latent`` (from :func:`latent_directions`) to skip the encoding.
    """
    latent = latent_directions(model, sketches, k) if latent is None else latent
    k = latent.directions.shape[0]
    controls = {f"pc{j + 1}": _slider(_w(f"direction {j + 1} (σ)"), 0.0, -span, span, 0.1, continuous_update)
                for j in range(k)}
    controls["temperature"] = _slider(_w("temperature τ"), temperature, 0.01, 1.0, 0.01, continuous_update)

    def compute(temperature, **pcs):
        coeffs = [pcs[f"pc{j + 1}"] for j in range(k)]
        return decode_along(model, latent.mean, latent.directions, coeffs, temperature, greedy, seed,
                            std=latent.std)

    ex = Explorer(controls, compute, size=size, title=_w("Walk the latent space along its principal directions"))
    ex.latent = latent
    return ex


def interpolation_explorer(model, sketch_a, sketch_b, *, steps: int = 21, method: str = "slerp",
                           temperature: float = 0.25, greedy: bool = False, seed: int = 0, size: int = 240,
                           continuous_update: bool = False) -> Explorer:
    """A slider t in [0, 1] along the slerp path between the codes of two sketches (``steps`` stops),
    plus a temperature slider; the two originals are shown on either side."""
    import ipywidgets as W

    codes = interpolation_codes(model, sketch_a, sketch_b, steps, method)
    controls = {
        "t": _slider(_w("t (A → B)"), 0.0, 0.0, 1.0, 1.0 / (steps - 1), continuous_update),
        "temperature": _slider(_w("temperature τ"), temperature, 0.01, 1.0, 0.01, continuous_update),
    }
    cache: dict = {}

    def compute(t, temperature):
        i = int(round(t * (steps - 1)))
        key = (i, round(temperature, 6))
        if key not in cache:
            cache[key] = decode_z(model, codes[i], temperature, greedy, seed)
        return cache[key]

    small = size * 2 // 3
    side = [W.HTML(svg_html(sketch_a, small, caption="A")), W.HTML(svg_html(sketch_b, small, caption="B"))]
    ex = Explorer(controls, compute, size=size, side=side, title=_w(f"Interpolate the codes ({method})"))
    ex.codes = codes
    return ex


class DrawingPad:
    """An ipycanvas Canvas to draw on with the mouse (or a finger), and buttons Reconstruct / Complete / Clear.

    ``points``: one list of absolute canvas points (x, y) per stroke, as the pointer events recorded
    them. ``pointer_down / pointer_move / pointer_up`` are the event handlers (call them yourself to
    draw from code). The buttons run :func:`strokes_from_canvas_points` and then
    :func:`reconstruct_drawing` or :func:`complete`; ``result`` holds the last stroke-3 shown.
    """

    def __init__(self, model, *, scale: float | None = None, grid_size: float | None = None,
                 canvas_size: int = 256, epsilon: float = 1.0, temperature: float = 0.25, seed: int = 0):
        import ipywidgets as W
        from ipycanvas import Canvas

        self.model = model
        self.scale = model_scale(model, scale)
        self.grid_size = float(grid_size if grid_size is not None else drawing_box(model))
        self.canvas_size = int(canvas_size)
        self.epsilon = float(epsilon)
        self.seed = int(seed)
        self.points: list[list[tuple[float, float]]] = []
        self.result: np.ndarray | None = None
        self._down = False

        self.canvas = Canvas(width=self.canvas_size, height=self.canvas_size,
                             layout=W.Layout(border="1px solid #999", width=f"{self.canvas_size}px",
                                             height=f"{self.canvas_size}px"))
        self.canvas.line_width = 3.0
        self.canvas.line_cap = "round"
        self.canvas.on_mouse_down(self.pointer_down)
        self.canvas.on_mouse_move(self.pointer_move)
        self.canvas.on_mouse_up(self.pointer_up)
        self.canvas.on_mouse_out(self.pointer_up)
        self.canvas.on_touch_start(lambda touches: self.pointer_down(*touches[0]))
        self.canvas.on_touch_move(lambda touches: self.pointer_move(*touches[0]))
        self.canvas.on_touch_end(lambda touches: self.pointer_up(0, 0))

        self.temperature = _slider(_w("temperature τ"), temperature, 0.01, 1.0, 0.01, False)
        self.z_source = W.Dropdown(options=[(_w("z = 0 (any character)"), "prior"),
                                            (_w("z = code of my drawing"), "drawing")],
                                   value="prior", description=_w("Complete with"), style=LABEL_STYLE)
        # keyed and dispatched by the English name, whatever the label says
        actions = {"Reconstruct": self.reconstruct, "Complete": self.complete, "Clear": self.clear}
        self.buttons = {}
        for name, action in actions.items():
            self.buttons[name] = W.Button(description=_w(name), layout=W.Layout(width="110px"))
            self.buttons[name].on_click(lambda _, action=action: action())
        self.view = W.HTML(svg_html(np.zeros((0, 3)), canvas_size, empty_text=_w(DRAW_PROMPT)))
        self.status = W.HTML(f"<small>{html.escape(_w('Draw with the mouse, then press a button.'))}</small>")
        self.widget = W.VBox([
            W.HBox([self.canvas, self.view]),
            W.HBox(list(self.buttons.values()) + [self.temperature]),
            self.z_source,
            self.status,
        ])

    # pointer events: absolute canvas points per stroke
    def pointer_down(self, x, y) -> None:
        self._down = True
        self.points.append([(float(x), float(y))])

    def pointer_move(self, x, y) -> None:
        if not self._down:
            return
        x0, y0 = self.points[-1][-1]
        self.points[-1].append((float(x), float(y)))
        self.canvas.stroke_style = READER_COLOR
        self.canvas.stroke_line(x0, y0, float(x), float(y))

    def pointer_up(self, x, y) -> None:
        self._down = False

    # the buttons
    def drawing(self) -> np.ndarray:
        """The drawing so far as a normalised stroke-3 sketch (ValueError if nothing is drawn)."""
        return strokes_from_canvas_points(self.points, self.scale, canvas_size=self.canvas_size,
                                          grid_size=self.grid_size, epsilon=self.epsilon)

    def _run(self, what: str, fn) -> np.ndarray | None:
        try:
            t0 = time.perf_counter()
            sketch, colors, note = fn()
            ms = (time.perf_counter() - t0) * 1e3
        except ValueError as exc:
            self.status.value = f"<small>{html.escape(_w(str(exc)))}</small>"
            return None
        self.result = sketch
        self.view.value = svg_html(sketch, self.canvas_size, stroke_colors=colors, empty_text=_w(EMPTY_TEXT))
        # the whole line is one catalog entry, its numbers taken out ("reconstructed: {} points in, ...")
        self.status.value = f"<small>{html.escape(_w(f'{what}: {note} ({ms:.0f} ms)'))}</small>"
        return sketch

    def reconstruct(self) -> np.ndarray | None:
        def fn():
            s = self.drawing()
            r = reconstruct_drawing(self.model, s, self.temperature.value, seed=self.seed)
            return r, None, f"{len(s)} points in, {len(r)} points out"

        return self._run("reconstructed", fn)

    def complete(self) -> np.ndarray | None:
        def fn():
            s = self.drawing()
            z = "drawing" if self.z_source.value == "drawing" else None
            cont = complete(self.model, s, z=z, temperature=self.temperature.value, seed=self.seed)
            both, colors = joined(s, cont)
            # and draw the model's strokes on the canvas too, in red, from where the reader stopped
            end = np.cumsum(s[:, :2], axis=0)[-1] * self.scale
            lines = stroke3_to_canvas_lines(cont, self.scale, canvas_size=self.canvas_size,
                                            grid_size=self.grid_size, origin=end)
            self.canvas.stroke_style = MODEL_COLOR
            for line in lines:
                if len(line) > 1:
                    self.canvas.stroke_lines(line.tolist())
            return both, colors, f"the model added {len(cont)} points (red)"

        return self._run("completed", fn)

    def clear(self) -> None:
        self.points = []
        self.result = None
        self._down = False
        self.canvas.clear()
        self.view.value = svg_html(np.zeros((0, 3)), self.canvas_size, empty_text=_w(DRAW_PROMPT))
        self.status.value = f"<small>{html.escape(_w('Cleared. Draw with the mouse, then press a button.'))}</small>"

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def drawing_canvas(model, **kwargs) -> DrawingPad:
    """A :class:`DrawingPad` for ``model``: draw, then Reconstruct / Complete / Clear (needs a live kernel)."""
    return DrawingPad(model, **kwargs)