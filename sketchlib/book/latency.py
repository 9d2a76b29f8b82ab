"""How long the explorers wait for a sketch: :func:`decode_latency` times the sampling loop they run."""

from __future__ import annotations

import statistics
import time

import torch

from sketchlib import sample as _sample
from sketchlib.book.latent import _generator, _hp


def decode_latency(model, steps: int = 250, repeats: int = 5, *, temperature: float = 0.25, seed: int = 0,
                   z=None, threads: int | None = 1, fast: bool = True) -> dict:
    """Time ``steps`` decoder steps for ONE sketch, as the explorers decode it: :func:`sketchlib.sample.sample`
    (the same stepper, the noise drawn from ``seed``, the MDN draw, S_i fed back) without stopping at p3.

    Returns dict(steps, median_ms, best_ms, per_step_ms, threads, stepper) over ``repeats`` runs, in eval
    mode on the model's device, with ``threads`` torch threads (1, as the explorers decode; None: as set).
    ``stepper`` names the step that ran (:func:`sketchlib.sample.stepper_name`); ``fast=False`` times
    ``model.step``, the reference.
    """
    hp = _hp(model)
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    device = next(model.parameters()).device
    z = (torch.zeros(1, hp.z_size) if z is None else z) if hp.conditional else None
    times = []
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    used = torch.get_num_threads()
    try:
        for _ in range(int(repeats)):
            t0 = time.perf_counter()
            _sample.sample(model, 1, z=z, temperature=temperature, max_len=int(steps), generator=_generator(seed),
                           fast=fast, stop_at_p3=False)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(before)
    med = statistics.median(times)
    return dict(steps=int(steps), median_ms=med, best_ms=min(times), per_step_ms=med / steps, threads=used,
                stepper=_sample.stepper_name(model, fast))
