"""The latent space of a trained Sketch-RNN, for the book's explorers: PCA of the codes, decoding along it.

* :func:`latent_directions` -- encode sketches to their means mu [n, N_z] and find the principal
  directions of that cloud (PCA by ``torch.linalg.svd``): the mean z, the top-k directions and the
  standard deviation of the codes along each;
* :func:`decode_along` -- decode ``z = mean + sum_j c_j * std_j * d_j`` with :func:`sketchlib.sample.sample`
  (deterministic for a given ``seed``); :func:`direction_sweep` -- the grid the z sliders would show;
* :func:`interpolation_frames` -- decode the codes on the slerp path between two sketches.

Decoding runs on one torch thread (:func:`single_thread`): a batch of one gains nothing from a
second thread, and on a busy machine loses a lot.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple, Sequence

import numpy as np
import torch

from sketchlib import sample as _sample

class LatentDirections(NamedTuple):
    """The mean code, the principal directions of the codes and the spread along each."""

    mean: torch.Tensor  # [N_z] mean of mu over the sketches
    directions: torch.Tensor  # [k, N_z] orthonormal rows, largest variance first
    std: torch.Tensor  # [k] standard deviation of the codes along each direction


def _hp(model):
    hp = getattr(model, "hp", None)
    if hp is None:
        raise ValueError("model has no .hp (expected a sketchlib SketchRNN)")
    return hp


def _require_conditional(model, what: str) -> None:
    if not _hp(model).conditional:
        raise ValueError(f"{what} needs a conditional model (one with an encoder); this one has hp.conditional=False")


def encode_means(model, sketches: Sequence, batch_size: int = 64) -> torch.Tensor:
    """mu [n, N_z] of normalised stroke-3 ``sketches`` (the deterministic code of each), in batches, on the CPU."""
    _require_conditional(model, "encoding")
    sketches = list(sketches)
    if not sketches:
        raise ValueError("encode_means: no sketches")
    chunks = [_sample.encode(model, sketches[i: i + batch_size]).float().cpu()
              for i in range(0, len(sketches), batch_size)]
    return torch.cat(chunks)


def latent_directions(model, sketches: Sequence, k: int = 4, *, batch_size: int = 64) -> LatentDirections:
    """PCA of the codes of ``sketches``: ``(mean z, top-k principal directions, their std)``.

    With ``X = mu - mean`` ([n, N_z], one row per sketch) and ``X = U S V^T`` (``torch.linalg.svd``),
    the directions are the first k rows of ``V^T`` and ``std_j = S_j / sqrt(n - 1)``. The sign of
    each direction is fixed (its largest-magnitude entry is positive), so the result is reproducible.
    """
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"latent_directions: k must be a positive integer, got {k!r}")
    mu = encode_means(model, sketches, batch_size).double()  # [n, N_z]
    n, n_z = mu.shape
    if n < 2:
        raise ValueError("latent_directions: need at least 2 sketches for a spread")
    if k > min(n - 1, n_z):
        raise ValueError(f"latent_directions: k = {k} directions from {n} sketches in {n_z} dimensions "
                         f"(at most {min(n - 1, n_z)})")
    mean = mu.mean(0)
    _, s, vh = torch.linalg.svd(mu - mean, full_matrices=False)  # vh [min(n, N_z), N_z]
    dirs = vh[:k]
    sign = torch.sign(dirs.gather(1, dirs.abs().argmax(1, keepdim=True)))  # [k, 1]
    dirs = dirs * sign
    std = s[:k] / (n - 1) ** 0.5
    return LatentDirections(mean.float(), dirs.float(), std.float())


def latent_point(mean, directions, coeffs, std=None) -> torch.Tensor:
    """z = mean + sum_j c_j d_j [N_z]; with ``std`` the coefficients are in standard deviations (c_j std_j)."""
    mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
    directions = torch.as_tensor(directions, dtype=torch.float32)
    if directions.ndim == 1:
        directions = directions[None]
    coeffs = torch.as_tensor(np.asarray(coeffs, dtype=np.float32)).reshape(-1)
    if directions.shape[1] != mean.shape[0]:
        raise ValueError(f"directions {list(directions.shape)} do not match the mean [{mean.shape[0]}]")
    if coeffs.shape[0] != directions.shape[0]:
        raise ValueError(f"{coeffs.shape[0]} coefficients for {directions.shape[0]} directions")
    if std is not None:
        coeffs = coeffs * torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    return mean + coeffs @ directions


@contextlib.contextmanager
def single_thread():
    """Run the block with ``torch.set_num_threads(1)``, then restore the previous count.

    Decoding ONE sketch multiplies small matrices by a vector at every step: a second thread has
    nothing to share and only adds synchronisation. On a busy machine it is far worse: on the
    book's 2-core build machine under load, a 512-unit decoder step took 20-40 ms with 2 threads
    against about 1 ms with one. So every decode here runs single-threaded.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _generator(seed) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def decode_z(model, z, temperature: float = 0.25, greedy: bool = False, seed: int = 0,
             max_len: int | None = None) -> np.ndarray:
    """One sketch decoded from ``z`` [N_z] with :func:`sketchlib.sample.sample`; the noise comes from ``seed``."""
    z = torch.as_tensor(z, dtype=torch.float32).reshape(1, -1)
    with single_thread():
        return _sample.sample(model, n=1, z=z, temperature=temperature, greedy=greedy, max_len=max_len,
                              generator=_generator(seed))[0]


def decode_along(model, mean, directions, coeffs, temperature: float = 0.25, greedy: bool = False,
                 seed: int = 0, *, std=None, max_len: int | None = None) -> np.ndarray:
    """Decode the sketch at ``z = mean + sum_j c_j d_j`` (``c_j std_j`` when ``std`` is given): stroke-3.

    Deterministic: the same arguments give the same sketch (all noise from ``seed``).
    """
    _require_conditional(model, "decode_along")
    z = latent_point(mean, directions, coeffs, std)
    return decode_z(model, z, temperature, greedy, seed, max_len)


def direction_sweep(model, latent: LatentDirections, values: Sequence[float] = (-2, -1, 0, 1, 2),
                    temperature: float = 0.25, greedy: bool = False, seed: int = 0) -> list[list[np.ndarray]]:
    """What the z sliders show, pre-computed: ``out[j][m]`` is the sketch with slider j at ``values[m]``
    (in standard deviations) and every other slider at 0. Row-major input for :func:`render.draw_grid`."""
    k = latent.directions.shape[0]
    out = []
    for j in range(k):
        row = []
        for v in values:
            c = np.zeros(k, dtype=np.float32)
            c[j] = v
            row.append(decode_along(model, latent.mean, latent.directions, c, temperature, greedy, seed,
                                    std=latent.std))
        out.append(row)
    return out


# ----------------------------------------------------------------------------------------------
# Interpolation


def interpolation_codes(model, sketch_a, sketch_b, steps: int = 11, method: str = "slerp") -> torch.Tensor:
    """[steps, N_z]: the codes mu_a ... mu_b on the path :func:`sketchlib.sample.interpolate` draws."""
    mu = encode_means(model, [sketch_a, sketch_b])
    return _sample.interpolate(mu[0], mu[1], steps, method)


def interpolation_frames(model, sketch_a, sketch_b, steps: int = 11, method: str = "slerp",
                         temperature: float = 0.25, greedy: bool = False, seed: int = 0) -> list[np.ndarray]:
    """Decode every code on the interpolation path; each frame uses the same noise (``seed``)."""
    codes = interpolation_codes(model, sketch_a, sketch_b, steps, method)
    return [decode_z(model, z, temperature, greedy, seed) for z in codes]
