"""The Sketch-RNN training loss, masked as the reference masks it.

Reconstruction, over the N_max target rows S_1..S_{N_max} of each sketch (N_s of them real)::

    L_s = -1/N_max · Σ_{i=1..N_s}   log Σ_k Π_k,i N(Δx_i, Δy_i | μ_k,i, σ_k,i, ρ_k,i)   offsets: real points only
    L_p = -1/N_max · Σ_{i=1..N_max} Σ_j p_j,i log q_j,i                              pen: every row, padding too
    L_R = L_s + L_p

both averaged over the batch. L_p is not masked, so the model learns to keep emitting p3 after
the end. The VAE adds the KL term with a floor (``KL_min``, the KL tolerance)::

    loss = L_R + w_KL · max(L_KL, KL_min)

Below the floor the KL term is a constant and gives no gradient: the encoder may use that many
nats for free.
"""

from __future__ import annotations

import torch

from sketchlib.nn import mdn
from sketchlib.nn.reparam import kl_divergence


#: The losses :func:`total_loss` returns, in the order logs and training steps list them.
LOSS_KEYS = ("loss", "L_R", "L_s", "L_p", "L_KL")


def real_point_mask(lengths: torch.Tensor, n_max: int) -> torch.Tensor:
    """[B, N_max] bool, True on the real points (row i < N_s) of the targets S_1..S_{N_max}."""
    return torch.arange(n_max, device=lengths.device) < lengths[:, None]


def reconstruction_loss(y: torch.Tensor, strokes: torch.Tensor, lengths: torch.Tensor,
                        mask_pen: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_s, L_p) for decoder outputs y [B, N_max, 6M+3] and the batch strokes [B, N_max+1, 5].

    Targets are rows 1..N_max of ``strokes``; ``lengths`` [B] counts the real points. Both terms are
    divided by N_max and averaged over the batch. ``mask_pen=True`` also masks L_p to the real
    points, as the reference's *evaluation* model does (its training model does not).
    """
    target = strokes[:, 1:]  # [B, N_max, 5]
    if y.shape[:2] != target.shape[:2]:
        raise ValueError(f"y {list(y.shape)} does not match the targets {list(target.shape)} (strokes[:, 1:])")
    B, n_max = target.shape[:2]
    mask = real_point_mask(lengths.to(y.device), n_max)  # [B, N_max]
    params = mdn.split(y)
    log_p = mdn.mixture_log_likelihood(params, target[..., 0], target[..., 1])  # [B, N_max]
    L_s = -torch.where(mask, log_p, torch.zeros_like(log_p)).sum() / (B * n_max)
    pen_nll = -(target[..., 2:] * params.log_q).sum(dim=-1)  # [B, N_max] cross-entropy per row
    if mask_pen:
        pen_nll = torch.where(mask, pen_nll, torch.zeros_like(pen_nll))
    L_p = pen_nll.sum() / (B * n_max)
    return L_s, L_p


def kl_loss(mu: torch.Tensor, sigma_hat: torch.Tensor) -> torch.Tensor:
    """L_KL = -1/(2 N_z) Σ (1 + σ̂ - μ² - exp(σ̂)), averaged over the batch (see :mod:`sketchlib.nn.reparam`)."""
    return kl_divergence(mu, sigma_hat)


def total_loss(out, strokes: torch.Tensor, lengths: torch.Tensor, kl_weight: float, kl_tolerance: float,
               mask_pen: bool = False) -> dict[str, torch.Tensor]:
    """loss = L_R + w_KL · max(L_KL, KL_min) for a :class:`sketchlib.nn.model.ModelOutput`.

    Returns dict(loss, L_R, L_s, L_p, L_KL); L_KL is the KL itself, before the floor. An
    unconditional model (``out.mu is None``) has no KL term: loss = L_R, L_KL = 0.
    """
    L_s, L_p = reconstruction_loss(out.y, strokes, lengths, mask_pen=mask_pen)
    L_R = L_s + L_p
    if out.mu is None:
        L_KL = torch.zeros((), dtype=L_R.dtype, device=L_R.device)
        loss = L_R
    else:
        L_KL = kl_loss(out.mu, out.sigma_hat)
        loss = L_R + kl_weight * torch.clamp(L_KL, min=kl_tolerance)
    return dict(loss=loss, L_R=L_R, L_s=L_s, L_p=L_p, L_KL=L_KL)
