"""A run's bookkeeping: its settings (:class:`RunConfig`), its folder, log, validations and checkpoints.

Files in ``out_dir``: ``last.safetensors`` (every ``save_every`` steps and at the end, atomic;
weights, Adam state, step), ``best.safetensors`` (the lowest validation loss so far, weights only),
``log.jsonl`` (:mod:`sketchlib.train.logs`), ``loss_curve.png`` and ``.lock``
(:mod:`sketchlib.train.guard`). Only rank 0 writes.

A checkpoint is GOOD only if its weights and its last losses (train window and validation) are
finite; a bad one is never written (:class:`NonFiniteLoss` instead), so ``last.safetensors`` is
always the last good state and a NaN message can name it.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sketchlib import fast as fast_paths
from sketchlib.config import HParams
from sketchlib.data.fileio import atomic_write
from sketchlib.nn.loss import LOSS_KEYS
from sketchlib.train import checkpoint
from sketchlib.train.logs import read_log
from sketchlib.train.schedules import kl_weight

LAST = "last.safetensors"
BEST = "best.safetensors"
LOG = "log.jsonl"
CURVE = "loss_curve.png"
RUN_FILES = (LAST, BEST, LOG, CURVE)


class NonFiniteLoss(RuntimeError):
    """Training met a NaN or inf loss (or weights); the last good checkpoint was kept."""


@dataclass
class RunConfig:
    """How to run :func:`sketchlib.train.fit` (the model's own settings are :class:`HParams`).

    ``resume=True`` continues from ``out_dir/last.safetensors`` when it exists (same config and
    seed required); ``time_budget_s`` stops cleanly once this session has run that long;
    ``valid_max_sketches`` validates on the first N valid sketches; ``run_info`` is stored in the
    checkpoints (the CLI records the command and the dataset's identity there). ``cuda_graph``,
    ``compile``, ``tf32``: see :func:`sketchlib.train.train`.
    """

    out_dir: Path
    num_steps: int
    eval_every: int = 500
    save_every: int = 1000
    log_every: int = 50
    seed: int = 0
    device: str | torch.device | None = None
    progress: bool = True
    resume: bool = True
    time_budget_s: float | None = None
    valid_max_sketches: int | None = None
    run_info: dict = field(default_factory=dict)
    plot: bool = True
    cuda_graph: bool | None = None
    compile: bool | None = None
    tf32: bool = False

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        for name, low in (("num_steps", 0), ("eval_every", 1), ("save_every", 1), ("log_every", 1), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        vm = self.valid_max_sketches
        if vm is not None and (isinstance(vm, bool) or not isinstance(vm, int) or vm < 1):
            raise ValueError(f"valid_max_sketches must be None (all) or an integer >= 1, got {vm!r}")
        tb = self.time_budget_s
        if tb is not None and not (isinstance(tb, (int, float)) and math.isfinite(tb) and tb >= 0):
            raise ValueError(f"time_budget_s must be None or a number of seconds >= 0, got {tb!r}")


def same_config(a: HParams, b: HParams) -> bool:
    """Equal but for num_steps and the extra notes other than dataset and scale."""
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        d.pop("num_steps")
        d["extra"] = {k: v for k, v in d["extra"].items() if k in ("dataset", "scale")}
    return da == db


def _finite_record(rec: dict | None) -> bool:
    return rec is None or all(math.isfinite(rec[k]) for k in LOSS_KEYS if k in rec)


class Run:
    """The state of one training session around the loop: resume, log windows, validation, saving."""

    def __init__(self, cfg: RunConfig, hp: HParams, model: nn.Module, optimizer, valid, *, device, rank: int,
                 world_size: int, evaluate):
        self.cfg, self.hp, self.model, self.optimizer, self.valid = cfg, hp, model, optimizer, valid
        self.device, self.rank, self.world_size, self.evaluate = device, rank, world_size, evaluate
        self.is_main = rank == 0
        out = cfg.out_dir
        self.last_path, self.best_path, self.log_path = out / LAST, out / BEST, out / LOG
        self.t_start = time.monotonic()
        self.start_step, self.wall_before, self.best_valid = 0, 0.0, math.inf
        self.run_info = dict(cfg.run_info)
        self.last_good: tuple[Path, int] | None = None  # (file, step) of the newest good checkpoint
        self.history: list[dict] = []
        self.window, self.window_n = dict.fromkeys(LOSS_KEYS, 0.0), 0
        self.last_train, self.last_valid, self.last_valid_step = None, None, None
        self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Resume from ``last.safetensors`` (cfg.resume and it exists) or clear the run's files."""
        cfg = self.cfg
        if cfg.resume and self.last_path.is_file():
            self._resume()
        elif self.is_main:
            for name in RUN_FILES:
                (cfg.out_dir / name).unlink(missing_ok=True)
        self.history = read_log(self.log_path) if self.is_main else []
        self.last_valid_step = max((r["step"] for r in self.history if r.get("split") == "valid"), default=None)
        from tqdm.auto import tqdm

        self.bar = tqdm(total=cfg.num_steps, initial=self.start_step, disable=not (cfg.progress and self.is_main),
                        desc="train", dynamic_ncols=True)
        if not self.valid and self.is_main:
            msg = "the validation split is empty (after length filtering): training without validation"
            warnings.warn(msg, stacklevel=3)
            self.log({"split": "warning", "step": self.start_step, "message": msg})

    def _resume(self) -> None:
        weights, hp_ck, info = checkpoint.read(self.last_path)
        if not same_config(hp_ck, self.hp):
            raise ValueError(f"{self.last_path} was trained with a different config; use another out_dir or "
                             f"resume=False")
        old = info["extra"].get("run_info", {})
        if old.get("seed", self.cfg.seed) != self.cfg.seed:
            raise ValueError(f"{self.last_path} was trained with seed {old['seed']}; resume it with the same seed "
                             f"(got {self.cfg.seed})")
        checkpoint.load_weights(self.model, weights, source=str(self.last_path))
        checkpoint.restore_optimizer(self.optimizer, info)
        self.start_step = info["step"]
        self.last_good = (self.last_path, self.start_step)
        self.wall_before = float(info["extra"].get("wall_time_s", 0.0))
        self.best_valid = float(info["extra"].get("best_valid_loss", math.inf))
        ri = self.run_info
        if "command" in old and "command" in ri:  # keep the first command, list the resumes
            ri = {**ri, "command": old["command"], "resumed_with": old.get("resumed_with", []) + [ri["command"]]}
        self.run_info = {**old, **ri}
        if self.is_main:  # drop log records written after the checkpoint (a crash between save and log)
            kept = [r for r in read_log(self.log_path) if r.get("step", 0) <= self.start_step]
            atomic_write(self.log_path, "".join(json.dumps(r) + "\n" for r in kept))

    # -- during the loop -------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.t_start

    def log(self, record: dict) -> None:
        self.history.append(record)
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def where_good(self) -> str:
        if self.last_good is None:
            return "no good checkpoint exists (none was saved before this)"
        return f"the last good checkpoint is {self.last_good[0]} (step {self.last_good[1]})"

    def check_finite(self, step: int, values: torch.Tensor, bad: bool) -> None:
        """NonFiniteLoss (naming the last good checkpoint) when this update's losses are not finite."""
        if bad:
            vals = ", ".join(f"{k}={float(v):.4g}" for k, v in zip(LOSS_KEYS, values.tolist()))
            raise NonFiniteLoss(f"non-finite loss at step {step} (update index {step - 1}): {vals}; training "
                                f"stopped, {self.where_good()} (the weights in memory took the bad update)")

    def add_train(self, step: int, values: torch.Tensor, lr: float, w: float, flush: bool) -> None:
        """Add an update's losses [5] to the window; log the window's mean every log_every steps (or ``flush``)."""
        for k, v in zip(LOSS_KEYS, values.tolist()):
            self.window[k] += v
        self.window_n += 1
        self.bar.update(1)
        if not (step % self.cfg.log_every == 0 or step == self.cfg.num_steps or flush):
            return
        mean = torch.tensor([self.window[k] / self.window_n for k in LOSS_KEYS], dtype=torch.float64)
        if self.world_size > 1:
            import torch.distributed as dist

            mean = mean.to(self.device)
            dist.all_reduce(mean)
            mean = (mean / self.world_size).cpu()
        if self.is_main:
            self.last_train = {"split": "train", "step": step, **dict(zip(LOSS_KEYS, mean.tolist())),
                               "n": self.window_n, "lr": lr, "kl_weight": w,
                               "time_s": round(self.wall_before + self.elapsed(), 3)}
            self.log(self.last_train)
            self.bar.set_postfix({k: f"{self.last_train[k]:.3f}" for k in ("loss", "L_R", "L_KL")}, refresh=False)
        self.window, self.window_n = dict.fromkeys(LOSS_KEYS, 0.0), 0

    def validate(self, step: int) -> dict:
        """Validation losses at ``step`` (logged); a new lowest loss saves ``best.safetensors``."""
        with fast_paths.enabled(None, compile=False):  # eval batches have other shapes: not worth compiling
            v = self.evaluate(self.model, self.valid, self.hp, kl_weight_value=kl_weight(max(step - 1, 0), self.hp),
                              seed=self.cfg.seed, device=self.device)
        rec = {"split": "valid", "step": step, **v, "time_s": round(self.wall_before + self.elapsed(), 3)}
        self.log(rec)
        self.last_valid, self.last_valid_step = rec, step
        if self.cfg.progress:
            self.bar.write(f"step {step}: valid loss {rec['loss']:.4f} L_R {rec['L_R']:.4f} L_KL {rec['L_KL']:.4f}")
        if not _finite_record(rec):
            raise NonFiniteLoss(f"non-finite validation loss at step {step} (loss={rec['loss']:.4g}); training "
                                f"stopped, {self.where_good()}")
        if v["loss"] < self.best_valid:
            self.best_valid = v["loss"]
            self._save(self.best_path, step, {**rec, "best_reason": "lowest validation loss so far"}, optimizer=None)
        return rec

    def save(self, step: int) -> Path:
        """``last.safetensors`` at ``step``: only a good checkpoint (finite weights and last losses) is written."""
        self._save(self.last_path, step, {"train": self.last_train, "valid": self.last_valid}, self.optimizer)
        self.last_good = (self.last_path, step)
        return self.last_path

    def _save(self, path: Path, step: int, metrics: dict, optimizer) -> None:
        finite = all(bool(torch.isfinite(p).all()) for p in self.model.state_dict().values())
        records = [metrics] if metrics.get("split") else [metrics["train"], metrics["valid"]]
        if not finite or not all(_finite_record(r) for r in records):
            raise NonFiniteLoss(f"step {step}: the weights or the last losses are not finite, {path.name} not "
                                f"written; training stopped, {self.where_good()}")
        extra = {"wall_time_s": self.wall_before + self.elapsed(), "run_info": self.run_info}
        if optimizer is not None:
            extra["best_valid_loss"] = self.best_valid
        checkpoint.save(path, self.model, self.hp, step=step, metrics=metrics, optimizer=optimizer, extra=extra)
