"""The plain LSTM decoder's sampling step fused in torch: the GPU's fast path for :mod:`sketchlib.sample`.

The decoder reads x_i = [S_{i-1}; z], so x_i W_xh + b = S_{i-1} W_s + (z W_z + b): the second term is
the same at every step and is computed once, with the forget bias folded in. What remains is one
matmul [S_{i-1}; h] @ [W_s; W_hh] per step, one sigmoid and one tanh over all four gate blocks
(2 kernels instead of 4), then c and h. Tested equal to ``model.step``. (On the CPU
:class:`sketchlib.fast.numpy_lstm.NumpyLSTM` is faster still.)
"""

from __future__ import annotations

import numpy as np
import torch

from sketchlib.data.strokes import START_TOKEN


def fused_lstm_step(model, z: torch.Tensor | None, n: int):
    """(initial state, step) where ``step(s_prev [n, 5], (h, c)) -> (y [n, 6M+3], (h, c))``.

    ``model.decoder`` must be the plain LSTM decoder (an LSTMCell, no dropout); z [n, N_z] or None.
    """
    state = model.initial_state(z, n)
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


class TorchStepper:
    """A torch ``step(s_prev, state)`` (``model.step``, or :func:`fused_lstm_step`'s) behind the stepper
    interface of :func:`sketchlib.sample.run_stepper`, numpy in and out."""

    def __init__(self, step, state, device: torch.device, n: int):
        self._step, self.state, self.device, self.n = step, state, device, n
        self._rows = np.arange(n)
        self.set_input(START_TOKEN)  # S_0

    def set_input(self, s) -> None:
        """S_{i-1} [n, 5] (or [5] for every sketch)."""
        rows = np.empty((self.n, 5), dtype=np.float32)
        rows[:] = np.asarray(s, dtype=np.float32).reshape(-1, 5)
        self.s = torch.from_numpy(rows).to(self.device)

    def feed(self, dx, dy, pen) -> None:
        """S_{i-1} = (dx, dy, one-hot pen), [n] each."""
        s = np.zeros((self.n, 5), dtype=np.float32)
        s[:, 0], s[:, 1] = dx, dy
        s[self._rows, 2 + np.asarray(pen)] = 1.0
        self.s = torch.from_numpy(s).to(self.device)

    def advance(self) -> None:
        _, self.state = self._step(self.s, self.state)

    def step(self) -> np.ndarray:
        y, self.state = self._step(self.s, self.state)
        return y.float().cpu().numpy()  # [n, 6M+3]
