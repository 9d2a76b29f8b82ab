"""The plain LSTM decoder's sampling step fused in torch: the GPU's fast path for :mod:`sketchlib.sample`.

The decoder reads x_i = [S_{i-1}; z], so x_i W_xh + b = S_{i-1} W_s + (z W_z + b): the second term is
the same at every step and is computed once, with the forget bias folded in. What remains is one
matmul [S_{i-1}; h] @ [W_s; W_hh] per step, one sigmoid and one tanh over all four gate blocks
(2 kernels instead of 4), then c and h. Tested equal to ``model.step``. (On the CPU
:class:`sketchlib.fast.numpy_lstm.NumpyLSTM` is faster still.)
"""

from __future__ import annotations

import torch


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
