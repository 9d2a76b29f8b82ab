"""The HyperLSTM cell (Ha, Dai & Le 2016, "HyperNetworks"), as the Sketch-RNN reference builds it.

A small LayerNorm LSTM, the *hypernetwork*, runs beside the main LSTM and at every step rewrites
the main cell's weights a little: it scales each of the main cell's eight weight blocks (``W_x``
and ``W_h`` times the four gates) row by row, and gives the four ``W_h`` blocks a bias of their own::

    ĥ_i, ĉ_i = HyperCell([x_i ; h_{i-1}], (ĥ_{i-1}, ĉ_{i-1}))       LayerNorm LSTM, N̂ = 256 units
    z_k      = W_z,k ĥ_i + b_z,k              k = 1..8 blocks, 32-dim embedding (W_z = 0, b_z = 1 at init)
    d_k      = W_d,k z_k                      scale of block k, no bias (W_d = 0.1 / 32, so d_k = 0.1 at init)
    β_k      = W_β,k (W_zb,k ĥ_i)             dynamic bias of the W_h blocks (W_zb ~ N(0, 0.01), W_β = 0)
    a_k      = d_x,k ⊙ (W_x,k x_i) + d_h,k ⊙ (W_h,k h_{i-1}) + β_k + b_k       k in (i, g, f, o)
    â_k      = LN_k(a_k)
    c_i      = σ(â_f + forget_bias) ⊙ c_{i-1} + σ(â_i) ⊙ drop(tanh(â_g))
    h_i      = σ(â_o) ⊙ tanh(LN_c(c_i))

The state is the main (h, c) and the hypernetwork's (ĥ, ĉ). The hypernetwork itself has no
recurrent dropout (the reference's ``hyper_use_recurrent_dropout=False``).
"""

from __future__ import annotations

import torch
from torch import nn

from sketchlib.nn.layer_norm_lstm import LayerNormLSTMCell, layer_norm
from sketchlib.nn.recurrent import RecurrentCell, check_keep, gate_step, glorot_uniform_, orthogonal_per_gate_

#: The state of a HyperLSTM: (h, c, ĥ, ĉ) = main [B, H] twice, hypernetwork [B, N̂] twice.
HyperState = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class HyperLSTMCell(RecurrentCell):
    """HyperLSTM cell with layer norm, as the reference's ``HyperLSTMCell(use_layer_norm=True)``.

    Parameters (D input, H units, N̂ hyper units, E embedding size)::

        W_xh [D, 4H] Glorot, W_hh [H, 4H] orthogonal per gate, bias [4H] = 0   main weights
        hyper_cell: LayerNormLSTMCell(D + H, N̂)                              the hypernetwork
        W_z  [8, N̂, E] = 0,  b_z [8, E] = 1                                    embeddings z_k
        W_d  [8, E, H] = 0.1 / E                                                scales d_k
        W_zb [4, N̂, E] ~ N(0, 0.01),  W_beta [4, E, H] = 0                     dynamic biases β_k (W_h blocks)
        gate_gain, gate_shift [4H]; cell_gain, cell_shift [H]                   layer norms

    The 8 blocks k are ordered (x_i, x_g, x_f, x_o, h_i, h_g, h_f, h_o); the 4 β blocks (h_i, h_g, h_f, h_o).
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0, dropout_keep: float = 1.0,
                 eps: float = 1e-3, hyper_num_units: int = 256, hyper_embedding_size: int = 32):
        super().__init__()
        self.dropout_keep = check_keep(dropout_keep)
        D, H, N, E = input_size, hidden_size, hyper_num_units, hyper_embedding_size
        self.input_size, self.hidden_size = D, H
        self.hyper_num_units, self.hyper_embedding_size = N, E
        self.forget_bias, self.eps = float(forget_bias), float(eps)
        self.state_sizes = (H, H, N, N)  # (h, c, ĥ, ĉ)
        self.hyper_cell = LayerNormLSTMCell(D + H, N, forget_bias=forget_bias, dropout_keep=1.0, eps=eps)
        self.W_xh = nn.Parameter(torch.empty(D, 4 * H))
        self.W_hh = nn.Parameter(torch.empty(H, 4 * H))
        self.bias = nn.Parameter(torch.empty(4 * H))
        self.W_z = nn.Parameter(torch.empty(8, N, E))
        self.b_z = nn.Parameter(torch.empty(8, E))
        self.W_d = nn.Parameter(torch.empty(8, E, H))
        self.W_zb = nn.Parameter(torch.empty(4, N, E))
        self.W_beta = nn.Parameter(torch.empty(4, E, H))
        self.gate_gain = nn.Parameter(torch.empty(4 * H))
        self.gate_shift = nn.Parameter(torch.empty(4 * H))
        self.cell_gain = nn.Parameter(torch.empty(H))
        self.cell_shift = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_uniform_(self.W_xh)
        orthogonal_per_gate_(self.W_hh)
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.W_z)
        nn.init.ones_(self.b_z)
        nn.init.constant_(self.W_d, 0.1 / self.hyper_embedding_size)  # recurrent batch-norm trick: d = 0.1
        nn.init.normal_(self.W_zb, std=0.01)
        nn.init.zeros_(self.W_beta)
        for gain in (self.gate_gain, self.cell_gain):
            nn.init.ones_(gain)
        for shift in (self.gate_shift, self.cell_shift):
            nn.init.zeros_(shift)
        self.hyper_cell.reset_parameters()

    def forward(self, x: torch.Tensor, state: HyperState, mask: torch.Tensor | None = None,
                return_gates: bool = False):
        """One step. x [B, D], state (h, c, ĥ, ĉ) -> (h_i, new state) [, gates dict]."""
        h, c, h_hat, c_hat = state
        B, H = x.shape[0], self.hidden_size
        # 1. the hypernetwork reads [x_i ; h_{i-1}]
        h_hat, (_, c_hat) = self.hyper_cell(torch.cat([x, h], dim=1), (h_hat, c_hat))
        # 2. per-block embeddings z_k, scales d_k and (W_h blocks) dynamic biases β_k
        z = h_hat @ self.W_z + self.b_z[:, None]  # [8, B, E] (matmul broadcast over the 8 blocks)
        d = z @ self.W_d  # [8, B, H]: d_x,i d_x,g d_x,f d_x,o d_h,i d_h,g d_h,f d_h,o
        beta = (h_hat @ self.W_zb) @ self.W_beta  # [4, B, H]
        # 3. gate pre-activations: every block of W_x x and W_h h scaled by its d_k
        xh = (x @ self.W_xh).view(B, 4, H).transpose(0, 1)  # [4, B, H] gates (i, g, f, o)
        hh = (h @ self.W_hh).view(B, 4, H).transpose(0, 1)  # [4, B, H]
        a = d[:4] * xh + d[4:] * hh + beta + self.bias.view(4, 1, H)  # [4, B, H]
        a = layer_norm(a, self.gate_gain.view(4, 1, H), self.gate_shift.view(4, 1, H), self.eps)  # per gate
        # 4. the LSTM gate step with layer-normed cell output
        h, c, gates = gate_step(a.transpose(0, 1), c, self.forget_bias, self.step_mask(mask, x),
                                norm=lambda c: layer_norm(c, self.cell_gain, self.cell_shift, self.eps))
        new_state = (h, c, h_hat, c_hat)
        if return_gates:
            gates.update(h_hat=h_hat, d=d.transpose(0, 1), beta=beta.transpose(0, 1))  # d [B, 8, H], beta [B, 4, H]
            return h, new_state, gates
        return h, new_state
