"""The MDN head: the output layout, the log density against torch.distributions, and finite values and
gradients for extreme outputs."""

import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from sketchlib.nn import mdn


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


def test_layout_is_the_references():
    M = 4
    assert mdn.output_size(M) == 27
    assert mdn.OUTPUT_LAYOUT == ("q_hat", "pi_hat", "mu_x", "mu_y", "sigma_hat_x", "sigma_hat_y", "rho_hat")
    y = torch.arange(27.0).view(1, 27)
    p = mdn.split(y)
    assert p.q_hat.tolist() == [[0, 1, 2]]
    assert p.pi_hat.tolist() == [[3, 4, 5, 6]]
    assert p.mu_x.tolist() == [[7, 8, 9, 10]]
    assert p.mu_y.tolist() == [[11, 12, 13, 14]]
    assert p.sigma_hat_x.tolist() == [[15, 16, 17, 18]]
    assert p.sigma_hat_y.tolist() == [[19, 20, 21, 22]]
    assert p.rho_hat.tolist() == [[23, 24, 25, 26]]
    assert p._fields == mdn.OUTPUT_LAYOUT
    assert mdn.split(torch.zeros(2, 5, 27)).mu_x.shape == (2, 5, 4)


@pytest.mark.parametrize("n", [8, 10, 2])
def test_wrong_size_is_an_error(n):
    with pytest.raises(ValueError, match="6M \\+ 3"):
        mdn.split(torch.zeros(1, n))


def test_distributions_from_the_raw_outputs():
    torch.manual_seed(0)
    p = mdn.split(torch.randn(4, mdn.output_size(5), dtype=torch.float64))
    torch.testing.assert_close(p.log_pi.exp().sum(-1), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(p.log_q.exp(), torch.softmax(p.q_hat, -1))
    torch.testing.assert_close(p.sigma_x, torch.exp(p.sigma_hat_x))
    torch.testing.assert_close(p.rho, torch.tanh(p.rho_hat), rtol=0, atol=0)  # exact away from ±1


def reference_mixture(p: mdn.MixtureParams) -> MixtureSameFamily:
    sx, sy, rho = torch.exp(p.sigma_hat_x), torch.exp(p.sigma_hat_y), torch.tanh(p.rho_hat)
    cov = torch.stack([torch.stack([sx * sx, rho * sx * sy], -1), torch.stack([rho * sx * sy, sy * sy], -1)], -2)
    comp = MultivariateNormal(torch.stack([p.mu_x, p.mu_y], -1), covariance_matrix=cov)
    return MixtureSameFamily(Categorical(logits=p.pi_hat), comp)


def test_mixture_log_likelihood_equals_torch_distributions_float64():
    torch.manual_seed(1)
    B, T, M = 3, 6, 5
    y = torch.randn(B, T, mdn.output_size(M), dtype=torch.float64)
    y[..., 3 + 5 * M:] *= 2  # correlations up to |ρ| ≈ 0.99
    p = mdn.split(y)
    dx, dy = torch.randn(B, T, dtype=torch.float64), torch.randn(B, T, dtype=torch.float64)
    ours = mdn.mixture_log_likelihood(p, dx, dy)
    theirs = reference_mixture(p).log_prob(torch.stack([dx, dy], -1))
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def test_bivariate_log_density_equals_multivariate_normal_exactly():
    torch.manual_seed(2)
    mu = torch.randn(10, 2, dtype=torch.float64)
    log_s = 0.5 * torch.randn(10, 2, dtype=torch.float64)
    rho = torch.rand(10, dtype=torch.float64) * 1.8 - 0.9
    x = torch.randn(10, 2, dtype=torch.float64)
    ours = mdn.bivariate_normal_log_density(x[:, 0], x[:, 1], mu[:, 0], mu[:, 1], log_s[:, 0], log_s[:, 1], rho)
    s = log_s.exp()
    cov = torch.stack([torch.stack([s[:, 0] ** 2, rho * s[:, 0] * s[:, 1]], -1),
                       torch.stack([rho * s[:, 0] * s[:, 1], s[:, 1] ** 2], -1)], -2)
    torch.testing.assert_close(ours, MultivariateNormal(mu, cov).log_prob(x), rtol=1e-12, atol=1e-12)


def test_standard_normal_by_hand():
    zero = torch.zeros(())
    v = mdn.bivariate_normal_log_density(torch.tensor(1.0), torch.tensor(2.0), zero, zero, zero, zero, zero)
    assert v.item() == pytest.approx(-math.log(2 * math.pi) - 2.5, rel=1e-6)


@pytest.mark.parametrize("case", ["tiny_sigma_far_point", "huge_sigma", "rho_plus", "rho_minus", "mixed"])
def test_extreme_outputs_give_finite_values_and_gradients(case):
    """|σ̂| = 50, ρ̂ = ±30, offsets of 1e4, in float32: no NaN or inf in the log-likelihood or its gradient.

    Every component of a row is extreme at once, so no well-behaved component can hide a bad one.
    """
    M, rows = 4, 6
    y = torch.zeros(rows, mdn.output_size(M))
    p = mdn.split(y)  # views into y
    dx = torch.tensor([1e4, -1e4, 0.0, 1e-3, 1e4, 3.0])
    dy = torch.tensor([-1e4, 1e4, 0.0, 0.0, 1e4, -1e-30])
    p.mu_x[:] = torch.tensor([-1e3, 1e3, 0.0, 5.0])
    p.mu_y[:] = torch.tensor([1e3, 0.0, -1e3, 5.0])
    if case == "tiny_sigma_far_point":
        p.sigma_hat_x[:], p.sigma_hat_y[:] = -50.0, -50.0
    elif case == "huge_sigma":
        p.sigma_hat_x[:], p.sigma_hat_y[:] = 50.0, 50.0
    elif case == "rho_plus":
        p.rho_hat[:], p.sigma_hat_x[:] = 30.0, -50.0
    elif case == "rho_minus":
        p.rho_hat[:], p.sigma_hat_y[:] = -30.0, -50.0
    else:
        p.sigma_hat_x[:] = torch.tensor([50.0, -50.0, 50.0, -50.0])
        p.sigma_hat_y[:] = torch.tensor([-50.0, 50.0, -50.0, -50.0])
        p.rho_hat[:] = torch.tensor([30.0, -30.0, 30.0, -30.0])
        p.pi_hat[:] = torch.tensor([80.0, -80.0, 0.0, 0.0])
        p.q_hat[:] = torch.tensor([90.0, -90.0, 0.0])
    y = y.requires_grad_()
    params = mdn.split(y)
    ll = mdn.mixture_log_likelihood(params, dx, dy)
    pen = params.log_q[:, 2]
    assert torch.isfinite(ll).all() and torch.isfinite(pen).all()
    assert (params.rho.abs() < 1).all()
    (g,) = torch.autograd.grad(ll.sum() + pen.sum(), y)
    assert torch.isfinite(g).all()


def test_rho_stays_inside_the_unit_interval_in_float32():
    rho = mdn.split(torch.full((1, 9), 30.0)).rho
    assert rho.item() < 1.0 and 1 - rho.item() ** 2 > 0
    assert rho.item() == pytest.approx(1 - mdn.RHO_EPS, abs=1e-7)
