"""Sampling: draw sketches from the decoder, reconstruct, encode, and interpolate in z.

Generation (Ha & Eck 2017, section 3.3): start from S_0 = (0, 0, 1, 0, 0); at step i the decoder
reads [S_{i-1}; z] and its state and emits y_i, i.e. a mixture of M bivariate normals
(Pi, mu_x, mu_y, sigma_x, sigma_y, rho) for the offset (dx, dy) and pen logits q_hat for
(p1, p2, p3). We draw S_i from it, feed it back, and stop at p3 or after N_max steps.

Temperature tau (one convention, the paper's):

    Pi_k  = softmax(pi_hat / tau)_k            q = softmax(q_hat / tau)
    sigma_x -> sigma_x * sqrt(tau), sigma_y -> sigma_y * sqrt(tau)   (variance sigma^2 * tau; rho unchanged)

so the variance of a component scales by tau and, as tau -> 0, Pi and q become one-hot on their
argmax. This is what the paper states ("sigma^2 tau") and what the browser demo and the PyTorch
ports do. The reference's Python sampler (``sketch_rnn`` ``sample``) instead multiplies sigma by
tau (it calls ``sample_gaussian_2d(..., np.sqrt(temp))``, which squares it again), i.e. variance
sigma^2 tau^2; at tau = 1 the two agree. (Noted in the book's "Notes on fidelity".)

Greedy mode: the argmax component, its mean offset and the argmax pen state (no noise at all).

Speed: sketches are decoded as a batch (each stops at its own p3; the loop ends when all have),
and every random number is drawn up front in three tensor calls from ``generator``. ``fast=False``
is the reference path: ``model.step`` at every step and :func:`sample_outputs` on its y.
``fast=True`` computes the same equations faster where that is exact:

* the plain LSTM decoder (eval mode, no input / output dropout) on the CPU steps in numpy float32
  (:class:`sketchlib.fast.numpy_lstm.NumpyLSTM`): per step one BLAS product for the four gates (bias and
  forget bias folded in; z W_z, constant in time, computed once), one for y, and six or seven
  in-place element-wise calls; no allocation and no torch <-> numpy conversion. numpy's BLAS runs
  on torch's thread count and torch on one thread meanwhile (:func:`sketchlib.fast.numpy_lstm.cpu_threads`);
* one sketch computes only the rows of y it draws from ((q_hat, pi_hat), then the chosen
  component's five) and draws with Python floats (:func:`_choose_one`, :func:`_offset_one`), not
  with a dozen numpy calls on [1, k] arrays;
* on a GPU the LSTM decoder takes the fused torch step of :func:`_stepper`; the LayerNorm and
  Hyper cells use ``model.step``.

Each is tested equal to the reference path (y and state to float32 rounding, the same sketches for
the same generator). For the 512-unit decoder on a 2-core CPU (``bench/sampling.py``) one sketch of
250 steps went from about 100-130 ms to about 17-30 ms, depending on the machine's load; a batch
of 64 (about 400 ms) is bound by its [4H, 518] x [518, 64] product per step, about 1 ms, near
this CPU's float32 peak.
"""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import numpy as np
import torch

from sketchlib.nn import mdn
from sketchlib.fast.numpy_lstm import NumpyLSTM, cpu_threads
from sketchlib.data.strokes import START_TOKEN, pad_batch


class _Parts(NamedTuple):
    q_hat: np.ndarray  # [n, 3] pen logits
    pi_hat: np.ndarray  # [n, M] mixture logits
    mu_x: np.ndarray  # [n, M]
    mu_y: np.ndarray
    sigma_x: np.ndarray  # exp(sigma_hat_x)
    sigma_y: np.ndarray
    rho: np.ndarray  # tanh(rho_hat)


def _sigma_np(sigma_hat: np.ndarray) -> np.ndarray:
    """sigma = exp(sigma_hat), sigma_hat floored as :attr:`sketchlib.nn.mdn.MixtureParams.sigma_x` does."""
    return np.exp(np.maximum(sigma_hat, mdn.LOG_SIGMA_MIN))


