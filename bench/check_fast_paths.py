"""How close the fast paths are to the reference path, at the benchmark's sizes.

For each decoder cell, one training-mode forward and backward (same weights, same dropout masks,
same eps) through the plain step-by-step loop in float32 (the reference) and through the fast
path, with the element-wise work fused by torch.compile on a GPU; then the same fast path with
TF32 matrix products. Reported: the relative error ||fast - plain|| / ||plain|| of the outputs y
and the worst one over every parameter's gradient. The issue's bar for float32 is 1e-4.

    python bench/check_fast_paths.py --size small                # CPU smoke test (CI)
    python bench/check_fast_paths.py --size full --device cuda   # B 100, 512 and 2048 units
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, print_table, write_json  # noqa: E402
from train_step import SIZES, synthetic_batch  # noqa: E402

from sketchlib import fast as fast_paths  # noqa: E402
from sketchlib.config import HParams  # noqa: E402
from sketchlib.nn.loss import total_loss  # noqa: E402
from sketchlib.nn.model import SketchRNN  # noqa: E402

BAR = 1e-4


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def forward_backward(model, strokes, lengths, eps):
    torch.manual_seed(1)  # the same recurrent dropout masks on both paths
    model.zero_grad(set_to_none=True)
    out = model(strokes, lengths, eps=eps)
    total_loss(out, strokes, lengths, 0.5, 0.2)["loss"].backward()
    return out.y.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def run(size: str, device: torch.device, n_max: int | None) -> dict:
    s = SIZES[size]
    T = n_max or s["n_max"]
    rows = []
    for dec_model in ("lstm", "layer_norm", "hyper"):
        for dec in s["decs"]:
            hp = HParams(max_seq_len=T, batch_size=s["batch"], enc_rnn_size=s["enc"], dec_rnn_size=dec,
                         dec_model=dec_model, z_size=s["z"], num_mixture=s["m"], hyper_num_units=s["hyper"],
                         hyper_embedding_size=s["emb"])
            torch.manual_seed(0)
            model = SketchRNN(hp).to(device).train()
            with torch.no_grad():  # move off the initialisation (HyperLSTM starts with W_z = 0, W_beta = 0)
                for p in model.parameters():
                    p.add_(0.02 * torch.randn_like(p))
            strokes, lengths = synthetic_batch(hp.batch_size, T, device)
            eps = torch.randn(hp.batch_size, hp.z_size, device=device)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
            with fast_paths.enabled(False):
                y_ref, g_ref = forward_backward(model, strokes, lengths, eps)
            for precision in ("float32", "tf32") if device.type == "cuda" else ("float32",):
                tf32 = precision == "tf32"
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
                with fast_paths.enabled(True, compile=device.type == "cuda"):
                    y, g = forward_backward(model, strokes, lengths, eps)
                errs = {n: rel(g[n], g_ref[n]) for n in g_ref}
                worst = max(errs, key=errs.get)
                row = dict(decoder=dec_model, units=dec, precision=precision, fused=device.type == "cuda",
                           rel_err_y=rel(y, y_ref), worst_rel_err_grad=errs[worst], worst_param=worst)
                row["within_1e-4"] = bool(row["rel_err_y"] <= BAR and row["worst_rel_err_grad"] <= BAR)
                rows.append(row)
                print(f"  {dec_model} {dec} {precision}: y {row['rel_err_y']:.2e}, grads {errs[worst]:.2e} ({worst})",
                      flush=True)
            del model
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return dict(benchmark="check_fast_paths", size=size, batch=s["batch"], n_max=T, machine=machine(device),
                rows=rows)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--n-max", type=int, default=None, help="sequence length (default: the size's N_max)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    device = torch.device(a.device)
    result = run(a.size, device, a.n_max)
    result["command"] = "python bench/check_fast_paths.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# fast path vs plain path, {a.size}: batch {result['batch']}, N_max {result['n_max']}, {device}")
    print_table(result["rows"], ["decoder", "units", "precision", "rel_err_y", "worst_rel_err_grad", "within_1e-4"])
    write_json(a.out or RESULTS / f"check_fast_paths-{a.size}-{device.type}.json", result)
    return result


if __name__ == "__main__":
    main()
