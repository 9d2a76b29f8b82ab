"""What the three recurrent cells share: the LSTM gate step, the state, recurrent dropout, the loop.

The gate step, written once and used by the LSTM, LayerNorm LSTM and HyperLSTM cells. From the
four gate pre-activations ``a = (a_i, a_g, a_f, a_o)`` (reference order) and ``c_{i-1}``::

    i_i = σ(a_i)                                 input gate       (outline: i_i = σ(W_i·[h_{i-1}, x_i] + b_i))
    f_i = σ(a_f + forget_bias)                   forget gate      (f_i = σ(W_f·[h_{i-1}, x_i] + b_f), forget_bias = 1)
    g_i = tanh(a_g)                              candidate memory (c~_i = tanh(W_c·[h_{i-1}, x_i] + b_c))
    o_i = σ(a_o)                                 output gate
    c_i = f_i ⊙ c_{i-1} + i_i ⊙ drop(g_i)        recurrent dropout on the candidate only, new mask each step
    h_i = o_i ⊙ tanh(norm(c_i))                  norm: identity (LSTM) or LN_c (LayerNorm, Hyper)

``drop`` keeps each unit with probability ``dropout_keep`` and scales kept units by
``1 / dropout_keep`` (Semeniuta et al. 2016, "recurrent dropout without memory loss"); it is only
active in training mode.

A whole sequence is the step in a loop (:meth:`RecurrentCell.sequence`). Faster versions of that
loop (and of the encoder's two directions) live in :mod:`sketchlib.fast`, which registers them here
in :data:`FAST_PATHS` by cell class. This package never imports them: the first
:meth:`FastPaths.lookup` loads ``sketchlib.fast`` by name, and its switch
(``sketchlib.fast.enabled``) decides whether a registered version runs. Default: fast.
"""

from __future__ import annotations

import importlib
from typing import Callable

import torch
from torch import nn


def glorot_uniform_(weight: torch.Tensor) -> torch.Tensor:
    """Glorot (Xavier) uniform, the reference's default for input weights: U(±sqrt(6 / (fan_in + fan_out)))."""
    return nn.init.xavier_uniform_(weight)


def orthogonal_per_gate_(weight: torch.Tensor, gates: int = 4) -> torch.Tensor:
    """The reference's ``lstm_ortho_initializer``: each gate's [H_in, H] block of ``weight`` orthogonal."""
    with torch.no_grad():
        for block in weight.chunk(gates, dim=1):
            nn.init.orthogonal_(block)
    return weight


def check_keep(dropout_keep: float) -> float:
    if not 0.0 < dropout_keep <= 1.0:
        raise ValueError(f"dropout_keep is a keep probability in (0, 1], got {dropout_keep!r}")
    return float(dropout_keep)


def recurrent_dropout_masks(steps: int, batch_size: int, hidden_size: int, keep: float,
                            like: torch.Tensor) -> torch.Tensor:
    """Masks for ``steps`` steps of recurrent dropout, ``[T, B, H]``: 1/keep with probability keep, else 0.

    One independent mask per step (the reference draws a new one at every step).
    """
    probs = torch.full((steps, batch_size, hidden_size), keep, dtype=like.dtype, device=like.device)
    return torch.bernoulli(probs) / keep


def gate_step(a: torch.Tensor, c: torch.Tensor, forget_bias: float, mask: torch.Tensor | None = None,
              norm: Callable[[torch.Tensor], torch.Tensor] | None = None):
    """The LSTM update (module docstring). a [B, 4, H] gates (i, g, f, o), c_{i-1} [B, H], mask [B, H] or None.

    Returns (h_i, c_i, gates) with gates = dict(i, f, g, o, c, h), each [B, H] (g before dropout).
    """
    a_i, a_g, a_f, a_o = a.unbind(1)
    i = torch.sigmoid(a_i)
    f = torch.sigmoid(a_f + forget_bias)
    g = torch.tanh(a_g)  # candidate memory c~
    o = torch.sigmoid(a_o)
    c = f * c + i * (g if mask is None else g * mask)
    h = o * torch.tanh(c if norm is None else norm(c))
    return h, c, dict(i=i, f=f, g=g, o=o, c=c, h=h)


