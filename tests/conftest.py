"""Shared fixtures. ``shared_data`` is the real public sketch data kept beside the repository."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# bench/live_demo.py holds the local HTTP server (and Chromium) helpers the benchmarks and the tests share.
sys.path.insert(0, str(ROOT / "bench"))
from live_demo import local_http_server  # noqa: E402,F401  (the tests import it from here)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data. Skips (with the reason) in a user's clone where it is absent; fails in CI."""
    if not (SHARED_DATA / "omniglot.npz").exists():
        msg = f"real test data not found at {SHARED_DATA} (it ships beside the repository in CI only)"
        if in_ci():
            pytest.fail(msg + "; CI=true, so this is an error")
        pytest.skip(msg)
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module: tiny tensors run fastest on one, and much faster on a busy 2-core CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
