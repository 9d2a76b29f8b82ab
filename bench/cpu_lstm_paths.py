"""Which sequence path is fastest for a plain LSTM on this CPU: the reason behind ``fast.native.wants_native``.

Forward + backward of a whole SketchRNN (LSTM encoder and decoder, no recurrent dropout) on one
batch, three ways, alternating so that a busy moment of the machine hits all three alike:

* ``plain``: the teaching cells step by step (``with sketchlib.fast.enabled(False)``);
* ``fast loop``: our fused loop (input projections in one matmul, deferred recurrent gradient);
* ``native``: ``torch.nn.LSTM`` with our weights (``sketchlib.fast.native``), what the fast switch picks.

Besides wall time it records process CPU time, which a second job on the machine disturbs less.

    python bench/cpu_lstm_paths.py                 # batch 100, N_max 250, decoder 256 (the book's model size)
    python bench/cpu_lstm_paths.py --size small    # CI smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, print_table, write_json  # noqa: E402

from sketchlib import fast  # noqa: E402
from sketchlib.config import HParams  # noqa: E402
from sketchlib.fast import native  # noqa: E402
from sketchlib.nn.lstm import LSTMCell  # noqa: E402
from sketchlib.nn.model import SketchRNN  # noqa: E402

SIZES = {"small": dict(batch=8, n_max=24, dec=64, enc=32), "full": dict(batch=100, n_max=250, dec=256, enc=128)}


def paths():
    """name -> a context manager that makes the model take that path."""
    return {
        "plain": lambda: fast.enabled(False),
        "fast loop": lambda: mock.patch.object(native, "wants_native", lambda cells, x: False),
        "native": lambda: mock.patch.object(native, "wants_native", lambda cells, x: True),
    }


def run(size: str, repeats: int) -> list[dict]:
    s = SIZES[size]
    hp = HParams(max_seq_len=s["n_max"], dec_rnn_size=s["dec"], enc_rnn_size=s["enc"], batch_size=s["batch"],
                 use_recurrent_dropout=False)
    torch.manual_seed(0)
    model = SketchRNN(hp).train()
    x = torch.randn(s["batch"], s["n_max"] + 1, 5)
    lengths = torch.full((s["batch"],), s["n_max"])

    def step():
        model.zero_grad(set_to_none=True)
        model(x, lengths).y.sum().backward()

    wall = {name: [] for name in paths()}
    cpu = {name: [] for name in paths()}
    for name, ctx in paths().items():  # warm-up, one each
        with ctx():
            step()
    for _ in range(repeats):
        for name, ctx in paths().items():
            with ctx():
                t0, c0 = time.perf_counter(), time.process_time()
                step()
                wall[name].append((time.perf_counter() - t0) * 1e3)
                cpu[name].append((time.process_time() - c0) * 1e3)
    best = min(min(v) for v in wall.values())
    return [{"path": name, "batch": s["batch"], "n_max": s["n_max"], "dec": s["dec"], "wall_min_ms": min(wall[name]),
             "cpu_min_ms": min(cpu[name]), "vs_fastest": min(wall[name]) / best} for name in paths()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    rows = run(args.size, args.repeats)
    print(f"# plain LSTM, forward + backward, {args.size}: {torch.get_num_threads()} threads")
    print_table(rows, ["path", "batch", "n_max", "dec", "wall_min_ms", "cpu_min_ms", "vs_fastest"])
    chosen = "native" if native.wants_native([_plain_cell()], torch.zeros(1)) else "fast loop"  # what the switch picks
    out = args.out or RESULTS / f"cpu_lstm_paths-{args.size}.json"
    write_json(out, {"benchmark": "cpu_lstm_paths", "size": args.size, "rows": rows, "fast_switch_picks": chosen,
                     "machine": machine(torch.device("cpu")),
                     "command": "python bench/cpu_lstm_paths.py" + (f" --size {args.size}" if args.size != "full" else "")})
    return 0


def _plain_cell() -> LSTMCell:
    return LSTMCell(5, 8).eval()  # a plain LSTM cell without dropout, on the CPU


if __name__ == "__main__":
    sys.exit(main())
