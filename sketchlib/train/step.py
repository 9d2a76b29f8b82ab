"""ONE training update, the same for the plain loop, the CUDA-graph path and chapter 8.

At step t (0-based) on a batch S of B sketches (augmented, recurrent dropout on)::

    lr_t      = (lr_0 - lr_min) * decay^t + lr_min                 (sketchlib.train.schedules)
    w_KL(t)   = w_KL - (w_KL - w_start) * R^t
    loss      = L_R + w_KL(t) * max(L_KL, KL_min)                  (sketchlib.nn.loss.total_loss)
    g         = clip(grad loss, -1, 1)   element-wise, by VALUE    (hp.grad_clip, hp.grad_clip_mode="value")
    theta     = Adam(theta, g, lr_t)

Everything random in an update (recurrent dropout masks, the encoder's eps) is drawn from torch's
generator, re-seeded before every update with :func:`step_seed` ``(seed, t, rank)``: the step
number is all a resumed run needs to continue bit-exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sketchlib.config import HParams
from sketchlib.nn.loss import LOSS_KEYS, total_loss


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The torch seed of update ``step`` on ``rank``: independent streams from one SeedSequence."""
    return int(np.random.SeedSequence([int(seed), int(step), int(rank)]).generate_state(1, dtype=np.uint64)[0])


def make_optimizer(params, hp: HParams, capturable: bool = False) -> torch.optim.Adam:
    """Adam at ``hp.learning_rate``; ``capturable=True`` (CUDA graphs) holds the rate in a device tensor."""
    params = list(params)
    if not capturable:
        return torch.optim.Adam(params, lr=hp.learning_rate)
    lr = torch.tensor(hp.learning_rate, dtype=torch.float32, device=params[0].device)
    return torch.optim.Adam(params, lr=lr, capturable=True, foreach=True)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """lr_t into every parameter group (in place when the rate is a device tensor, as a graph reads it)."""
    for g in optimizer.param_groups:
        if isinstance(g["lr"], torch.Tensor):
            g["lr"].fill_(float(lr))
        else:
            g["lr"] = float(lr)


def clip_gradients(params, hp: HParams) -> None:
    """The reference clips each gradient element to [-grad_clip, grad_clip] (``grad_clip_mode="value"``)."""
    if hp.grad_clip_mode == "value":
        torch.nn.utils.clip_grad_value_(params, hp.grad_clip)
    else:
        torch.nn.utils.clip_grad_norm_(params, hp.grad_clip)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, hp: HParams, strokes: torch.Tensor,
               lengths: torch.Tensor, kl_weight) -> torch.Tensor:
    """One update of ``model`` on strokes [B, N_max + 1, 5], lengths [B]: forward, loss, backward, clip, Adam.

    The learning rate is the optimizer's (:func:`set_learning_rate`); ``kl_weight`` is w_KL(t), a
    number or a 0-d tensor (the CUDA graph's). Returns the detached losses [5] in ``LOSS_KEYS``
    order (loss, L_R, L_s, L_p, L_KL), on the model's device.
    """
    losses = loss_and_gradients(model, optimizer, hp, strokes, lengths, kl_weight)
    apply_gradients(optimizer, hp)
    return losses


def loss_and_gradients(model: nn.Module, optimizer: torch.optim.Optimizer, hp: HParams, strokes: torch.Tensor,
                       lengths: torch.Tensor, kl_weight) -> torch.Tensor:
    """The first half of :func:`train_step`: forward, loss, backward (gradients in ``p.grad``) -> losses [5]."""
    optimizer.zero_grad(set_to_none=True)  # (inside a CUDA graph: captured from None, each replay writes afresh)
    out = model(strokes, lengths)
    losses = total_loss(out, strokes, lengths, kl_weight, hp.kl_tolerance)
    losses["loss"].backward()
    return torch.stack([losses[k].detach() for k in LOSS_KEYS])  # [5]


def apply_gradients(optimizer: torch.optim.Optimizer, hp: HParams) -> None:
    """The second half of :func:`train_step`: clip the gradients, one Adam step."""
    clip_gradients([p for g in optimizer.param_groups for p in g["params"]], hp)
    optimizer.step()
