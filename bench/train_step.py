"""Training-step benchmark: forward + loss + backward + clipping + Adam, per decoder cell and path.

Compares, in ONE run and on one device, for each decoder cell:
  plain  - our step-by-step cell loop straight from the equations (the reference path)
  fast   - the input projections of all steps in one matmul, a minimal loop (the default)
  native - PyTorch's fused LSTM (cuDNN on a GPU), LSTM decoder with recurrent dropout off
and reports ms per step and the speed-up over plain as a ratio.

    python bench/train_step.py --size small            # seconds on a CPU (CI smoke test)
    python bench/train_step.py --size full --device cuda   # the issue's sizes: B 100, N_max 250, 512 and 2048
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, print_table, time_it, write_json  # noqa: E402

from sketchlib.config import HParams  # noqa: E402
from sketchlib.loss import total_loss  # noqa: E402
from sketchlib.model import SketchRNN  # noqa: E402

SIZES = {
    # name: (batch, N_max, encoder units, decoder sizes, N_z, M, hyper units, hyper embedding)
    "small": dict(batch=8, n_max=24, enc=32, decs=(64,), z=16, m=5, hyper=16, emb=8),
    "full": dict(batch=100, n_max=250, enc=256, decs=(512, 2048), z=128, m=20, hyper=256, emb=32),
}


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


def make_step(hp: HParams, device, fast: bool):
    torch.manual_seed(0)
    model = SketchRNN(hp).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    strokes, lengths = synthetic_batch(hp.batch_size, hp.max_seq_len, device)

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(strokes, lengths, fast=fast)
        loss = total_loss(out, strokes, lengths, kl_weight=0.5, kl_tolerance=0.2)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
        opt.step()

    return step


def run(size: str, device: torch.device, repeats: int) -> dict:
    s = SIZES[size]
    rows = []
    for dec_model in ("lstm", "layer_norm", "hyper"):
        for dec in s["decs"]:
            hp = HParams(max_seq_len=s["n_max"], batch_size=s["batch"], enc_rnn_size=s["enc"], dec_rnn_size=dec,
                         dec_model=dec_model, z_size=s["z"], num_mixture=s["m"], hyper_num_units=s["hyper"],
                         hyper_embedding_size=s["emb"])
            variants = [("plain", hp, False), ("fast", hp, True)]
            if dec_model == "lstm":
                variants.append(("native", hp.replace(use_recurrent_dropout=False), True))
            base = None
            for name, h, fast in variants:
                t = time_it(make_step(h, device, fast), device, warmup=1, repeats=repeats)
                base = base or t["median_ms"]
                rows.append(dict(decoder=dec_model, units=dec, path=name,
                                 recurrent_dropout=h.use_recurrent_dropout, ms_per_step=t["median_ms"],
                                 min_ms=t["min_ms"], speedup_vs_plain=base / t["median_ms"]))
    return dict(benchmark="train_step", size=size, dtype="float32", batch=s["batch"], n_max=s["n_max"],
                encoder_units=s["enc"], machine=machine(device), rows=rows)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/train_step-<size>-<device>.json)")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    result = run(a.size, device, a.repeats)
    result["command"] = "python bench/train_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# training step, {a.size}: batch {result['batch']}, N_max {result['n_max']}, {result['machine']['device']}")
    print_table(result["rows"], ["decoder", "units", "path", "ms_per_step", "speedup_vs_plain"])
    out = a.out or RESULTS / f"train_step-{a.size}-{device.type}.json"
    write_json(out, result)
    return result


if __name__ == "__main__":
    main()