def _rho_np(rho_hat: np.ndarray) -> np.ndarray:
    """rho = tanh(rho_hat), kept inside (-1, 1) as :attr:`sketchlib.nn.mdn.MixtureParams.rho` does."""
    return np.minimum(np.maximum(np.tanh(rho_hat), -(1 - mdn.RHO_EPS)), 1 - mdn.RHO_EPS)  # np.clip, minus its overhead


def _split_numpy(y: np.ndarray, M: int) -> _Parts:
    """numpy twin of :func:`sketchlib.nn.mdn.split` and its properties (same layout and bounds; tested equal)."""
    assert mdn.OUTPUT_LAYOUT == ("q_hat", "pi_hat", "mu_x", "mu_y", "sigma_hat_x", "sigma_hat_y", "rho_hat")
    q_hat, pi_hat, mu_x, mu_y, sx_hat, sy_hat, rho_hat = np.split(y, np.cumsum([3] + [M] * 5), axis=1)
    return _Parts(q_hat, pi_hat, mu_x, mu_y, _sigma_np(sx_hat), _sigma_np(sy_hat), _rho_np(rho_hat))


def _check_temperature(temperature: float, greedy: bool) -> float:
    tau = float(temperature)
    if not greedy and not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"temperature must be a positive number (use greedy=True for the argmax), got {temperature!r}")
    return tau


def gumbel(shape, generator: torch.Generator | None = None) -> np.ndarray:
    """Standard Gumbel noise G = -log(-log U): argmax(logits + G) is a draw from softmax(logits)."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    u = u.clamp_(min=1e-300)  # U = 0 (possible in principle) would give log(0)
    return (-torch.log(-torch.log(u))).numpy()


def sample_outputs(y: np.ndarray, num_mixture: int, temperature: float = 1.0, greedy: bool = False, *,
                   g_pi: np.ndarray | None = None, g_pen: np.ndarray | None = None,
                   eps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (dx, dy, pen) for each row of the decoder outputs ``y`` [n, 6M+3] (layout :data:`sketchlib.nn.mdn`).

    ``g_pi`` [n, M] and ``g_pen`` [n, 3] are Gumbel noise (:func:`gumbel`) and ``eps`` [n, 2] standard
    normal noise; the draw is then deterministic, which keeps the maths testable and the noise
    reproducible from one generator. Returns dx [n], dy [n] (float) and pen [n] (0, 1, 2 = p1, p2, p3).

    Component k ~ Categorical(softmax(pi_hat / tau)) via argmax(pi_hat / tau + g_pi), computed as
    argmax(pi_hat + tau g_pi) (the same order, as tau > 0; the one-sketch fast path scales all the
    noise by tau once), likewise the pen; then with sigma' = sigma * sqrt(tau) and
    rho = tanh(rho_hat) (bounded as in :mod:`sketchlib.nn.mdn`)::

        dx = mu_x + sigma_x' e1
        dy = mu_y + sigma_y' (rho e1 + sqrt(1 - rho^2) e2)
    """
    tau = _check_temperature(temperature, greedy)
    y = np.asarray(y)
    M = num_mixture
    if y.ndim != 2 or y.shape[1] != 6 * M + 3:
        raise ValueError(f"y must have shape [n, 6M+3] = [n, {6 * M + 3}], got {list(y.shape)}")
    q_hat, pi_hat = y[:, :3], y[:, 3:3 + M]  # views, reference layout (checked against mdn in the tests)
    if greedy:
        k, pen = pi_hat.argmax(1), q_hat.argmax(1)
    else:
        k, pen = (pi_hat + tau * g_pi).argmax(1), (q_hat + tau * g_pen).argmax(1)  # in float64
    # the chosen component's (mu_x, mu_y, sigma_hat_x, sigma_hat_y, rho_hat): [n, 5], one gather
    # from y's last 5M entries seen as [n, 5, M]
    p = y[:, 3 + M:].reshape(len(k), 5, M)[np.arange(len(k)), :, k].astype(np.float64)
    if greedy:
        return p[:, 0], p[:, 1], pen
    sig = _sigma_np(p[:, 2:4]) * math.sqrt(tau)  # [n, 2] sigma * sqrt(tau)
    rho = _rho_np(p[:, 4])
    e1, e2 = eps[:, 0], eps[:, 1]
    dx = p[:, 0] + sig[:, 0] * e1
    dy = p[:, 1] + sig[:, 1] * (rho * e1 + np.sqrt(1.0 - rho * rho) * e2)
    return dx, dy, pen


