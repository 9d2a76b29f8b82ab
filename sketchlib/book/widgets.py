"""Interactive explorers of a trained Sketch-RNN: sliders over z, interpolation, a drawing canvas.

Every explorer is a thin layer of wiring over PLAIN functions that are tested on their own:

* :func:`latent_directions` -- encode sketches to their means mu [n, N_z] and find the principal
  directions of that cloud (PCA by ``torch.linalg.svd``): the mean z, the top-k directions and the
  standard deviation of the codes along each;
* :func:`decode_along` -- decode ``z = mean + sum_j c_j * std_j * d_j`` with :func:`sketchlib.sample.sample`
  (deterministic for a given ``seed``);
* :func:`interpolation_frames` -- decode the codes on the slerp path between two sketches;
* :func:`strokes_from_canvas_points`, :func:`reconstruct_drawing`, :func:`complete` -- what the
  drawing canvas does with the points under the reader's mouse.

The widgets (:func:`z_slider_explorer`, :func:`interpolation_explorer`, :func:`drawing_canvas`)
need a running kernel (JupyterLab, Colab). For the static website, where no kernel runs,
:func:`sequence_animation` turns any list of sketches into a matplotlib animation whose JS-HTML
(``.to_jshtml()``) has its own slider and play button, and :func:`direction_sweep` gives the grid of
sketches the z sliders would show.

A redraw decodes one sketch (at most N_max calls of ``model.step``) and renders it as SVG into an
``ipywidgets.HTML`` (about a millisecond, much cheaper than a matplotlib figure). Decoding runs on
one torch thread (:func:`single_thread`): a batch of one gains nothing from a second thread, and on a
busy machine loses a lot. Each explorer records what it drew and how long it took
(:attr:`Explorer.timings`); :func:`decode_latency` measures the cost of a fixed number of decoder steps.

Completing a drawing (:func:`complete`) uses the decoder exactly as sampling does, with the reader's
points in place of the first samples: from ``[h_0; c_0] = tanh(W_z z + b_z)`` it reads
``x_i = [S_{i-1}; z]`` for the drawn S_1..S_N (teacher forcing), then draws S_{N+1}, S_{N+2}, ...
from ``y_i`` and feeds each back, until p3.

This module is a leaf: ipywidgets and ipycanvas are imported inside the functions that build widgets.
"""

from __future__ import annotations

import contextlib
import html
import statistics
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch

from sketchlib import render, sample as _sample
from sketchlib.data import strokes as _strokes

#: KanjiVG draws every character on a 109 x 109 grid (``sketchlib.data.kanjivg.GRID_SIZE``).
KANJIVG_GRID = 109
#: Colour of the model's own strokes when a drawing is completed (matplotlib's "tab:red").
MODEL_COLOR = "#d62728"
#: Colour of the reader's strokes.
READER_COLOR = "#222222"


# ----------------------------------------------------------------------------------------------
# Latent directions (PCA of the encoder's means)


class LatentDirections(NamedTuple):
    """The mean code, the principal directions of the codes and the spread along each."""

    mean: torch.Tensor  # [N_z] mean of mu over the sketches
    directions: torch.Tensor  # [k, N_z] orthonormal rows, largest variance first
    std: torch.Tensor  # [k] standard deviation of the codes along each direction


def _hp(model):
    hp = getattr(model, "hp", None)
    if hp is None:
        raise ValueError("model has no .hp (expected a sketchlib SketchRNN)")
    return hp


def _require_conditional(model, what: str) -> None:
    if not _hp(model).conditional:
        raise ValueError(f"{what} needs a conditional model (one with an encoder); this one has hp.conditional=False")


def encode_means(model, sketches: Sequence, batch_size: int = 64) -> torch.Tensor:
    """mu [n, N_z] of normalised stroke-3 ``sketches`` (the deterministic code of each), in batches, on the CPU."""
    _require_conditional(model, "encoding")
    sketches = list(sketches)
    if not sketches:
        raise ValueError("encode_means: no sketches")
    chunks = [_sample.encode(model, sketches[i: i + batch_size]).float().cpu()
              for i in range(0, len(sketches), batch_size)]
    return torch.cat(chunks)


