"""The loss and its masking: a hand-computed example, padding rows count in L_p but never in L_s,
the KL floor."""

import math

import pytest
import torch

from sketchlib.nn import mdn
from sketchlib.nn.loss import kl_loss, real_point_mask, reconstruction_loss, total_loss
from sketchlib.nn.model import ModelOutput


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


LOG_2PI = math.log(2 * math.pi)


def tiny_batch():
    """Two sketches, N_max = 3: the first has 2 real points, the second 3."""
    strokes = torch.tensor([
        [[0, 0, 1, 0, 0], [1.0, 2.0, 1, 0, 0], [0.0, -1.0, 0, 1, 0], [0, 0, 0, 0, 1]],
        [[0, 0, 1, 0, 0], [0.5, 0.0, 0, 1, 0], [-1.0, 1.0, 1, 0, 0], [2.0, 0.0, 0, 1, 0]],
    ], dtype=torch.float64)
    return strokes, torch.tensor([2, 3])


def test_hand_computed_example():
    """M = 1, μ = 0, σ = 1, ρ = 0, uniform pen logits: every term has a closed form."""
    strokes, lengths = tiny_batch()
    y = torch.zeros(2, 3, mdn.output_size(1), dtype=torch.float64)
    L_s, L_p = reconstruction_loss(y, strokes, lengths)
    # -log N(dx, dy | 0, I) = log 2π + (dx² + dy²)/2 over the 5 real points
    sq = [1 + 4, 0 + 1] + [0.25 + 0, 1 + 1, 4 + 0]
    expected_L_s = sum(LOG_2PI + s / 2 for s in sq) / 3 / 2  # / N_max, then batch mean
    assert L_s.item() == pytest.approx(expected_L_s, rel=1e-12)
    # -log q_j = log 3 on all 6 rows (padding too): / N_max, batch mean -> log 3
    assert L_p.item() == pytest.approx(math.log(3), rel=1e-12)


def test_hand_computed_mixture_and_pen():
    """M = 2 with weights (1/4, 3/4), one shifted and scaled component; pen logits favour p1."""
    strokes, lengths = tiny_batch()
    strokes, lengths = strokes[:1], lengths[:1]
    y = torch.zeros(1, 3, mdn.output_size(2), dtype=torch.float64)
    p = mdn.split(y)
    p.q_hat[..., 0] = math.log(2)  # q = (2, 1, 1) / 4
    p.pi_hat[..., 1] = math.log(3)  # Π = (1/4, 3/4)
    p.mu_x[..., 1] = 1.0
    p.sigma_hat_y[..., 1] = math.log(2)  # σ_y = 2 for component 2
    L_s, L_p = reconstruction_loss(y, strokes, lengths)

    def n2(dx, dy, mx, sx, sy):  # independent normal density (ρ = 0)
        return math.exp(-((dx - mx) / sx) ** 2 / 2 - (dy / sy) ** 2 / 2) / (2 * math.pi * sx * sy)

    points = [(1.0, 2.0), (0.0, -1.0)]
    nll = [-math.log(0.25 * n2(dx, dy, 0, 1, 1) + 0.75 * n2(dx, dy, 1, 1, 2)) for dx, dy in points]
    assert L_s.item() == pytest.approx(sum(nll) / 3, rel=1e-12)
    pen_rows = [math.log(2), math.log(4), math.log(4)]  # targets p1, p2, p3
    assert L_p.item() == pytest.approx(sum(pen_rows) / 3, rel=1e-12)


