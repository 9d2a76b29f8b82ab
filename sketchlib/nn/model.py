"""Sketch-RNN: encoder, latent vector and decoder put together.

    S_1..S_{N_max} ──encoder──> μ, σ̂ ──z = μ + σ ⊙ ε──> z ──decoder (S_0..S_{N_max-1}, z)──> y_1..y_{N_max}

A batch is ``strokes`` [B, N_max + 1, 5] (row 0 the start token S_0) with the true ``lengths`` [B]:
the encoder sees rows 1..N_max, the decoder reads rows 0..N_max-1 (with z at every step) and is
asked to predict rows 1..N_max. The unconditional model (``hp.conditional = False``) has no
encoder and no z: its decoder starts from a zero state.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from sketchlib.config import HParams
from sketchlib.nn.decoder import Decoder
from sketchlib.nn.encoder import Encoder
from sketchlib.nn.reparam import reparameterize


class ModelOutput(NamedTuple):
    """What :meth:`SketchRNN.forward` returns; mu, sigma_hat and z are None for an unconditional model."""

    y: torch.Tensor  # [B, N_max, 6M + 3], read with sketchlib.nn.mdn.split
    mu: torch.Tensor | None  # [B, N_z]
    sigma_hat: torch.Tensor | None  # [B, N_z]
    z: torch.Tensor | None  # [B, N_z]


class SketchRNN(nn.Module):
    """The whole model for one set of :class:`~sketchlib.config.HParams`.

    * ``encode(strokes, lengths) -> (μ, σ̂)``
    * ``forward(strokes, lengths, eps=None) -> ModelOutput`` (teacher forcing; ε ~ N(0, I) drawn when None)
    * ``initial_state(z, batch_size)`` and ``step(s_prev, z, state) -> (y, state)`` for sampling

    ``with sketchlib.fast.enabled(False):`` runs the plain step-by-step cells instead of the fast path
    (the default, :mod:`sketchlib.fast`).
    """

    def __init__(self, hp: HParams):
        super().__init__()
        hp.validate()
        self.hp = hp
        self.encoder = Encoder(hp) if hp.conditional else None
        self.decoder = Decoder(hp)

    def _check_batch(self, strokes: torch.Tensor) -> None:
        if strokes.dim() != 3 or strokes.shape[-1] != 5 or strokes.shape[1] < 2:
            raise ValueError(f"strokes must be a stroke-5 batch [B, N_max + 1, 5], got {list(strokes.shape)}")

    def encode(self, strokes: torch.Tensor, lengths: torch.Tensor):
        """strokes [B, N_max+1, 5], lengths [B] -> (μ, σ̂) each [B, N_z]. The encoder sees rows 1..N_max."""
        if self.encoder is None:
            raise ValueError("an unconditional SketchRNN has no encoder (hp.conditional is False)")
        self._check_batch(strokes)
        return self.encoder(strokes[:, 1:], lengths)

    def forward(self, strokes: torch.Tensor, lengths: torch.Tensor, eps: torch.Tensor | None = None) -> ModelOutput:
        """Teacher-forced pass: y_i for every target row S_1..S_{N_max}, plus μ, σ̂ and z = μ + σ ⊙ ε."""
        self._check_batch(strokes)
        mu = sigma_hat = z = None
        if self.encoder is not None:
            mu, sigma_hat = self.encode(strokes, lengths)
            z = reparameterize(mu, sigma_hat, eps)  # [B, N_z]
        y, _ = self.decoder(strokes[:, :-1], z)  # inputs S_0..S_{N_max-1}
        return ModelOutput(y, mu, sigma_hat, z)

    def initial_state(self, z: torch.Tensor | None, batch_size: int | None = None):
        """Decoder state before the first step (from z, or zeros for the unconditional model)."""
        if batch_size is None and z is not None:
            batch_size = z.shape[0]
        return self.decoder.initial_state(z, batch_size)

    def step(self, s_prev: torch.Tensor, z: torch.Tensor | None, state):
        """One decoder step for sampling: S_{i-1} [B, 5] -> (y_i [B, 6M+3], new state)."""
        return self.decoder.step(s_prev, z, state)
