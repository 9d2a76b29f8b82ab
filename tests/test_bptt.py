"""The recurrent weight's gradient formed in one product (sketchlib.fast.bptt) equals autograd's step-by-step sum."""

import pytest
import torch

from sketchlib.fast.bptt import RecurrentWeight

T, B, H = 6, 3, 4


def _loop(W, pre, h0, deferred: bool, used_steps=None):
    """A small LSTM-like recurrence; the loss reads the outputs of ``used_steps`` (all by default)."""
    rw = RecurrentWeight(W)
    if not deferred:
        rw.deferred = False
    h, outs = h0, []
    for t, p in enumerate(pre.unbind(0)):
        a = rw.step(p, h, t)
        h = torch.tanh(a[..., :H]) * torch.sigmoid(a[..., H:])
        outs.append(h)
    used = outs if used_steps is None else [outs[t] for t in used_steps]
    return sum((o * torch.arange(1, o.shape[-1] + 1, dtype=o.dtype)).pow(2).sum() for o in used)


@pytest.mark.parametrize("K", [None, 2])
@pytest.mark.parametrize("used_steps", [None, [0, 2]])
def test_deferred_gradient_equals_autograd(K, used_steps):
    g = torch.Generator().manual_seed(0)
    lead = () if K is None else (K,)
    W = torch.randn(*lead, H, 2 * H, generator=g, dtype=torch.float64, requires_grad=True)
    pre = torch.randn(T, *lead, B, 2 * H, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(*lead, B, H, generator=g, dtype=torch.float64, requires_grad=True)
    ref = torch.autograd.grad(_loop(W, pre, h0, False, used_steps), [W, pre, h0])
    got = torch.autograd.grad(_loop(W, pre, h0, True, used_steps), [W, pre, h0])
    for a, b in zip(ref, got):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    assert ref[0].abs().sum() > 0


def test_without_pre_and_twice_with_retain_graph():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(H, 2 * H, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, generator=g, dtype=torch.float64)

    def loss(deferred):
        rw = RecurrentWeight(W)
        rw.deferred = rw.deferred and deferred
        h = h0
        for t in range(T):
            h = torch.tanh(rw.step(None, h, t)[:, :H])
        return h.sum()

    ref = torch.autograd.grad(loss(False), W)[0]
    out = loss(True)
    first = torch.autograd.grad(out, W, retain_graph=True)[0]
    second = torch.autograd.grad(out, W)[0]  # the kept (h, da) pairs were cleared and filled again
    torch.testing.assert_close(first, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(second, ref, rtol=1e-12, atol=1e-12)


def test_plain_products_outside_autograd():
    W = torch.randn(H, 2 * H, requires_grad=True)
    with torch.no_grad():
        rw = RecurrentWeight(W)
        assert not rw.deferred
        out = rw.step(torch.zeros(B, 2 * H), torch.ones(B, H), 0)
    torch.testing.assert_close(out, torch.ones(B, H) @ W.detach())
    assert not RecurrentWeight(W.detach()).deferred


def test_defer_off_falls_back_to_autograd(monkeypatch):
    """``RecurrentWeight.defer = False`` (what the benchmark's "-nodefer" row sets) leaves the sum to autograd."""
    W = torch.randn(H, 2 * H, requires_grad=True)
    assert RecurrentWeight(W).deferred
    monkeypatch.setattr(RecurrentWeight, "defer", False)
    rw = RecurrentWeight(W)
    assert not rw.deferred and not hasattr(rw, "token")
    rw.step(None, torch.randn(B, H), 0).sum().backward()
    assert W.grad is not None and not rw.da  # the gradient came from autograd, nothing was filed