def latent_directions(model, sketches: Sequence, k: int = 4, *, batch_size: int = 64) -> LatentDirections:
    """PCA of the codes of ``sketches``: ``(mean z, top-k principal directions, their std)``.

    With ``X = mu - mean`` ([n, N_z], one row per sketch) and ``X = U S V^T`` (``torch.linalg.svd``),
    the directions are the first k rows of ``V^T`` and ``std_j = S_j / sqrt(n - 1)``. The sign of
    each direction is fixed (its largest-magnitude entry is positive), so the result is reproducible.
    """
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"latent_directions: k must be a positive integer, got {k!r}")
    mu = encode_means(model, sketches, batch_size).double()  # [n, N_z]
    n, n_z = mu.shape
    if n < 2:
        raise ValueError("latent_directions: need at least 2 sketches for a spread")
    if k > min(n - 1, n_z):
        raise ValueError(f"latent_directions: k = {k} directions from {n} sketches in {n_z} dimensions "
                         f"(at most {min(n - 1, n_z)})")
    mean = mu.mean(0)
    _, s, vh = torch.linalg.svd(mu - mean, full_matrices=False)  # vh [min(n, N_z), N_z]
    dirs = vh[:k]
    sign = torch.sign(dirs.gather(1, dirs.abs().argmax(1, keepdim=True)))  # [k, 1]
    dirs = dirs * sign
    std = s[:k] / (n - 1) ** 0.5
    return LatentDirections(mean.float(), dirs.float(), std.float())


def latent_point(mean, directions, coeffs, std=None) -> torch.Tensor:
    """z = mean + sum_j c_j d_j [N_z]; with ``std`` the coefficients are in standard deviations (c_j std_j)."""
    mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
    directions = torch.as_tensor(directions, dtype=torch.float32)
    if directions.ndim == 1:
        directions = directions[None]
    coeffs = torch.as_tensor(np.asarray(coeffs, dtype=np.float32)).reshape(-1)
    if directions.shape[1] != mean.shape[0]:
        raise ValueError(f"directions {list(directions.shape)} do not match the mean [{mean.shape[0]}]")
    if coeffs.shape[0] != directions.shape[0]:
        raise ValueError(f"{coeffs.shape[0]} coefficients for {directions.shape[0]} directions")
    if std is not None:
        coeffs = coeffs * torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    return mean + coeffs @ directions


