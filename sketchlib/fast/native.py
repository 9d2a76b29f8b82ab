"""PyTorch's own LSTM kernel (cuDNN) for the plain LSTM cell, and the choice between it and our loop.

:func:`native_parameters` maps an :class:`~sketchlib.nn.lstm.LSTMCell`'s weights to ``torch.nn.LSTM``'s
layout (gate order (i, f, g, o) instead of (i, g, f, o), ``W x`` instead of ``x W``, the forget
bias folded into ``bias_ih``); a weightless ``nn.LSTM`` on the meta device runs with them
(differentiable). cuDNN cannot drop the candidate tanh(g) alone, so the kernel is only an option
without recurrent dropout.

The choice (:func:`wants_native`): cuDNN on a GPU; never on the CPU, where issue 9 measured
``torch.nn.LSTM`` slower than our loop of :mod:`sketchlib.fast.sequence` (3.0 s against 2.3 s for
forward and backward at batch 100, N_max 250, decoder 256). ``bench/train_step.py`` keeps both
rows on the CPU (the LSTM's "fast" row without recurrent dropout, and "native") to re-check it.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import nn
from torch.func import functional_call

from sketchlib.fast.sequence import STACKED, loop_sequence
from sketchlib.nn.encoder import last_real_step, reverse_within_lengths
from sketchlib.nn.lstm import LSTMCell


def wants_native(cells, x: torch.Tensor) -> bool:
    """True where PyTorch's kernel is the fast choice: plain LSTM cells with no recurrent dropout.

    On a GPU that is cuDNN. On this 2-core CPU, at the reference's size (batch 100, N_max 250,
    256 units), torch.nn.LSTM and the plain step-by-step loop are within 10% of each other and
    both about 1.3x faster than our fused loop (``bench/cpu_lstm_paths.py``,
    ``bench/results/cpu_lstm_paths-full.json``), so the CPU takes it too.
    """
    return all(type(c) is LSTMCell and not c.dropout_active() for c in cells)


def native_parameters(cell: LSTMCell, suffix: str = "") -> dict[str, torch.Tensor]:
    """The cell's weights in ``torch.nn.LSTM``'s layout: [4H, D] matrices in gate order (i, f, g, o),
    the forget bias folded into ``bias_ih`` and ``bias_hh`` zero. Differentiable.
    ``suffix="_reverse"`` names them as the backward direction of a bidirectional LSTM."""
    def reorder(w):  # rows in reference order (i, g, f, o) -> torch order (i, f, g, o)
        i, g, f, o = w.chunk(4, dim=0)
        return torch.cat([i, f, g, o], dim=0)

    shift = cell._forget_shift(cell.bias).view(-1)  # [4H]
    return {
        f"weight_ih_l0{suffix}": reorder(cell.W_xh.t()),
        f"weight_hh_l0{suffix}": reorder(cell.W_hh.t()),
        f"bias_ih_l0{suffix}": reorder(cell.bias + shift),
        f"bias_hh_l0{suffix}": torch.zeros_like(cell.bias),
    }


@functools.lru_cache(maxsize=None)
def native_lstm_template(input_size: int, hidden_size: int, bidirectional: bool) -> nn.LSTM:
    """A batch-first ``nn.LSTM`` on the meta device: the computation without weights of its own."""
    return nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=bidirectional, device="meta")


def call_native_lstm(template: nn.LSTM, params: dict[str, torch.Tensor], *args):
    """Run ``template`` (an ``nn.LSTM`` on the meta device, holding no weights) with ``params``.

    On a GPU cuDNN warns that these weights are not one contiguous chunk (it packs them for the
    call); that is expected here, so the warning is silenced for this call only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        return functional_call(template, params, args)


def native_sequence(cell: LSTMCell, x: torch.Tensor, state):
    """One LSTM cell over x [B, T, D] with PyTorch's kernel -> (h [B, T, H], (h, c))."""
    template = native_lstm_template(cell.input_size, cell.hidden_size, bidirectional=False)
    h0, c0 = state
    out, (h, c) = call_native_lstm(template, native_parameters(cell), x, (h0[None], c0[None]))
    return out, (h[0], c[0])


def lstm_sequence(cell: LSTMCell, x: torch.Tensor, state, masks: torch.Tensor | None):
    """The LSTM cell's fast ``sequence``: cuDNN where :func:`wants_native`, else our loop."""
    if masks is None and wants_native([cell], x):
        return native_sequence(cell, x, state)
    return loop_sequence(cell, x, state, masks)


def native_final_hidden(cell_fw: LSTMCell, cell_bw: LSTMCell, x: torch.Tensor, lengths: torch.Tensor,
                        packed: bool | None = None) -> torch.Tensor:
    """The encoder's h = [h→ ; h←] [B, 2H] with PyTorch's kernel (no dropout).

    With ``lengths`` on the CPU (``packed`` default) the sketches go in as packed sequences, so
    no step is computed in the padding. With lengths on the GPU reading them would stall the
    stream (and break CUDA-graph capture), so each direction runs over all N_max steps, the
    backward one over ``reverse_within_lengths``, and h is read at the last real step:
    the same numbers, some wasted steps.
    """
    if packed is None:
        packed = lengths.device.type == "cpu"
    if not packed:
        template = native_lstm_template(cell_fw.input_size, cell_fw.hidden_size, bidirectional=False)
        out_fw, _ = call_native_lstm(template, native_parameters(cell_fw), x)  # [B, T, H]
        out_bw, _ = call_native_lstm(template, native_parameters(cell_bw), reverse_within_lengths(x, lengths))
        return torch.cat([last_real_step(out_fw, lengths), last_real_step(out_bw, lengths)], dim=1)
    packed_x = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    params = {**native_parameters(cell_fw), **native_parameters(cell_bw, suffix="_reverse")}
    template = native_lstm_template(cell_fw.input_size, cell_fw.hidden_size, bidirectional=True)
    _, (h_n, _) = call_native_lstm(template, params, packed_x)  # h_n [2, B, H] in the batch's order
    return torch.cat([h_n[0], h_n[1]], dim=1)


def encoder_final_hidden(cell_fw, cell_bw, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The encoder's fast h = [h→ ; h←]: cuDNN where :func:`wants_native`, else both directions in one loop."""
    if wants_native([cell_fw, cell_bw], x):
        return native_final_hidden(cell_fw, cell_bw, x, lengths)
    B, T = x.shape[:2]
    cells = [cell_fw, cell_bw]
    masks = [cell.dropout_masks(T, B, x) for cell in cells]
    xs = [x, reverse_within_lengths(x, lengths)]
    (out_fw, out_bw), _ = STACKED[type(cell_fw)](cells, xs, [cell.zero_state(B) for cell in cells], masks)
    return torch.cat([last_real_step(out_fw, lengths), last_real_step(out_bw, lengths)], dim=1)
