"""Fast versions of the cells' ``sequence``: the same equations as :mod:`sketchlib.nn` in fewer, larger kernels.

For every cell: the input projections ``x_i W_xh (+ b)`` of all steps in one matmul before the
loop, the forget bias folded into a bias or LN shift, per step one matmul ``h_{i-1} W_hh`` whose
weight gradient is deferred to one product (:mod:`sketchlib.fast.bptt`), and the element-wise rest
in one function (fusable, :mod:`sketchlib.fast.fusion`). The LSTM and LayerNorm loops run K cells
at once (the encoder's two directions: one batched matmul per step). Each is registered for its
cell class and tested equal to the plain loop (``tests/test_*lstm.py``, ``bench/check_fast_paths.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sketchlib.fast.bptt import RecurrentWeight
from sketchlib.fast.fusion import fused
from sketchlib.nn.layer_norm_lstm import LayerNormLSTMCell
from sketchlib.nn.lstm import LSTMCell


@fused
def lstm_update(a: torch.Tensor, c: torch.Tensor, mask: torch.Tensor | None):
    """The element-wise part of a step, forget bias already in ``a``: (h_i, c_i) from a [.., 4H], c_{i-1} [.., H]."""
    H = c.shape[-1]
    s = torch.sigmoid(a)  # gates i, f, o (the g slice is not used)
    g = torch.tanh(a[..., H:2 * H])
    if mask is not None:
        g = g * mask
    c = torch.addcmul(s[..., 2 * H:3 * H] * c, s[..., :H], g)
    return s[..., 3 * H:] * torch.tanh(c), c


def _layer_norm_lstm_update(a, c, mask, gain, shift, cell_gain, cell_shift, eps: float):
    """The element-wise part of a step: (h_i, c_i) from the gate pre-activations a [.., 4, H] and c_{i-1} [.., H].

    ``shift`` carries the forget bias on the f row; gains and shifts broadcast against a and c.
    """
    a = torch.addcmul(shift, F.layer_norm(a, a.shape[-1:], eps=eps), gain)  # each gate normalised on its own
    # unbind, not s[..., k, :]: one backward node (a stack) instead of a zero-filled gradient per gate
    i, _, f, o = torch.sigmoid(a).unbind(-2)
    g = torch.tanh(a).unbind(-2)[1]
    if mask is not None:
        g = g * mask
    c = torch.addcmul(f * c, i, g)
    c_norm = torch.addcmul(cell_shift, F.layer_norm(c, c.shape[-1:], eps=eps), cell_gain)
    return o * torch.tanh(c_norm), c


layer_norm_lstm_update = fused(_layer_norm_lstm_update)


def stack(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
    """Stack the tensors of K cells along a new ``dim``; a single cell's tensor is returned as it is."""
    return tensors[0] if len(tensors) == 1 else torch.stack(tensors, dim)


def _unstack(out: torch.Tensor, h: torch.Tensor, c: torch.Tensor, k: int):
    """Undo :func:`stack` for the results: ([B, T, H] per cell, [(h, c) per cell])."""
    if k == 1:
        return [out], [(h, c)]
    return list(out.unbind(0)), list(zip(h.unbind(0), c.unbind(0)))


def _stack_masks(masks: list[torch.Tensor | None]) -> torch.Tensor | None:
    """Per-cell [T, B, H] dropout masks -> [T, (K,) B, H]; None if no cell drops (ones for one that does not)."""
    if all(m is None for m in masks):
        return None
    some = next(m for m in masks if m is not None)
    return stack([torch.ones_like(some) if m is None else m for m in masks], dim=1)


def _input_projection(cell: LSTMCell, x: torch.Tensor) -> torch.Tensor:
    """x W_xh + b for every step, the forget bias added to the f slice: [B, T, D] -> [T, B, 4H]."""
    B, T, D = x.shape
    H = cell.hidden_size
    pre = torch.addmm(cell.bias + cell._forget_shift(x).view(4 * H), x.transpose(0, 1).reshape(T * B, D), cell.W_xh)
    return pre.view(T, B, 4 * H)  # time-major, so each step's slice is contiguous


