"""Device choice: CUDA, then MPS, then CPU; SKETCHLIB_DEVICE overrides; unavailable requests fail clearly."""

import pytest
import torch

from sketchlib import device as devmod
from sketchlib.device import default_device, resolve_device


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("SKETCHLIB_DEVICE", raising=False)


def _fake(monkeypatch, cuda: bool, mps: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2 if cuda else 0)
    monkeypatch.setattr(devmod, "_mps_available", lambda: mps)


def test_cpu_fallback_on_this_machine(no_env, monkeypatch):
    _fake(monkeypatch, cuda=False, mps=False)
    assert default_device() == torch.device("cpu")


def test_order_cuda_then_mps(no_env, monkeypatch):
    _fake(monkeypatch, cuda=True, mps=True)
    assert default_device() == torch.device("cuda")
    _fake(monkeypatch, cuda=False, mps=True)
    assert default_device() == torch.device("mps")


def test_mps_probe_reads_torch_backends(no_env, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert default_device() == torch.device("mps")


def test_env_override(monkeypatch):
    _fake(monkeypatch, cuda=True, mps=True)
    monkeypatch.setenv("SKETCHLIB_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.setenv("SKETCHLIB_DEVICE", "cuda:1")
    assert default_device() == torch.device("cuda:1")


def test_unavailable_request_is_an_error(monkeypatch):
    _fake(monkeypatch, cuda=False, mps=False)
    monkeypatch.setenv("SKETCHLIB_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        default_device()
    with pytest.raises(ValueError, match="MPS is not available"):
        resolve_device("mps")
    with pytest.raises(ValueError, match="not a device"):
        resolve_device("gpu0")
    _fake(monkeypatch, cuda=True, mps=False)
    with pytest.raises(ValueError, match="only 2 CUDA"):
        resolve_device("cuda:5")
