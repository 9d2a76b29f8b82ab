"""The HyperLSTM's fast ``sequence``: the equations of :mod:`sketchlib.nn.hyper_lstm` in fewer, larger kernels.

Before the loop: W_x x for the main cell and the x part of the hypernetwork's input, for all steps
in one matmul. Per step: the matrices that read h_{i-1} (main W_hh and the hypernetwork's
h-columns) as one matmul, the 12 embedding heads (z_k for d_k, and β_k) as one matmul and one
batched product.

With :data:`MERGE_RECURRENT` (default on) the step's two recurrent products are ONE: the state
[h_{i-1}, ĥ_{i-1}] [B, H + N̂] times the block matrix ::

    W_rec = [[W_hh,  W_hyper,h],      [H + N̂, 4H + 4N̂]
             [0,     Ŵ_hh     ]]

plus the hypernetwork's input part (zeros on the main cell's columns, all steps padded before the
loop): 2 kernels forward and 1 backward a step instead of 3 and 2, for 4N̂·4H more multiply-adds
(the zero block, about 11% more for H = 2048, N̂ = 256). ``bench/kernel_count.py`` counts both.

The gradients of the weights every step reuses (the recurrent ones and the 12 heads' W_emb,
W_out) are deferred to one product each (:mod:`sketchlib.fast.bptt`), and those of the gains,
shifts and biases are summed once after the loop: per step the backward pass forms only the
gradients of the step's own inputs. The element-wise work is two fusable functions (:mod:`sketchlib.fast.fusion`).
"""

from __future__ import annotations

import torch

from sketchlib.fast.bptt import RecurrentWeight
from sketchlib.fast.fusion import fused
from sketchlib.fast.sequence import _layer_norm_lstm_update, layer_norm_lstm_update

#: One recurrent product per step on the block matrix (True), or two (False); bench/kernel_count.py flips it.
MERGE_RECURRENT = True


@fused
def hyper_update(dbeta, xw, hw, bias, gain, shift, c, mask, cell_gain, cell_shift, eps: float):
    """The element-wise part of a main-cell step: (h_i, c_i).

    dbeta [B, 12, H] = (d_x [4 blocks], d_h [4], β [4]); xw = W_x x_i and hw = W_h h_{i-1}, each
    [B, 4, H]; bias [4, H]; gain, shift [4, H] (forget bias on the f row of shift); c [B, H].
    """
    d_x, d_h, beta = dbeta.split(4, dim=1)  # one backward node (a cat), not three zero-filled slices
    a = torch.addcmul(d_x * xw, d_h, hw) + (beta + bias)  # d_x⊙W_x x + d_h⊙W_h h + β + b
    return _layer_norm_lstm_update(a, c, mask, gain, shift, cell_gain, cell_shift, eps)  # fused as part of this one


def _weights(cell, x: torch.Tensor) -> dict:
    """The cell's parameters concatenated for the loop (differentiable views and products)."""
    D, H, N, E = cell.input_size, cell.hidden_size, cell.hyper_num_units, cell.hyper_embedding_size
    hc = cell.hyper_cell
    merged = None
    if MERGE_RECURRENT:  # [[W_hh, W_hyper,h], [0, Ŵ_hh]]
        merged = RecurrentWeight(torch.cat([torch.cat([cell.W_hh, hc.W_xh[D:]], dim=1),
                                            torch.cat([hc.W_hh.new_zeros(N, 4 * H), hc.W_hh], dim=1)], dim=0))
    return dict(
        W_rec=merged,
        W_x=torch.cat([cell.W_xh, hc.W_xh[:D]], dim=1),  # [D, 4H + 4N̂]: x_i -> main, hyper
        W_h=None if merged else RecurrentWeight(torch.cat([cell.W_hh, hc.W_xh[D:]], dim=1)),  # [H, 4H + 4N̂]
        W_hat=None if merged else RecurrentWeight(hc.W_hh),  # [N̂, 4N̂]
        W_emb=RecurrentWeight(torch.cat([cell.W_z, cell.W_zb]).permute(1, 0, 2).reshape(N, 12 * E)),  # [N̂, 12E]
        b_emb=torch.cat([cell.b_z, cell.b_z.new_zeros(4, E)]).view(12 * E),  # W_zb has no bias
        W_out=RecurrentWeight(torch.cat([cell.W_d, cell.W_beta])),  # [12, E, H]
        bias=cell.bias.view(4, H),
        hat_gain=hc.gate_gain.view(4, N), hat_shift=hc.gate_shift.view(4, N) + hc._forget_shift(x),
        gain=cell.gate_gain.view(4, H), shift=cell.gate_shift.view(4, H) + cell._forget_shift(x),
    )


