"""Training: the reference's optimisation loop, with exact resume, logs, checkpoints and DDP.

One update at step t (0-based) on a batch S of B sketches (augmented, recurrent dropout on)::

    lr_t      = (lr_0 - lr_min) * decay^t + lr_min                 (sketchlib.train.schedules)
    w_KL(t)   = w_KL - (w_KL - w_start) * R^t
    loss      = L_R + w_KL(t) * max(L_KL, KL_min)                  (sketchlib.nn.loss.total_loss)
    g         = clip(grad loss, -1, 1)   element-wise, by VALUE    (hp.grad_clip, hp.grad_clip_mode="value")
    theta     = Adam(theta, g, lr_t)

Validation every ``eval_every`` steps: L_R and L_KL on the whole valid split (eval mode: no dropout,
no augmentation, in-order batches, a fixed eps for z = mu + sigma * eps), the pen loss unmasked as
in the reference's training-time evaluation model.

Determinism and exact resume. Everything random is a function of (seed, step, rank):
the batch (``StrokeBatches.batch(step)``) and the noise of the step (recurrent dropout masks, the
encoder's eps), because torch's generator is re-seeded with ``step_seed(seed, step, rank)``
before every update. A checkpoint (``last.safetensors``: weights, Adam state, step) is therefore
all a run needs to continue bit-exactly where it stopped (tested: 6 + resume + 6 steps == 12).

Files in ``out_dir``: ``last.safetensors`` (every ``save_every`` steps and at the end, atomic),
``best.safetensors`` (best valid loss so far, weights only), ``log.jsonl`` (one JSON object per
logged train window / validation, appended), ``loss_curve.png``.

DDP: under ``torchrun`` (``WORLD_SIZE > 1``) each process joins the group (gloo on CPU, nccl on
CUDA), wraps the model in ``DistributedDataParallel``, draws its own shard of the training set
(``StrokeBatches(rank=, world_size=)``), and only rank 0 evaluates and writes files. The batch
size is per process (the effective batch is ``world_size * hp.batch_size``).

CLI: ``python -m sketchlib.train --dataset kanjivg --out runs/x --steps 10000 [--resume] ...``
and ``python -m sketchlib.train --export runs/x --name kanjivg`` (copies a run into ``data/`` with a
manifest, see :func:`export`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sketchlib.train import checkpoint
from sketchlib import fast as fast_paths
from sketchlib.fast.cuda_graph import GraphedTrainStep, clip_gradients, make_optimizer
from sketchlib.config import HParams
from sketchlib.data import SketchData, StrokeBatches
from sketchlib.device import cpu_model, resolve_device
from sketchlib.data.fileio import atomic_path, atomic_write
from sketchlib.nn.loss import LOSS_KEYS, total_loss
from sketchlib.nn.model import SketchRNN
from sketchlib.train.schedules import kl_weight, learning_rate

LAST = "last.safetensors"
BEST = "best.safetensors"
LOG = "log.jsonl"
CURVE = "loss_curve.png"


class NonFiniteLoss(RuntimeError):
    """Training met a NaN or inf loss; the last good checkpoint was kept."""


@dataclass
class TrainResult:
    """What :func:`train` returns: the metrics history and where things are."""

    out_dir: Path
    step: int  # updates completed
    train: list[dict]  # logged training windows (mean over the window), oldest first
    valid: list[dict]  # validations
    checkpoint: Path | None  # last.safetensors (None on ranks > 0)
    best: Path | None
    wall_time_s: float  # of all sessions of this run (resumes add up)
    stopped: str  # "completed" or "time_budget"
    model: nn.Module | None = field(default=None, repr=False)  # the trained bare model (eval mode)


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The torch seed of update ``step`` on ``rank``: independent streams from one SeedSequence."""
    return int(np.random.SeedSequence([int(seed), int(step), int(rank)]).generate_state(1, dtype=np.uint64)[0])




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


