"""The LSTM cell, computed the way the Sketch-RNN reference computes it.

One step reads the input ``x_i`` and the previous state ``(h_{i-1}, c_{i-1})``::

    a   = W_xh^T x_i + W_hh^T h_{i-1} + b        one matmul for the four gates, reference order (i, g, f, o)
    i_i = σ(a_i)                                 input gate       (outline: i_i = σ(W_i·[h_{i-1}, x_i] + b_i))
    f_i = σ(a_f + forget_bias)                   forget gate      (f_i = σ(W_f·[h_{i-1}, x_i] + b_f), forget_bias = 1)
    g_i = tanh(a_g)                              candidate memory (c~_i = tanh(W_c·[h_{i-1}, x_i] + b_c))
    o_i = σ(a_o)                                 output gate
    c_i = f_i ⊙ c_{i-1} + i_i ⊙ drop(g_i)        recurrent dropout on the candidate only, new mask each step
    h_i = o_i ⊙ tanh(c_i)

``drop`` keeps each unit with probability ``dropout_keep`` and scales kept units by
``1 / dropout_keep`` (Semeniuta et al. 2016, "recurrent dropout without memory loss"); it is only
active in training mode.

Two ways to run a whole sequence, tested equal:

* the plain path calls :meth:`LSTMCell.forward` once per step, straight from the equations;
* the fast path computes ``W_xh^T x_i + b`` for every step in one matmul before the loop and keeps
  the loop to a handful of kernels; without recurrent dropout it hands the sequence to PyTorch's
  own LSTM kernel (cuDNN on a GPU) with the weights mapped to PyTorch's gate order.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import nn
from torch.func import functional_call

from sketchlib.fast.bptt import RecurrentWeight
from sketchlib.fast.fusion import fused

#: The state of an LSTM cell: (h, c), each [B, H].
LSTMState = tuple[torch.Tensor, torch.Tensor]


def glorot_uniform_(weight: torch.Tensor) -> torch.Tensor:
    """Glorot (Xavier) uniform, the reference's default for input weights: U(±sqrt(6 / (fan_in + fan_out)))."""
    return nn.init.xavier_uniform_(weight)


def orthogonal_per_gate_(weight: torch.Tensor, gates: int = 4) -> torch.Tensor:
    """The reference's ``lstm_ortho_initializer``: each gate's [H_in, H] block of ``weight`` orthogonal."""
    with torch.no_grad():
        for block in weight.chunk(gates, dim=1):
            nn.init.orthogonal_(block)
    return weight


def recurrent_dropout_masks(steps: int, batch_size: int, hidden_size: int, keep: float,
                            like: torch.Tensor) -> torch.Tensor:
    """Masks for ``steps`` steps of recurrent dropout, ``[T, B, H]``: 1/keep with probability keep, else 0.

    One independent mask per step (the reference draws a new one at every step).
    """
    probs = torch.full((steps, batch_size, hidden_size), keep, dtype=like.dtype, device=like.device)
    return torch.bernoulli(probs) / keep


