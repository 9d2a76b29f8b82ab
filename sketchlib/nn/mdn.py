"""The mixture density network (MDN) head: what the decoder's output vector y_i means.

At every step the decoder emits ``y_i = W_y h_i + b_y`` with 6M + 3 numbers. They define

* a mixture of M bivariate normals for the offset (Δx, Δy)::

      p(Δx, Δy) = Σ_k Π_k N(Δx, Δy | μ_x,k, μ_y,k, σ_x,k, σ_y,k, ρ_k)

  with Π = softmax(Π̂), σ = exp(σ̂), ρ = tanh(ρ̂);
* a categorical distribution over the pen states (p1, p2, p3) with q = softmax(q̂).

The paper writes y_i grouped per component, ``[(Π̂ μ_x μ_y σ̂_x σ̂_y ρ̂)_1 … (…)_M (q̂1 q̂2 q̂3)]``;
the code uses the reference implementation's grouping by parameter, :data:`OUTPUT_LAYOUT`::

    y = [ q̂ (3) | Π̂ (M) | μ_x (M) | μ_y (M) | σ̂_x (M) | σ̂_y (M) | ρ̂ (M) ]

Everything that reads y (loss, sampler, the browser demo) goes through :func:`split`.

Numerics (differ from the reference, which multiplies densities and takes ``log(sum + 1e-6)``):
the density and the mixture are computed in log space with ``logsumexp``; ρ is kept strictly
inside (-1, 1) by clamping it to ±(1 - RHO_EPS); σ̂ is floored at ``LOG_SIGMA_MIN`` so that
(Δx - μ) / σ stays finite in float32. Both bounds lie far outside anything a trained model uses.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

#: The output layout of y (the reference's): names in order; q̂ has 3 entries, each other M.
OUTPUT_LAYOUT = ("q_hat", "pi_hat", "mu_x", "mu_y", "sigma_hat_x", "sigma_hat_y", "rho_hat")
#: ρ = tanh(ρ̂) clamped to ±(1 - RHO_EPS), so 1 - ρ² > 0 even where tanh rounds to ±1.
RHO_EPS = 1e-6
#: log σ = max(σ̂, LOG_SIGMA_MIN): σ >= exp(-20) ≈ 2e-9 in normalised units.
LOG_SIGMA_MIN = -20.0
_LOG_2PI = math.log(2 * math.pi)


def output_size(num_mixture: int) -> int:
    """Size of y for M components: 6M + 3."""
    return 6 * num_mixture + 3


def num_mixture(y: torch.Tensor) -> int:
    """M from the last dimension of y (which must be 6M + 3)."""
    n = y.shape[-1]
    if n < 9 or (n - 3) % 6:
        raise ValueError(f"the last dimension of y must be 6M + 3 for some M >= 1, got {n}")
    return (n - 3) // 6


class MixtureParams(NamedTuple):
    """The raw pieces of y, each [..., M] (q_hat [..., 3]); the properties give the distributions."""

    q_hat: torch.Tensor  # pen logits
    pi_hat: torch.Tensor  # mixture logits
    mu_x: torch.Tensor
    mu_y: torch.Tensor
    sigma_hat_x: torch.Tensor  # log σ_x
    sigma_hat_y: torch.Tensor  # log σ_y
    rho_hat: torch.Tensor  # atanh ρ

    @property
    def log_q(self) -> torch.Tensor:
        """log q = log_softmax(q̂), the pen-state log-probabilities [..., 3]."""
        return torch.log_softmax(self.q_hat, dim=-1)

    @property
    def log_pi(self) -> torch.Tensor:
        """log Π = log_softmax(Π̂) [..., M]."""
        return torch.log_softmax(self.pi_hat, dim=-1)

    @property
    def log_sigma_x(self) -> torch.Tensor:
        return self.sigma_hat_x.clamp(min=LOG_SIGMA_MIN)

    @property
    def log_sigma_y(self) -> torch.Tensor:
        return self.sigma_hat_y.clamp(min=LOG_SIGMA_MIN)

    @property
    def sigma_x(self) -> torch.Tensor:
        """σ_x = exp(σ̂_x)."""
        return torch.exp(self.log_sigma_x)

    @property
    def sigma_y(self) -> torch.Tensor:
        """σ_y = exp(σ̂_y)."""
        return torch.exp(self.log_sigma_y)

    @property
    def rho(self) -> torch.Tensor:
        """ρ = tanh(ρ̂), clamped to ±(1 - RHO_EPS) to stay inside (-1, 1) (|ρ̂| > 7.25 in practice)."""
        return torch.tanh(self.rho_hat).clamp(-(1 - RHO_EPS), 1 - RHO_EPS)


def split(y: torch.Tensor) -> MixtureParams:
    """Cut y [..., 6M + 3] into its named pieces following :data:`OUTPUT_LAYOUT`."""
    M = num_mixture(y)
    q_hat, rest = y[..., :3], y[..., 3:]
    return MixtureParams(q_hat, *rest.split(M, dim=-1))


def bivariate_normal_log_density(dx, dy, mu_x, mu_y, log_sigma_x, log_sigma_y, rho) -> torch.Tensor:
    """log N(Δx, Δy | μ, σ, ρ) of a bivariate normal, in log space (inputs broadcast).

    With z_x = (Δx - μ_x)/σ_x, z_y = (Δy - μ_y)/σ_y::

        log N = -log(2π) - log σ_x - log σ_y - ½ log(1 - ρ²) - (z_x² + z_y² - 2ρ z_x z_y) / (2(1 - ρ²))

    computed as ``(z_x - ρ z_y)² / (1 - ρ²) + z_y²`` (never negative) with
    log(1 - ρ²) = log1p(-ρ) + log1p(ρ), so nothing is exponentiated and nothing underflows.
    """
    zx = (dx - mu_x) * torch.exp(-log_sigma_x)
    zy = (dy - mu_y) * torch.exp(-log_sigma_y)
    one_minus_rho2 = (1 - rho) * (1 + rho)
    quad = (zx - rho * zy).pow(2) / one_minus_rho2 + zy.pow(2)
    log_det = torch.log1p(-rho) + torch.log1p(rho)
    return -_LOG_2PI - log_sigma_x - log_sigma_y - 0.5 * log_det - 0.5 * quad


def mixture_log_likelihood(params: MixtureParams, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """log Σ_k Π_k N(Δx, Δy | μ_k, σ_k, ρ_k) via logsumexp. dx, dy [...] -> [...]."""
    log_n = bivariate_normal_log_density(dx[..., None], dy[..., None], params.mu_x, params.mu_y,
                                         params.log_sigma_x, params.log_sigma_y, params.rho)  # [..., M]
    return torch.logsumexp(params.log_pi + log_n, dim=-1)
