"""Training-step benchmark: forward + loss + backward + clipping + Adam, per decoder cell and path.

Compares, in ONE run and on one device, for each decoder cell and size:
  plain          our step-by-step cell loop straight from the equations (the reference path)
  fast           input projections of all steps in one matmul, deferred recurrent weight
                 gradients (sketchlib.fast.bptt), a minimal loop (the default off the GPU)
  graph          fast, with the whole update replayed as one CUDA graph (sketchlib.fast.cuda_graph)
  graph+compile  graph, with each step's element-wise work fused by torch.compile (sketchlib.fast.fusion):
                 the training command's default on a GPU
  graph+compile-nodefer  the same with autograd's step-by-step recurrent weight gradients (what
                 sketchlib.fast.bptt saves; HyperLSTM 2048 only)
  graph+compile-unmerged  the HyperLSTM with two recurrent products a step instead of one on the
                 block matrix (sketchlib.fast.hyper.MERGE_RECURRENT off; HyperLSTM 2048 only)
  native         PyTorch's fused LSTM (cuDNN on a GPU), LSTM decoder with recurrent dropout off
                 (eager, and "native+graph" captured), forced here even on the CPU, where the fast
                 path does not choose it (compare the LSTM "fast" row with recurrent dropout off)
Each row says its precision: float32, or tf32 (TF32 matrix products, ~1e-3 relative error).
Speed-ups are ratios to the plain row of the same cell and size, measured in the same run.
Paths are chosen with the one switch, ``sketchlib.fast.enabled(fast, compile=...)``.
``--baseline OLD.json`` (a run of another checkout) adds each row's ``baseline_ms`` and
``speedup_vs_baseline`` = baseline_ms / ms_per_step (medians), the same for the fastest repeat
(``speedup_vs_baseline_min``, steadier on a shared machine), and their geometric means.

    python bench/train_step.py --size small                  # seconds on a CPU (CI smoke test)
    python bench/train_step.py --size full --device cuda     # the issue's sizes: B 100, N_max 250, 512 and 2048
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import sys
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, print_table, sync, time_it, write_json  # noqa: E402

from sketchlib import fast as fast_paths  # noqa: E402
from sketchlib.config import HParams  # noqa: E402
from sketchlib.fast import bptt, hyper, native  # noqa: E402
from sketchlib.fast.cuda_graph import GraphedTrainStep, make_optimizer  # noqa: E402
from sketchlib.nn.loss import total_loss  # noqa: E402
from sketchlib.nn.model import SketchRNN  # noqa: E402

SIZES = {
    # name: (batch, N_max, encoder units, decoder sizes, N_z, M, hyper units, hyper embedding)
    "small": dict(batch=8, n_max=24, enc=32, decs=(64,), z=16, m=5, hyper=16, emb=8),
    "full": dict(batch=100, n_max=250, enc=256, decs=(512, 2048), z=128, m=20, hyper=256, emb=32),
}
#: The issue's targets (ms per step, one H100 / H200, batch 100, N_max 250).
TARGETS = {("hyper", 2048): 60.0, ("layer_norm", 512): 40.0, ("lstm", 512): 40.0}


def synthetic_batch(batch: int, n_max: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A stroke-5 batch [B, N_max + 1, 5] with every sketch N_max points long (the worst case)."""
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(batch, n_max + 1, 5)
    x[:, 0, 2] = 1  # S_0
    x[:, 1:, :2] = torch.randn(batch, n_max, 2, generator=g)
    lift = torch.rand(batch, n_max, generator=g) < 0.1
    x[:, 1:, 2] = (~lift).float()
    x[:, 1:, 3] = lift.float()
    x[:, -1, 2:] = torch.tensor([0.0, 1.0, 0.0])  # last real point lifts the pen
    return x.to(device), torch.full((batch,), n_max, dtype=torch.long, device=device)


def make_step(hp: HParams, device, path: str):
    """A zero-argument function doing one full update with ``path``'s machinery."""
    torch.manual_seed(0)
    model = SketchRNN(hp).to(device).train()
    strokes, lengths = synthetic_batch(hp.batch_size, hp.max_seq_len, device)
    if path.startswith("graph") or path == "native+graph":
        opt = make_optimizer(model.parameters(), hp, capturable=True)
        graphed = GraphedTrainStep(model, opt, hp, hp.batch_size, device, warmup=2)
        cpu_strokes, cpu_lengths = strokes.cpu(), lengths.cpu()
        return lambda: graphed(cpu_strokes, cpu_lengths, 1e-3, 0.5)
    opt = make_optimizer(model.parameters(), hp, capturable=False)

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(strokes, lengths)
        loss = total_loss(out, strokes, lengths, kl_weight=0.5, kl_tolerance=0.2)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
        opt.step()

    return step


def variants(dec_model: str, units: int, device: torch.device, size: str):
    """(path, precision, recurrent dropout) rows for one decoder; the GPU-only ones on CUDA only."""
    rows = [("plain", "float32", True), ("fast", "float32", True)]
    if device.type == "cuda":
        rows.append(("graph", "float32", True))
        if size == "small" or (dec_model, units) in TARGETS:
            rows += [("graph+compile", "float32", True), ("graph+compile", "tf32", True)]
        if (dec_model, units) == ("hyper", 2048):
            rows.append(("graph+compile-nodefer", "float32", True))
        if dec_model == "hyper" and (size == "small" or units == 2048):
            rows += [("graph+compile-unmerged", "float32", True), ("graph+compile-unmerged", "tf32", True)]
    if dec_model == "lstm":
        rows += [("fast", "float32", False), ("native", "float32", False)]
        if device.type == "cuda":
            rows.append(("native+graph", "float32", False))
    return rows


