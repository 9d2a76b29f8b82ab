"""Sampling: draw sketches from the decoder, complete a drawing, reconstruct, encode, and interpolate in z.

Generation (Ha & Eck 2017, section 3.3): start from S_0 = (0, 0, 1, 0, 0); at step i the decoder
reads [S_{i-1}; z] and its state and emits y_i, i.e. a mixture of M bivariate normals
(Pi, mu_x, mu_y, sigma_x, sigma_y, rho) for the offset (dx, dy) and pen logits q_hat for
(p1, p2, p3). We draw S_i from it (:mod:`sketchlib.draw`), feed it back, and stop at p3 or after
N_max steps. To complete a drawing, the decoder first reads the drawn points S_1..S_N as if it
had drawn them (teacher forcing), then draws S_{N+1}, ... the same way.

Temperature tau follows the paper (variance sigma^2 tau; :mod:`sketchlib.draw` gives the rule and how it
differs from the reference's Python sampler). Greedy mode: the argmax component, its mean offset and the argmax pen state (no noise at all).

ONE loop (:func:`decode`) serves :func:`sample`, the book's "complete my drawing", its latency
measurement and the benchmarks. What varies is the stepper, the object that turns S_{i-1} into
y_i (``set_input`` / ``feed`` the input, ``advance`` the state, ``step`` for y):

* ``fast=False`` (the reference) and every cell but the plain LSTM: ``model.step``;
* ``fast=True``, plain LSTM decoder (eval mode, no dropout) on the CPU: the numpy float32 step
  :class:`sketchlib.fast.numpy_lstm.NumpyLSTM`, and for one sketch a draw that computes only the
  rows of y it reads, in Python floats (:func:`sketchlib.draw.one_draw`);
* ``fast=True``, plain LSTM decoder on a GPU: the step AND the draw on the device, K steps per CUDA
  graph replay (:mod:`sketchlib.fast.graph_sampling`); the fused torch step
  (:func:`sketchlib.fast.torch_lstm.fused_lstm_step`) where the noise would not fit one up-front block.

Each is tested equal to the reference (y and state to float32 rounding, the same sketches for the
same generator). For the 512-unit decoder on a 2-core CPU (``bench/sampling.py``) one sketch of
250 steps takes about 17-30 ms on the numpy step against 100-130 ms on ``model.step``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from sketchlib import fast as fast_paths
from sketchlib.data.strokes import pad_batch, stroke3_to_stroke5, validate_stroke3
from sketchlib.draw import (  # noqa: F401  (the draw's names, re-exported: sample.gumbel, sample.sample_outputs)
    Noise, _check_temperature, _choose_one, _offset_one, _split_numpy, batch_draw, gumbel, one_draw, sample_outputs)
from sketchlib.fast.graph_sampling import graph_decode, graph_sampling_applies
from sketchlib.fast.numpy_lstm import NumpyLSTM, cpu_threads
from sketchlib.fast.torch_lstm import TorchStepper, fused_lstm_step


def _model_hp(model):
    hp = getattr(model, "hp", None)
    if hp is None:
        raise ValueError("model has no .hp (expected a sketchlib SketchRNN)")
    return hp


def _check_z(z: torch.Tensor, z_size: int) -> torch.Tensor:
    """z as [n, N_z] float32; a clear error for a wrong shape or a NaN / infinite entry."""
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.ndim == 1:
        z = z.unsqueeze(0)
    if z.ndim != 2 or z.shape[1] != z_size:
        raise ValueError(f"z must have shape [N_z] or [n, N_z] with N_z = {z_size}, got {list(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError("z has NaN or infinite entries: a latent vector must be finite")
    return z


def _prepare_z(model, n: int, z, generator) -> tuple[torch.Tensor | None, int]:
    hp = _model_hp(model)
    device = next(model.parameters()).device
    if not hp.conditional:
        if z is not None:
            raise ValueError("this model is unconditional (hp.conditional=False): it takes no z")
        return None, n
    if z is None:
        z = torch.randn(n, hp.z_size, generator=generator)
    else:
        z = _check_z(z, hp.z_size)
        if z.shape[0] == 1 and n > 1:
            z = z.expand(n, -1)
        elif n not in (1, z.shape[0]):
            raise ValueError(f"n = {n} does not match the {z.shape[0]} latent vectors given")
    return z.to(device=device, dtype=torch.float32), z.shape[0]


def _check_max_len(max_len, default: int) -> int:
    if max_len is None:
        return int(default)
    if isinstance(max_len, bool) or int(max_len) != max_len or max_len < 1:
        raise ValueError(f"max_len must be an integer >= 1, got {max_len!r}")
    return int(max_len)


# ----------------------------------------------------------------------------------------------
# Steppers: S_{i-1} -> y_i


def _plain_lstm_decoder(model) -> bool:
    """True where the decoder step is exactly the LSTM equations: an LSTMCell, eval mode, no input / output
    dropout, and ``model.step`` the class's own (a replaced ``step``, a wrapper, must not be bypassed)."""
    from sketchlib.nn.lstm import LSTMCell

    dec = getattr(model, "decoder", None)
    cell = getattr(dec, "cell", None)
    return (type(cell) is LSTMCell and not dec.input_drop and not dec.output_drop and not model.training
            and "step" not in vars(model))


