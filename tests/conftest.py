"""Shared fixtures. ``shared_data`` is the real public sketch data kept beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
