"""Sampling latency: one sketch of N steps and a batch of 64, the reference path vs the fast path.

``plain`` is ``sample(..., fast=False)``: ``model.step`` and ``sample_outputs`` at every step.
``fast`` is the default: for the LSTM decoder on the CPU the numpy step of
``sketchlib.fast.numpy_lstm`` (numpy's BLAS on torch's thread count), on a GPU the fused torch step;
the LayerNorm and Hyper decoders take ``model.step`` on both paths.

The decoder's p3 logit is pushed to -1e4 so every sketch runs the full N steps (a trained model
would stop earlier; this measures the worst case the z-sliders must handle).

    python bench/sampling.py --size small        # CI smoke test
    python bench/sampling.py --size full         # 512-unit decoder, 250 steps (the issue's CPU targets)
    python bench/sampling.py --size small --baseline old.json   # adds ratio_vs_baseline (new ms / old ms)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, print_table, time_it, write_json  # noqa: E402

from sketchlib.config import HParams  # noqa: E402
from sketchlib.fast.numpy_lstm import openblas_threads  # noqa: E402
from sketchlib.nn.model import SketchRNN  # noqa: E402
from sketchlib.sample import sample  # noqa: E402

SIZES = {
    "small": dict(steps=40, dec=64, enc=32, z=16, m=5, batches=(1, 8)),
    "full": dict(steps=250, dec=512, enc=256, z=128, m=20, batches=(1, 64)),
}


def never_stopping_model(hp: HParams, device) -> SketchRNN:
    torch.manual_seed(0)
    model = SketchRNN(hp).to(device).eval()
    with torch.no_grad():
        model.decoder.to_y.bias[2] = -1e4  # pen logit of p3 (layout: [q_hat (3) | ...]): never end early
    return model


def run(size: str, device: torch.device, repeats: int) -> dict:
    s = SIZES[size]
    rows = []
    for dec_model in ("lstm", "layer_norm", "hyper"):
        hp = HParams(max_seq_len=s["steps"], enc_rnn_size=s["enc"], dec_rnn_size=s["dec"], dec_model=dec_model,
                     z_size=s["z"], num_mixture=s["m"])
        model = never_stopping_model(hp, device)
        for n in s["batches"]:
            base = None
            for path, fast in (("plain", False), ("fast", True)):
                g = torch.Generator().manual_seed(0)
                fn = lambda: sample(model, n=n, temperature=0.5, generator=g, fast=fast)  # noqa: E731
                lengths = {len(x) for x in fn()}
                assert lengths == {s["steps"]}, f"sketches ended early: {lengths}"
                t = time_it(fn, device, warmup=1, repeats=repeats)
                base = base or t["median_ms"]
                rows.append(dict(decoder=dec_model, units=s["dec"], batch=n, steps=s["steps"], path=path,
                                 ms=t["median_ms"], min_ms=t["min_ms"], speedup_vs_plain=base / t["median_ms"]))
    blas = openblas_threads()
    return dict(benchmark="sampling", size=size, dtype="float32", machine=machine(device), rows=rows,
                numpy_blas_threads_default=blas[0]() if blas else None)


def compare(result: dict, baseline: dict, name: str) -> dict:
    """Each row's ``ratio_vs_baseline`` (this run's ms / the baseline's, same decoder, batch and path; above 1 is
    slower) and their geometric mean, from a JSON this script wrote earlier (e.g. on another commit)."""
    key = lambda r: (r["decoder"], r["batch"], r["path"])  # noqa: E731
    old = {key(r): r for r in baseline["rows"]}
    ratios, min_ratios = [], []
    for r in result["rows"]:
        if key(r) in old:
            r["ratio_vs_baseline"] = r["ms"] / old[key(r)]["ms"]
            r["min_ratio_vs_baseline"] = r["min_ms"] / old[key(r)]["min_ms"]  # best runs: less of the machine's load
            ratios.append(r["ratio_vs_baseline"])
            min_ratios.append(r["min_ratio_vs_baseline"])
    if not ratios:
        raise ValueError(f"the baseline {name} has no row matching this run's")
    return dict(name=name, command=baseline.get("command"), rows=len(ratios),
                geomean_ratio=statistics.geometric_mean(ratios), geomean_min_ratio=statistics.geometric_mean(min_ratios))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--baseline", type=Path, default=None, help="an earlier JSON of this script to compare with")
    p.add_argument("--baseline-name", default=None, help="what the baseline is (default: its path)")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    result = run(a.size, device, a.repeats)
    if a.baseline is not None:
        result["baseline"] = compare(result, json.loads(a.baseline.read_text()), a.baseline_name or str(a.baseline))
    result["command"] = "python bench/sampling.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# sampling, {a.size}: {result['machine']['device']}, {result['machine']['torch_threads']} threads")
    cols = ["decoder", "units", "batch", "steps", "path", "ms", "speedup_vs_plain"]
    print_table(result["rows"], cols + (["ratio_vs_baseline", "min_ratio_vs_baseline"] if "baseline" in result else []))
    if "baseline" in result:
        b = result["baseline"]
        print(f"# geometric mean of ms / baseline ms: median {b['geomean_ratio']:.3f}, best {b['geomean_min_ratio']:.3f}")
    write_json(a.out or RESULTS / f"sampling-{a.size}-{device.type}.json", result)
    return result


if __name__ == "__main__":
    main()
