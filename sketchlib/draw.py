"""The MDN draw: one step's (dx, dy, pen) from the decoder's outputs y_i, and the noise it uses.

Temperature tau (one convention, the paper's):

    Pi_k  = softmax(pi_hat / tau)_k            q = softmax(q_hat / tau)
    sigma_x -> sigma_x * sqrt(tau), sigma_y -> sigma_y * sqrt(tau)   (variance sigma^2 * tau; rho unchanged)

so the variance of a component scales by tau and, as tau -> 0, Pi and q become one-hot on their
argmax. This is what the paper states ("sigma^2 tau") and what the browser demo and the PyTorch
ports do. The reference's Python sampler (``sketch_rnn`` ``sample``) instead multiplies sigma by
tau (it calls ``sample_gaussian_2d(..., np.sqrt(temp))``, which squares it again), i.e. variance
sigma^2 tau^2; at tau = 1 the two agree. (Noted in the book's "Notes on fidelity".)

A categorical draw is argmax(logits / tau + G) with G standard Gumbel noise (:func:`gumbel`),
computed as argmax(logits + tau G) (the same order for tau > 0); the offset is a bivariate normal
draw from two standard normals (e1, e2). All of it comes from one ``torch.Generator`` through
:class:`Noise`, so a seed fixes a sketch. Two spellings of the same arithmetic:
:func:`sample_outputs` on numpy arrays (n sketches), and :func:`_choose_one` / :func:`_offset_one`
on Python floats (one sketch, where a numpy call on a [1, k] array would cost more than the maths).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from sketchlib.nn import mdn

#: The most bytes of noise :class:`Noise` draws at once (sketches stop at p3, so most is never read).
NOISE_BLOCK_BYTES = 64 << 20


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


class Noise:
    """The draw's noise for ``steps`` steps of ``n`` sketches: g_pi [n, M], g_pen [n, 3], eps [n, 2] per step.

    Drawn from ``generator`` in blocks of steps, each block in three calls ([B, n, M] Gumbel,
    [B, n, 3] Gumbel, [B, n, 2] normal), when the loop first reaches it. One block holds every step
    up to :data:`NOISE_BLOCK_BYTES`, so the usual run draws exactly what one up-front call would;
    a huge ``steps`` (``max_len=10**9``) allocates one block, not noise for every step it might run.
    """

    def __init__(self, steps: int, n: int, M: int, generator: torch.Generator | None):
        self.n, self.M, self.generator = n, M, generator
        per_step = n * (M + 5) * 8  # bytes of float64 noise a step
        self.block = max(1, min(int(steps), NOISE_BLOCK_BYTES // per_step))
        self.start = None  # first step of the block in hand
        self.g_pi = self.g_pen = self.eps = None

    def _load(self, t: int) -> None:
        B = self.block
        self.start = t - t % B
        self.g_pi = gumbel((B, self.n, self.M), self.generator)  # [B, n, M]
        self.g_pen = gumbel((B, self.n, 3), self.generator)  # [B, n, 3]
        self.eps = torch.randn((B, self.n, 2), generator=self.generator, dtype=torch.float64).numpy()  # [B, n, 2]

    def block_at(self, t: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """(first step of the block, g_pi, g_pen, eps) for the block holding step t (steps run in order)."""
        if self.start is None or t >= self.start + self.block:
            self._load(t)
        return self.start, self.g_pi, self.g_pen, self.eps

    def at(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(g_pi [n, M], g_pen [n, 3], eps [n, 2]) of step t."""
        s, g_pi, g_pen, eps = self.block_at(t)
        return g_pi[t - s], g_pen[t - s], eps[t - s]


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

    :func:`sample_outputs`' arithmetic in Python floats (``e`` the pair (e1, e2)).
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


def batch_draw(stepper, noise: Noise | None, M: int, tau: float, greedy: bool):
    """``draw(t) -> (dx [n], dy [n], pen [n])``: one step of ``stepper`` and :func:`sample_outputs` on its y."""

    def draw(t):
        y = stepper.step()  # [n, 6M+3]
        if greedy:
            return sample_outputs(y, M, tau, True)
        g_pi, g_pen, eps = noise.at(t)
        return sample_outputs(y, M, tau, False, g_pi=g_pi, g_pen=g_pen, eps=eps)

    return draw


def one_draw(dec, noise: Noise | None, M: int, tau: float, greedy: bool):
    """``draw(t) -> (dx, dy, pen)`` as Python numbers for ONE sketch on a numpy stepper
    (:class:`sketchlib.fast.numpy_lstm.NumpyLSTM`): :func:`batch_draw`'s result, computing less.

    Of y it computes only what the draw reads: (q_hat, pi_hat), 3 + M rows of [W_y | b_y] [h; 1],
    then the chosen component's five rows (every M-th from 3 + M + k, a strided view that BLAS
    reads in place): 3 + M + 5 of the 6M + 3 rows; then :func:`_choose_one` and :func:`_offset_one`.
    """
    hx, Wy = dec.hx, dec.Wy
    W_head, head = Wy[:3 + M], np.empty(3 + M, dtype=np.float32)  # [3 + M, H + 1], [3 + M]
    lo = hi = 0  # the noise of steps lo..hi-1 as Python floats, in gs and es
    gs = es = None

    def draw(t):
        nonlocal lo, hi, gs, es
        dec.advance()  # h_t into x
        np.dot(W_head, hx, head)  # (q_hat, pi_hat)
        if greedy:
            g = e = None
        else:
            if t >= hi:  # up to 1024 lists of 3 + M (y[:3 + M]'s layout) and pairs (e1, e2)
                s, g_pi, g_pen, eps = noise.block_at(t)
                i, j = t - s, min(t - s + 1024, len(g_pi))
                gs = (tau * np.concatenate([g_pen[i:j, 0], g_pi[i:j, 0]], axis=1)).tolist()
                es, lo, hi = eps[i:j, 0].tolist(), t, s + j
            g, e = gs[t - lo], es[t - lo]
        pen, k = _choose_one(head.tolist(), greedy, g)
        p = np.dot(Wy[3 + M + k::M], hx).tolist()  # (mu_x, mu_y, sigma_hat_x, sigma_hat_y, rho_hat) of component k
        dx, dy = _offset_one(p, tau, greedy, e)
        return dx, dy, pen

    return draw