def _numpy_step_applies(model, device: torch.device) -> bool:
    """Whether the fast path is the numpy LSTM step (:class:`~sketchlib.fast.numpy_lstm.NumpyLSTM`): plain LSTM, CPU."""
    return device.type == "cpu" and _plain_lstm_decoder(model)


def _graph_step_applies(model, device: torch.device, steps: int, n: int) -> bool:
    """Whether the fast path is the CUDA-graph sampler (:mod:`sketchlib.fast.graph_sampling`): plain LSTM, GPU."""
    return (device.type == "cuda" and _plain_lstm_decoder(model)
            and graph_sampling_applies(steps, n, _model_hp(model).num_mixture))


def _stepper(model, z: torch.Tensor | None, n: int, fast: bool = True):
    """(initial state, step) where ``step(s_prev [n, 5], state) -> (y [n, 6M+3], state)``, in torch:
    ``model.step``, or for the plain LSTM decoder with ``fast`` the fused step (tested equal)."""
    if fast and _plain_lstm_decoder(model):
        return fused_lstm_step(model, z, n)
    return model.initial_state(z, n), lambda s_prev, st: model.step(s_prev, z, st)


def stepper_name(model, fast: bool = True) -> str:
    """Which stepper :func:`sample` runs for ``model`` in eval mode: "numpy", "cuda graph", "fused torch" or
    "model.step" (for one sketch of N_max steps)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        if fast and _numpy_step_applies(model, device):
            return "numpy"
        if fast and _graph_step_applies(model, device, _model_hp(model).max_seq_len, 1):
            return "cuda graph"
        return "fused torch" if fast and _plain_lstm_decoder(model) else "model.step"
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------------
# The sampling loop


def decode(model, z: torch.Tensor | None, n: int, steps: int, *, temperature: float = 1.0, greedy: bool = False,
           generator: torch.Generator | None = None, prefix: np.ndarray | None = None, fast: bool | None = None,
           stop_at_p3: bool = True) -> list[np.ndarray]:
    """THE sampling loop: ``n`` sketches of at most ``steps`` points each, stroke-3 float32 arrays.

    ``z`` [n, N_z] on the model's device (None: unconditional), as :func:`sample` prepares it.
    ``prefix``: a stroke-5 array [N + 1, 5] S_0..S_N the decoder reads first (teacher forcing, no
    draw); the result is then the continuation after S_N. ``stop_at_p3=False`` runs all ``steps``
    (a p3 is recorded as a pen-down point and fed back as p3), to time a fixed number of steps. ``fast`` picks the stepper (the
    module docstring). The caller holds eval mode and ``torch.inference_mode``.
    """
    fast = fast_paths.is_on() if fast is None else fast
    device = next(model.parameters()).device
    if fast and _graph_step_applies(model, device, steps, n):  # CUDA: the step and the draw as CUDA graphs
        tau = _check_temperature(temperature, greedy)
        noise = None if greedy else Noise(steps, n, _model_hp(model).num_mixture, generator)
        return graph_decode(model, z, n, steps, tau, greedy, noise, prefix, stop_at_p3)
    numpy_step = fast and _numpy_step_applies(model, device)
    if numpy_step:
        stepper = NumpyLSTM(model, z, n)
    else:
        state, step = _stepper(model, z, n, fast)
        stepper = TorchStepper(step, state, device, n)
    return run_stepper(stepper, n, steps, _model_hp(model).num_mixture, temperature=temperature, greedy=greedy,
                       generator=generator, prefix=prefix, stop_at_p3=stop_at_p3, scalar=numpy_step and n == 1)


def run_stepper(stepper, n: int, steps: int, num_mixture: int, *, temperature: float = 1.0, greedy: bool = False,
                generator: torch.Generator | None = None, prefix: np.ndarray | None = None,
                stop_at_p3: bool = True, scalar: bool = False) -> list[np.ndarray]:
    """The loop of :func:`decode` over any stepper: an object with ``set_input(s)``, ``feed(dx, dy, pen)``,
    ``advance()`` and ``step() -> y [n, 6M+3]`` (numpy), such as :class:`TorchStepper`,
    :class:`~sketchlib.fast.numpy_lstm.NumpyLSTM` or the ONNX runner of :mod:`sketchlib.export`.
    ``scalar``: one sketch on a NumpyLSTM, drawn with Python numbers (cheaper than numpy calls)."""
    tau = _check_temperature(temperature, greedy)
    M = num_mixture
    noise = None if greedy else Noise(steps, n, M, generator)
    draw = (one_draw if scalar else batch_draw)(stepper, noise, M, tau, greedy)
    if prefix is not None:
        for row in prefix[:-1]:  # S_0 .. S_{N-1}: the state after S_N's step
            stepper.set_input(row)
            stepper.advance()
        stepper.set_input(prefix[-1])  # S_N, read by the first drawn step
    return _loop(stepper, draw, steps, n, stop_at_p3, scalar=scalar)


def _loop(stepper, draw, steps: int, n: int, stop_at_p3: bool, scalar: bool) -> list[np.ndarray]:
    """Draw S_t, record it as a stroke-3 row, feed it back; each sketch ends at its own p3, the loop
    when all have. ``scalar``: the draw gives Python numbers for one sketch (rows kept in a list;
    the numpy calls of the batch bookkeeping would cost more than its step)."""
    rows = []  # scalar: (dx, dy, lift) per step
    out = np.zeros((min(steps, 256), n, 3), dtype=np.float32)  # [t, n, 3] stroke-3 rows; doubles as needed
    length = np.full(n, steps, dtype=np.int64)  # index of each sketch's p3
    alive = np.ones(n, dtype=bool)
    feed, append = stepper.feed, rows.append
    for t in range(steps):
        dx, dy, pen = draw(t)  # [n] each, or numbers
        if scalar:
            if pen == 2 and stop_at_p3:
                break
            append((dx, dy, pen == 1))
        else:
            if t == len(out):
                out = np.concatenate([out, np.zeros_like(out)])
            out[t, :, 0], out[t, :, 1] = dx, dy  # float32, as fed back
            out[t, :, 2] = pen == 1  # lift = p2
            ended = pen == 2
            if stop_at_p3 and ended.any():
                ended &= alive
                length[ended] = t
                alive &= ~ended
                if not alive.any():
                    break
        feed(dx, dy, pen)  # S_t, read by the next step
    if scalar:
        return [np.array(rows, dtype=np.float32).reshape(-1, 3)]
    return [np.ascontiguousarray(out[: length[i], i]) for i in range(n)]


def sample(model, n: int = 1, z=None, temperature: float = 1.0, greedy: bool = False, max_len: int | None = None,
           generator: torch.Generator | None = None, *, fast: bool | None = None, prefix=None,
           stop_at_p3: bool = True) -> list[np.ndarray]:
    """Decode ``n`` sketches together; a list of float32 stroke-3 arrays in normalised units.

    ``z``: [N_z] or [n, N_z] latent vectors (conditional model); None draws z ~ N(0, I) from
    ``generator``. ``max_len`` defaults to the model's N_max. A sketch whose first pen state is p3
    comes back with 0 rows. All noise comes from ``generator`` (torch's default one if None).
    ``prefix``: a normalised stroke-3 drawing the decoder reads first (every sketch continues it; the
    result is the continuation, at most ``max_len`` minus its length points). ``fast`` defaults to
    the library's one switch (:func:`sketchlib.fast.enabled`); ``fast=False`` is the reference path: ``model.step`` and :func:`sample_outputs` at every step (the same sketches as
    the fast path, up to float32 rounding). ``stop_at_p3=False`` runs all ``max_len`` steps (timing).
    """
    hp = _model_hp(model)
    _check_temperature(temperature, greedy)
    fast = fast_paths.is_on() if fast is None else fast
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    T = _check_max_len(max_len, hp.max_seq_len)
    s5 = None
    if prefix is not None:
        s3 = validate_stroke3(prefix)
        if len(s3) >= T:
            raise ValueError(f"the drawing has {len(s3)} points, no room left before max_len = {T}")
        s5, T = stroke3_to_stroke5(s3).astype(np.float32), T - len(s3)  # [N + 1, 5], S_0..S_N
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        # numpy path: all of it on one torch thread (and numpy's BLAS on torch's count): a torch op
        # on two threads just before the loop leaves an OpenMP thread spinning for ~10 ms on the
        # core that OpenBLAS needs
        with torch.inference_mode(), (cpu_threads() if fast and _numpy_step_applies(model, device)
                                      else contextlib.nullcontext()):
            z, n = _prepare_z(model, int(n), z, generator)
            return decode(model, z, n, T, temperature=temperature, greedy=greedy, generator=generator,
                          prefix=s5, fast=fast, stop_at_p3=stop_at_p3)
    finally:
        model.train(was_training)


def _batch(model, sketches) -> tuple[torch.Tensor, torch.Tensor]:
    hp = _model_hp(model)
    if isinstance(sketches, np.ndarray) and sketches.ndim == 2:
        sketches = [sketches]
    if len(sketches) == 0:
        raise ValueError("no sketches given")
    strokes, lengths = pad_batch(list(sketches), hp.max_seq_len)
    device = next(model.parameters()).device
    return torch.from_numpy(strokes).to(device), torch.from_numpy(lengths).to(device)


def encode(model, sketches, *, return_sigma_hat: bool = False):
    """The encoder's mean mu [B, N_z] for normalised stroke-3 sketches (the deterministic code of each).

    With ``return_sigma_hat`` also sigma_hat (so z = mu + exp(sigma_hat / 2) eps can be drawn).
    """
    hp = _model_hp(model)
    if not hp.conditional:
        raise ValueError("an unconditional model has no encoder")
    strokes, lengths = _batch(model, sketches)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():  # not inference_mode: the caller may use mu in ordinary tensor code
            mu, sigma_hat = model.encode(strokes, lengths)
    finally:
        model.train(was_training)
    return (mu, sigma_hat) if return_sigma_hat else mu


def reconstruct(model, sketches, temperature: float = 1.0, greedy: bool = False, *, sample_z: bool = False,
                max_len: int | None = None, generator: torch.Generator | None = None) -> list[np.ndarray]:
    """Encode ``sketches`` (normalised stroke-3) and decode one sketch from each code.

    The code is mu (``sample_z=False``, deterministic) or z = mu + sigma * eps with eps from
    ``generator`` (``sample_z=True``, as the reference's ``encode`` does).
    """
    mu, sigma_hat = encode(model, sketches, return_sigma_hat=True)
    z = mu
    if sample_z:
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        z = mu + torch.exp(sigma_hat / 2) * eps
    return sample(model, n=z.shape[0], z=z, temperature=temperature, greedy=greedy, max_len=max_len,
                  generator=generator)


def interpolate(z0, z1, steps: int, method: str = "slerp") -> torch.Tensor:
    """``steps`` latent vectors from z0 to z1 inclusive, [steps, N_z].

    ``lerp``: (1 - t) z0 + t z1. ``slerp`` (spherical, as in the paper's figures):
    sin((1 - t) w) / sin w * z0 + sin(t w) / sin w * z1, w the angle between z0 and z1; it falls back
    to lerp when the vectors are (anti)parallel within float precision.
    """
    z0 = torch.as_tensor(z0, dtype=torch.float32).reshape(-1)
    z1 = torch.as_tensor(z1, dtype=torch.float32).reshape(-1)
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 differ in shape: {list(z0.shape)} vs {list(z1.shape)}")
    if int(steps) != steps or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    t = torch.linspace(0.0, 1.0, int(steps), dtype=torch.float64).unsqueeze(1)  # [steps, 1]
    a, b = z0.double(), z1.double()
    if method == "lerp":
        out = (1 - t) * a + t * b
    elif method == "slerp":
        na, nb = a.norm(), b.norm()
        cos = (a @ b) / (na * nb) if na > 0 and nb > 0 else torch.tensor(1.0, dtype=torch.float64)
        omega = torch.arccos(cos.clamp(-1.0, 1.0))
        so = torch.sin(omega)
        if so.abs() < 1e-7:
            out = (1 - t) * a + t * b
        else:
            out = torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b
    else:
        raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")
    out = out.float()
    out[0], out[-1] = z0, z1  # exact endpoints
    return out
