"""Sampling latency: one sketch of N steps and a batch of 64, the reference path vs the fast path.

``plain`` is ``sample(..., fast=False)``: ``model.step`` and ``sample_outputs`` at every step.
``fast`` is the default: for the LSTM decoder on the CPU the numpy step of
``sketchlib.fast.numpy_lstm`` (numpy's BLAS on torch's thread count), on a GPU the step and the draw
replayed as CUDA graphs (``sketchlib.fast.graph_sampling``; each row names its ``stepper``);
the LayerNorm and Hyper decoders take ``model.step`` on both paths.

On the CPU the batch rows also carry the float32 matrix-product floor measured in the same run
(:func:`matmul_floor`): the best rate of numpy's sgemm at the decoder's own shapes (the gate product
[4H, 5 + H + 1] x [5 + H + 1, n] and the head [n, H + 1] x [H + 1, 6M + 3]) times the products the
N steps need, printed beside the batch's time as ``floor_ms`` and ``ratio_vs_floor`` (best time / floor).

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
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, print_table, time_it, write_json  # noqa: E402

from sketchlib.config import HParams  # noqa: E402
from sketchlib.fast.numpy_lstm import cpu_threads, openblas_threads  # noqa: E402
from sketchlib.nn.model import SketchRNN  # noqa: E402
from sketchlib.sample import sample, stepper_name  # noqa: E402

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


def matmul_floor(H: int, M: int, n: int, steps: int, repeats: int = 5, inner: int = 20) -> dict:
    """The least time the float32 products of ``steps`` batch steps can take on this CPU, measured now.

    Each step needs the gate product W x ([4H, 5 + H + 1] x [5 + H + 1, n]; z W_z is folded in once)
    and the head y = [h; 1]^T [W_y | b_y]^T ([n, H + 1] x [H + 1, 6M + 3]). Each is timed ``inner``
    times in a row, ``repeats`` times, under the threads :func:`sketchlib.sample.sample` uses
    (:func:`cpu_threads`); the best time of each shape gives its best rate (GFLOP/s), and the floor is
    steps x (best gate time + best head time) = the FLOPs at the best rates.
    """
    rng = np.random.default_rng(0)
    shapes = {"gate": ((4 * H, 5 + H + 1), (5 + H + 1, n)), "head": ((n, H + 1), (H + 1, 6 * M + 3))}
    out = dict(steps=steps, batch=n)
    with cpu_threads():
        for name, (sa, sb) in shapes.items():
            a, b = (rng.standard_normal(s, dtype=np.float32) for s in (sa, sb))
            c = np.empty((sa[0], sb[1]), dtype=np.float32)
            np.dot(a, b, c)  # warm-up (threads start, pages touched)
            best = min(_timed(lambda: np.dot(a, b, c), inner) for _ in range(repeats))
            flops = 2.0 * sa[0] * sa[1] * sb[1]
            out[f"{name}_gflops"] = flops / best / 1e9
            out[f"{name}_mflop_per_step"] = flops / 1e6
            out[f"{name}_best_us"] = best * 1e6
    out["floor_ms"] = steps * (out["gate_best_us"] + out["head_best_us"]) / 1000.0
    return out


def _timed(fn, inner: int) -> float:
    """Seconds per call of ``fn``, ``inner`` calls in a row."""
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def run(size: str, device: torch.device, repeats: int) -> dict:
    s = SIZES[size]
    rows, floors = [], {}
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
                row = dict(decoder=dec_model, units=s["dec"], batch=n, steps=s["steps"], path=path,
                           stepper=stepper_name(model, fast),
                           ms=t["median_ms"], min_ms=t["min_ms"], speedup_vs_plain=base / t["median_ms"])
                if device.type == "cpu" and dec_model == "lstm" and n > 1:
                    floor = floors.setdefault(n, matmul_floor(s["dec"], s["m"], n, s["steps"], repeats))
                    row.update(floor_ms=floor["floor_ms"], ratio_vs_floor=t["min_ms"] / floor["floor_ms"],
                               median_ratio_vs_floor=t["median_ms"] / floor["floor_ms"])
                rows.append(row)
    blas = openblas_threads()
    return dict(benchmark="sampling", size=size, dtype="float32", machine=machine(device), rows=rows,
                numpy_blas_threads_default=blas[0]() if blas else None,
                matmul_floor=[floors[n] for n in sorted(floors)])


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
    cols = ["decoder", "units", "batch", "steps", "path", "stepper", "ms", "min_ms", "speedup_vs_plain"]
    if any("floor_ms" in r for r in result["rows"]):
        cols += ["floor_ms", "ratio_vs_floor"]
    print_table(result["rows"], cols + (["ratio_vs_baseline", "min_ratio_vs_baseline"] if "baseline" in result else []))
    if "baseline" in result:
        b = result["baseline"]
        print(f"# geometric mean of ms / baseline ms: median {b['geomean_ratio']:.3f}, best {b['geomean_min_ratio']:.3f}")
    for f in result["matmul_floor"]:
        print(f"# float32 matmul floor, batch {f['batch']}, {f['steps']} steps: {f['floor_ms']:.1f} ms "
              f"(gate {f['gate_gflops']:.1f} GFLOP/s, head {f['head_gflops']:.1f} GFLOP/s at their best); "
              "ratio_vs_floor = best batch time / floor")
    write_json(a.out or RESULTS / f"sampling-{a.size}-{device.type}.json", result)
    return result


if __name__ == "__main__":
    main()