@contextlib.contextmanager
def single_thread():
    """Run the block with ``torch.set_num_threads(1)``, then restore the previous count.

    Decoding ONE sketch multiplies small matrices by a vector at every step: a second thread has
    nothing to share and only adds synchronisation. On a busy machine it is far worse: on the
    book's 2-core build machine under load, a 512-unit decoder step took 20-40 ms with 2 threads
    against about 1 ms with one. So every decode here runs single-threaded.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _generator(seed) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def decode_z(model, z, temperature: float = 0.25, greedy: bool = False, seed: int = 0,
             max_len: int | None = None) -> np.ndarray:
    """One sketch decoded from ``z`` [N_z] with :func:`sketchlib.sample.sample`; the noise comes from ``seed``."""
    z = torch.as_tensor(z, dtype=torch.float32).reshape(1, -1)
    with single_thread():
        return _sample.sample(model, n=1, z=z, temperature=temperature, greedy=greedy, max_len=max_len,
                              generator=_generator(seed))[0]


def decode_along(model, mean, directions, coeffs, temperature: float = 0.25, greedy: bool = False,
                 seed: int = 0, *, std=None, max_len: int | None = None) -> np.ndarray:
    """Decode the sketch at ``z = mean + sum_j c_j d_j`` (``c_j std_j`` when ``std`` is given): stroke-3.

    Deterministic: the same arguments give the same sketch (all noise from ``seed``).
    """
    _require_conditional(model, "decode_along")
    z = latent_point(mean, directions, coeffs, std)
    return decode_z(model, z, temperature, greedy, seed, max_len)


def direction_sweep(model, latent: LatentDirections, values: Sequence[float] = (-2, -1, 0, 1, 2),
                    temperature: float = 0.25, greedy: bool = False, seed: int = 0) -> list[list[np.ndarray]]:
    """What the z sliders show, pre-computed: ``out[j][m]`` is the sketch with slider j at ``values[m]``
    (in standard deviations) and every other slider at 0. Row-major input for :func:`render.draw_grid`."""
    k = latent.directions.shape[0]
    out = []
    for j in range(k):
        row = []
        for v in values:
            c = np.zeros(k, dtype=np.float32)
            c[j] = v
            row.append(decode_along(model, latent.mean, latent.directions, c, temperature, greedy, seed,
                                    std=latent.std))
        out.append(row)
    return out


# ----------------------------------------------------------------------------------------------
# Interpolation


def interpolation_codes(model, sketch_a, sketch_b, steps: int = 11, method: str = "slerp") -> torch.Tensor:
    """[steps, N_z]: the codes mu_a ... mu_b on the path :func:`sketchlib.sample.interpolate` draws."""
    mu = encode_means(model, [sketch_a, sketch_b])
    return _sample.interpolate(mu[0], mu[1], steps, method)


def interpolation_frames(model, sketch_a, sketch_b, steps: int = 11, method: str = "slerp",
                         temperature: float = 0.25, greedy: bool = False, seed: int = 0) -> list[np.ndarray]:
    """Decode every code on the interpolation path; each frame uses the same noise (``seed``)."""
    codes = interpolation_codes(model, sketch_a, sketch_b, steps, method)
    return [decode_z(model, z, temperature, greedy, seed) for z in codes]


# ----------------------------------------------------------------------------------------------
# The drawing canvas: from mouse points to stroke-3, reconstruct, complete


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
    from sketchlib.data.drawing import drawing_to_stroke3

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
    ``initial_state(z)`` the inputs S_0, S_1, ..., S_{N-1} (``model.step``) bring it to the state
    after point N, then it samples S_{N+1}, S_{N+2}, ... from there, feeding each back, until p3 or
    ``max_len`` points in all (default N_max). The first row of the result is the offset from the
    last drawn point.

    ``z`` (conditional model; ignored by an unconditional one): default ``z = 0``, the centre of the
    prior N(0, I), "some character"; the drawn points then decide what it becomes. ``z="drawing"``
    uses the encoder's code of the unfinished drawing itself (:func:`encode_means`): that code
    describes the drawing AS IT IS, so the decoder tends to stop soon (the book shows both).
    The noise is drawn from ``seed`` exactly as :func:`sketchlib.sample.sample` draws it, so
    completing the first n points of a greedy sample gives back the rest of that sample.
    """
    hp = _hp(model)
    T = hp.max_seq_len if max_len is None else int(max_len)
    s3 = _strokes.validate_stroke3(sketch)
    n = s3.shape[0]
    if n >= T:
        raise ValueError(f"the drawing has {n} points, no room left before max_len = {T}")
    tau = float(temperature)
    if not greedy and not (tau > 0 and np.isfinite(tau)):
        raise ValueError(f"temperature must be a positive number (or greedy=True), got {temperature!r}")
    if hp.conditional:
        if z is None:
            z = torch.zeros(1, hp.z_size)
        elif isinstance(z, str):
            if z != "drawing":
                raise ValueError(f'z must be None, "drawing" or a latent vector, got {z!r}')
            z = encode_means(model, [s3])
        else:
            z = torch.as_tensor(z, dtype=torch.float32).reshape(1, -1)
            if z.shape[1] != hp.z_size:
                raise ValueError(f"z must have N_z = {hp.z_size} entries, got {z.shape[1]}")
    else:
        z = None
    device = next(model.parameters()).device
    z = None if z is None else z.to(device)
    prefix = torch.from_numpy(_strokes.stroke3_to_stroke5(s3).astype(np.float32)).to(device)  # [n + 1, 5], S_0..S_n
    steps = T - n
    gen = _generator(seed)
    M = hp.num_mixture
    if greedy:
        g_pi = g_pen = eps = [None] * steps
    else:  # same draws, in the same order, as sample.sample for one sketch
        g_pi = _sample.gumbel((steps, 1, M), gen)
        g_pen = _sample.gumbel((steps, 1, 3), gen)
        eps = torch.randn((steps, 1, 2), generator=gen, dtype=torch.float64).numpy()
    out = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), single_thread():
            state = model.initial_state(z, 1)
            for i in range(n):  # teacher-force the reader's points
                _, state = model.step(prefix[i: i + 1], z, state)
            s_prev = prefix[n: n + 1]  # the last drawn point S_n, [1, 5]
            for t in range(steps):
                y, state = model.step(s_prev, z, state)
                dx, dy, pen = _sample.sample_outputs(y.float().cpu().numpy(), M, tau, greedy,
                                                     g_pi=g_pi[t], g_pen=g_pen[t], eps=eps[t])
                if pen[0] == 2:
                    break
                out.append((dx[0], dy[0], float(pen[0] == 1)))
                row = np.zeros((1, 5), dtype=np.float32)
                row[0, 0], row[0, 1], row[0, 2 + pen[0]] = dx[0], dy[0], 1.0
                s_prev = torch.from_numpy(row).to(device)
    finally:
        model.train(was_training)
    return np.asarray(out, dtype=np.float32).reshape(-1, 3)


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


