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

from sketchlib.fast.bptt import RecurrentWeight
from sketchlib.fast.fusion import fused
from sketchlib.nn.layer_norm_lstm import LayerNormLSTMCell, _layer_norm_lstm_update, layer_norm, layer_norm_lstm_update
from sketchlib.nn.lstm import RecurrentCell, glorot_uniform_, orthogonal_per_gate_, recurrent_dropout_masks

#: The state of a HyperLSTM: (h, c, ĥ, ĉ) = main [B, H] twice, hypernetwork [B, N̂] twice.
HyperState = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@fused
def hyper_update(dbeta, xw, hw, bias, gain, shift, c, mask, cell_gain, cell_shift, eps: float):
    """The element-wise part of a main-cell step: (h_i, c_i).

    dbeta [B, 12, H] = (d_x [4 blocks], d_h [4], β [4]); xw = W_x x_i and hw = W_h h_{i-1}, each
    [B, 4, H]; bias [4, H]; gain, shift [4, H] (forget bias on the f row of shift); c [B, H].
    """
    a = torch.addcmul(dbeta[:, :4] * xw, dbeta[:, 4:8], hw) + (dbeta[:, 8:] + bias)  # d_x⊙W_x x + d_h⊙W_h h + β + b
    return _layer_norm_lstm_update(a, c, mask, gain, shift, cell_gain, cell_shift, eps)  # the plain function: fused as part of this one


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
        if not 0.0 < dropout_keep <= 1.0:
            raise ValueError(f"dropout_keep is a keep probability in (0, 1], got {dropout_keep!r}")
        D, H, N, E = input_size, hidden_size, hyper_num_units, hyper_embedding_size
        self.input_size, self.hidden_size = D, H
        self.hyper_num_units, self.hyper_embedding_size = N, E
        self.forget_bias, self.dropout_keep, self.eps = float(forget_bias), float(dropout_keep), float(eps)
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

    # -- one step (the plain path) -----------------------------------------------------------
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
        a_i, a_g, a_f, a_o = a.unbind(0)
        # 4. the usual LSTM update with layer-normed cell output
        i = torch.sigmoid(a_i)
        f = torch.sigmoid(a_f + self.forget_bias)
        g = torch.tanh(a_g)
        o = torch.sigmoid(a_o)
        if mask is None and self.dropout_active():
            mask = recurrent_dropout_masks(1, B, H, self.dropout_keep, x)[0]
        g_kept = g if mask is None else g * mask
        c = f * c + i * g_kept
        h = o * torch.tanh(layer_norm(c, self.cell_gain, self.cell_shift, self.eps))
        new_state = (h, c, h_hat, c_hat)
        if return_gates:
            gates = dict(i=i, f=f, g=g, o=o, c=c, h=h, h_hat=h_hat,
                         d=d.transpose(0, 1), beta=beta.transpose(0, 1))  # d [B, 8, H], beta [B, 4, H]
            return h, new_state, gates
        return h, new_state

    def _fast_sequence(self, x: torch.Tensor, state: HyperState, masks: torch.Tensor | None):
        """The same step with fewer, larger kernels.

        Before the loop: W_x x for the main cell and the x part of the hypernetwork's input, for all
        steps in one matmul; the matrices that read h_{i-1} (main W_hh and the hypernetwork's
        h-columns) and the 12 embedding heads concatenated so each takes one matmul per step. The
        recurrent weights' gradients are deferred to one product each (:mod:`sketchlib.fast.bptt`); the
        element-wise work is two fusable functions (:mod:`sketchlib.fast.fusion`).
        """
        B, T, D = x.shape
        H, N, E = self.hidden_size, self.hyper_num_units, self.hyper_embedding_size
        hc = self.hyper_cell
        x_tm = x.transpose(0, 1).reshape(T * B, D)
        pre = (x_tm @ torch.cat([self.W_xh, hc.W_xh[:D]], dim=1)).view(T, B, 4 * H + 4 * N)
        pre_main, pre_hat = pre.split([4 * H, 4 * N], dim=-1)  # [T, B, 4H], [T, B, 4N̂]
        W_h_all = torch.cat([self.W_hh, hc.W_xh[D:]], dim=1)  # [H, 4H + 4N̂]: h_{i-1} -> main, hyper
        W_emb = torch.cat([self.W_z, self.W_zb]).permute(1, 0, 2).reshape(N, 12 * E)  # [N̂, 12E]
        b_emb = torch.cat([self.b_z, self.b_z.new_zeros(4, E)]).view(12 * E)  # W_zb has no bias
        W_out = torch.cat([self.W_d, self.W_beta])  # [12, E, H]
        bias = self.bias.view(4, H)
        hat_gain, hat_shift = hc.gate_gain.view(4, N), hc.gate_shift.view(4, N) + hc._forget_shift(x)
        gain, shift = self.gate_gain.view(4, H), self.gate_shift.view(4, H) + self._forget_shift(x)
        W_h_all, W_hat = RecurrentWeight(W_h_all), RecurrentWeight(hc.W_hh)  # weight gradients deferred
        h, c, h_hat, c_hat = state
        outputs = []
        # unbind, not pre[t]: the backward of T slices would build T full-size gradients
        for t, (pre_main_t, pre_hat_t) in enumerate(zip(pre_main.unbind(0), pre_hat.unbind(0))):
            hw = W_h_all.step(None, h, t)  # [B, 4H + 4N̂] = h_{i-1} [W_hh | W_hyper,h]
            # hypernetwork (LayerNorm LSTM) step
            a_hat = W_hat.step(pre_hat_t + hw[:, 4 * H:], h_hat, t).view(B, 4, N)
            h_hat, c_hat = layer_norm_lstm_update(a_hat, c_hat, None, hat_gain, hat_shift, hc.cell_gain,
                                                  hc.cell_shift, self.eps)
            # the 12 heads: scales d (8 blocks) and dynamic biases β (4 W_h blocks)
            emb = torch.addmm(b_emb, h_hat, W_emb).view(B, 12, E).transpose(0, 1)  # [12, B, E]
            dbeta = torch.bmm(emb, W_out).transpose(0, 1)  # [B, 12, H]
            h, c = hyper_update(dbeta, pre_main_t.view(B, 4, H), hw[:, :4 * H].view(B, 4, H), bias, gain, shift,
                                c, None if masks is None else masks[t], self.cell_gain, self.cell_shift, self.eps)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c, h_hat, c_hat)