def _model_hp(model):
    hp = getattr(model, "hp", None)
    if hp is None:
        raise ValueError("model has no .hp (expected a sketchlib SketchRNN)")
    return hp


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
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.ndim == 1:
            z = z.unsqueeze(0)
        if z.ndim != 2 or z.shape[1] != hp.z_size:
            raise ValueError(f"z must have shape [N_z] or [n, N_z] with N_z = {hp.z_size}, got {list(z.shape)}")
        if z.shape[0] == 1 and n > 1:
            z = z.expand(n, -1)
        elif n not in (1, z.shape[0]):
            raise ValueError(f"n = {n} does not match the {z.shape[0]} latent vectors given")
    return z.to(device=device, dtype=torch.float32), z.shape[0]


def _choose_one(head: list[float], greedy: bool, g: list[float] | None) -> tuple[int, int]:
    """The pen state and the mixture component of ONE sketch, as :func:`sample_outputs` chooses them.

    ``head`` is (q_hat, pi_hat), the first 3 + M entries of y, and ``g`` tau times the pen's then the
    mixture's Gumbel noise, both as Python floats: the same float64 sums and first-maximum argmaxes
    as :func:`sample_outputs` (tested equal), without a numpy call on a [1, k] array (about 1 us
    each, against about 0.05 us for a float operation). Returns (pen, k).
    """
    s = head if greedy else [h + n for h, n in zip(head, g)]  # [q_hat | pi_hat] + tau [g_pen | g_pi]
    return s.index(max(s[:3])), s.index(max(s[3:]), 3) - 3


def _offset_one(p: list[float], tau: float, greedy: bool, e) -> tuple[float, float]:
    """(dx, dy) for ONE sketch from its chosen component's (mu_x, mu_y, sigma_hat_x, sigma_hat_y, rho_hat).

    :func:`sample_outputs`' arithmetic in Python floats (``e`` the pair (e1, e2)): a numpy call on a
    [1, k] array costs about 1 us, a float operation about 0.05 us.
    """
    mu_x, mu_y, sx_hat, sy_hat, rho_hat = p
    if greedy:
        return mu_x, mu_y
    root_tau = math.sqrt(tau)
    sx = math.exp(max(sx_hat, mdn.LOG_SIGMA_MIN)) * root_tau  # as _sigma_np, times sqrt(tau)
    sy = math.exp(max(sy_hat, mdn.LOG_SIGMA_MIN)) * root_tau
    rho = min(max(math.tanh(rho_hat), -(1 - mdn.RHO_EPS)), 1 - mdn.RHO_EPS)  # as _rho_np
    e1, e2 = e
    return mu_x + sx * e1, mu_y + sy * (rho * e1 + math.sqrt(1.0 - rho * rho) * e2)


def _plain_lstm_decoder(model) -> bool:
    """True where the decoder step is exactly the LSTM equations: an LSTMCell, eval mode, no input / output dropout."""
    from sketchlib.nn.lstm import LSTMCell

    dec = getattr(model, "decoder", None)
    cell = getattr(dec, "cell", None)
    return type(cell) is LSTMCell and not dec.input_drop and not dec.output_drop and not model.training


def _numpy_step_applies(model, device: torch.device) -> bool:
    """Whether the fast path is the numpy LSTM step (:class:`~sketchlib.fast.numpy_lstm.NumpyLSTM`): plain LSTM, CPU."""
    return device.type == "cpu" and _plain_lstm_decoder(model)


