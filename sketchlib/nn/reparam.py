"""The reparameterisation trick and the KL term of the VAE.

The encoder gives a mean μ and a log-variance σ̂ for each of the N_z latent dimensions. Drawing
``z ~ N(μ, σ²)`` directly would cut the gradient: there is no function from (μ, σ) to the sample.
Writing the same draw as a deterministic function of (μ, σ) and outside noise fixes that::

    σ = exp(σ̂ / 2),   ε ~ N(0, I),   z = μ + σ ⊙ ε

so ∂z/∂μ = 1 and ∂z/∂σ = ε, and the noise carries no parameters.

The KL divergence of ``N(μ, σ²)`` from the prior ``N(0, I)``, averaged over the batch and the
N_z dimensions (the reference's ``reduce_mean``)::

    L_KL = -1 / (2 N_z) · Σ_k (1 + σ̂_k - μ_k² - exp(σ̂_k))
"""

from __future__ import annotations

import torch


def sigma_from_hat(sigma_hat: torch.Tensor) -> torch.Tensor:
    """σ = exp(σ̂ / 2): σ̂ is a log-variance, so σ > 0 for any network output."""
    return torch.exp(sigma_hat / 2)


def reparameterize(mu: torch.Tensor, sigma_hat: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = μ + σ ⊙ ε with σ = exp(σ̂ / 2); ε ~ N(0, I) is drawn here when not given. All [B, N_z]."""
    if eps is None:
        eps = torch.randn_like(mu)
    elif eps.shape != mu.shape:
        raise ValueError(f"eps must have the shape of mu {list(mu.shape)}, got {list(eps.shape)}")
    return mu + sigma_from_hat(sigma_hat) * eps


def kl_divergence(mu: torch.Tensor, sigma_hat: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, exp(σ̂)) || N(0, I)) in closed form, averaged over batch and z dims -> scalar.

    L_KL = -1/2 · mean(1 + σ̂ - μ² - exp(σ̂))
    """
    return -0.5 * torch.mean(1 + sigma_hat - mu.pow(2) - torch.exp(sigma_hat))
