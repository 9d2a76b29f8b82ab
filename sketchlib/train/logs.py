"""A run's log (``log.jsonl``), its loss-curve plot, and where it ran (hardware, commit).

``log.jsonl`` holds one JSON object per line, appended as training goes: ``{"split": "train", ...}``
(the mean over a logging window), ``{"split": "valid", ...}`` (a validation) and
``{"split": "warning", "message": ...}`` (something a reader of the run should know).
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path

import torch

from sketchlib.data.fileio import atomic_path
from sketchlib.device import cpu_model


def read_log(path) -> list[dict]:
    """The records of a ``log.jsonl``.

    A corrupt LAST line (a crash mid-append) is dropped with a warning; a corrupt line anywhere
    else is a ValueError naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    lines = path.read_text(errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            if i == len(lines) - 1:
                warnings.warn(f"{path}: dropping the truncated last line {i + 1} ({line[:40]!r}...)", stacklevel=2)
                break
            raise ValueError(f"{path}: line {i + 1} is not a JSON object: {line[:60]!r}") from None
        records.append(record)
    return records


def plot_losses(log_path, png_path) -> Path:
    """Train and valid L_R (left) and L_KL (right) against the step, from ``log.jsonl``, to a PNG."""
    # A bare Agg figure, no pyplot: nothing global changes (a notebook keeps its inline backend).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = read_log(log_path)
    fig = Figure(figsize=(10, 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("valid", "o-")):
        rec = [r for r in records if r.get("split") == split]
        if not rec:
            continue
        steps = [r["step"] for r in rec]
        axes[0].plot(steps, [r["L_R"] for r in rec], style, ms=3, label=f"{split} L_R")
        axes[1].plot(steps, [r["L_KL"] for r in rec], style, ms=3, label=f"{split} L_KL")
    axes[0].set_title("reconstruction loss L_R")
    axes[1].set_title("KL loss L_KL")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.9, wspace=0.2)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100)
    return Path(png_path)


def hardware(device: torch.device) -> str:
    """A one-line description of the machine (for manifests)."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    return (f"{device.type.upper()}: {cpu_model()}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}, "
            f"torch {torch.__version__}")


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the source checkout (+ ``-dirty`` when sketchlib/ has changes), else
    ``$SKETCHLIB_COMMIT`` (set it when running from a copy without ``.git``), else None."""
    root = Path(__file__).resolve().parents[2]
    fallback = os.environ.get("SKETCHLIB_COMMIT") or None  # a copy of the tree without .git (a rented GPU)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return fallback
        # the library's own files, untracked ones included (a new module not yet committed)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sketchlib", "pyproject.toml"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return fallback
