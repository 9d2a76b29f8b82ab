"""The Layer Normalisation LSTM cell of the Sketch-RNN reference (Ba, Kiros & Hinton 2016).

The same gates as the plain LSTM, but each of the four gate pre-activations is normalised on its
own over the H units before the nonlinearity, and so is the new cell state before ``tanh``::

    a   = W_xh^T x_i + W_hh^T h_{i-1}               no bias: each LN's shift takes its place
    â_k = LN_k(a_k)   for k in (i, g, f, o)          own gain γ_k and shift β_k per gate
    c_i = σ(â_f + forget_bias) ⊙ c_{i-1} + σ(â_i) ⊙ drop(tanh(â_g))
    h_i = σ(â_o) ⊙ tanh(LN_c(c_i))

    LN(v) = γ ⊙ (v - mean(v)) / sqrt(var(v) + eps) + β,  eps = 1e-3,  mean/var over the H units

Normalising keeps every gate in the sensitive range of its sigmoid whatever the scale of the
input, which makes long sequences train more steadily.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sketchlib.fast.bptt import RecurrentWeight
from sketchlib.fast.fusion import fused
from sketchlib.nn.lstm import (LSTMState, RecurrentCell, _stack, _stack_masks, _unstack, glorot_uniform_, orthogonal_per_gate_,
                            recurrent_dropout_masks)


def layer_norm(v: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    """LN(v) = gain ⊙ (v - mean(v)) / sqrt(var(v) + eps) + shift, mean and (biased) var over the last dim.

    ``gain`` and ``shift`` broadcast against v: [H] for one vector, [4, H] for v [B, 4, H] (one pair per gate).
    """
    return torch.addcmul(shift, F.layer_norm(v, v.shape[-1:], eps=eps), gain)


def _layer_norm_lstm_update(a, c, mask, gain, shift, cell_gain, cell_shift, eps: float):
    """The element-wise part of a step: (h_i, c_i) from the gate pre-activations a [.., 4, H] and c_{i-1} [.., H].

    ``shift`` carries the forget bias on the f row; gains and shifts broadcast against a and c.
    """
    a = torch.addcmul(shift, F.layer_norm(a, a.shape[-1:], eps=eps), gain)  # each gate normalised on its own
    s = torch.sigmoid(a)
    g = torch.tanh(a[..., 1, :])
    if mask is not None:
        g = g * mask
    c = torch.addcmul(s[..., 2, :] * c, s[..., 0, :], g)
    c_norm = torch.addcmul(cell_shift, F.layer_norm(c, c.shape[-1:], eps=eps), cell_gain)
    return s[..., 3, :] * torch.tanh(c_norm), c


layer_norm_lstm_update = fused(_layer_norm_lstm_update)


class LayerNormLSTMCell(RecurrentCell):
    """LSTM cell with layer normalisation on each gate and on the cell state, as the reference's.

    Parameters::

        W_xh [D, 4H]  Glorot-uniform      W_hh [H, 4H]  orthogonal per gate block   (no bias)
        gate_gain [4H] = 1, gate_shift [4H] = 0      one (γ, β) pair per gate, gate order (i, g, f, o)
        cell_gain [H] = 1,  cell_shift [H] = 0       LN_c on the new cell state

    Equations (per step)::

        a   = x_i W_xh + h_{i-1} W_hh  ->  (a_i, a_g, a_f, a_o), each layer-normed on its own
        c_i = σ(â_f + forget_bias) ⊙ c_{i-1} + σ(â_i) ⊙ drop(tanh(â_g))
        h_i = σ(â_o) ⊙ tanh(LN_c(c_i))
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0, dropout_keep: float = 1.0,
                 eps: float = 1e-3):
        super().__init__()
        if not 0.0 < dropout_keep <= 1.0:
            raise ValueError(f"dropout_keep is a keep probability in (0, 1], got {dropout_keep!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.forget_bias, self.dropout_keep, self.eps = float(forget_bias), float(dropout_keep), float(eps)
        self.state_sizes = (hidden_size, hidden_size)  # (h, c)
        self.W_xh = nn.Parameter(torch.empty(input_size, 4 * hidden_size))
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size))
        self.gate_gain = nn.Parameter(torch.empty(4 * hidden_size))
        self.gate_shift = nn.Parameter(torch.empty(4 * hidden_size))
        self.cell_gain = nn.Parameter(torch.empty(hidden_size))
        self.cell_shift = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_uniform_(self.W_xh)
        orthogonal_per_gate_(self.W_hh)
        for gain in (self.gate_gain, self.cell_gain):
            nn.init.ones_(gain)
        for shift in (self.gate_shift, self.cell_shift):
            nn.init.zeros_(shift)

    # -- one step (the plain path) -----------------------------------------------------------
    def forward(self, x: torch.Tensor, state: LSTMState, mask: torch.Tensor | None = None,
                return_gates: bool = False):
        """One step. x [B, D], state (h, c) each [B, H] -> (h_i, (h_i, c_i)) [, gates dict]."""
        h, c = state
        B, H = x.shape[0], self.hidden_size
        a = (x @ self.W_xh + h @ self.W_hh).view(B, 4, H)  # [B, 4, H], gates (i, g, f, o)
        a = layer_norm(a, self.gate_gain.view(4, H), self.gate_shift.view(4, H), self.eps)  # per gate
        a_i, a_g, a_f, a_o = a.unbind(1)
        i = torch.sigmoid(a_i)
        f = torch.sigmoid(a_f + self.forget_bias)
        g = torch.tanh(a_g)
        o = torch.sigmoid(a_o)
        if mask is None and self.dropout_active():
            mask = recurrent_dropout_masks(1, B, H, self.dropout_keep, x)[0]
        g_kept = g if mask is None else g * mask
        c = f * c + i * g_kept
        h = o * torch.tanh(layer_norm(c, self.cell_gain, self.cell_shift, self.eps))
        if return_gates:
            return h, (h, c), dict(i=i, f=f, g=g, o=o, c=c, h=h)
        return h, (h, c)

    def _fast_sequence(self, x: torch.Tensor, state: LSTMState, masks: torch.Tensor | None):
        (out,), (state,) = LayerNormLSTMCell.stacked_fast_sequence([self], [x], [state], [masks])
        return out, state

    @staticmethod
    def stacked_fast_sequence(cells, xs, states, masks):
        """The fast path for K cells at once (the encoder runs both directions in one loop).

        Before the loop: every input projection x W_xh, one matmul per cell; the forget bias is
        folded into the f gate's LN shift. Per step: one (batched) matmul h W_hh (weight gradient
        deferred, :mod:`sketchlib.fast.bptt`) and :func:`layer_norm_lstm_update`: the four gate LNs as one
        ``layer_norm`` call and the element-wise update (fusable, :mod:`sketchlib.fast.fusion`).
        xs[k] [B, T, D], states[k] (h, c), masks[k] [T, B, H] or None -> ([B, T, H] per cell, states).
        With K = 1 the tensors simply have no leading K dimension.
        """
        (B, T, D), H, eps = xs[0].shape, cells[0].hidden_size, cells[0].eps
        pre = _stack([(x.transpose(0, 1).reshape(T * B, D) @ cell.W_xh).view(T, B, 4 * H)
                      for cell, x in zip(cells, xs)], dim=1)  # [T, (K,) B, 4H]
        W_hh = RecurrentWeight(_stack([cell.W_hh for cell in cells], dim=0))  # [(K,) H, 4H]
        gain = _stack([cell.gate_gain.view(4, H) for cell in cells], dim=0).unsqueeze(-3)  # [(K,) 1, 4, H]
        shift = _stack([cell.gate_shift.view(4, H) + cell._forget_shift(xs[0]) for cell in cells],
                       dim=0).unsqueeze(-3)
        cell_gain = _stack([cell.cell_gain for cell in cells], dim=0).unsqueeze(-2)  # [(K,) 1, H]
        cell_shift = _stack([cell.cell_shift for cell in cells], dim=0).unsqueeze(-2)
        h = _stack([s[0] for s in states], dim=0)  # [(K,) B, H]
        c = _stack([s[1] for s in states], dim=0)
        masks = _stack_masks(masks)  # [T, (K,) B, H] or None
        outputs = []
        for t, pre_t in enumerate(pre.unbind(0)):  # unbind: one backward op for all T slices
            a = W_hh.step(pre_t, h, t).unflatten(-1, (4, H))  # [(K,) B, 4, H]
            h, c = layer_norm_lstm_update(a, c, None if masks is None else masks[t], gain, shift, cell_gain,
                                          cell_shift, eps)
            outputs.append(h)
        return _unstack(torch.stack(outputs, dim=-2), h, c, len(cells))  # outputs [(K,) B, T, H]