def lstm_stacked(cells, xs, states, masks):
    """K LSTM cells at once. xs[k] [B, T, D], states[k] (h, c), masks[k] [T, B, H] or None
    -> ([B, T, H] per cell, [(h, c) per cell]). With K = 1 the tensors have no leading K dimension."""
    pre = stack([_input_projection(cell, x) for cell, x in zip(cells, xs)], dim=1)  # [T, (K,) B, 4H]
    W_hh = RecurrentWeight(stack([cell.W_hh for cell in cells], dim=0))  # [(K,) H, 4H]
    h = stack([s[0] for s in states], dim=0)  # [(K,) B, H]
    c = stack([s[1] for s in states], dim=0)
    masks = _stack_masks(masks)  # [T, (K,) B, H] or None
    outputs = []
    # unbind, not pre[t]: the backward of T slices would build T full-size gradients
    for t, pre_t in enumerate(pre.unbind(0)):
        a = W_hh.step(pre_t, h, t)  # [(K,) B, 4H] = pre_t + h W_hh
        h, c = lstm_update(a, c, None if masks is None else masks[t])
        outputs.append(h)
    return _unstack(torch.stack(outputs, dim=-2), h, c, len(cells))  # outputs [(K,) B, T, H]


def layer_norm_lstm_stacked(cells, xs, states, masks):
    """K LayerNorm LSTM cells at once (arguments as :func:`lstm_stacked`); the forget bias goes into
    the f gate's LN shift, the four gate LNs are one ``layer_norm`` call."""
    (B, T, D), H, eps = xs[0].shape, cells[0].hidden_size, cells[0].eps
    pre = stack([(x.transpose(0, 1).reshape(T * B, D) @ cell.W_xh).view(T, B, 4 * H)
                 for cell, x in zip(cells, xs)], dim=1)  # [T, (K,) B, 4H]
    W_hh = RecurrentWeight(stack([cell.W_hh for cell in cells], dim=0))  # [(K,) H, 4H]
    gain = stack([cell.gate_gain.view(4, H) for cell in cells], dim=0).unsqueeze(-3)  # [(K,) 1, 4, H]
    shift = stack([cell.gate_shift.view(4, H) + cell._forget_shift(xs[0]) for cell in cells], dim=0).unsqueeze(-3)
    cell_gain = stack([cell.cell_gain for cell in cells], dim=0).unsqueeze(-2)  # [(K,) 1, H]
    cell_shift = stack([cell.cell_shift for cell in cells], dim=0).unsqueeze(-2)
    h = stack([s[0] for s in states], dim=0)  # [(K,) B, H]
    c = stack([s[1] for s in states], dim=0)
    masks = _stack_masks(masks)  # [T, (K,) B, H] or None
    outputs = []
    for t, pre_t in enumerate(pre.unbind(0)):  # unbind: one backward op for all T slices
        a = W_hh.step(pre_t, h, t).unflatten(-1, (4, H))  # [(K,) B, 4, H]
        h, c = layer_norm_lstm_update(a, c, None if masks is None else masks[t], gain, shift, cell_gain,
                                      cell_shift, eps)
        outputs.append(h)
    return _unstack(torch.stack(outputs, dim=-2), h, c, len(cells))  # outputs [(K,) B, T, H]


#: cell class -> its K-cell loop (the encoder uses these for both directions at once)
STACKED = {LSTMCell: lstm_stacked, LayerNormLSTMCell: layer_norm_lstm_stacked}


def loop_sequence(cell, x: torch.Tensor, state, masks: torch.Tensor | None):
    """One cell's sequence through its K-cell loop with K = 1: (h [B, T, H], final state)."""
    (out,), (state,) = STACKED[type(cell)]([cell], [x], [state], [masks])
    return out, state