def hyper_sequence(cell, x: torch.Tensor, state, masks: torch.Tensor | None):
    """x [B, T, D], state (h, c, ĥ, ĉ), masks [T, B, H] or None -> (h [B, T, H], final state)."""
    B, T, D = x.shape
    H, N, E, eps = cell.hidden_size, cell.hyper_num_units, cell.hyper_embedding_size, cell.eps
    hc, w = cell.hyper_cell, _weights(cell, x)
    pre = (x.transpose(0, 1).reshape(T * B, D) @ w["W_x"]).view(T, B, 4 * H + 4 * N)
    pre_main, pre_hat = pre.split([4 * H, 4 * N], dim=-1)  # [T, B, 4H], [T, B, 4N̂]
    h, c, h_hat, c_hat = state
    outputs = []
    if w["W_rec"] is not None:  # the hypernetwork's input part on its columns, zeros on the main cell's
        pre_hat = torch.cat([pre.new_zeros(T, B, 4 * H), pre_hat], dim=-1)  # [T, B, 4H + 4N̂]
    # what every step reads (gains, shifts, biases) as T views of one expanded tensor: each step's
    # gradient lands in its own slot, stacked and summed once after the loop instead of added into
    # one buffer at every step (about 10 kernels a step less in the backward pass)
    shared = [p.expand(T, *p.shape).unbind(0) for p in (
        w["hat_gain"], w["hat_shift"], hc.cell_gain, hc.cell_shift, w["bias"], w["gain"], w["shift"], cell.cell_gain,
        cell.cell_shift, w["b_emb"].expand(B, 12 * E))]
    # unbind, not pre[t]: the backward of T slices would build T full-size gradients
    for t, (pre_main_t, pre_hat_t) in enumerate(zip(pre_main.unbind(0), pre_hat.unbind(0))):
        hat_gain, hat_shift, hat_cell_gain, hat_cell_shift, bias, gain, shift, cell_gain, cell_shift, b_emb = (
            p[t] for p in shared)
        if w["W_rec"] is not None:  # [h, ĥ] W_rec + [0, pre_hat]: main h-part and the hypernetwork's a_hat at once
            hw = w["W_rec"].step(pre_hat_t, torch.cat([h, h_hat], dim=1), t)  # [B, 4H + 4N̂]
            a_hat = hw[:, 4 * H:].reshape(B, 4, N)
        else:
            hw = w["W_h"].step(None, h, t)  # [B, 4H + 4N̂] = h_{i-1} [W_hh | W_hyper,h]
            a_hat = w["W_hat"].step(pre_hat_t + hw[:, 4 * H:], h_hat, t).view(B, 4, N)
        # hypernetwork (LayerNorm LSTM) step
        h_hat, c_hat = layer_norm_lstm_update(a_hat, c_hat, None, hat_gain, hat_shift, hat_cell_gain, hat_cell_shift,
                                              eps)
        # the 12 heads: scales d (8 blocks) and dynamic biases β (4 W_h blocks)
        emb = w["W_emb"].step(b_emb, h_hat, t).view(B, 12, E).transpose(0, 1)  # [12, B, E]
        dbeta = w["W_out"].step(None, emb, t).transpose(0, 1)  # [B, 12, H]: 12 products [B, E] x [E, H] at once
        h, c = hyper_update(dbeta, pre_main_t.view(B, 4, H), hw[:, :4 * H].view(B, 4, H), bias, gain, shift, c,
                            None if masks is None else masks[t], cell_gain, cell_shift, eps)
        outputs.append(h)
    return torch.stack(outputs, dim=1), (h, c, h_hat, c_hat)