def _stepper(model, z: torch.Tensor | None, n: int, fast: bool = True):
    """(initial state, step) where ``step(s_prev [n, 5], state) -> (y [n, 6M+3], state)``, in torch.

    The generic step is ``model.step``. For the plain LSTM decoder (:func:`_plain_lstm_decoder`)
    a fused step computes the same equations with the constant part of the input projection
    hoisted out of the loop: x_i = [S_{i-1}; z], so x_i W_xh + b = S_{i-1} W_s + (z W_z + b), and
    [S_{i-1}; h] @ [W_s; W_hh] is one matmul per step. Tested equal to ``model.step``. (On the CPU
    :class:`~sketchlib.fast.numpy_lstm.NumpyLSTM` is faster still; this is the GPU's fast path.)
    """
    state = model.initial_state(z, n)
    if not (fast and _plain_lstm_decoder(model)):
        return state, lambda s_prev, st: model.step(s_prev, z, st)
    dec = model.decoder
    cell = dec.cell
    W_xh, H = cell.W_xh, cell.hidden_size  # [5 (+ N_z), 4H]
    W = torch.cat([W_xh[:5], cell.W_hh], 0)  # [5 + H, 4H]
    bias = cell.bias.expand(n, -1) if z is None else torch.addmm(cell.bias, z, W_xh[5:])  # [n, 4H]
    bias = bias.clone()
    bias[:, 2 * H:3 * H] += cell.forget_bias  # fold the forget bias into the constant part
    W_y, b_y = dec.to_y.weight.t(), dec.to_y.bias  # [H, 6M+3]

    def step(s_prev, st):
        h, c = st
        a = torch.addmm(bias, torch.cat([s_prev, h], 1), W)  # [n, 4H], gates in reference order i, g, f, o
        sig, tan = torch.sigmoid(a), torch.tanh(a)  # both on all four blocks: 2 kernels instead of 4
        c = torch.addcmul(sig[:, 2 * H:3 * H] * c, sig[:, :H], tan[:, H:2 * H])  # f * c + i * g
        h = sig[:, 3 * H:] * torch.tanh(c)  # o * tanh(c)
        return torch.addmm(b_y, h, W_y), (h, c)

    return state, step


def sample(model, n: int = 1, z=None, temperature: float = 1.0, greedy: bool = False, max_len: int | None = None,
           generator: torch.Generator | None = None, *, fast: bool = True) -> list[np.ndarray]:
    """Decode ``n`` sketches together; a list of float32 stroke-3 arrays in normalised units.

    ``z``: [N_z] or [n, N_z] latent vectors (conditional model); None draws z ~ N(0, I) from
    ``generator``. ``max_len`` defaults to the model's N_max. A sketch whose first pen state is p3
    comes back with 0 rows. All noise comes from ``generator`` (torch's default one if None).
    ``fast=False`` is the reference path: ``model.step`` and :func:`sample_outputs` at every step
    (the same sketches as the fast path, up to float32 rounding).
    """
    hp = _model_hp(model)
    tau = _check_temperature(temperature, greedy)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    T = hp.max_seq_len if max_len is None else int(max_len)
    if T < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len!r}")
    M = hp.num_mixture
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    numpy_step = fast and _numpy_step_applies(model, device)
    try:
        # numpy path: all of it on one torch thread (and numpy's BLAS on torch's count): a torch op
        # on two threads just before the loop leaves an OpenMP thread spinning for ~10 ms on the
        # core that OpenBLAS needs
        with torch.inference_mode(), (cpu_threads() if numpy_step else contextlib.nullcontext()):
            z, n = _prepare_z(model, int(n), z, generator)
            if greedy:
                g_pi = g_pen = eps = None
            else:  # all the noise for the whole run in three calls: [T, n, M], [T, n, 3], [T, n, 2]
                g_pi = gumbel((T, n, M), generator)
                g_pen = gumbel((T, n, 3), generator)
                eps = torch.randn((T, n, 2), generator=generator, dtype=torch.float64).numpy()
            if numpy_step:
                dec = NumpyLSTM(model, z, n)
                if n == 1:
                    return [_decode_one(dec, T, M, tau, greedy, g_pi, g_pen, eps)]
                step, feed = dec.step, dec.feed
            else:
                state, torch_step = _stepper(model, z, n, fast)
                step, feed = _torch_loop_fns(torch_step, state, device, n)
            out, length = _decode(step, feed, T, n, M, tau, greedy, g_pi, g_pen, eps)
    finally:
        model.train(was_training)
    return [np.ascontiguousarray(out[: length[i], i]) for i in range(n)]


