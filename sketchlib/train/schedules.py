"""Training schedules: the learning rate and the KL weight as functions of the step t.

Both are the reference's (Magenta ``sketch_rnn``), evaluated at the 0-based step t of the
update being made:

* learning rate, exponential decay to a floor::

      lr_t = (lr_0 - lr_min) * decay^t + lr_min          (hp.learning_rate, hp.min_learning_rate, hp.decay_rate)

* KL annealing, the weight of the KL term rises from w_start towards w_KL::

      w_KL(t) = w_KL - (w_KL - w_start) * R^t             (hp.kl_weight, hp.kl_weight_start, hp.kl_decay_rate)

  (the paper writes it as eta_t = 1 - (1 - eta_min) R^t times w_KL, with w_start = eta_min * w_KL).

They are pure functions of (step, hp), so a resumed run sees exactly the schedule it would have
seen without stopping.
"""

from __future__ import annotations

from sketchlib.config import HParams


def _check_step(step) -> int:
    if isinstance(step, bool) or int(step) != step or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    return int(step)


def learning_rate(step: int, hp: HParams) -> float:
    """lr_t = (lr_0 - lr_min) * decay^t + lr_min."""
    t = _check_step(step)
    return (hp.learning_rate - hp.min_learning_rate) * hp.decay_rate**t + hp.min_learning_rate


def kl_weight(step: int, hp: HParams) -> float:
    """w_KL(t) = w_KL - (w_KL - w_start) * R^t."""
    t = _check_step(step)
    return hp.kl_weight - (hp.kl_weight - hp.kl_weight_start) * hp.kl_decay_rate**t
