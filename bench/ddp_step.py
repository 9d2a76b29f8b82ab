"""DDP training update, LSTM 512 (B 100 per rank, N_max 250): eager DDP against the graphed distributed update.

Run under ``torchrun`` with one process per GPU (nccl) or, for a dry run, on the CPU (gloo: the
graphed row then runs the same three parts eagerly, ``graph=False``)::

    torchrun --standalone --nproc_per_node 2 bench/ddp_step.py --out ddp_step.json          # 2 GPUs
    torchrun --standalone --nproc_per_node 2 bench/ddp_step.py --size small --out /tmp/d.json  # CPU

Rows: ``ddp eager`` (``DistributedDataParallel`` and :func:`sketchlib.train.step.train_step`, what
training does under DDP by default) and ``ddp graph`` (:class:`sketchlib.fast.cuda_graph.GraphedTrainStep`
with ``distributed=True``: graph A, one all-reduce, graph B). Each row records ms per update
(median and best of the repeats, rank 0's clock) and whether both ranks hold the same weights after it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, sync, write_json  # noqa: E402
from train_step import synthetic_batch  # noqa: E402

from sketchlib.config import HParams  # noqa: E402
from sketchlib.fast.cuda_graph import GraphedTrainStep  # noqa: E402
from sketchlib.nn.model import SketchRNN  # noqa: E402
from sketchlib.train.step import make_optimizer, set_learning_rate, train_step  # noqa: E402

SIZES = {"small": dict(batch=8, n_max=24, enc=32, dec=64, z=16, m=5),
         "full": dict(batch=100, n_max=250, enc=256, dec=512, z=128, m=20)}


def same_on_all_ranks(model) -> bool:
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    other = flat.clone()
    dist.broadcast(other, src=0)
    ok = torch.tensor(float(torch.equal(flat, other)), device=flat.device)
    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


def time_updates(update, device, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        update()
    times = []
    for _ in range(repeats):
        sync(device)
        dist.barrier()
        t0 = time.perf_counter()
        update()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    cuda = torch.cuda.is_available()
    rank = int(os.environ.get("RANK", "0"))
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda" if cuda else "cpu")
    s = SIZES[a.size]
    hp = HParams(max_seq_len=s["n_max"], enc_rnn_size=s["enc"], dec_rnn_size=s["dec"], z_size=s["z"],
                 num_mixture=s["m"], batch_size=s["batch"])
    strokes, lengths = synthetic_batch(s["batch"], s["n_max"], device)
    rows = []
    for path in ("ddp eager", "ddp graph"):
        torch.manual_seed(0)
        model = SketchRNN(hp).to(device).train()
        if path == "ddp eager":
            opt = make_optimizer(model.parameters(), hp)
            ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)

            def update():
                set_learning_rate(opt, 1e-4)
                train_step(ddp, opt, hp, strokes, lengths, 0.5)
        else:
            opt = make_optimizer(model.parameters(), hp, capturable=cuda)
            step = GraphedTrainStep(model, opt, hp, s["batch"], device, graph=cuda, distributed=True, warmup=3)

            def update():
                step(strokes, lengths, 1e-4, 0.5)
        t0 = time.perf_counter()
        times = time_updates(update, device, warmup=2, repeats=a.repeats)
        rows.append(dict(path=path, decoder="lstm", units=s["dec"], world_size=dist.get_world_size(),
                         ms_per_update=sorted(times)[len(times) // 2], min_ms=min(times),
                         wall_s_with_warmup=time.perf_counter() - t0, ranks_equal=same_on_all_ranks(model)))
    if rank == 0:
        print(f"# DDP update, {a.size}: {dist.get_world_size()} ranks on {device}")
        print_table(rows, ["path", "decoder", "units", "world_size", "ms_per_update", "min_ms", "ranks_equal"])
        write_json(a.out, dict(benchmark="ddp_step", size=a.size, machine=machine(device), rows=rows,
                               command="torchrun --nproc_per_node N bench/ddp_step.py " + " ".join(
                                   argv if argv is not None else sys.argv[1:])))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
