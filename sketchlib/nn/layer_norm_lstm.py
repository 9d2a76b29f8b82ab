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

from sketchlib.nn.lstm import LSTMState
from sketchlib.nn.recurrent import RecurrentCell, check_keep, gate_step, glorot_uniform_, orthogonal_per_gate_


def layer_norm(v: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    """LN(v) = gain ⊙ (v - mean(v)) / sqrt(var(v) + eps) + shift, mean and (biased) var over the last dim.

    ``gain`` and ``shift`` broadcast against v: [H] for one vector, [4, H] for v [B, 4, H] (one pair per gate).
    """
    return torch.addcmul(shift, F.layer_norm(v, v.shape[-1:], eps=eps), gain)


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
        self.dropout_keep = check_keep(dropout_keep)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.forget_bias, self.eps = float(forget_bias), float(eps)
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

    def forward(self, x: torch.Tensor, state: LSTMState, mask: torch.Tensor | None = None,
                return_gates: bool = False):
        """One step. x [B, D], state (h, c) each [B, H] -> (h_i, (h_i, c_i)) [, gates dict]."""
        h, c = state
        H = self.hidden_size
        a = (x @ self.W_xh + h @ self.W_hh).view(-1, 4, H)  # [B, 4, H], gates (i, g, f, o)
        a = layer_norm(a, self.gate_gain.view(4, H), self.gate_shift.view(4, H), self.eps)  # each gate on its own
        h, c, gates = gate_step(a, c, self.forget_bias, self.step_mask(mask, x),
                                norm=lambda c: layer_norm(c, self.cell_gain, self.cell_shift, self.eps))
        return (h, (h, c), gates) if return_gates else (h, (h, c))
