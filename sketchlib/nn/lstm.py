"""The LSTM cell, computed the way the Sketch-RNN reference computes it.

One step reads the input ``x_i`` and the previous state ``(h_{i-1}, c_{i-1})``::

    a   = W_xh^T x_i + W_hh^T h_{i-1} + b        one matmul for the four gates, reference order (i, g, f, o)
    i_i = σ(a_i)                                 input gate       (outline: i_i = σ(W_i·[h_{i-1}, x_i] + b_i))
    f_i = σ(a_f + forget_bias)                   forget gate      (f_i = σ(W_f·[h_{i-1}, x_i] + b_f), forget_bias = 1)
    g_i = tanh(a_g)                              candidate memory (c~_i = tanh(W_c·[h_{i-1}, x_i] + b_c))
    o_i = σ(a_o)                                 output gate
    c_i = f_i ⊙ c_{i-1} + i_i ⊙ drop(g_i)        recurrent dropout on the candidate only, new mask each step
    h_i = o_i ⊙ tanh(c_i)

The gate step is :func:`sketchlib.nn.recurrent.gate_step`, shared with the other two cells; the
state, the dropout masks and the loop over a sequence are :class:`~sketchlib.nn.recurrent.RecurrentCell`'s.
"""

from __future__ import annotations

import torch
from torch import nn

from sketchlib.nn.recurrent import (RecurrentCell, check_keep, gate_step, glorot_uniform_, orthogonal_per_gate_,
                                    recurrent_dropout_masks)

__all__ = ["LSTMCell", "LSTMState", "RecurrentCell", "glorot_uniform_", "orthogonal_per_gate_",
           "recurrent_dropout_masks"]

#: The state of an LSTM cell: (h, c), each [B, H].
LSTMState = tuple[torch.Tensor, torch.Tensor]


class LSTMCell(RecurrentCell):
    """LSTM cell of the reference: gates (i, g, f, o) from one matmul, forget bias, recurrent dropout.

    Parameters (reference names and shapes; ``x @ W`` convention)::

        W_xh [D, 4H]   Glorot-uniform          W_hh [H, 4H]   orthogonal per gate block
        bias [4H]      zeros

    Equations::

        a   = x_i W_xh + h_{i-1} W_hh + b  ->  (a_i, a_g, a_f, a_o)
        c_i = σ(a_f + forget_bias) ⊙ c_{i-1} + σ(a_i) ⊙ drop(tanh(a_g))
        h_i = σ(a_o) ⊙ tanh(c_i)

    ``forward`` runs one step (optionally returning the gates), ``sequence`` a whole sequence,
    ``trace`` records every gate at every step for plotting.
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0, dropout_keep: float = 1.0):
        super().__init__()
        self.dropout_keep = check_keep(dropout_keep)
        self.input_size, self.hidden_size, self.forget_bias = input_size, hidden_size, float(forget_bias)
        self.state_sizes = (hidden_size, hidden_size)  # (h, c)
        self.W_xh = nn.Parameter(torch.empty(input_size, 4 * hidden_size))
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_uniform_(self.W_xh)
        orthogonal_per_gate_(self.W_hh)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, state: LSTMState, mask: torch.Tensor | None = None,
                return_gates: bool = False):
        """One step. x [B, D], state (h, c) each [B, H] -> (h_i, (h_i, c_i)) [, gates dict].

        ``mask`` [B, H] is this step's recurrent dropout mask (drawn here when None and training).
        """
        h, c = state
        a = x @ self.W_xh + h @ self.W_hh + self.bias  # [B, 4H], gates (i, g, f, o)
        h, c, gates = gate_step(a.view(-1, 4, self.hidden_size), c, self.forget_bias, self.step_mask(mask, x))
        return (h, (h, c), gates) if return_gates else (h, (h, c))
