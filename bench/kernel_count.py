"""Kernels per time step of the HyperLSTM's fast sequence, forward and backward, counted by torch.profiler.

For each setting of ``sketchlib.fast.hyper.MERGE_RECURRENT`` (one recurrent product a step on the
block matrix, or two) it runs the fast ``sequence`` over T steps and its backward under the
profiler and divides by T. On a GPU it counts the CUDA kernels launched; on a CPU, where there are
no kernels, the aten operations that compute something (the outermost ones, i.e. not those an aten
operation calls inside itself; views and other metadata-only operations left out), which is what each becomes on a GPU without fusion.
Compilation (``torch.compile`` fusion) is off in both, so the counts compare the recurrent products.

    python bench/kernel_count.py                       # CPU, a small cell
    python bench/kernel_count.py --device cuda --size full
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, print_table, write_json  # noqa: E402

from sketchlib import fast as fast_paths  # noqa: E402
from sketchlib.fast import hyper  # noqa: E402
from sketchlib.nn.hyper_lstm import HyperLSTMCell  # noqa: E402

SIZES = {"small": dict(B=8, T=20, D=133, H=64, N=16, E=8), "full": dict(B=100, T=250, D=133, H=2048, N=256, E=32)}
#: aten operations that only make a new view or read metadata: no kernel on a GPU.
VIEWS = {"aten::view", "aten::transpose", "aten::unbind", "aten::select", "aten::slice", "aten::as_strided",
         "aten::expand", "aten::split", "aten::split_with_sizes", "aten::t", "aten::detach", "aten::alias",
         "aten::reshape", "aten::_reshape_alias", "aten::squeeze", "aten::unsqueeze", "aten::permute",
         "aten::narrow", "aten::empty", "aten::empty_strided", "aten::resize_", "aten::lift_fresh",
         "aten::_unsafe_view", "aten::chunk", "aten::unflatten", "aten::flatten", "aten::contiguous",
         "aten::result_type", "aten::is_nonzero", "aten::item", "aten::_local_scalar_dense", "detach",
         "aten::numpy_T", "aten::view_as", "aten::expand_as", "aten::empty_like", "aten::new_empty"}


def _outermost_aten(e) -> bool:
    """An aten operation not called by another aten operation (its parents are Python or autograd nodes)."""
    if not e.name.startswith("aten::"):
        return False
    parent = e.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return True


def count(cell: HyperLSTMCell, x: torch.Tensor, device: torch.device) -> dict:
    """Kernels (GPU) or computing aten leaf operations (CPU) per step: forward, backward."""
    T = x.shape[1]
    result = {}
    for phase in ("forward", "backward"):
        out = None
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        if phase == "backward":
            out, _ = cell.sequence(x)
        with profile(activities=acts) as prof:
            if phase == "forward":
                cell.sequence(x)
            else:
                out.sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        events = prof.events()
        if device.type == "cuda":
            n = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
        else:
            n = sum(1 for e in events if _outermost_aten(e) and e.name not in VIEWS)
        result[phase] = n / T
    return result


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    device, s = torch.device(a.device), SIZES[a.size]
    torch.manual_seed(0)
    cell = HyperLSTMCell(s["D"], s["H"], hyper_num_units=s["N"], hyper_embedding_size=s["E"], dropout_keep=0.9)
    cell = cell.to(device).train()
    x = torch.randn(s["B"], s["T"], s["D"], device=device)
    rows, old = [], hyper.MERGE_RECURRENT
    try:
        with fast_paths.enabled(True, compile=False):
            for merge in (False, True):
                hyper.MERGE_RECURRENT = merge
                cell.sequence(x)[0].sum().backward()  # warm-up
                c = count(cell, x, device)
                rows.append(dict(cell="hyper", units=s["H"], merged_recurrent=merge, what=(
                    "CUDA kernels" if device.type == "cuda" else "aten ops"), forward_per_step=c["forward"],
                    backward_per_step=c["backward"], total_per_step=c["forward"] + c["backward"]))
    finally:
        hyper.MERGE_RECURRENT = old
    result = dict(benchmark="kernel_count", size=a.size, machine=machine(device), rows=rows,
                  command="python bench/kernel_count.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(f"# HyperLSTM fast sequence, {a.size}, {device}: per time step")
    print_table(rows, ["cell", "units", "merged_recurrent", "what", "forward_per_step", "backward_per_step",
                       "total_per_step"])
    write_json(a.out or RESULTS / f"kernel_count-{a.size}-{device.type}.json", result)
    return result


if __name__ == "__main__":
    main()
