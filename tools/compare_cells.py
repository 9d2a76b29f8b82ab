"""Train the three decoder cells (LSTM, LayerNorm LSTM, HyperLSTM) with one identical budget; write the curves.

Chapter 5 (book/05_hyperlstm) plots the result. The runs are far too long for a chapter's
execution, so they are made here, offline, with sketchlib's own training API
(:func:`sketchlib.train.train`), and only the numbers are kept::

    OMP_NUM_THREADS=1 nice -n 10 python tools/compare_cells.py            # ~25 min on a busy 2-core CPU
    python tools/compare_cells.py --steps 20 --out /tmp/cc.json --runs /tmp/cc --dest /tmp/cc   # a smoke test

Every run shares everything except ``dec_model``: the data (KanjiVG), the seed (so the same
initial encoder weights, the same batches and the same noise at every step), the sizes, the
number of updates and the schedules. Written to ``data/cell_comparison.json`` (atomically):
per cell the logged training windows (mean losses over ``--log-every`` updates), the validation
losses, the test losses of the final weights, the parameter counts and the wall time; plus the
command, the budget, the hardware and the torch version. The HyperLSTM run is also exported as
the shipped checkpoint ``kanjivg_hyper_small`` (:func:`sketchlib.train.export`: weights, manifest,
log in ``data/``; chapter 5 loads it with ``load_pretrained`` and plots its d_x, d_h scalings on a
real sketch). The full runs (checkpoints, logs) stay in ``--runs`` (default ``runs/cell_comparison``).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("lstm", "layer_norm", "hyper")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=500, help="updates per cell (identical for all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dec-rnn-size", type=int, default=128)
    p.add_argument("--enc-rnn-size", type=int, default=64)
    p.add_argument("--z-size", type=int, default=32)
    p.add_argument("--num-mixture", type=int, default=20)
    p.add_argument("--hyper-num-units", type=int, default=64)
    p.add_argument("--hyper-embedding-size", type=int, default=16)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cells", nargs="*", default=list(CELLS), choices=CELLS)
    p.add_argument("--limit", type=int, default=None, help="use only the first N sketches of each split (tests)")
    p.add_argument("--out", default=str(ROOT / "data" / "cell_comparison.json"))
    p.add_argument("--export-hyper", default="kanjivg_hyper_small",
                   help="export the HyperLSTM run as this pretrained checkpoint in --dest ('' for no export)")
    p.add_argument("--dest", default=str(ROOT / "data"), help="folder of the exported checkpoint")
    p.add_argument("--runs", default=str(ROOT / "runs" / "cell_comparison"))
    return p.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from sketchlib.config import HParams
    from sketchlib.data import load_dataset
    from sketchlib.device import cpu_model
    from sketchlib.data.fileio import atomic_write
    from sketchlib.nn.model import SketchRNN
    from sketchlib.train import LAST, evaluate, export, train

    data = load_dataset("kanjivg", limit=args.limit, progress=False)
    base = HParams(batch_size=args.batch_size, dec_rnn_size=args.dec_rnn_size, enc_rnn_size=args.enc_rnn_size,
                   z_size=args.z_size, num_mixture=args.num_mixture, hyper_num_units=args.hyper_num_units,
                   hyper_embedding_size=args.hyper_embedding_size)
    result = {
        "what": "LSTM vs LayerNorm LSTM vs HyperLSTM decoders, identical budget, KanjiVG",
        "command": "OMP_NUM_THREADS=1 nice -n 10 python tools/compare_cells.py " + shlex.join(argv),
        "budget": {"steps": args.steps, "batch_size": args.batch_size, "sketches_seen": args.steps * args.batch_size,
                   "epochs": round(args.steps * args.batch_size / len(data.train), 3),
                   "threads": args.threads, "device": "cpu"},
        "dataset": {"name": data.name, "train": len(data.train), "valid": len(data.valid), "test": len(data.test),
                    "max_seq_len": data.max_seq_len, "scale": data.scale},
        "hardware": f"{cpu_model()}, {torch.get_num_threads()} torch thread(s), machine shared with other jobs",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seed": args.seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cells": {},
    }
    for cell in args.cells:
        hp = base.replace(dec_model=cell)
        params = {
            "total": sum(p.numel() for p in SketchRNN(hp).parameters()),
            "decoder_cell": sum(p.numel() for p in SketchRNN(hp).decoder.cell.parameters()),
        }
        print(f"== {cell}: {params['total']:,} parameters, {args.steps} steps", flush=True)
        run = train(hp, data, Path(args.runs) / cell, args.steps, eval_every=args.eval_every,
                    save_every=args.steps, seed=args.seed, log_every=args.log_every, progress=False, resume=False,
                    run_info={"command": result["command"]})
        test = evaluate(run.model, data.test, run.model.hp, seed=0)
        result["cells"][cell] = {
            "hparams": run.model.hp.to_dict(),
            "parameters": params,
            "wall_time_s": round(run.wall_time_s, 1),
            "seconds_per_step": round(run.wall_time_s / max(run.step, 1), 3),
            "train": [{k: r[k] for k in ("step", "loss", "L_R", "L_s", "L_p", "L_KL", "kl_weight", "lr", "time_s")}
                      for r in run.train],
            "valid": [{k: r[k] for k in ("step", "loss", "L_R", "L_s", "L_p", "L_KL", "time_s")} for r in run.valid],
            "test": {k: test[k] for k in ("loss", "L_R", "L_s", "L_p", "L_KL", "n")},
        }
        print(f"   {cell}: {run.wall_time_s:.0f} s, final valid L_R {run.valid[-1]['L_R']:.4f}, "
              f"test L_R {test['L_R']:.4f}", flush=True)
        if cell == "hyper" and args.export_hyper:
            # the last checkpoint: the one whose test figures are recorded above (export defaults to the best)
            path = export(Path(args.runs) / cell, args.export_hyper, args.dest, data=data, which=LAST)
            result["cells"][cell]["exported_as"] = args.export_hyper
            print(f"   exported the HyperLSTM run as {path}", flush=True)
        # written after every cell, so a long run leaves its finished cells behind
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
