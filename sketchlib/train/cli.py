"""The command line: ``python -m sketchlib.train`` and ``sketchlib-train``.

``--dataset kanjivg --out runs/x --steps 10000 [--resume] ...`` trains (:func:`sketchlib.train.fit`);
``--export runs/x --name kanjivg`` copies a run's best checkpoint into ``data/`` with a manifest
(:func:`sketchlib.train.export.export`). Expected errors (bad arguments, a missing dataset, a busy run
folder, a diverged run) print one ``error: ...`` line and exit with status 2; Ctrl-C / SIGTERM save a
checkpoint and exit with 130 / 143.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import signal
import sys
from pathlib import Path

import torch

from sketchlib.config import HParams
from sketchlib.train.guard import RunLocked
from sketchlib.train.run import LAST, NonFiniteLoss, RunConfig

#: Errors a user can fix (arguments, files, data): one line, exit status 2. Anything else is a bug: traceback.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, RunLocked,
               NonFiniteLoss)


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
    p.add_argument("--which", default=None,
                   help="checkpoint of the run to export (default: best.safetensors if any, else last.safetensors)")
    p.add_argument("--export-dtype", default="float32", choices=("float32", "float16"),
                   help="precision of the exported weights (float16 halves the file)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with one ``error:`` line for a user error)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before training started (loading data), or a second Ctrl-C
        print("error: interrupted (no checkpoint written by this interruption)", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export:
        from sketchlib.train.export import export

        path = export(args.export, args.name, args.dest, which=args.which, dtype=args.export_dtype)
        print(f"exported {path} (+ manifest, log)")
        return 0
    if not args.out or args.steps is None:
        raise ValueError("--out and --steps are required for training (or --export RUN_DIR)")
    for flag, value in (("--limit", args.limit), ("--valid-max", args.valid_max)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    hp = hp_from_args(args.hp)
    if args.dec_model:
        hp = hp.replace(dec_model=args.dec_model)
    out = Path(args.out)
    if (out / LAST).is_file() and not args.resume:
        raise ValueError(f"{out / LAST} exists: pass --resume to continue it, or choose another --out")
    from sketchlib.data import load_dataset
    from sketchlib.train.export import dataset_identity
    from sketchlib.train.loop import fit

    data = load_dataset(args.dataset, max_seq_len=hp.max_seq_len, limit=args.limit, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(data.summary(), flush=True)
    command = "python -m sketchlib.train " + shlex.join(argv)
    cfg = RunConfig(out, args.steps, eval_every=args.eval_every, save_every=args.save_every, seed=args.seed,
                    device=args.device, log_every=args.log_every, progress=not args.no_progress, resume=args.resume,
                    time_budget_s=args.time_budget, valid_max_sketches=args.valid_max, plot=not args.no_plot,
                    run_info={"command": command, "threads": torch.get_num_threads(),
                              "dataset": dataset_identity(args.dataset, args.limit)},
                    cuda_graph=args.cuda_graph, compile=args.compile, tf32=args.tf32)
    result = fit(hp, data, cfg)
    if result.checkpoint is None:
        return 0
    if result.stopped.startswith("SIG"):
        again = command if "--resume" in argv else command + " --resume"
        print(f"stopped by {result.stopped} at step {result.step}: checkpoint {result.checkpoint}; "
              f"resume with: {again}", flush=True)
        return 128 + int(getattr(signal, result.stopped))
    v = result.valid[-1] if result.valid else {}
    print(f"{result.stopped} at step {result.step} in {result.wall_time_s:.0f} s; valid loss "
          f"{v.get('loss', float('nan')):.4f}; checkpoint {result.checkpoint}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
