"""Reparameterisation: z = μ + σ ⊙ ε is differentiable in μ and σ; the closed-form KL matches torch.distributions
and a Monte Carlo estimate."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence as torch_kl

from sketchlib.nn.reparam import kl_divergence, reparameterize, sigma_from_hat


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


def test_gradients_dz_dmu_is_one_and_dz_dsigma_is_eps():
    torch.manual_seed(0)
    mu = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    sigma = (0.5 + torch.rand(3, 4, dtype=torch.float64)).requires_grad_()
    eps = torch.randn(3, 4, dtype=torch.float64)
    z = reparameterize(mu, 2 * torch.log(sigma), eps)  # σ̂ = 2 log σ, so σ = exp(σ̂ / 2)
    # z is elementwise, so the gradient of sum(z) holds every ∂z_k/∂μ_k and ∂z_k/∂σ_k
    d_mu, d_sigma = torch.autograd.grad(z.sum(), (mu, sigma))
    torch.testing.assert_close(d_mu, torch.ones_like(mu))
    torch.testing.assert_close(d_sigma, eps)
    torch.testing.assert_close(z, mu + sigma * eps)


def test_sigma_is_exp_of_half_sigma_hat_and_z_has_that_spread():
    torch.manual_seed(1)
    sigma_hat = torch.tensor([[-2.0, 0.0, 1.5]])
    torch.testing.assert_close(sigma_from_hat(sigma_hat), torch.exp(sigma_hat / 2))
    mu = torch.tensor([[1.0, -2.0, 0.5]])
    z = reparameterize(mu.expand(200_000, 3), sigma_hat.expand(200_000, 3))  # ε drawn inside
    torch.testing.assert_close(z.mean(0), mu[0], atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.exp(sigma_hat[0] / 2), atol=0.02, rtol=0.01)


def test_kl_closed_form_matches_torch_distributions_and_the_formula():
    torch.manual_seed(2)
    mu = torch.randn(5, 7, dtype=torch.float64)
    sigma_hat = torch.randn(5, 7, dtype=torch.float64)
    ours = kl_divergence(mu, sigma_hat)
    exact = torch_kl(Normal(mu, torch.exp(sigma_hat / 2)), Normal(0.0, 1.0)).mean()  # per dim, averaged
    torch.testing.assert_close(ours, exact)
    by_hand = -sum(1 + s - m * m - math.exp(s) for m, s in zip(mu.flatten().tolist(), sigma_hat.flatten().tolist()))
    assert ours.item() == pytest.approx(by_hand / (2 * 35), rel=1e-12)


def test_kl_agrees_with_a_monte_carlo_estimate():
    torch.manual_seed(3)
    mu = torch.tensor([[0.5, -1.0, 0.0], [1.5, 0.2, -0.3]], dtype=torch.float64)
    sigma_hat = torch.tensor([[0.3, -0.8, 0.0], [-1.2, 0.5, 0.1]], dtype=torch.float64)
    q, p = Normal(mu, torch.exp(sigma_hat / 2)), Normal(0.0, 1.0)
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0).mean()  # E_q[log q - log p], averaged like L_KL
    assert abs(kl_divergence(mu, sigma_hat).item() - mc.item()) < 0.01


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(2, 3)
    assert kl_divergence(zeros, zeros).item() == 0.0
    assert kl_divergence(zeros + 0.1, zeros).item() > 0


def test_eps_shape_must_match():
    with pytest.raises(ValueError, match="eps must have the shape"):
        reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, 2))
