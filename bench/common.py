"""Shared helpers for the benchmark scripts: the machine record, timing, the table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from sketchlib.device import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"


def machine(device: torch.device) -> dict:
    """What ran the benchmark: enough to tell two result files apart."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(fn, device: torch.device, *, warmup: int = 1, repeats: int = 3) -> dict:
    """Median and min wall time of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": repeats}


def print_table(rows: list[dict], columns: list[str]) -> str:
    """Print rows as a Markdown table (and return it)."""
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            if isinstance(v, float):
                cells.append(f"{v:.2e}" if 0 < abs(v) < 0.05 else f"{v:.1f}")
            else:
                cells.append("" if v is None else str(v))
        body.append("| " + " | ".join(cells) + " |")
    text = "\n".join([head, rule, *body])
    print(text)
    return text


def write_json(path: Path, payload: dict) -> Path:
    from sketchlib.data.fileio import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path