class FastPaths:
    """The hook through which :mod:`sketchlib.fast` plugs in, and the state of its one switch.

    ``impls[(name, cell class)]`` is a faster version of ``name`` ("sequence": one cell over a
    sequence; "encoder": both directions of the encoder). ``on`` (default True) and ``compile``
    (default False: fuse element-wise work with torch.compile on a GPU) are set by
    ``sketchlib.fast.enabled`` / ``sketchlib.fast.configure``.
    """

    def __init__(self):
        self.impls: dict[tuple[str, type], Callable] = {}
        self.on, self.compile, self.loaded = True, False, False

    def register(self, name: str, cell_class: type, fn: Callable) -> Callable:
        self.impls[(name, cell_class)] = fn
        return fn

    def lookup(self, name: str, cell_class: type) -> Callable | None:
        """The registered fast version, or None: the switch is off, or there is none (plain code runs)."""
        if not self.on:
            return None
        if not self.loaded:  # once: sketchlib.fast registers its versions (and sets loaded) when imported
            importlib.import_module("sketchlib.fast")
        return self.impls.get((name, cell_class))


FAST_PATHS = FastPaths()


class RecurrentCell(nn.Module):
    """What the LSTM, LayerNorm LSTM and HyperLSTM cells share: the state as a tuple of [B, n]
    tensors (sizes in ``state_sizes``), recurrent dropout on the main cell's candidate,
    ``sequence`` (the step in a loop, or a registered fast version) and ``trace``.

    A subclass sets ``hidden_size``, ``dropout_keep``, ``forget_bias``, ``state_sizes`` and ``W_hh``
    and defines ``forward`` (one step).
    """

    state_sizes: tuple[int, ...]

    @property
    def state_size(self) -> int:
        """Length of the state as one vector: what the decoder's z projection must produce."""
        return sum(self.state_sizes)

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

    def step_mask(self, mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
        """This step's [B, H] mask: the one given, else a fresh one when dropout is active, else None."""
        if mask is None and self.dropout_active():
            mask = recurrent_dropout_masks(1, x.shape[0], self.hidden_size, self.dropout_keep, x)[0]
        return mask

    def _forget_shift(self, like: torch.Tensor) -> torch.Tensor:
        """[4, H] zeros with forget_bias on the f row (gate order i, g, f, o): what the fast paths add."""
        shift = torch.zeros(4, self.hidden_size, dtype=like.dtype, device=like.device)
        shift[2] = self.forget_bias
        return shift

    def sequence(self, x: torch.Tensor, state=None, masks: torch.Tensor | None = None):
        """Run over x [B, T, D] from ``state`` (zeros if None) -> (h for every step [B, T, H], final state).

        ``masks`` [T, B, H] fixes the recurrent dropout masks (drawn here when None and training).
        Runs the registered fast version when the switch is on (:data:`FAST_PATHS`), else the plain loop.
        """
        B, T, _ = x.shape
        if state is None:
            state = self.zero_state(B)
        if masks is None:
            masks = self.dropout_masks(T, B, x)
        fast = FAST_PATHS.lookup("sequence", type(self))
        if fast is not None:
            return fast(self, x, state, masks)
        return self.plain_sequence(x, state, masks)

    def plain_sequence(self, x: torch.Tensor, state, masks: torch.Tensor | None):
        """The step in a loop: ``forward`` once per step."""
        outputs = []
        for t, x_t in enumerate(x.unbind(1)):  # unbind, not x[:, t]: slicing in the loop makes backward O(T^2)
            h, state = self(x_t, state, None if masks is None else masks[t])
            outputs.append(h)
        return torch.stack(outputs, dim=1), state

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