# --------------------------------------------------------------------------- environment
def _dist_env() -> tuple[int, int, int]:
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    return ws, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def hardware(device: torch.device) -> str:
    """A one-line description of the machine (for manifests)."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    return (f"{device.type.upper()}: {cpu_model()}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}, "
            f"torch {torch.__version__}")


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the source checkout (+ ``-dirty`` when sketchlib/ has changes), else
    ``$SKETCHLIB_COMMIT`` (set it when running from a copy without ``.git``), else None."""
    root = Path(__file__).resolve().parents[2]
    fallback = os.environ.get("SKETCHLIB_COMMIT") or None  # a copy of the tree without .git (a rented GPU)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return fallback
        # the library's own files, untracked ones included (a new module not yet committed)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sketchlib", "pyproject.toml"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return fallback


# --------------------------------------------------------------------------- logs
def read_log(path) -> list[dict]:
    """The records of a ``log.jsonl`` (a torn last line, from a crash mid-append, is ignored)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {i + 1} is not JSON") from None
    return records


def plot_losses(log_path, png_path) -> Path:
    """Train and valid L_R (left) and L_KL (right) against the step, from ``log.jsonl``, to a PNG."""
    # A bare Agg figure, no pyplot: nothing global changes (a notebook keeps its inline backend).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = read_log(log_path)
    fig = Figure(figsize=(10, 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("valid", "o-")):
        rec = [r for r in records if r.get("split") == split]
        if not rec:
            continue
        steps = [r["step"] for r in rec]
        axes[0].plot(steps, [r["L_R"] for r in rec], style, ms=3, label=f"{split} L_R")
        axes[1].plot(steps, [r["L_KL"] for r in rec], style, ms=3, label=f"{split} L_KL")
    axes[0].set_title("reconstruction loss L_R")
    axes[1].set_title("KL loss L_KL")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.9, wspace=0.2)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100)
    return Path(png_path)


# --------------------------------------------------------------------------- the loop
class _Prefetch:
    """``get(t)`` = ``batches.batch(t)``, with the next ``depth`` batches already being built in a thread."""

    def __init__(self, batches: StrokeBatches, depth: int = 3):
        from concurrent.futures import ThreadPoolExecutor

        self.batches, self.depth = batches, depth
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sketchlib-batches")
        self.futures: dict = {}

    def get(self, t: int):
        for u in range(t, t + self.depth + 1):
            if u not in self.futures:
                self.futures[u] = self.pool.submit(self.batches.batch, u)
        for u in [u for u in self.futures if u < t]:  # a jump (never in the loop): drop stale work
            self.futures.pop(u).cancel()
        return self.futures.pop(t).result()

    def close(self) -> None:
        for f in self.futures.values():
            f.cancel()
        self.pool.shutdown(wait=True)


def _effective_hp(hp: HParams, data: SketchData) -> HParams:
    """N_max from the data (the reference resets it to the longest sketch), dataset name and scale in extra."""
    extra = {**hp.extra, "dataset": data.name, "scale": float(data.scale)}
    return hp.replace(max_seq_len=int(data.max_seq_len), extra=extra)


def _same_config(a: HParams, b: HParams) -> bool:
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        d.pop("num_steps")
        d["extra"] = {k: v for k, v in d["extra"].items() if k in ("dataset", "scale")}
    return da == db


def train(hp: HParams, data: SketchData, out_dir, num_steps: int, *, eval_every: int = 500, save_every: int = 1000,
          seed: int = 0, device=None, log_every: int = 50, progress: bool = True, resume: bool = True,
          time_budget_s: float | None = None, valid_max_sketches: int | None = None,
          run_info: dict | None = None, plot: bool = True, cuda_graph: bool | None = None,
          compile: bool | None = None, tf32: bool = False) -> TrainResult:
    """Train a :class:`SketchRNN` on ``data`` up to ``num_steps`` updates in all; see the module docstring.

    ``resume=True`` continues from ``out_dir/last.safetensors`` when it exists (same config
    required); ``resume=False`` starts afresh (overwriting the run's files). ``time_budget_s`` stops
    cleanly (checkpoint, validation, plot) once this session has run that long. ``run_info`` is
    stored in the checkpoint's extra (the CLI records the command there). ``plot=False`` skips
    the loss-curve PNG (matplotlib is slow to start).

    Speed (all default to what is fastest and exact for the device): ``cuda_graph`` (default: on
    for a single CUDA device) replays each update as one CUDA graph (:mod:`sketchlib.fast.cuda_graph`);
    ``compile`` (default: with the graph) fuses each step's element-wise work with
    ``torch.compile`` (:mod:`sketchlib.fast.fusion`; falls back to plain kernels with a warning if
    compiling fails); ``tf32=True`` lets float32 matrix products use TF32 (faster on recent GPUs,
    about 1e-3 relative error instead of 1e-6: off by default). Raises
    :class:`NonFiniteLoss` on a NaN / inf loss, leaving the last good checkpoint in place.
    """
    for name, v in (("num_steps", num_steps), ("eval_every", eval_every), ("save_every", save_every),
                    ("log_every", log_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "num_steps" else 1):
            raise ValueError(f"{name} must be a {'non-negative' if name == 'num_steps' else 'positive'} integer, "
                             f"got {v!r}")
    t_start = time.monotonic()
    hp = _effective_hp(hp, data)
    out_dir = Path(out_dir)
    world_size, rank, local_rank = _dist_env()
    distributed = world_size > 1
    if distributed:
        import torch.distributed as dist

        if device is None:
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        device = resolve_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        device = resolve_device(device)
    is_main = rank == 0
    try:
        use_graph = (device.type == "cuda" and not distributed) if cuda_graph is None else bool(cuda_graph)
        if use_graph and (device.type != "cuda" or distributed):
            raise ValueError("cuda_graph=True needs a single CUDA device (not DDP)")
        use_compile = use_graph if compile is None else bool(compile)
        old_tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        try:
            with fast_paths.enabled(None, compile=use_compile):
                return _train(hp, data, out_dir, num_steps, eval_every, save_every, seed, device, log_every,
                              progress, resume, time_budget_s, valid_max_sketches,
                              {**(run_info or {}), "cuda_graph": use_graph, "compile": use_compile, "tf32": bool(tf32)},
                              t_start, world_size, rank, is_main, plot, use_graph)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old_tf32
    finally:
        if distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _train(hp, data, out_dir, num_steps, eval_every, save_every, seed, device, log_every, progress, resume,
           time_budget_s, valid_max_sketches, run_info, t_start, world_size, rank, is_main, plot,
           use_graph) -> TrainResult:
    distributed = world_size > 1
    if distributed:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP
    last_path, best_path, log_path = out_dir / LAST, out_dir / BEST, out_dir / LOG
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)  # the same initial weights on every rank
    bare = SketchRNN(hp).to(device)
    optimizer = make_optimizer(bare.parameters(), hp, capturable=use_graph)
    start_step, wall_before, best_valid = 0, 0.0, math.inf
    if resume and last_path.is_file():
        weights, hp_ck, info = checkpoint.read(last_path)
        if not _same_config(hp_ck, hp):
            raise ValueError(f"{last_path} was trained with a different config; use another out_dir or resume=False")
        old_seed = info["extra"].get("run_info", {}).get("seed", seed)
        if old_seed != seed:
            raise ValueError(f"{last_path} was trained with seed {old_seed}; resume it with the same seed (got {seed})")
        checkpoint.load_weights(bare, weights, source=str(last_path))
        checkpoint.restore_optimizer(optimizer, info)
        start_step = info["step"]
        wall_before = float(info["extra"].get("wall_time_s", 0.0))
        best_valid = float(info["extra"].get("best_valid_loss", math.inf))
        old = info["extra"].get("run_info", {})
        if "command" in old and "command" in run_info:  # keep the first command, list the resumes
            run_info = {**run_info, "command": old["command"],
                        "resumed_with": old.get("resumed_with", []) + [run_info["command"]]}
        run_info = {**old, **run_info}
        if is_main:  # drop log records written after the checkpoint (a crash between save and log)
            kept = [r for r in read_log(log_path) if r.get("step", 0) <= start_step]
            atomic_write(log_path, "".join(json.dumps(r) + "\n" for r in kept))
    elif is_main:
        for p in (last_path, best_path, log_path, out_dir / CURVE):
            p.unlink(missing_ok=True)
    if distributed:
        dist.barrier()  # rank 0 has tidied the log before anyone appends
    run_info = {"seed": seed, "world_size": world_size, "hardware": hardware(device), **run_info}
    run_info.setdefault("commit", git_commit())

    model = DDP(bare, device_ids=[device.index] if device.type == "cuda" else None) if distributed else bare
    batches = StrokeBatches(data.train, hp.batch_size, hp.max_seq_len, augment=True,
                            random_scale_factor=hp.random_scale_factor, augment_stroke_prob=hp.augment_stroke_prob,
                            seed=seed, rank=rank, world_size=world_size)
    valid = data.valid if valid_max_sketches is None else data.valid[:valid_max_sketches]
    params = [p for p in bare.parameters() if p.requires_grad]

    graphed = GraphedTrainStep(bare, optimizer, hp, hp.batch_size, device, graph=True) if use_graph else None

    def run_graphed(strokes, lengths, lr, w):
        nonlocal graphed
        try:
            return graphed(strokes, lengths, lr, w)
        except Exception as exc:  # noqa: BLE001 - compile problems come in many types
            if graphed.graph is not None or not fast_paths.is_compiling():
                raise
            import warnings

            warnings.warn(f"torch.compile failed ({type(exc).__name__}: {exc}); training without fusion",
                          stacklevel=2)
            fast_paths.configure(compile=False)
            run_info["compile"] = False
            graphed = GraphedTrainStep(bare, optimizer, hp, hp.batch_size, device, graph=True)
            return graphed(strokes, lengths, lr, w)

    # On a GPU the next batches (augmentation is Python, ~10-25 ms each) are built in a thread
    # while the GPU runs the current update; batch(t) depends on t alone, so the order is the same.
    prefetch = _Prefetch(batches) if device.type == "cuda" else None
    next_batch = prefetch.get if prefetch is not None else batches.batch

    history = read_log(log_path) if is_main else []
    last_saved = start_step if last_path.is_file() and resume else None
    last_valid_step = max((r["step"] for r in history if r.get("split") == "valid"), default=None)

    def elapsed() -> float:
        return time.monotonic() - t_start

    def append_log(record: dict) -> None:
        history.append(record)
        with open(log_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def save(step: int, metrics: dict) -> None:
        extra = {"wall_time_s": wall_before + elapsed(), "best_valid_loss": best_valid, "run_info": run_info}
        checkpoint.save(last_path, bare, hp, step=step, metrics=metrics, optimizer=optimizer, extra=extra)

    def validate(step: int) -> dict:
        nonlocal best_valid
        with fast_paths.enabled(None, compile=False):  # eval batches have other shapes: not worth compiling
            v = evaluate(bare, valid, hp, kl_weight_value=kl_weight(max(step - 1, 0), hp), seed=seed, device=device)
        rec = {"split": "valid", "step": step, **v, "time_s": round(wall_before + elapsed(), 3)}
        append_log(rec)
        if v["loss"] < best_valid:
            best_valid = v["loss"]
            checkpoint.save(best_path, bare, hp, step=step, metrics=rec,
                            extra={"wall_time_s": wall_before + elapsed(), "run_info": run_info})
        return rec

    from tqdm.auto import tqdm

    bar = tqdm(total=num_steps, initial=start_step, disable=not (progress and is_main), desc="train",
               dynamic_ncols=True)
    window = {k: 0.0 for k in LOSS_KEYS}
    window_n = 0
    step = start_step
    stopped = "completed"
    last_train_rec, last_valid_rec = None, None
    model.train()
    try:
        while step < num_steps:
            t = step  # 0-based index of this update
            torch.manual_seed(step_seed(seed, t, rank))  # dropout masks and eps of this step
            strokes, lengths = next_batch(t)
            lr, w = learning_rate(t, hp), kl_weight(t, hp)
            if graphed is not None:  # the whole update replayed as one CUDA graph
                values = run_graphed(strokes, lengths, lr, w).cpu().double()
                applied = True  # the update is part of the graph: a NaN is seen after it
            else:
                strokes, lengths = strokes.to(device), lengths.to(device)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                out = model(strokes, lengths)
                losses = total_loss(out, strokes, lengths, w, hp.kl_tolerance)
                values = torch.stack([losses[k].detach() for k in LOSS_KEYS]).cpu().double()  # (MPS has no float64)
                applied = False
            bad = float(not torch.isfinite(values).all())
            over = float(time_budget_s is not None and elapsed() >= time_budget_s)
            if distributed:  # all ranks agree to stop (non-finite anywhere, or any rank over its budget)
                flags = torch.tensor([bad, over], dtype=torch.float64).to(device)
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                bad, over = float(flags[0]), float(flags[1])
            if bad:
                vals = {k: float(values[i]) for i, k in enumerate(LOSS_KEYS)}
                where = f"{last_path} (step {last_saved})" if last_saved is not None else "none was written yet"
                raise NonFiniteLoss(f"non-finite loss at step {t + 1} (update index {t}): "
                                    + ", ".join(f"{k}={v:.4g}" for k, v in vals.items())
                                    + f"; training stopped, the last good checkpoint is {where}"
                                    + (" (the weights in memory took the bad update)" if applied else ""))
            if not applied:
                optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                clip_gradients(params, hp)
                optimizer.step()
            step = t + 1

            for k, v in zip(LOSS_KEYS, values.tolist()):
                window[k] += v
            window_n += 1
            if step % log_every == 0 or step == num_steps or over:
                mean = torch.tensor([window[k] / window_n for k in LOSS_KEYS], dtype=torch.float64)
                if distributed:
                    mean = mean.to(device)
                    dist.all_reduce(mean)
                    mean = (mean / world_size).cpu()
                if is_main:
                    last_train_rec = {"split": "train", "step": step, **dict(zip(LOSS_KEYS, mean.tolist())),
                                      "n": window_n, "lr": lr, "kl_weight": w,
                                      "time_s": round(wall_before + elapsed(), 3)}
                    append_log(last_train_rec)
                    bar.set_postfix(loss=f"{last_train_rec['loss']:.3f}", L_R=f"{last_train_rec['L_R']:.3f}",
                                    L_KL=f"{last_train_rec['L_KL']:.3f}", refresh=False)
                window = {k: 0.0 for k in LOSS_KEYS}
                window_n = 0
            bar.update(1)
            if is_main and valid and step % eval_every == 0:
                last_valid_rec = validate(step)
                last_valid_step = step
                if progress:
                    bar.write(f"step {step}: valid loss {last_valid_rec['loss']:.4f} "
                              f"L_R {last_valid_rec['L_R']:.4f} L_KL {last_valid_rec['L_KL']:.4f}")
            if is_main and step % save_every == 0:
                save(step, {"train": last_train_rec, "valid": last_valid_rec})
                last_saved = step
            if over:
                stopped = "time_budget"
                break
    finally:
        bar.close()
        if prefetch is not None:
            prefetch.close()
    if is_main:
        if last_valid_step != step and valid:
            last_valid_rec = validate(step)
        if last_saved != step:
            save(step, {"train": last_train_rec, "valid": last_valid_rec})
        if plot:
            plot_losses(log_path, out_dir / CURVE)
    if distributed:
        dist.barrier()
    bare.eval()
    wall = wall_before + elapsed()
    return TrainResult(out_dir=out_dir, step=step, train=[r for r in history if r.get("split") == "train"],
                       valid=[r for r in history if r.get("split") == "valid"],
                       checkpoint=last_path if is_main else None,
                       best=best_path if is_main and best_path.is_file() else None, wall_time_s=wall,
                       stopped=stopped, model=bare)


# --------------------------------------------------------------------------- export
#: How many test sketches (the first ones, in order) the manifest's held-out evaluation uses.
EXPORT_TEST_SKETCHES = 300


def export(run_dir, name: str, dest="data", *, which: str = LAST, data: SketchData | None = None,
           test_sketches: int = EXPORT_TEST_SKETCHES, dtype: str = "float32") -> Path:
    """Copy a run into ``dest`` as ``<name>.safetensors`` (weights only) + ``.manifest.json`` + ``.log.jsonl``.

    The manifest records the command, config, steps, wall time, hardware, commit, final train and
    valid losses (from the log), the file's sha256 and the loss on the first ``test_sketches``
    held-out test sketches (:func:`evaluate`, seed 0, w_KL = hp.kl_weight) that
    ``tests/test_pretrained.py`` re-checks.

    ``dtype="float16"`` stores the weights in half precision (half the file; large models). They
    load back as float32, and the manifest's losses are those of the rounded weights.
    """
    from sketchlib.data.download import file_sha256

    run_dir, dest = Path(run_dir), Path(dest)
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    model, hp, info = checkpoint.load(run_dir / which)
    if dtype == "float16":  # evaluate what the file will hold
        model.half().float()
    if data is None:
        from sketchlib.data import load_dataset

        data = load_dataset(hp.extra.get("dataset", "kanjivg"), max_seq_len=hp.max_seq_len, progress=False)
    if abs(data.scale - hp.extra.get("scale", data.scale)) > 1e-4 * data.scale:
        raise ValueError(f"dataset scale {data.scale} differs from the run's {hp.extra.get('scale')}")
    # only what led to this checkpoint (a run still going has logged further)
    records = [r for r in read_log(run_dir / LOG) if r.get("step", 0) <= info["step"]]
    train_recs = [r for r in records if r.get("split") == "train"]
    valid_recs = [r for r in records if r.get("split") == "valid"]
    test = evaluate(model, data.test, hp, max_sketches=test_sketches, seed=0)
    run_info = info["extra"].get("run_info", {})
    dest.mkdir(parents=True, exist_ok=True)
    weights_path = dest / f"{name}.safetensors"
    checkpoint.save(weights_path, model.half() if dtype == "float16" else model, hp, step=info["step"],
                    metrics=info["metrics"], extra={"wall_time_s": info["extra"].get("wall_time_s"),
                                                    "run_info": run_info})
    model.float()
    atomic_write(dest / f"{name}.log.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    manifest = {
        "name": name,
        "file": weights_path.name,
        "sha256": file_sha256(weights_path),
        "weights_dtype": dtype,
        "log": f"{name}.log.jsonl",
        "log_sha256": file_sha256(dest / f"{name}.log.jsonl"),
        "command": run_info.get("command"),
        "config": hp.to_dict(),
        "dataset": hp.extra.get("dataset"),
        "scale": hp.extra.get("scale"),
        "steps": info["step"],
        "wall_time_s": info["extra"].get("wall_time_s"),
        "hardware": run_info.get("hardware"),
        "commit": run_info.get("commit"),  # when training started
        "commit_at_export": git_commit(),
        "seed": run_info.get("seed"),
        "final_train": train_recs[-1] if train_recs else None,
        "final_valid": valid_recs[-1] if valid_recs else None,
        "test_eval": {"sketches": test["n"], "first_n_of_test_split": test_sketches, "seed": 0,
                      "kl_weight": hp.kl_weight, **{k: test[k] for k in LOSS_KEYS}},
        "exported_from": str(run_dir / which),
        "torch": torch.__version__,
    }
    atomic_write(dest / f"{name}.manifest.json", json.dumps(manifest, indent=2) + "\n")
    return weights_path


# --------------------------------------------------------------------------- CLI
def _parse_value(field_: dataclasses.Field, text: str):
    kind = type(field_.default) if field_.default is not dataclasses.MISSING else str
    if kind is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--hp {field_.name}: expected true/false, got {text!r}")
    if kind in (int, float, str):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"--hp {field_.name}: expected {kind.__name__}, got {text!r}") from None
    raise ValueError(f"--hp cannot set {field_.name}")


def hp_from_args(pairs: list[str], base: HParams | None = None) -> HParams:
    """Apply ``key=value`` overrides to ``base`` (default :class:`HParams`), typed by the field."""
    fields = {f.name: f for f in dataclasses.fields(HParams)}
    changes = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--hp expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip()
        if key not in fields:
            raise ValueError(f"--hp: unknown hyperparameter {key!r}")
        changes[key] = _parse_value(fields[key], value)
    return (base or HParams()).replace(**changes)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sketchlib.train", description="Train Sketch-RNN (or export a run).")
    p.add_argument("--dataset", default="kanjivg", help="kanjivg | omniglot | a Quick, Draw! category | path.npz/.ndjson")
    p.add_argument("--out", help="run folder (checkpoints, log.jsonl, loss_curve.png)")
    p.add_argument("--steps", type=int, help="train up to this many updates in all")
    p.add_argument("--dec-model", choices=("lstm", "layer_norm", "hyper"), help="decoder cell")
    p.add_argument("--hp", nargs="*", default=[], metavar="KEY=VALUE", help="hyperparameter overrides")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS", help="stop cleanly after this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--valid-max", type=int, default=None, help="validate on the first N valid sketches only")
    p.add_argument("--device", default=None, help="cpu | cuda[:N] | mps (default: automatic)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="replay each update as one CUDA graph (default: on for one CUDA device)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="fuse each step's element-wise work with torch.compile (default: with --cuda-graph)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matrix products (faster, ~1e-3 relative error)")
    p.add_argument("--limit", type=int, default=None, help="use the first N sketches of each split (quick runs)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-plot", action="store_true", help="skip the loss-curve PNG")
    p.add_argument("--export", metavar="RUN_DIR", help="export RUN_DIR into --dest as --name (weights + manifest + log)")
    p.add_argument("--name", default="kanjivg", help="name of the exported checkpoint")
    p.add_argument("--dest", default=str(Path(__file__).resolve().parents[2] / "data"), help="export folder")
    p.add_argument("--which", default=LAST, help="which checkpoint of the run to export (last/best .safetensors)")
    p.add_argument("--export-dtype", default="float32", choices=("float32", "float16"),
                   help="precision of the exported weights (float16 halves the file)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export:
        path = export(args.export, args.name, args.dest, which=args.which, dtype=args.export_dtype)
        print(f"exported {path} (+ manifest, log)")
        return 0
    if not args.out or args.steps is None:
        build_parser().error("--out and --steps are required for training")
    try:
        hp = hp_from_args(args.hp)
        if args.dec_model:
            hp = hp.replace(dec_model=args.dec_model)
    except ValueError as e:
        build_parser().error(str(e))
    out = Path(args.out)
    if (out / LAST).is_file() and not args.resume:
        build_parser().error(f"{out / LAST} exists: pass --resume to continue it, or choose another --out")
    from sketchlib.data import load_dataset

    data = load_dataset(args.dataset, max_seq_len=hp.max_seq_len, limit=args.limit, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(data.summary(), flush=True)
    command = "python -m sketchlib.train " + shlex.join(argv)
    try:
        result = train(hp, data, out, args.steps, eval_every=args.eval_every, save_every=args.save_every,
                       seed=args.seed, device=args.device, log_every=args.log_every, progress=not args.no_progress,
                       resume=args.resume, time_budget_s=args.time_budget, valid_max_sketches=args.valid_max,
                       run_info={"command": command, "threads": torch.get_num_threads()}, plot=not args.no_plot,
                       cuda_graph=args.cuda_graph, compile=args.compile, tf32=args.tf32)
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result.checkpoint is not None:
        v = result.valid[-1] if result.valid else {}
        print(f"{result.stopped} at step {result.step} in {result.wall_time_s:.0f} s; valid loss "
              f"{v.get('loss', float('nan')):.4f}; checkpoint {result.checkpoint}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