class RecurrentCell(nn.Module):
    """What the LSTM, LayerNorm LSTM and HyperLSTM cells share: the state as a tuple of [B, n]
    tensors (sizes in ``state_sizes``), recurrent dropout on the main cell's candidate, and
    ``sequence``, which runs the plain step-by-step loop or the cell's ``_fast_sequence``.

    A subclass sets ``hidden_size``, ``dropout_keep``, ``state_sizes`` and ``W_hh`` and defines
    ``forward`` (one step) and ``_fast_sequence``.
    """

    state_sizes: tuple[int, ...]

    @property
    def state_size(self) -> int:
        """Length of the state as one vector: what the decoder's z projection must produce."""
        return sum(self.state_sizes)

    # -- state -----------------------------------------------------------------------------
    def zero_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        return tuple(self.W_hh.new_zeros(batch_size, n) for n in self.state_sizes)

    def state_from_vector(self, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Split a [B, sum(state_sizes)] vector ([h ; c], or [h ; c ; ĥ ; ĉ]) into the state."""
        return tuple(part.contiguous() for part in v.split(list(self.state_sizes), dim=-1))

    def dropout_active(self) -> bool:
        return self.training and self.dropout_keep < 1.0

    def dropout_masks(self, steps: int, batch_size: int, like: torch.Tensor) -> torch.Tensor | None:
        """[T, B, H] recurrent dropout masks of the main cell, or None when dropout is off (eval mode or keep = 1)."""
        if not self.dropout_active():
            return None
        return recurrent_dropout_masks(steps, batch_size, self.hidden_size, self.dropout_keep, like)

    def _forget_shift(self, like: torch.Tensor) -> torch.Tensor:
        """[4, H] zeros with forget_bias on the f row (gate order i, g, f, o): what the fast paths add."""
        shift = torch.zeros(4, self.hidden_size, dtype=like.dtype, device=like.device)
        shift[2] = self.forget_bias
        return shift

    # -- a whole sequence --------------------------------------------------------------------
    def sequence(self, x: torch.Tensor, state=None, masks: torch.Tensor | None = None, fast: bool = True):
        """Run over x [B, T, D] from ``state`` (zeros if None) -> (h for every step [B, T, H], final state).

        ``masks`` [T, B, H] fixes the recurrent dropout masks (drawn here when None and training).
        ``fast=False`` is the plain step-by-step path.
        """
        B, T, _ = x.shape
        if state is None:
            state = self.zero_state(B)
        if masks is None:
            masks = self.dropout_masks(T, B, x)
        if not fast:
            outputs = []
            for t, x_t in enumerate(x.unbind(1)):  # unbind, not x[:, t]: slicing in the loop makes backward O(T^2)
                h, state = self(x_t, state, None if masks is None else masks[t])
                outputs.append(h)
            return torch.stack(outputs, dim=1), state
        return self._fast_sequence(x, state, masks)

    # -- for the book ----------------------------------------------------------------------
    @torch.no_grad()
    def trace(self, x: torch.Tensor, state=None) -> dict[str, torch.Tensor]:
        """Every gate at every step (plain path, no grad): ``forward(..., return_gates=True)``'s dict
        stacked over time. i, f, g, o, c, h are [T, B, H]: i, f, o the gate values in (0, 1) (f with
        the forget bias), g = tanh(a_g) the candidate before recurrent dropout, c and h the new state.
        The HyperLSTM adds h_hat [T, B, N̂], d [T, B, 8, H] (block scales) and beta [T, B, 4, H]
        (dynamic biases).
        """
        state = self.zero_state(x.shape[0]) if state is None else state
        steps = []
        for x_t in x.unbind(1):
            _, state, gates = self(x_t, state, return_gates=True)
            steps.append(gates)
        return {k: torch.stack([s[k] for s in steps]) for k in steps[0]}


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
        if not 0.0 < dropout_keep <= 1.0:
            raise ValueError(f"dropout_keep is a keep probability in (0, 1], got {dropout_keep!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.forget_bias, self.dropout_keep = float(forget_bias), float(dropout_keep)
        self.state_sizes = (hidden_size, hidden_size)  # (h, c)
        self.use_native = True  # fast path may use PyTorch's LSTM kernel when there is no dropout
        self.W_xh = nn.Parameter(torch.empty(input_size, 4 * hidden_size))
        self.W_hh = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_uniform_(self.W_xh)
        orthogonal_per_gate_(self.W_hh)
        nn.init.zeros_(self.bias)

    # -- one step (the plain path) -----------------------------------------------------------
    def forward(self, x: torch.Tensor, state: LSTMState, mask: torch.Tensor | None = None,
                return_gates: bool = False):
        """One step. x [B, D], state (h, c) each [B, H] -> (h_i, (h_i, c_i)) [, gates dict].

        ``mask`` [B, H] is this step's recurrent dropout mask (drawn here when None and training).
        """
        h, c = state
        a = x @ self.W_xh + h @ self.W_hh + self.bias  # [B, 4H]
        a_i, a_g, a_f, a_o = a.chunk(4, dim=1)  # reference order i, g, f, o
        i = torch.sigmoid(a_i)
        f = torch.sigmoid(a_f + self.forget_bias)
        g = torch.tanh(a_g)  # candidate memory c~
        o = torch.sigmoid(a_o)
        if mask is None and self.dropout_active():
            mask = recurrent_dropout_masks(1, x.shape[0], self.hidden_size, self.dropout_keep, x)[0]
        g_kept = g if mask is None else g * mask
        c = f * c + i * g_kept
        h = o * torch.tanh(c)
        if return_gates:
            return h, (h, c), dict(i=i, f=f, g=g, o=o, c=c, h=h)
        return h, (h, c)

    # -- a whole sequence (plain loop and dispatch in RecurrentCell.sequence) ------------------
    def _fast_sequence(self, x: torch.Tensor, state: LSTMState, masks: torch.Tensor | None):
        if masks is None and self.use_native:  # no recurrent dropout: PyTorch's fused kernel (cuDNN)
            return self._native_sequence(x, state)
        (out,), (state,) = LSTMCell.stacked_fast_sequence([self], [x], [state], [masks])
        return out, state

    @staticmethod
    def stacked_fast_sequence(cells, xs, states, masks):
        """The fast path for K cells at once (the encoder runs both directions in one loop).

        Before the loop: every input projection x W_xh + b, forget bias folded in, one matmul per
        cell. Per step: one (batched) matmul h W_hh for all K cells (its weight gradient deferred to
        one product, :mod:`sketchlib.fast.bptt`) and the element-wise update :func:`lstm_update`
        (fusable, :mod:`sketchlib.fast.fusion`).
        xs[k] [B, T, D], states[k] (h, c), masks[k] [T, B, H] or None -> ([B, T, H] per cell, states).
        With K = 1 the tensors simply have no leading K dimension.
        """
        pre = _stack([cell._input_projection(x) for cell, x in zip(cells, xs)], dim=1)  # [T, (K,) B, 4H]
        W_hh = RecurrentWeight(_stack([cell.W_hh for cell in cells], dim=0))  # [(K,) H, 4H]
        h = _stack([s[0] for s in states], dim=0)  # [(K,) B, H]
        c = _stack([s[1] for s in states], dim=0)
        masks = _stack_masks(masks)  # [T, (K,) B, H] or None
        outputs = []
        # unbind, not pre[t]: the backward of T slices would build T full-size gradients
        for t, pre_t in enumerate(pre.unbind(0)):
            a = W_hh.step(pre_t, h, t)  # [(K,) B, 4H] = pre_t + h W_hh
            h, c = lstm_update(a, c, None if masks is None else masks[t])
            outputs.append(h)
        return _unstack(torch.stack(outputs, dim=-2), h, c, len(cells))  # outputs [(K,) B, T, H]

    def _input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """x W_xh + b for every step, the forget bias added to the f slice: [B, T, D] -> [T, B, 4H]."""
        B, T, D = x.shape
        H = self.hidden_size
        pre = torch.addmm(self.bias + self._forget_shift(x).view(4 * H), x.transpose(0, 1).reshape(T * B, D),
                          self.W_xh)
        return pre.view(T, B, 4 * H)  # time-major, so each step's slice is contiguous

    def native_parameters(self, suffix: str = "") -> dict[str, torch.Tensor]:
        """Our weights in ``torch.nn.LSTM``'s layout: [4H, D] matrices in gate order (i, f, g, o),
        the forget bias folded into ``bias_ih`` and ``bias_hh`` zero. Differentiable.
        ``suffix="_reverse"`` names them as the backward direction of a bidirectional LSTM."""
        def reorder(w):  # rows in reference order (i, g, f, o) -> torch order (i, f, g, o)
            i, g, f, o = w.chunk(4, dim=0)
            return torch.cat([i, f, g, o], dim=0)

        shift = self._forget_shift(self.bias).view(-1)  # [4H]
        return {
            f"weight_ih_l0{suffix}": reorder(self.W_xh.t()),
            f"weight_hh_l0{suffix}": reorder(self.W_hh.t()),
            f"bias_ih_l0{suffix}": reorder(self.bias + shift),
            f"bias_hh_l0{suffix}": torch.zeros_like(self.bias),
        }

    def _native_sequence(self, x: torch.Tensor, state: LSTMState):
        """No dropout: PyTorch's fused LSTM (cuDNN on a GPU) with our weights mapped to its layout."""
        template = native_lstm_template(self.input_size, self.hidden_size, bidirectional=False)
        h0, c0 = state
        out, (h, c) = call_native_lstm(template, self.native_parameters(), x, (h0[None], c0[None]))
        return out, (h[0], c[0])


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


def _stack(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
    """Stack the tensors of K cells along a new ``dim``; a single cell's tensor is returned as it is."""
    return tensors[0] if len(tensors) == 1 else torch.stack(tensors, dim)


def _unstack(out: torch.Tensor, h: torch.Tensor, c: torch.Tensor, k: int):
    """Undo :func:`_stack` for the results: ([B, T, H] per cell, [(h, c) per cell])."""
    if k == 1:
        return [out], [(h, c)]
    return list(out.unbind(0)), list(zip(h.unbind(0), c.unbind(0)))


def _stack_masks(masks: list[torch.Tensor | None]) -> torch.Tensor | None:
    """Per-cell [T, B, H] dropout masks -> [T, (K,) B, H]; None if no cell drops (ones for one that does not)."""
    if all(m is None for m in masks):
        return None
    some = next(m for m in masks if m is not None)
    return _stack([torch.ones_like(some) if m is None else m for m in masks], dim=1)


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
