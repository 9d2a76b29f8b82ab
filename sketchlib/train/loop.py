"""The training loop (:func:`fit`) and the validation loss (:func:`evaluate`).

:func:`fit` runs :func:`sketchlib.train.step.train_step` (or the same update replayed as one CUDA
graph, :mod:`sketchlib.fast.cuda_graph`) from the run's first step to ``num_steps``; everything
around it (resume, log, validation, checkpoints) is :class:`sketchlib.train.run.Run`'s.

Validation every ``eval_every`` steps: L_R and L_KL on the whole valid split (eval mode: no dropout,
no augmentation, in-order batches, a fixed eps for z = mu + sigma * eps), the pen loss unmasked as
in the reference's training-time evaluation model.

Determinism and exact resume: the batch is ``StrokeBatches.batch(t)`` and the noise of update t is
drawn after seeding torch with ``step_seed(seed, t, rank)``, so ``last.safetensors`` (weights, Adam
state, step) is all a run needs to continue bit-exactly (tested: 6 + resume + 6 steps == 12).

DDP: under ``torchrun`` (``WORLD_SIZE > 1``) each process joins the group (gloo on CPU, nccl on
CUDA), wraps the model in ``DistributedDataParallel``, draws its own shard of the training set,
and only rank 0 evaluates and writes files. The batch size is per process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sketchlib.config import HParams
from sketchlib.data import SketchData, StrokeBatches
from sketchlib.nn.loss import LOSS_KEYS, total_loss
from sketchlib.nn.model import SketchRNN
from sketchlib.train.logs import git_commit, hardware
from sketchlib.train.run import Run, RunConfig
from sketchlib.train.schedules import kl_weight, learning_rate
from sketchlib.train.session import Session, make_update
from sketchlib.train.step import make_optimizer, step_seed


@dataclass
class TrainResult:
    """What :func:`fit` returns: the metrics history and where things are."""

    out_dir: Path
    step: int  # updates completed
    train: list[dict]  # logged training windows (mean over the window), oldest first
    valid: list[dict]  # validations
    checkpoint: Path | None  # last.safetensors (None on ranks > 0)
    best: Path | None
    wall_time_s: float  # of all sessions of this run (resumes add up)
    stopped: str  # "completed", "time_budget", or the signal that stopped it ("SIGINT", "SIGTERM")
    model: nn.Module | None = field(default=None, repr=False)  # the trained bare model (eval mode)


@torch.no_grad()
def evaluate(model: nn.Module, sketches, hp: HParams, *, kl_weight_value: float | None = None,
             batch_size: int | None = None, max_sketches: int | None = None, seed: int = 0,
             device=None) -> dict:
    """Mean losses of ``model`` on normalised stroke-3 ``sketches`` (eval mode, in order, unaugmented).

    z = mu + sigma * eps with eps from a generator seeded by ``(seed, batch index)``, so the number is
    reproducible. ``loss`` uses ``kl_weight_value`` (default ``hp.kl_weight``). Batch means are
    weighted by batch size. Returns dict(loss, L_R, L_s, L_p, L_KL, n).
    """
    bare = getattr(model, "module", model)
    device = device or next(bare.parameters()).device
    sketches = list(sketches)[:max_sketches] if max_sketches is not None else list(sketches)
    if not sketches:
        raise ValueError("evaluate: no sketches to evaluate on")
    w = hp.kl_weight if kl_weight_value is None else float(kl_weight_value)
    batches = StrokeBatches(sketches, min(batch_size or hp.batch_size, len(sketches)), hp.max_seq_len, augment=False)
    was_training = bare.training
    bare.eval()
    sums = dict.fromkeys(LOSS_KEYS, 0.0)
    n = 0
    try:
        for b, (strokes, lengths) in enumerate(batches.iter_fixed()):
            eps = None
            if hp.conditional:
                g = torch.Generator().manual_seed(step_seed(seed, b, 0))
                eps = torch.randn(strokes.shape[0], hp.z_size, generator=g).to(device)
            strokes, lengths = strokes.to(device), lengths.to(device)
            out = bare(strokes, lengths, eps=eps)
            losses = total_loss(out, strokes, lengths, w, hp.kl_tolerance)
            for k in LOSS_KEYS:
                sums[k] += float(losses[k]) * strokes.shape[0]
            n += strokes.shape[0]
    finally:
        bare.train(was_training)
    return {**{k: sums[k] / n for k in LOSS_KEYS}, "n": n}


def effective_hp(hp: HParams, data: SketchData) -> HParams:
    """N_max from the data (the reference resets it to the longest sketch), dataset name and scale in extra."""
    extra = {**hp.extra, "dataset": data.name, "scale": float(data.scale)}
    return hp.replace(max_seq_len=int(data.max_seq_len), extra=extra)


def _start(hp: HParams, data: SketchData, cfg: RunConfig, s: Session) -> tuple[Run, object]:
    """The model and Adam on the device, resumed or fresh; the :class:`Run` around them; the update."""
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    bare = SketchRNN(hp).to(s.device)
    optimizer = make_optimizer(bare.parameters(), hp, capturable=s.use_graph)
    valid = data.valid if cfg.valid_max_sketches is None else data.valid[:cfg.valid_max_sketches]
    run = Run(cfg, hp, bare, optimizer, valid, device=s.device, rank=s.rank, world_size=s.world_size,
              evaluate=evaluate)
    run.run_info.update(s.switches)
    s.callback(run.close)
    run.start()
    run.run_info = {"seed": cfg.seed, "world_size": s.world_size, "hardware": hardware(s.device), **run.run_info}
    run.run_info.setdefault("commit", git_commit())
    s.barrier()  # rank 0 has tidied the log before anyone appends
    return run, make_update(run, s)


def fit(hp: HParams, data: SketchData, cfg: RunConfig) -> TrainResult:
    """Train a :class:`SketchRNN` on ``data`` up to ``cfg.num_steps`` updates in all.

    Raises :class:`~sketchlib.train.run.NonFiniteLoss` on a NaN / inf loss, leaving the last good
    checkpoint in place. SIGINT / SIGTERM stop it after the current update with a checkpoint
    (``stopped`` names the signal).
    """
    hp = effective_hp(hp, data)
    with Session(cfg) as s:  # device, DDP group, run-folder lock, signal handlers
        run, update = _start(hp, data, cfg, s)  # model and Adam (resumed or fresh), log, the update
        batches = s.batches(StrokeBatches(
            data.train, hp.batch_size, hp.max_seq_len, augment=True, random_scale_factor=hp.random_scale_factor,
            augment_stroke_prob=hp.augment_stroke_prob, seed=cfg.seed, rank=s.rank, world_size=s.world_size))
        step, stopped = run.start_step, "completed"
        while step < cfg.num_steps:
            t = step  # 0-based index of this update
            torch.manual_seed(step_seed(cfg.seed, t, s.rank))  # dropout masks and eps of this update
            strokes, lengths = batches(t)  # [B, N_max + 1, 5], [B]
            lr, w = learning_rate(t, hp), kl_weight(t, hp)
            values = update(strokes, lengths, lr, w).cpu().double()  # [5] losses, LOSS_KEYS order
            step = t + 1
            bad, over, signalled = s.agree(not bool(torch.isfinite(values).all()),  # every rank stops alike
                                           cfg.time_budget_s is not None and run.elapsed() >= cfg.time_budget_s,
                                           s.stop.signum is not None)
            run.check_finite(step, values, bad)
            run.add_train(step, values, lr, w, flush=over or signalled)
            if run.is_main and run.valid and step % cfg.eval_every == 0:
                run.validate(step)
            if run.is_main and step % cfg.save_every == 0:
                run.save(step)
            if over or signalled:
                stopped = "time_budget" if over else (s.stop.name or "signal")
                break
        return _finish(run, s, step, stopped)


def _finish(run: Run, s: Session, step: int, stopped: str) -> TrainResult:
    """Validate and save at the last step (unless done), plot; the result."""
    if run.is_main:
        if run.valid and run.last_valid_step != step:
            run.validate(step)
        if run.last_good is None or run.last_good[1] != step:
            run.save(step)
        if run.cfg.plot:
            from sketchlib.train.logs import plot_losses
            from sketchlib.train.run import CURVE

            plot_losses(run.log_path, run.cfg.out_dir / CURVE)
    s.barrier()
    run.model.eval()
    return TrainResult(out_dir=run.cfg.out_dir, step=step, train=[r for r in run.history if r.get("split") == "train"],
                       valid=[r for r in run.history if r.get("split") == "valid"],
                       checkpoint=run.last_path if run.is_main else None,
                       best=run.best_path if run.is_main and run.best_path.is_file() else None,
                       wall_time_s=run.wall_before + run.elapsed(), stopped=stopped, model=run.model)


def train(hp: HParams, data: SketchData, out_dir, num_steps: int, **settings) -> TrainResult:
    """``fit(hp, data, RunConfig(out_dir, num_steps, **settings))``: see :class:`RunConfig` for the settings.

    Speed (all default to what is fastest and exact for the device): ``cuda_graph`` (default: on
    for a single CUDA device) replays each update as one CUDA graph; ``compile`` (default: with
    the graph) fuses each step's element-wise work with ``torch.compile`` (falls back to plain
    kernels with a warning if compiling fails); ``tf32=True`` lets float32 matrix products use TF32
    (about 1e-3 relative error instead of 1e-6: off by default).
    """
    return fit(hp, data, RunConfig(out_dir, num_steps, **settings))