# ----------------------------------------------------------------------------------------------
# Rendering and latency


def svg_html(sketch, size: int = 240, *, stroke_colors=None, caption: str | None = None) -> str:
    """A sketch as inline SVG in a fixed ``size`` x ``size`` box (so the layout does not jump between redraws)."""
    if render.to_stroke3(sketch).shape[0] == 0:
        body = '<span style="color:#888">(empty: the model stopped at once)</span>'
    else:
        body = render.to_svg(sketch, size=size - 8, stroke_width=2.5, stroke_colors=stroke_colors)
    cap = "" if caption is None else f'<div style="text-align:center;font-size:12px">{html.escape(caption)}</div>'
    return (f'<div style="width:{size}px"><div style="width:{size}px;height:{size}px;display:flex;'
            f'align-items:center;justify-content:center;border:1px solid #ddd;background:white">{body}</div>'
            f"{cap}</div>")


def decode_latency(model, steps: int = 250, repeats: int = 5, *, temperature: float = 0.25, seed: int = 0,
                   z=None, threads: int | None = 1) -> dict:
    """Time ``steps`` decoder steps for ONE sketch: the work of :func:`sketchlib.sample.sample` per step
    (``model.step`` + drawing the offset and pen from y + building S_i), without stopping at p3.

    Returns dict(steps, median_ms, best_ms, per_step_ms, threads) over ``repeats`` runs, in eval mode
    on the model's device, with ``threads`` torch threads (1, as the explorers decode; None: as set).
    """
    hp = _hp(model)
    M = hp.num_mixture
    device = next(model.parameters()).device
    if hp.conditional:
        z = torch.zeros(1, hp.z_size) if z is None else torch.as_tensor(z, dtype=torch.float32).reshape(1, -1)
        z = z.to(device)
    else:
        z = None
    times = []
    was_training = model.training
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    used = torch.get_num_threads()
    model.eval()
    try:
        with torch.inference_mode():
            for _ in range(int(repeats)):
                gen = _generator(seed)
                t0 = time.perf_counter()
                g_pi, g_pen = _sample.gumbel((steps, 1, M), gen), _sample.gumbel((steps, 1, 3), gen)
                eps = torch.randn((steps, 1, 2), generator=gen, dtype=torch.float64).numpy()
                state = model.initial_state(z, 1)
                s_prev = torch.from_numpy(_strokes.START_TOKEN[None].copy()).to(device)
                for t in range(steps):
                    y, state = model.step(s_prev, z, state)
                    dx, dy, pen = _sample.sample_outputs(y.float().cpu().numpy(), M, temperature,
                                                         g_pi=g_pi[t], g_pen=g_pen[t], eps=eps[t])
                    row = np.zeros((1, 5), dtype=np.float32)
                    row[0, 0], row[0, 1], row[0, 2 + min(int(pen[0]), 1)] = dx[0], dy[0], 1.0
                    s_prev = torch.from_numpy(row).to(device)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append((time.perf_counter() - t0) * 1e3)
    finally:
        model.train(was_training)
        torch.set_num_threads(before)
    med = statistics.median(times)
    return dict(steps=int(steps), median_ms=med, best_ms=min(times), per_step_ms=med / steps, threads=used)


# ----------------------------------------------------------------------------------------------
# Static (kernel-free) versions: an animation over a sequence of sketches