def _torch_loop_fns(torch_step, state, device, n):
    """(step, feed) for :func:`_decode` around a torch ``step(s_prev, state)``."""
    box = {"state": state, "s": torch.from_numpy(np.tile(START_TOKEN, (n, 1))).to(device)}  # S_0, [n, 5]
    rows = np.arange(n)

    def step():
        y, box["state"] = torch_step(box["s"], box["state"])
        return y.cpu().numpy()  # [n, 6M+3]

    def feed(dx, dy, pen):
        s = np.zeros((n, 5), dtype=np.float32)  # S_t = (dx, dy, one-hot pen), fed back next step
        s[:, 0], s[:, 1] = dx, dy
        s[rows, 2 + pen] = 1.0
        box["s"] = torch.from_numpy(s).to(device)

    return step, feed


def _decode(step, feed, T, n, M, tau, greedy, g_pi, g_pen, eps):
    """The sampling loop for n sketches: (out [T, n, 3] stroke-3 rows, length [n] = index of each p3)."""
    out = np.zeros((T, n, 3), dtype=np.float32)  # stroke-3 rows as they are drawn
    length = np.full(n, T, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    for t in range(T):
        y = step()  # [n, 6M+3]
        dx, dy, pen = sample_outputs(y, M, tau, greedy, g_pi=None if greedy else g_pi[t],
                                     g_pen=None if greedy else g_pen[t], eps=None if greedy else eps[t])
        out[t, :, 0], out[t, :, 1] = dx, dy  # float32, as fed back
        out[t, :, 2] = pen == 1  # lift = p2
        ended = pen == 2
        if ended.any():
            ended &= alive
            length[ended] = t
            alive &= ~ended
            if not alive.any():
                break
        feed(dx, dy, pen)
    return out, length


def _decode_one(dec: NumpyLSTM, T, M, tau, greedy, g_pi, g_pen, eps) -> np.ndarray:
    """The sampling loop for ONE sketch on :class:`~sketchlib.fast.numpy_lstm.NumpyLSTM`: stroke-3 [<= T, 3].

    Of y it computes only what the draw reads: (q_hat, pi_hat), 3 + M rows of [W_y | b_y] [h; 1],
    then the chosen component's five rows (every M-th from 3 + M + k, a strided view that BLAS
    reads in place): 3 + M + 5 of the 6M + 3 rows. The draw is :func:`_choose_one` and
    :func:`_offset_one`, i.e. :func:`sample_outputs`' arithmetic.
    """
    if greedy:
        g = e = [None] * T
    else:
        g = (tau * np.concatenate([g_pen[:, 0], g_pi[:, 0]], axis=1)).tolist()  # T lists of 3 + M, y[:3 + M]'s layout
        e = eps[:, 0].tolist()  # T pairs (e1, e2)
    x, hx, Wy = dec.x1, dec.hx, dec.Wy  # x [5 + H + 1]: S_{i-1} in its first five entries
    W_head, head = Wy[:3 + M], np.empty(3 + M, dtype=np.float32)  # [3 + M, H + 1], [3 + M]
    rows = []
    for t in range(T):
        dec.advance()  # h_t into x
        np.dot(W_head, hx, head)  # (q_hat, pi_hat)
        pen, k = _choose_one(head.tolist(), greedy, g[t])
        if pen == 2:
            break
        p = np.dot(Wy[3 + M + k::M], hx).tolist()  # (mu_x, mu_y, sigma_hat_x, sigma_hat_y, rho_hat) of component k
        dx, dy = _offset_one(p, tau, greedy, e[t])
        rows.append((dx, dy, pen == 1))
        x[0], x[1], x[2], x[3], x[4] = dx, dy, 0.0, 0.0, 0.0  # S_t = (dx, dy, one-hot pen), fed back;
        x[2 + pen] = 1.0  # float32, so dx and dy are rounded as in the output
    return np.array(rows, dtype=np.float32).reshape(-1, 3)


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
