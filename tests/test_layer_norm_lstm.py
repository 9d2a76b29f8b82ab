"""LayerNorm LSTM: equal to a step-by-step reference written here from the equations; fast == plain."""

import pytest
import torch

from sketchlib.nn.layer_norm_lstm import LayerNormLSTMCell
from sketchlib import fast as fast_paths


def on(fast: bool, fn, *args, **kw):
    """fn(*args, **kw) with the fast paths on or off (sketchlib.fast's one switch)."""
    with fast_paths.enabled(fast):
        return fn(*args, **kw)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


D, H, B, T = 5, 8, 3, 9
EPS = 1e-3


def perturbed(cell, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return cell


def ln(v, gain, shift):
    """Layer norm over the units, written out: γ (v - mean) / sqrt(var + eps) + β."""
    n = v.shape[-1]
    mean = v.sum(-1, keepdim=True) / n
    var = ((v - mean) ** 2).sum(-1, keepdim=True) / n
    return gain * (v - mean) / torch.sqrt(var + EPS) + shift


def reference_step(p, x, h, c, forget_bias=1.0, mask=None):
    """One LayerNorm LSTM step from the equations, one gate at a time, no fused anything."""
    Hs = h.shape[1]
    pre = {}
    for k, name in enumerate("igfo"):  # reference gate order i, g, f, o
        cols = slice(k * Hs, (k + 1) * Hs)
        a = x @ p["W_xh"][:, cols] + h @ p["W_hh"][:, cols]  # no bias
        pre[name] = ln(a, p["gate_gain"][cols], p["gate_shift"][cols])
    g = torch.tanh(pre["g"])
    if mask is not None:
        g = g * mask
    c_new = torch.sigmoid(pre["f"] + forget_bias) * c + torch.sigmoid(pre["i"]) * g
    h_new = torch.tanh(ln(c_new, p["cell_gain"], p["cell_shift"])) * torch.sigmoid(pre["o"])
    return h_new, c_new


def reference_sequence(p, x, h, c, masks=None):
    out = []
    for t in range(x.shape[1]):
        h, c = reference_step(p, x[:, t], h, c, mask=None if masks is None else masks[t])
        out.append(h)
    return torch.stack(out, 1), (h, c)


@pytest.mark.parametrize("fast", [False, True])
def test_equals_reference_from_the_equations_float64(fast):
    torch.manual_seed(0)
    cell = perturbed(LayerNormLSTMCell(D, H, dropout_keep=0.8)).double().train()
    x = torch.randn(B, T, D, dtype=torch.float64)
    h0, c0 = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    masks = cell.dropout_masks(T, B, x)
    out, (h, c) = on(fast, cell.sequence, x, (h0, c0), masks=masks)
    params = dict(cell.named_parameters())
    out_ref, (h_ref, c_ref) = reference_sequence(params, x, h0, c0, masks)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c, c_ref, rtol=1e-12, atol=1e-12)
    # gradients agree too
    g1 = torch.autograd.grad(out.sum() + c.sum(), list(params.values()))
    g2 = torch.autograd.grad(out_ref.sum() + c_ref.sum(), list(params.values()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fast_path_equals_plain_path_float32():
    torch.manual_seed(1)
    cell = perturbed(LayerNormLSTMCell(D, H, dropout_keep=0.7)).train()
    x = torch.randn(B, T, D)
    masks = cell.dropout_masks(T, B, x)
    state = (torch.randn(B, H), torch.randn(B, H))
    results = []
    for fast in (False, True):
        cell.zero_grad()
        out, (h, c) = on(fast, cell.sequence, x, state, masks=masks)
        (out.sin().sum() + c.sum()).backward()
        results.append((out, c, [p.grad.clone() for p in cell.parameters()]))
    (o1, c1, g1), (o2, c2, g2) = results
    torch.testing.assert_close(o1, o2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(c1, c2, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_reference_initialisation_and_no_gate_bias():
    torch.manual_seed(2)
    cell = LayerNormLSTMCell(D, 16)
    names = dict(cell.named_parameters())
    assert set(names) == {"W_xh", "W_hh", "gate_gain", "gate_shift", "cell_gain", "cell_shift"}
    assert torch.all(cell.gate_gain == 1) and torch.all(cell.cell_gain == 1)
    assert torch.count_nonzero(cell.gate_shift) == 0 and torch.count_nonzero(cell.cell_shift) == 0
    for block in cell.W_hh.detach().split(16, dim=1):
        torch.testing.assert_close(block.t() @ block, torch.eye(16), atol=1e-5, rtol=0)
    assert sum(p.numel() for p in cell.parameters()) == D * 64 + 16 * 64 + 2 * 64 + 2 * 16


def test_each_gate_is_normalised_on_its_own():
    """With unit gains and zero shifts, every gate pre-activation has mean 0 and variance var/(var+eps)."""
    torch.manual_seed(3)
    cell = LayerNormLSTMCell(D, 16).eval()
    x, h, c = 10 * torch.randn(B, D), torch.randn(B, 16), torch.randn(B, 16)
    _, _, gates = cell(x, (h, c), return_gates=True)
    for name in ("i", "o"):
        a = torch.logit(gates[name].double())  # undo the sigmoid
        assert a.mean(-1).abs().max() < 1e-4
        assert (a.var(-1, unbiased=False) - 1).abs().max() < 1e-2


def test_dropout_keep_one_and_eval_mode_mean_no_dropout():
    torch.manual_seed(4)
    x = torch.randn(B, T, D)
    cell = perturbed(LayerNormLSTMCell(D, H, dropout_keep=0.5))
    no_drop = LayerNormLSTMCell(D, H, dropout_keep=1.0)
    no_drop.load_state_dict(cell.state_dict())
    expected = on(False, no_drop.eval().sequence, x)[0]
    torch.testing.assert_close(on(True, no_drop.train().sequence, x)[0], expected)
    assert no_drop.dropout_masks(T, B, x) is None
    cell.eval()
    for fast in (False, True):
        torch.testing.assert_close(on(fast, cell.sequence, x)[0], expected)
    cell.train()
    masks = cell.dropout_masks(T, B, x)
    assert all(not torch.equal(masks[t], masks[t + 1]) for t in range(T - 1))
    assert not torch.allclose(cell.sequence(x)[0], expected)


def test_trace_shapes_and_consistency():
    torch.manual_seed(5)
    cell = perturbed(LayerNormLSTMCell(D, H)).eval()
    x = torch.randn(B, T, D)
    tr = cell.trace(x)
    assert set(tr) == {"i", "f", "g", "o", "c", "h"}
    assert all(v.shape == (T, B, H) for v in tr.values())
    torch.testing.assert_close(tr["h"], cell.sequence(x)[0].transpose(0, 1))
    c_prev = torch.cat([torch.zeros(1, B, H), tr["c"][:-1]])
    torch.testing.assert_close(tr["c"], tr["f"] * c_prev + tr["i"] * tr["g"])
