"""The learning-rate and KL-weight schedules follow the reference formulas."""

import math

import pytest

from sketchlib.config import HParams
from sketchlib.train.schedules import kl_weight, learning_rate


def test_learning_rate_formula_and_limits():
    hp = HParams()
    assert learning_rate(0, hp) == pytest.approx(1e-3)
    for t in (1, 10, 1234, 50_000):
        assert learning_rate(t, hp) == pytest.approx((1e-3 - 1e-5) * 0.9999**t + 1e-5, rel=1e-12)
    # decays monotonically to the floor lr_min
    assert learning_rate(10_000_000, hp) == pytest.approx(1e-5)
    values = [learning_rate(t, hp) for t in range(0, 100_000, 5000)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_learning_rate_uses_hparams():
    hp = HParams(learning_rate=0.01, min_learning_rate=0.001, decay_rate=0.5)
    assert learning_rate(2, hp) == pytest.approx(0.009 * 0.25 + 0.001)


def test_kl_weight_formula_and_limits():
    hp = HParams()
    assert kl_weight(0, hp) == pytest.approx(0.01)
    for t in (1, 100, 20_000):
        assert kl_weight(t, hp) == pytest.approx(0.5 - (0.5 - 0.01) * 0.99995**t, rel=1e-12)
    assert kl_weight(10_000_000, hp) == pytest.approx(0.5)
    # paper's form: eta_t = 1 - (1 - eta_min) R^t, times w_KL, with eta_min = w_start / w_KL
    eta_min = 0.01 / 0.5
    assert kl_weight(777, hp) == pytest.approx(0.5 * (1 - (1 - eta_min) * 0.99995**777))
    hp2 = HParams(kl_weight=1.0, kl_weight_start=0.2, kl_decay_rate=0.9)
    assert kl_weight(3, hp2) == pytest.approx(1.0 - 0.8 * 0.729)
    assert math.isclose(kl_weight(0, hp2), 0.2)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_step(bad):
    with pytest.raises(ValueError, match="step"):
        learning_rate(bad, HParams())
    with pytest.raises(ValueError, match="step"):
        kl_weight(bad, HParams())