def sequence_animation(sketches: Sequence, titles: Sequence[str] | None = None, *, interval: int = 300,
                       fig_size: float = 3.0, dpi: int = 72, **draw_kwargs):
    """A matplotlib ``FuncAnimation`` whose frame ``m`` shows ``sketches[m]`` (titled ``titles[m]``).

    ``anim.to_jshtml()`` is self-contained HTML with a slider and play buttons: the static website's
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


# ----------------------------------------------------------------------------------------------
# The widgets


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
        head = [W.HTML(f"<b>{html.escape(title)}</b>")] if title else []
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
        self.view.value = svg_html(sketch, self.size)
        t2 = time.perf_counter()
        self.sketch = sketch
        self.redraws += 1
        self.timings = dict(decode_ms=(t1 - t0) * 1e3, render_ms=(t2 - t1) * 1e3, points=len(sketch))
        self.info.value = (f"<small>{len(sketch)} points &middot; decode {self.timings['decode_ms']:.0f} ms "
                           f"&middot; render {self.timings['render_ms']:.1f} ms</small>")
        return sketch

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _slider(description: str, value: float, lo: float, hi: float, step: float, continuous_update: bool):
    import ipywidgets as W

    return W.FloatSlider(value=value, min=lo, max=hi, step=step, description=description,
                         continuous_update=continuous_update, readout_format=".2f",
                         style={"description_width": "90px"}, layout=W.Layout(width="330px"))


def z_slider_explorer(model, sketches: Sequence, k: int = 4, *, latent: LatentDirections | None = None,
                      temperature: float = 0.25, greedy: bool = False, seed: int = 0, span: float = 3.0,
                      size: int = 240, continuous_update: bool = False) -> Explorer:
    """k sliders over the principal directions of the codes of ``sketches`` (in standard deviations,
    ``-span..span``) plus a temperature slider; every change redraws :func:`decode_along`'s sketch.

    Pass ``latent`` (from :func:`latent_directions`) to skip the encoding.
    """
    latent = latent_directions(model, sketches, k) if latent is None else latent
    k = latent.directions.shape[0]
    controls = {f"pc{j + 1}": _slider(f"direction {j + 1} (σ)", 0.0, -span, span, 0.1, continuous_update)
                for j in range(k)}
    controls["temperature"] = _slider("temperature τ", temperature, 0.01, 1.0, 0.01, continuous_update)

    def compute(temperature, **pcs):
        coeffs = [pcs[f"pc{j + 1}"] for j in range(k)]
        return decode_along(model, latent.mean, latent.directions, coeffs, temperature, greedy, seed,
                            std=latent.std)

    ex = Explorer(controls, compute, size=size, title="Walk the latent space along its principal directions")
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
        "t": _slider("t (A → B)", 0.0, 0.0, 1.0, 1.0 / (steps - 1), continuous_update),
        "temperature": _slider("temperature τ", temperature, 0.01, 1.0, 0.01, continuous_update),
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
    ex = Explorer(controls, compute, size=size, side=side, title=f"Interpolate the codes ({method})")
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

        self.temperature = _slider("temperature τ", temperature, 0.01, 1.0, 0.01, False)
        self.z_source = W.Dropdown(options=[("z = 0 (any character)", "prior"), ("z = code of my drawing", "drawing")],
                                   value="prior", description="Complete with", style={"description_width": "90px"})
        self.buttons = {name: W.Button(description=name, layout=W.Layout(width="110px"))
                        for name in ("Reconstruct", "Complete", "Clear")}
        self.buttons["Reconstruct"].on_click(lambda _: self.reconstruct())
        self.buttons["Complete"].on_click(lambda _: self.complete())
        self.buttons["Clear"].on_click(lambda _: self.clear())
        self.view = W.HTML(svg_html(np.zeros((0, 3)), canvas_size))
        self.status = W.HTML("<small>Draw with the mouse, then press a button.</small>")
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
            self.status.value = f"<small>{html.escape(str(exc))}</small>"
            return None
        self.result = sketch
        self.view.value = svg_html(sketch, self.canvas_size, stroke_colors=colors)
        self.status.value = f"<small>{what}: {note} ({ms:.0f} ms)</small>"
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
        self.view.value = svg_html(np.zeros((0, 3)), self.canvas_size)
        self.status.value = "<small>Cleared. Draw with the mouse, then press a button.</small>"

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def drawing_canvas(model, **kwargs) -> DrawingPad:
    """A :class:`DrawingPad` for ``model``: draw, then Reconstruct / Complete / Clear (needs a live kernel)."""
    return DrawingPad(model, **kwargs)
