"""Chapter 8's training cell, run as the book runs it on a GPU, and recorded: log, loss curves, samples, updates/s.

The call is the notebook's (``book/08_training.ipynb``, the cell after "show_source(schedules)"):
``train.train(HParams(), data, run_dir, 1_000_000, time_budget_s=budget, eval_every=1000, log_every=100,
...)`` on KanjiVG, with the budget from ``--budget`` (the book's default is 1200 s; a short GPU
session gives it less). Written to ``--out``: ``log.jsonl`` (the run's log), ``summary.json``
(updates, wall time, updates per second, the last train and valid losses, the machine),
``samples.npz`` (16 sketches sampled from the trained model at tau = 0.5, stroke-3, normalised), and,
where matplotlib is installed, ``loss_curve.png`` and ``samples.png``.

    python bench/chapter8_run.py --out /tmp/ch8 --budget 60                 # on a GPU
    python bench/chapter8_run.py --out /tmp/ch8 --budget 10 --tiny --limit 200   # the dry run on a CPU
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_json  # noqa: E402

from sketchlib.config import HParams  # noqa: E402
from sketchlib.data import load_dataset  # noqa: E402
from sketchlib.sample import sample  # noqa: E402
from sketchlib.train import loop as train  # noqa: E402


def plots(result, samples, out: Path) -> list[str]:
    """loss_curve.png (L_R and L_KL, train and valid) and samples.png; [] where matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from sketchlib import render
    except ImportError:
        return []
    tr, va = result.train, result.valid
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, key in zip(axes, ("L_R", "L_KL")):
        ax.plot([r["step"] for r in tr], [r[key] for r in tr], label=f"train {key}")
        ax.plot([r["step"] for r in va], [r[key] for r in va], "o-", label=f"valid {key}")
        ax.set_xlabel("update")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"chapter 8's run: {result.step} updates, {result.wall_time_s:.0f} s")
    fig.tight_layout()
    fig.savefig(out / "loss_curve.png", dpi=90)
    render.draw_grid(samples, ncols=8, cell_size=1.2).savefig(out / "samples.png", dpi=80)
    return ["loss_curve.png", "samples.png"]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget", type=float, default=60.0, help="seconds of training (the book: 1200 on a GPU)")
    p.add_argument("--tiny", action="store_true", help="the notebook's CPU model (a dry run)")
    p.add_argument("--limit", type=int, default=None, help="the first N sketches of each split (a dry run)")
    a = p.parse_args(argv)
    on_gpu = torch.cuda.is_available()
    data = load_dataset("kanjivg", limit=a.limit, progress=False)
    hp = HParams(enc_rnn_size=64, dec_rnn_size=128, batch_size=32) if a.tiny else HParams()  # as the notebook
    run_dir = a.out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    result = train.train(hp, data, run_dir, 1_000_000, time_budget_s=a.budget, eval_every=1000 if on_gpu else 40,
                         log_every=100 if on_gpu else 10, resume=False, progress=False,
                         valid_max_sketches=None if on_gpu else 100, device="cuda" if on_gpu else "cpu", plot=False)
    samples = sample(result.model, n=16, temperature=0.5, generator=torch.Generator().manual_seed(0))
    np.savez_compressed(a.out / "samples.npz", **{f"s{i}": s for i, s in enumerate(samples)})
    shutil.copy(run_dir / "log.jsonl", a.out / "log.jsonl")
    summary = dict(updates=result.step, wall_time_s=result.wall_time_s, updates_per_s=result.step / result.wall_time_s,
                   stopped=result.stopped, last_train=result.train[-1] if result.train else None,
                   last_valid=result.valid[-1] if result.valid else None, hp=hp.to_dict(), machine=machine(torch.device("cuda" if on_gpu else "cpu")),
                   command="python bench/chapter8_run.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    summary["pictures"] = plots(result, samples, a.out)
    shutil.rmtree(run_dir, ignore_errors=True)  # the checkpoints are not shipped; the log and summary are
    write_json(a.out / "summary.json", summary)
    print(json.dumps({k: summary[k] for k in ("updates", "wall_time_s", "updates_per_s", "stopped", "pictures")}))
    return summary


if __name__ == "__main__":
    main()
