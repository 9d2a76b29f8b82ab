"""Time a cold build of the whole executed book (no jupyter cache), as `make book` runs it.

    python bench/book_build.py          # copies the repository to a temp dir, builds there, records the time
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=RESULTS / "book_build-cpu.json")
    a = p.parse_args(argv)
    jb = Path(sys.executable).with_name("jupyter-book")
    # A sibling of the checkout, so the chapters find ../shared/data as they do in CI.
    with tempfile.TemporaryDirectory(dir=ROOT.parent, prefix=".book-build-") as tmp:
        dst = Path(tmp)
        shutil.copytree(ROOT, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".venv", "_build", "runs", ".git", "__pycache__"))
        t0 = time.perf_counter()
        proc = subprocess.run([str(jb), "build", str(dst), "-W", "-n", "--keep-going"], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout[-4000:], proc.stderr[-4000:])
            raise SystemExit(f"book build failed ({proc.returncode})")
        pages = len(list((dst / "_build" / "html" / "book").glob("*.html")))
    result = dict(benchmark="book_build", dtype="float32", seconds=seconds, pages=pages,
                  command="python bench/book_build.py", machine=machine(torch.device("cpu")))
    print(f"| cold book build | {seconds:.0f} s | {pages} pages |")
    write_json(a.out, result)
    return result


if __name__ == "__main__":
    main()
