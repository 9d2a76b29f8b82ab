"""Which device to run on: CUDA, then Apple's MPS, then the CPU.

The environment variable ``SKETCHLIB_DEVICE`` (e.g. ``cpu``, ``cuda``, ``cuda:1``, ``mps``)
overrides the automatic choice; asking for a device that is not available is an error rather
than a silent fall-back, so a job meant for a GPU never trains for days on a CPU by mistake.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

ENV_VAR = "SKETCHLIB_DEVICE"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str | torch.device | None = None) -> torch.device:
    """Turn ``spec`` (None = automatic) into an available ``torch.device``; ValueError if it is unavailable."""
    if spec is None:
        return default_device()
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"not a device: {spec!r} ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type == "mps":
        if not _mps_available():
            raise ValueError(f"device {spec!r} requested but MPS is not available")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {spec!r}: use cpu, cuda[:N] or mps")
    return dev


def default_device() -> torch.device:
    """``$SKETCHLIB_DEVICE`` if set, else CUDA if available, else MPS if available, else CPU."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return resolve_device(env)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), for manifests and benchmark records."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
