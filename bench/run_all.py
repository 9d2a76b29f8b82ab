"""Run every benchmark at one size and print their tables.

    python bench/run_all.py --size small                 # CI smoke test (tests/test_bench.py), ~1 min on a CPU
    python bench/run_all.py --size full --device cuda    # the issue's sizes on a GPU
    bash bench/gpu_session.sh                            # what the GPU results in bench/results came from
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_fast_paths  # noqa: E402
import sampling  # noqa: E402
import train_step  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=("small", "full"), default="small")
    p.add_argument("--device", default=None)
    p.add_argument("--out-dir", type=Path, default=None)
    a = p.parse_args(argv)
    extra = ["--device", a.device] if a.device else []
    for mod, name in ((train_step, "train_step"), (sampling, "sampling"), (check_fast_paths, "check_fast_paths")):
        args = ["--size", a.size, *extra]
        if a.out_dir:
            args += ["--out", str(a.out_dir / f"{name}-{a.size}.json")]
        mod.main(args)


if __name__ == "__main__":
    main()
