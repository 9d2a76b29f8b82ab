"""Sampling on a GPU as CUDA graphs: the plain LSTM decoder's step AND the MDN draw, K steps per replay.

On a GPU one decoder step is a dozen tiny kernels, and Python launches them more slowly than the
GPU runs them (one 250-step sketch took about 100 ms on an H200, launch-bound). Here the whole
step, S_{i-1} -> y_i -> (dx, dy, pen) -> S_i, is computed on the device, so K steps can be
recorded once as a CUDA graph and replayed with one launch:

* the noise of every step (:class:`sketchlib.draw.Noise`, the same numbers the other paths use)
  is drawn up front and copied into fixed buffers, K steps per replay;
* the draw is :func:`sketchlib.draw.sample_outputs`' arithmetic in torch (float64 on y):
  k = argmax(pi_hat + tau g_pi), pen = argmax(q_hat + tau g_pen) (one add on y's first 3 + M
  entries, tau g formed on the host), dx = mu_x + sigma_x' e1,
  dy = mu_y + sigma_y' (rho e1 + sqrt(1 - rho^2) e2), sigma' = sigma sqrt(tau); one_hot(pen) as a
  row of a 3 x 3 identity (no checks, so no host sync inside the graph);
* p3 has no control flow in the graph: every sketch keeps stepping, each chunk's draws S come back
  to the host in one copy (the one sync per replay), and a per-sketch ``alive`` mask there records
  where each sketch first drew p3 and stops the loop after the chunk in which the last one did.

The graph is cached per decoder and (n, K, greedy) and its weights are checked by storage address
and version counter (as :func:`sketchlib.fast.numpy_lstm.numpy_weights`), so a second ``sample``
replays at once; z, tau and the noise go into fixed buffers before each call. Without a GPU
(``graph=False``) the same chunk function runs eagerly on the same buffers: the CPU tests check
that bookkeeping against the plain path.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import torch

from sketchlib.draw import NOISE_BLOCK_BYTES, Noise
from sketchlib.nn import mdn

#: Steps per replay. Trained models stop after 30-120 points, so a few replays with a check between them.
CHUNK = 25

#: decoder -> {(n, K, greedy, graph): GraphSampler}; weak, so the graphs go with the model.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def graph_sampling_applies(steps: int, n: int, M: int) -> bool:
    """Whether the noise of all ``steps`` fits one :class:`Noise` block (drawn up front, as here)."""
    return steps * n * (M + 5) * 8 <= NOISE_BLOCK_BYTES


def _weights_key(dec) -> tuple:
    cell = dec.cell
    params = (cell.W_xh, cell.W_hh, cell.bias, dec.to_y.weight, dec.to_y.bias)
    return tuple((p.data_ptr(), p._version) for p in params) + (cell.forget_bias,)


def graph_sampler(model, n: int, greedy: bool, *, chunk: int | None = None, graph: bool | None = None) -> "GraphSampler":
    """The cached :class:`GraphSampler` for ``model``'s decoder and (n, chunk, greedy), rebuilt when a weight changed.

    ``chunk`` defaults to :data:`CHUNK`; ``graph`` to "on a GPU"."""
    chunk = CHUNK if chunk is None else int(chunk)
    dec = model.decoder
    device = dec.cell.W_hh.device
    graph = device.type == "cuda" if graph is None else bool(graph)
    key, wkey = (n, chunk, bool(greedy), graph), _weights_key(dec)
    per_dec = _CACHE.setdefault(dec, {})
    hit = per_dec.get(key)
    if hit is None or hit.weights_key != wkey:
        hit = per_dec[key] = GraphSampler(model, n, greedy, chunk=chunk, graph=graph)
    return hit


class GraphSampler:
    """K = ``chunk`` steps of the plain LSTM decoder and the MDN draw on fixed buffers; a CUDA graph with ``graph``.

    Use: :meth:`start` (z, tau, noise, S_0 and the initial state into the buffers), optionally
    :meth:`set_input` / :meth:`advance` for a prefix, then :meth:`run` -> the sketches.
    """

    def __init__(self, model, n: int, greedy: bool, *, chunk: int = CHUNK, graph: bool = False):
        dec = model.decoder
        cell = dec.cell
        if graph and cell.W_hh.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {cell.W_hh.device}")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.model, self.n, self.greedy, self.K, self.graph_enabled = model, n, bool(greedy), int(chunk), graph
        self.weights_key = _weights_key(dec)
        self.M, H = model.hp.num_mixture, cell.hidden_size
        dev = self.device = cell.W_hh.device
        with torch.no_grad():
            self.W = torch.cat([cell.W_xh[:5], cell.W_hh], 0).detach().clone()  # [5 + H, 4H]
            self.W_z = cell.W_xh[5:].detach().clone()  # [N_z, 4H] (empty if unconditional)
            self.b = cell.bias.detach().clone()
            self.b[2 * H:3 * H] += cell.forget_bias  # forget bias folded into the constant part
            self.W_y, self.b_y = dec.to_y.weight.detach().t().contiguous(), dec.to_y.bias.detach().clone()
        f32, f64, K, M = dict(device=dev), dict(device=dev, dtype=torch.float64), self.K, self.M
        self.bias = torch.zeros(n, 4 * H, **f32)  # z W_z + b (+ forget bias), per sketch
        self.h, self.c, self.s = (torch.zeros(n, H, **f32), torch.zeros(n, H, **f32), torch.zeros(n, 5, **f32))
        self.g_head = torch.zeros(K, n, 3 + M, **f64)  # this chunk's tau [g_pen | g_pi], laid out as y's head
        self.eps = torch.zeros(K, n, 2, **f64)
        self.root_tau = torch.ones((), **f64)
        self.S = torch.zeros(K, n, 5, **f32)  # this chunk's draws S_{t0+1} .. S_{t0+K}, stroke-5
        self.pen_rows = torch.eye(3, **f32)  # one_hot(pen) as a row lookup (no checks, no host sync)
        self.graph = None

    # -- one step and one chunk ----------------------------------------------------------------
    def _lstm(self, s, h, c):
        """The fused LSTM step (:func:`sketchlib.fast.torch_lstm.fused_lstm_step`): -> (y [n, 6M+3], h, c)."""
        H = self.h.shape[1]
        a = torch.addmm(self.bias, torch.cat([s, h], 1), self.W)  # [n, 4H], gates i, g, f, o
        sig, tan = torch.sigmoid(a), torch.tanh(a)
        c = torch.addcmul(sig[:, 2 * H:3 * H] * c, sig[:, :H], tan[:, H:2 * H])  # f c + i g
        h = sig[:, 3 * H:] * torch.tanh(c)  # o tanh(c)
        return torch.addmm(self.b_y, h, self.W_y), h, c

    def _draw(self, y, j: int):
        """(dx, dy [n] float64, pen [n] long) from y [n, 6M+3]: sample_outputs' arithmetic with chunk step j's noise."""
        M, n = self.M, self.n
        yd = y.double()
        head = yd[:, :3 + M] if self.greedy else yd[:, :3 + M] + self.g_head[j]  # [q_hat | pi_hat] + tau [g_pen | g_pi]
        pen, k = head[:, :3].argmax(1), head[:, 3:].argmax(1)
        p = yd[:, 3 + M:].view(n, 5, M).gather(2, k.view(n, 1, 1).expand(n, 5, 1))[:, :, 0]  # [n, 5] of component k
        if self.greedy:
            return p[:, 0], p[:, 1], pen
        sig = torch.exp(p[:, 2:4].clamp(min=mdn.LOG_SIGMA_MIN)).mul_(self.root_tau)  # [n, 2] sigma sqrt(tau)
        rho = torch.tanh(p[:, 4]).clamp_(-(1 - mdn.RHO_EPS), 1 - mdn.RHO_EPS)
        e1, e2 = self.eps[j].unbind(1)
        dx = torch.addcmul(p[:, 0], sig[:, 0], e1)
        dy = torch.addcmul(p[:, 1], sig[:, 1], torch.addcmul(rho * e1, torch.sqrt(1.0 - rho * rho), e2))
        return dx, dy, pen

    def _chunk(self) -> None:
        """K steps from the buffers back into them; S[j] = the step's draw S_{t0+j+1} (no control flow:
        which sketches have ended is read from S on the host, after the replay)."""
        s, h, c = self.s, self.h, self.c
        for j in range(self.K):
            y, h, c = self._lstm(s, h, c)
            dx, dy, pen = self._draw(y, j)
            s = torch.cat([torch.stack([dx, dy], 1).float(), self.pen_rows[pen]], 1)  # [n, 5], fed back in float32
            self.S[j].copy_(s)
        self.s.copy_(s), self.h.copy_(h), self.c.copy_(c)

    # -- what a caller does --------------------------------------------------------------------
    @torch.no_grad()
    def start(self, z: torch.Tensor | None, tau: float) -> None:
        """S_0, the initial state from z, the bias z W_z + b, tau into the buffers."""
        h0, c0 = self.model.initial_state(z, self.n)
        self.h.copy_(h0), self.c.copy_(c0)
        self.s.zero_()[:, 2] = 1.0  # S_0 = (0, 0, 1, 0, 0)
        self.bias.copy_(self.b.expand(self.n, -1) if z is None else torch.addmm(self.b, z, self.W_z))
        self.tau = float(tau)
        self.root_tau.fill_(math.sqrt(self.tau))

    @torch.no_grad()
    def set_input(self, s) -> None:
        """S_{i-1} [5] or [n, 5] (a point of a prefix)."""
        self.s.copy_(torch.as_tensor(np.asarray(s, dtype=np.float32)).reshape(-1, 5).expand(self.n, 5))

    @torch.no_grad()
    def advance(self) -> None:
        """One LSTM step from the buffers without a draw (teacher forcing a prefix)."""
        _, h, c = self._lstm(self.s, self.h, self.c)
        self.h.copy_(h), self.c.copy_(c)

    @torch.no_grad()
    def run(self, steps: int, noise: Noise | None, stop_at_p3: bool = True) -> list[np.ndarray]:
        """Up to ``steps`` steps, K per replay; each sketch ends at its first p3, the loop after the
        chunk in which the last live sketch drew one (the per-sketch ``alive`` mask, kept on the host)."""
        n, K = self.n, self.K
        if noise is not None:
            _, g_pi, g_pen, eps = noise.block_at(0)  # [steps, n, ·] float64: all of it (graph_sampling_applies)
            if len(g_pi) < steps:
                raise ValueError(f"the noise holds {len(g_pi)} steps, fewer than {steps}: use another stepper")
        length = np.full(n, steps, dtype=np.int64)
        alive = np.ones(n, dtype=bool)
        chunks = []
        for t0 in range(0, steps, K):
            if noise is not None:
                m = min(K, steps - t0)  # tau g in float64 here, as sample_outputs forms it
                head = self.tau * np.concatenate([g_pen[t0:t0 + m], g_pi[t0:t0 + m]], axis=2)  # [m, n, 3 + M]
                self.g_head[:m].copy_(torch.from_numpy(head))
                self.eps[:m].copy_(torch.from_numpy(np.ascontiguousarray(eps[t0:t0 + m])))
            self._replay()
            S = self.S.cpu().numpy()[: steps - t0]  # [<= K, n, 5], the one host sync per chunk
            chunks.append(S)
            if stop_at_p3:
                ended = S[:, :, 4] == 1  # [m, n] drew p3
                first = np.where(ended.any(0), ended.argmax(0) + t0, steps)
                length = np.where(alive, np.minimum(length, first), length)
                alive &= ~ended.any(0)
                if not alive.any():
                    break
        S = np.concatenate(chunks)  # [T, n, 5]
        out = np.ascontiguousarray(np.stack([S[..., 0], S[..., 1], S[..., 3]], axis=-1))  # (dx, dy, lift = p2)
        return [np.ascontiguousarray(out[: length[i], i]) for i in range(n)]

    def _replay(self) -> None:
        if not self.graph_enabled:
            self._chunk()
            return
        if self.graph is None:
            self._capture()
        self.graph.replay()

    def _capture(self) -> None:
        """Record one chunk; the warm-up chunk's writes are undone (buffers saved and put back)."""
        saved = [b.clone() for b in (self.s, self.h, self.c)]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._chunk()  # warm-up: cuBLAS sets itself up off the capture
        torch.cuda.current_stream(self.device).wait_stream(side)
        for b, v in zip((self.s, self.h, self.c), saved):
            b.copy_(v)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._chunk()


def graph_decode(model, z, n, steps, tau, greedy, noise, prefix, stop_at_p3) -> list[np.ndarray]:
    """:func:`sketchlib.sample.decode` on the CUDA-graph sampler (cached per model and batch): the prefix eagerly, then the replays."""
    sampler = graph_sampler(model, n, greedy)
    sampler.start(z, tau)
    if prefix is not None:
        for row in prefix[:-1]:
            sampler.set_input(row)
            sampler.advance()
        sampler.set_input(prefix[-1])
    return sampler.run(steps, noise, stop_at_p3)