@contextlib.contextmanager
def path_switches(path: str):
    """The switch settings for a row's path (see the module docstring)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(fast_paths.enabled(path != "plain", compile="compile" in path))
        if path.endswith("nodefer"):
            stack.enter_context(mock.patch.object(bptt.RecurrentWeight, "defer", False))
        if path.endswith("unmerged"):  # the HyperLSTM's two recurrent products a step (sketchlib.fast.hyper)
            stack.enter_context(mock.patch.object(hyper, "MERGE_RECURRENT", False))
        if path.startswith("native"):  # PyTorch's kernel wherever it applies, on the CPU too
            stack.enter_context(mock.patch.object(
                native, "wants_native", lambda cells, x: all(type(c) is native.LSTMCell and not c.dropout_active()
                                                             for c in cells)))
        yield


def add_baseline(result: dict, baseline_path: Path) -> None:
    """Rows of another run (same size and device) matched by (decoder, units, path, precision, dropout)."""
    old = json.loads(baseline_path.read_text())
    key = lambda r: (r["decoder"], r["units"], r["path"], r["precision"], r["recurrent_dropout"])  # noqa: E731
    old_rows = {key(r): r for r in old["rows"] if "ms_per_step" in r}
    ratios, ratios_min = [], []
    for row in result["rows"]:
        if "ms_per_step" in row and key(row) in old_rows:
            base = old_rows[key(row)]
            row["baseline_ms"], row["baseline_min_ms"] = base["ms_per_step"], base["min_ms"]
            row["speedup_vs_baseline"] = base["ms_per_step"] / row["ms_per_step"]
            row["speedup_vs_baseline_min"] = base["min_ms"] / row["min_ms"]
            ratios.append(row["speedup_vs_baseline"])
            ratios_min.append(row["speedup_vs_baseline_min"])

    def geomean(xs):
        return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None

    result["baseline"] = dict(file=baseline_path.name, command=old.get("command"), rows_matched=len(ratios),
                              geomean_speedup=geomean(ratios), geomean_speedup_min=geomean(ratios_min))


def run(size: str, device: torch.device, repeats: int, budget_s: float | None = None,
        only: list[str] | None = None) -> dict:
    s = SIZES[size]
    rows, t0 = [], time.monotonic()
    for dec_model in ("lstm", "layer_norm", "hyper"):
        for dec in s["decs"]:
            hp = HParams(max_seq_len=s["n_max"], batch_size=s["batch"], enc_rnn_size=s["enc"], dec_rnn_size=dec,
                         dec_model=dec_model, z_size=s["z"], num_mixture=s["m"], hyper_num_units=s["hyper"],
                         hyper_embedding_size=s["emb"])
            base = None
            for path, precision, dropout in variants(dec_model, dec, device, size):
                if only and f"{dec_model}-{dec}" not in only:
                    continue
                row = dict(decoder=dec_model, units=dec, path=path, precision=precision, recurrent_dropout=dropout,
                           target_ms=TARGETS.get((dec_model, dec)) if size == "full" else None)
                if budget_s is not None and time.monotonic() - t0 > budget_s:
                    rows.append({**row, "error": "skipped: over the time budget"})
                    continue
                torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
                torch.backends.cudnn.allow_tf32 = precision == "tf32"
                try:
                    with path_switches(path):
                        t_build = time.monotonic()
                        fn = make_step(hp.replace(use_recurrent_dropout=dropout), device, path)
                        fn()  # first call: warm-up, compile, capture
                        sync(device)
                        setup_s = time.monotonic() - t_build
                        t = time_it(fn, device, warmup=1, repeats=repeats if path != "plain" else max(2, repeats // 2))
                except Exception as exc:  # noqa: BLE001 - a failing variant is reported, the others still run
                    rows.append({**row, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                    print(f"  {dec_model} {dec} {path} {precision}: FAILED {type(exc).__name__}: {exc}", flush=True)
                    continue
                finally:
                    fn = None
                    gc.collect()
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                if path == "plain":
                    base = t["median_ms"]
                rows.append({**row, "ms_per_step": t["median_ms"], "min_ms": t["min_ms"], "setup_s": round(setup_s, 1),
                             "speedup_vs_plain": (base / t["median_ms"]) if base else None})
                print(f"  {dec_model} {dec} {path} {precision}: {t['median_ms']:.1f} ms (setup {setup_s:.1f} s)",
                      flush=True)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return dict(benchmark="train_step", size=size, batch=s["batch"], n_max=s["n_max"],
                encoder=f"lstm {s['enc']} (bidirectional, recurrent dropout as the row says)",
                machine=machine(device), rows=rows)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget", type=float, default=None, help="skip the remaining rows after this many seconds")
    p.add_argument("--only", nargs="*", default=None, help="decoders to run, as CELL-UNITS (e.g. hyper-2048)")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/train_step-<size>-<device>.json)")
    p.add_argument("--baseline", type=Path, default=None, help="another run's JSON to compare with, row by row")
    p.add_argument("--baseline-label", default=None, help="what the baseline is (e.g. a commit), stored in the JSON")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    result = run(a.size, device, a.repeats, a.budget, a.only)
    result["command"] = "python bench/train_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.baseline is not None:
        add_baseline(result, a.baseline)
        result["baseline"]["label"] = a.baseline_label
    print(f"# training step, {a.size}: batch {result['batch']}, N_max {result['n_max']}, {result['machine']['device']}"
          f" {result['machine'].get('gpu', '')}")
    print_table(result["rows"], ["decoder", "units", "path", "precision", "ms_per_step", "speedup_vs_plain",
                                 "target_ms"] + (["speedup_vs_baseline"] if a.baseline else []))
    out = a.out or RESULTS / f"train_step-{a.size}-{device.type}.json"
    write_json(out, result)
    return result


if __name__ == "__main__":
    main()