def test_padding_rows_change_L_p_but_not_L_s():
    torch.manual_seed(0)
    strokes, lengths = tiny_batch()
    y = torch.randn(2, 3, mdn.output_size(3), dtype=torch.float64)
    L_s, L_p = reconstruction_loss(y, strokes, lengths)
    y2 = y.clone()
    y2[0, 2] = 100 * torch.randn(y.shape[-1], dtype=torch.float64)  # row 3 of sketch 0 is padding
    L_s2, L_p2 = reconstruction_loss(y2, strokes, lengths)
    assert L_s2.item() == L_s.item()
    assert L_p2.item() != L_p.item()
    # the reference's evaluation model masks the pen loss too: then padding changes nothing
    masked, masked2 = (reconstruction_loss(v, strokes, lengths, mask_pen=True)[1] for v in (y, y2))
    assert masked.item() == masked2.item() and masked.item() < L_p.item()
    # and a real row does change L_s
    y3 = y.clone()
    y3[0, 1, 3:] += 1.0
    assert reconstruction_loss(y3, strokes, lengths)[0].item() != L_s.item()


def test_loss_is_divided_by_n_max_not_by_the_sketch_length():
    torch.manual_seed(1)
    strokes, lengths = tiny_batch()
    y = torch.randn(2, 3, mdn.output_size(2), dtype=torch.float64)
    L_s, _ = reconstruction_loss(y, strokes, lengths)
    params = mdn.split(y)
    log_p = mdn.mixture_log_likelihood(params, strokes[:, 1:, 0], strokes[:, 1:, 1])
    by_hand = -(log_p[0, :2].sum() / 3 + log_p[1, :3].sum() / 3) / 2
    torch.testing.assert_close(L_s, by_hand)


def test_real_point_mask():
    assert real_point_mask(torch.tensor([2, 3, 1]), 3).tolist() == [
        [True, True, False], [True, True, True], [True, False, False]]


def test_total_loss_with_the_kl_floor():
    strokes, lengths = tiny_batch()
    y = torch.zeros(2, 3, mdn.output_size(1), dtype=torch.float64)
    sigma_hat = torch.zeros(2, 4, dtype=torch.float64)
    # small KL (below the floor): the term is constant and gives no gradient
    mu = torch.full((2, 4), 0.1, dtype=torch.float64, requires_grad=True)
    out = ModelOutput(y, mu, sigma_hat, mu)
    d = total_loss(out, strokes, lengths, kl_weight=0.5, kl_tolerance=0.2)
    assert set(d) == {"loss", "L_R", "L_s", "L_p", "L_KL"}
    assert d["L_KL"].item() == pytest.approx(0.005)  # ½ mean(μ²)
    assert d["loss"].item() == pytest.approx(d["L_R"].item() + 0.5 * 0.2)
    assert d["L_R"].item() == pytest.approx(d["L_s"].item() + d["L_p"].item())
    (g,) = torch.autograd.grad(d["loss"], mu)
    assert torch.count_nonzero(g) == 0
    # large KL: weight times KL, with its gradient w · μ / (B N_z)
    mu = torch.full((2, 4), 1.0, dtype=torch.float64, requires_grad=True)
    d = total_loss(ModelOutput(y, mu, sigma_hat, mu), strokes, lengths, kl_weight=0.5, kl_tolerance=0.2)
    assert d["loss"].item() == pytest.approx(d["L_R"].item() + 0.5 * 0.5)
    (g,) = torch.autograd.grad(d["loss"], mu)
    torch.testing.assert_close(g, torch.full_like(mu, 0.5 * 1.0 / 8))


def test_unconditional_model_has_no_kl_term():
    strokes, lengths = tiny_batch()
    y = torch.zeros(2, 3, mdn.output_size(1), dtype=torch.float64)
    d = total_loss(ModelOutput(y, None, None, None), strokes, lengths, kl_weight=0.5, kl_tolerance=0.2)
    assert d["L_KL"].item() == 0.0
    assert d["loss"].item() == d["L_R"].item()


def test_kl_loss_formula():
    mu, sigma_hat = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2)]])
    expected = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2) - 0 - 2)) / 2
    assert kl_loss(mu, sigma_hat).item() == pytest.approx(expected)


def test_shape_mismatch_is_an_error():
    strokes, lengths = tiny_batch()
    with pytest.raises(ValueError, match="does not match"):
        reconstruction_loss(torch.zeros(2, 4, 9), strokes, lengths)
