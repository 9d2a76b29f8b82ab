"""HyperLSTM: equal to a step-by-step reference written here from the equations, reference init scales,
fast path equal to the plain path, recurrent dropout on the main cell only."""

import pytest
import torch

from sketchlib.nn.hyper_lstm import HyperLSTMCell
from sketchlib import fast as fast_paths


def on(fast: bool, fn, *args, **kw):
    """fn(*args, **kw) with the fast paths on or off (sketchlib.fast's one switch)."""
    with fast_paths.enabled(fast):
        return fn(*args, **kw)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


D, H, N, E, B, T = 5, 8, 6, 4, 3, 7
EPS = 1e-3


def perturbed(cell, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return cell


def ln(v, gain, shift):
    n = v.shape[-1]
    mean = v.sum(-1, keepdim=True) / n
    var = ((v - mean) ** 2).sum(-1, keepdim=True) / n
    return gain * (v - mean) / torch.sqrt(var + EPS) + shift


def ln_lstm_step(p, x, h, c, forget_bias=1.0):
    """The hypernetwork: a LayerNorm LSTM step, gate by gate (no dropout)."""
    n = h.shape[1]
    pre = {}
    for k, name in enumerate("igfo"):
        cols = slice(k * n, (k + 1) * n)
        a = x @ p["W_xh"][:, cols] + h @ p["W_hh"][:, cols]
        pre[name] = ln(a, p["gate_gain"][cols], p["gate_shift"][cols])
    c = torch.sigmoid(pre["f"] + forget_bias) * c + torch.sigmoid(pre["i"]) * torch.tanh(pre["g"])
    h = torch.tanh(ln(c, p["cell_gain"], p["cell_shift"])) * torch.sigmoid(pre["o"])
    return h, c


def reference_step(p, hyper, x, state, forget_bias=1.0, mask=None):
    """One HyperLSTM step from the equations, each of the 8 weight blocks handled on its own."""
    h, c, h_hat, c_hat = state
    h_hat, c_hat = ln_lstm_step(hyper, torch.cat([x, h], 1), h_hat, c_hat, forget_bias)
    pre = {}
    for k, name in enumerate("igfo"):
        cols = slice(k * H, (k + 1) * H)
        z_x = h_hat @ p["W_z"][k] + p["b_z"][k]  # embedding of block W_x,k
        z_h = h_hat @ p["W_z"][4 + k] + p["b_z"][4 + k]  # embedding of block W_h,k
        d_x = z_x @ p["W_d"][k]
        d_h = z_h @ p["W_d"][4 + k]
        beta = (h_hat @ p["W_zb"][k]) @ p["W_beta"][k]  # dynamic bias of block W_h,k
        a = d_x * (x @ p["W_xh"][:, cols]) + d_h * (h @ p["W_hh"][:, cols]) + beta + p["bias"][cols]
        pre[name] = ln(a, p["gate_gain"][cols], p["gate_shift"][cols])
    g = torch.tanh(pre["g"])
    if mask is not None:
        g = g * mask
    c = torch.sigmoid(pre["f"] + forget_bias) * c + torch.sigmoid(pre["i"]) * g
    h = torch.tanh(ln(c, p["cell_gain"], p["cell_shift"])) * torch.sigmoid(pre["o"])
    return h, (h, c, h_hat, c_hat)


def make(dtype=torch.float32, keep=1.0, seed=0):
    torch.manual_seed(seed)
    cell = HyperLSTMCell(D, H, dropout_keep=keep, hyper_num_units=N, hyper_embedding_size=E)
    return perturbed(cell, seed=seed).to(dtype)


@pytest.mark.parametrize("fast", [False, True])
def test_equals_reference_from_the_equations_float64(fast):
    cell = make(torch.float64, keep=0.8).train()
    x = torch.randn(B, T, D, dtype=torch.float64)
    state = tuple(torch.randn(B, n, dtype=torch.float64) for n in (H, H, N, N))
    masks = cell.dropout_masks(T, B, x)
    out, final = on(fast, cell.sequence, x, state, masks=masks)
    p = {k: v for k, v in cell.named_parameters() if not k.startswith("hyper_cell.")}
    hyper = dict(cell.hyper_cell.named_parameters())
    outs, s = [], state
    for t in range(T):
        h, s = reference_step(p, hyper, x[:, t], s, mask=masks[t])
        outs.append(h)
    out_ref = torch.stack(outs, 1)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(final, s):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    params = list(cell.parameters())
    g1 = torch.autograd.grad(out.sum() + final[1].sum(), params)
    g2 = torch.autograd.grad(out_ref.sum() + s[1].sum(), params)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fast_path_equals_plain_path_float32():
    cell = make(keep=0.7, seed=1).train()
    x = torch.randn(B, T, D)
    masks = cell.dropout_masks(T, B, x)
    state = tuple(torch.randn(B, n) for n in (H, H, N, N))
    results = []
    for fast in (False, True):
        cell.zero_grad()
        out, final = on(fast, cell.sequence, x, state, masks=masks)
        (out.sin().sum() + final[1].sum() + final[3].sum()).backward()
        results.append((out, final, [p.grad.clone() for p in cell.parameters()]))
    (o1, s1, g1), (o2, s2, g2) = results
    torch.testing.assert_close(o1, o2, rtol=1e-5, atol=1e-5)
    for a, b in zip(s1, s2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_starts_with_the_reference_scales():
    """At init every block scale d_k is exactly 0.1 and every dynamic bias β_k is 0, whatever the input."""
    torch.manual_seed(2)
    cell = HyperLSTMCell(D, H, hyper_num_units=N, hyper_embedding_size=E).eval()
    tr = cell.trace(3 * torch.randn(B, T, D))
    assert tr["d"].shape == (T, B, 8, H) and tr["beta"].shape == (T, B, 4, H)
    torch.testing.assert_close(tr["d"], torch.full_like(tr["d"], 0.1))
    assert torch.count_nonzero(tr["beta"]) == 0
    assert torch.count_nonzero(cell.W_z) == 0 and torch.all(cell.b_z == 1)
    assert torch.all(cell.W_d == 0.1 / E) and torch.count_nonzero(cell.W_beta) == 0
    assert torch.count_nonzero(cell.bias) == 0


def test_reference_initialisation_statistics():
    torch.manual_seed(3)
    cell = HyperLSTMCell(D, 32, hyper_num_units=256, hyper_embedding_size=32)
    assert abs(cell.W_zb.std().item() - 0.01) < 0.001  # N(0, 0.01)
    for block in cell.W_hh.detach().split(32, dim=1):
        torch.testing.assert_close(block.t() @ block, torch.eye(32), atol=1e-5, rtol=0)
    # the hypernetwork is a LayerNorm LSTM reading [x ; h]
    assert cell.hyper_cell.W_xh.shape == (D + 32, 4 * 256)


def test_parameter_count_follows_the_equations():
    cell = HyperLSTMCell(D, H, hyper_num_units=N, hyper_embedding_size=E)
    hyper = (D + H) * 4 * N + N * 4 * N + 2 * 4 * N + 2 * N  # LayerNorm LSTM over [x ; h]
    main = D * 4 * H + H * 4 * H + 4 * H + 2 * 4 * H + 2 * H  # W_x, W_h, b, gate LN, cell LN
    heads = 8 * (N * E + E) + 8 * E * H + 4 * N * E + 4 * E * H  # z_k, d_k, and β_k of the 4 W_h blocks
    assert sum(p.numel() for p in cell.parameters()) == hyper + main + heads


def test_state_layout():
    cell = HyperLSTMCell(D, H, hyper_num_units=N, hyper_embedding_size=E)
    assert cell.state_size == 2 * H + 2 * N
    v = torch.arange(2 * (2 * H + 2 * N), dtype=torch.float32).view(2, -1)
    h, c, h_hat, c_hat = cell.state_from_vector(v)
    assert h.shape == c.shape == (2, H) and h_hat.shape == c_hat.shape == (2, N)
    torch.testing.assert_close(torch.cat([h, c, h_hat, c_hat], 1), v)
    assert [s.shape for s in cell.zero_state(3)] == [(3, H), (3, H), (3, N), (3, N)]


def test_dropout_on_main_cell_only_and_not_in_eval():
    cell = make(keep=0.5, seed=4)
    assert cell.hyper_cell.dropout_keep == 1.0  # the reference's hyper_use_recurrent_dropout=False
    x = torch.randn(B, T, D)
    no_drop = HyperLSTMCell(D, H, dropout_keep=1.0, hyper_num_units=N, hyper_embedding_size=E)
    no_drop.load_state_dict(cell.state_dict())
    expected = on(False, no_drop.train().sequence, x)[0]  # keep 1: no dropout even in training
    cell.eval()
    for fast in (False, True):
        torch.testing.assert_close(on(fast, cell.sequence, x)[0], expected)
    cell.train()
    masks = cell.dropout_masks(T, B, x)
    assert masks.shape == (T, B, H)
    assert all(not torch.equal(masks[t], masks[t + 1]) for t in range(T - 1))
    assert not torch.allclose(cell.sequence(x)[0], expected)


def test_trace_matches_sequence():
    cell = make(seed=5).eval()
    x = torch.randn(B, T, D)
    tr = cell.trace(x)
    assert {"i", "f", "g", "o", "c", "h", "h_hat", "d", "beta"} <= set(tr)
    assert all(tr[k].shape == (T, B, H) for k in "ifgoch")
    torch.testing.assert_close(tr["h"], cell.sequence(x)[0].transpose(0, 1))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_merged_recurrent_product_equals_plain_values_and_gradients(dtype, tol, monkeypatch):
    """fast.hyper with ONE recurrent product per step ([h, ĥ] times the block matrix) and with two: both equal
    the plain loop in outputs and in every parameter's and input's gradient (1e-5 float64, 1e-4 float32 relative)."""
    from sketchlib.fast import hyper

    cell = make(dtype, keep=0.8).train()
    g = torch.Generator().manual_seed(7)
    x = torch.randn(B, T, D, dtype=dtype, generator=g)
    state = tuple(torch.randn(B, n, dtype=dtype, generator=g) for n in (H, H, N, N))
    masks = cell.dropout_masks(T, B, x)
    weights = torch.randn(B, T, H, dtype=dtype, generator=g)

    def run(fast):
        cell.zero_grad()
        xs = x.clone().requires_grad_(True)
        out, final = on(fast, cell.sequence, xs, state, masks=masks)
        ((out * weights).sum() + sum((f * f).sum() for f in final)).backward()
        return [out, *final, xs.grad] + [p.grad.clone() for p in cell.parameters()]

    want = run(False)
    for merge in (True, False):
        monkeypatch.setattr(hyper, "MERGE_RECURRENT", merge)
        for a, b in zip(run(True), want):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol * max(1.0, b.abs().max().item()))
