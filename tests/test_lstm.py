"""The reference LSTM cell: equal to torch.nn.LSTM, fast path equal to the plain path, recurrent dropout."""

import math

import pytest
import torch
from torch import nn

from sketchlib.fast import native
from sketchlib.nn.lstm import LSTMCell
from sketchlib import fast as fast_paths


def on(fast: bool, fn, *args, **kw):
    """fn(*args, **kw) with the fast paths on or off (sketchlib.fast's one switch)."""
    with fast_paths.enabled(fast):
        return fn(*args, **kw)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


D, H, B, T = 5, 8, 3, 9


def perturbed(cell, scale=0.3, seed=0):
    """Move every parameter off its init (biases included) so every term of the equations matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return cell


def torch_lstm_from(cell: LSTMCell) -> nn.LSTM:
    """nn.LSTM with our weights, mapped by hand: gate order (i, g, f, o) -> (i, f, g, o), x@W -> W@x,
    forget bias (added inside the sigmoid) -> bias of the f rows."""
    ref = nn.LSTM(cell.input_size, cell.hidden_size, batch_first=True).to(cell.W_xh.dtype)
    Hs = cell.hidden_size

    def rows(w):  # w is [*, 4H] in our order; return [4H, *] in torch's order
        i, g, f, o = (w[:, k * Hs:(k + 1) * Hs] for k in range(4))
        return torch.cat([i.t(), f.t(), g.t(), o.t()], dim=0)

    with torch.no_grad():
        ref.weight_ih_l0.copy_(rows(cell.W_xh))
        ref.weight_hh_l0.copy_(rows(cell.W_hh))
        b = cell.bias.detach().clone()
        b[2 * Hs:3 * Hs] += cell.forget_bias
        ref.bias_ih_l0.copy_(rows(b[None])[:, 0])
        ref.bias_hh_l0.zero_()
    return ref


def grads_in_our_layout(ref: nn.LSTM, Hs: int):
    """Gradients of nn.LSTM's parameters mapped back to (W_xh, W_hh, bias) in our layout."""
    def back(w):  # [4H, *] torch order -> [*, 4H] our order
        i, f, g, o = w.chunk(4, dim=0)
        return torch.cat([i, g, f, o], dim=0).t()

    torch.testing.assert_close(ref.bias_ih_l0.grad, ref.bias_hh_l0.grad)  # both enter as a plain sum
    return back(ref.weight_ih_l0.grad), back(ref.weight_hh_l0.grad), back(ref.bias_ih_l0.grad[:, None])[0]


@pytest.mark.parametrize("fast", [False, True])
def test_equals_torch_lstm_outputs_and_gradients_float64(fast):
    torch.manual_seed(0)
    cell = perturbed(LSTMCell(D, H)).double()
    ref = torch_lstm_from(cell)
    x = torch.randn(B, T, D, dtype=torch.float64)
    h0, c0 = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()

    out, (h, c) = on(fast, cell.sequence, x1, (h0, c0))
    out_ref, (h_ref, c_ref) = ref(x2, (h0[None], c0[None]))
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c, c_ref[0], rtol=1e-12, atol=1e-12)

    weights = torch.randn_like(out)  # a loss that touches every output differently
    ((out * weights).sum() + c.sum()).backward()
    ((out_ref * weights).sum() + c_ref.sum()).backward()
    for ours, theirs in zip((cell.W_xh.grad, cell.W_hh.grad, cell.bias.grad), grads_in_our_layout(ref, H)):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)


def test_native_fast_path_equals_plain_path_outputs_and_grads():
    torch.manual_seed(1)
    cell = perturbed(LSTMCell(D, H)).eval()  # no dropout: PyTorch's kernel applies (chosen on a GPU only)
    x = torch.randn(B, T, D)
    state = (torch.randn(B, H), torch.randn(B, H))
    results = []
    for run in (lambda: on(False, cell.sequence, x, state), lambda: native.native_sequence(cell, x, state)):
        cell.zero_grad()
        out, (h, c) = run()
        (out.pow(2).sum() + c.sum()).backward()
        results.append((out, c, [p.grad.clone() for p in cell.parameters()]))
    (o1, c1, g1), (o2, c2, g2) = results
    torch.testing.assert_close(o1, o2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(c1, c2, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


class _OnGPU:
    """Stands in for a CUDA tensor where only ``is_cuda`` is read."""
    is_cuda = True


def test_native_path_is_taken_without_dropout_on_either_device(monkeypatch):
    cell = LSTMCell(D, H, dropout_keep=0.9).eval()
    calls = []
    original = native.native_sequence
    monkeypatch.setattr(native, "native_sequence", lambda *a: calls.append(1) or original(*a))
    cell.sequence(torch.randn(B, T, D))
    assert calls == [1]  # torch.nn.LSTM on the CPU too (bench/cpu_lstm_paths.py: 1.3x faster than our fused loop)
    assert native.wants_native([cell], _OnGPU())
    cell.train()  # dropout on: the native kernel cannot drop tanh(g), so the loop runs
    assert not native.wants_native([cell], _OnGPU())
    assert not native.wants_native([cell], torch.zeros(1))


def test_fast_loop_with_dropout_equals_plain_path_float32():
    torch.manual_seed(2)
    cell = perturbed(LSTMCell(D, H, dropout_keep=0.7)).train()
    x = torch.randn(B, T, D)
    masks = cell.dropout_masks(T, B, x)
    assert masks is not None
    results = []
    for fast in (False, True):
        cell.zero_grad()
        out, (h, c) = on(fast, cell.sequence, x, masks=masks)
        (out.sin().sum() + c.sum()).backward()
        results.append((out, [p.grad.clone() for p in cell.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_one_step_follows_the_equations():
    torch.manual_seed(3)
    cell = perturbed(LSTMCell(D, H, forget_bias=1.0))
    x, h, c = torch.randn(B, D), torch.randn(B, H), torch.randn(B, H)
    h1, (h1_, c1), gates = cell(x, (h, c), return_gates=True)
    a = torch.cat([x, h], 1) @ torch.cat([cell.W_xh, cell.W_hh], 0) + cell.bias  # reference: one matmul
    i, g, f, o = a.split(H, dim=1)
    f_expected = torch.sigmoid(f + 1.0)
    c_expected = c * f_expected + torch.sigmoid(i) * torch.tanh(g)
    torch.testing.assert_close(c1, c_expected)
    torch.testing.assert_close(h1, torch.tanh(c_expected) * torch.sigmoid(o))
    assert h1 is h1_
    torch.testing.assert_close(gates["f"], f_expected)
    torch.testing.assert_close(gates["g"], torch.tanh(g))
    assert set(gates) == {"i", "f", "g", "o", "c", "h"}


def test_keep_prob_one_is_no_dropout():
    torch.manual_seed(4)
    cell = perturbed(LSTMCell(D, H, dropout_keep=1.0)).train()
    assert cell.dropout_masks(T, B, torch.zeros(1)) is None
    x = torch.randn(B, T, D)
    out_train, _ = on(False, cell.sequence, x)
    out_eval, _ = on(False, cell.eval().sequence, x)
    torch.testing.assert_close(out_train, out_eval)


def test_eval_mode_has_no_dropout():
    torch.manual_seed(5)
    cell = perturbed(LSTMCell(D, H, dropout_keep=0.5))
    plain = LSTMCell(D, H, dropout_keep=1.0)
    plain.load_state_dict(cell.state_dict())
    x = torch.randn(B, T, D)
    cell.eval()
    for fast in (False, True):
        torch.testing.assert_close(on(fast, cell.sequence, x)[0], on(False, plain.sequence, x)[0])


def test_recurrent_dropout_masks_new_each_step_and_scaled():
    torch.manual_seed(6)
    cell = LSTMCell(D, 64, dropout_keep=0.75).train()
    masks = cell.dropout_masks(200, 16, torch.zeros(1))  # [T, B, H]
    assert masks.shape == (200, 16, 64)
    torch.testing.assert_close(masks.unique(), torch.tensor([0.0, 1 / 0.75]))
    assert abs((masks > 0).float().mean().item() - 0.75) < 0.01
    assert abs(masks.mean().item() - 1.0) < 0.02  # inverted dropout keeps the expectation
    # a new mask at every step
    assert all(not torch.equal(masks[t], masks[t + 1]) for t in range(199))
    # and the plain step draws a fresh mask per call too: same input and state, different outputs
    x, state = torch.randn(16, D), (torch.zeros(16, 64), torch.zeros(16, 64))
    assert not torch.equal(cell(x, state)[0], cell(x, state)[0])


def test_dropout_acts_on_the_candidate_only():
    """A zero mask removes i ⊙ tanh(g): the cell only forgets, c_i = f ⊙ c_{i-1} (memory is not lost)."""
    torch.manual_seed(7)
    cell = perturbed(LSTMCell(D, H, dropout_keep=0.5)).train()
    x, h, c = torch.randn(B, D), torch.randn(B, H), torch.randn(B, H)
    h1, (_, c1), gates = cell(x, (h, c), mask=torch.zeros(B, H), return_gates=True)
    torch.testing.assert_close(c1, gates["f"] * c)
    torch.testing.assert_close(h1, gates["o"] * torch.tanh(c1))


def test_reference_initialisation():
    torch.manual_seed(8)
    cell = LSTMCell(D, 16)
    assert torch.count_nonzero(cell.bias) == 0
    for block in cell.W_hh.detach().split(16, dim=1):  # each gate's [H, H] block is orthogonal
        torch.testing.assert_close(block.t() @ block, torch.eye(16), atol=1e-5, rtol=0)
    limit = math.sqrt(6 / (D + 4 * 16))  # Glorot-uniform on [D, 4H]
    assert cell.W_xh.abs().max() <= limit
    assert cell.W_xh.abs().max() > 0.8 * limit
    assert sum(p.numel() for p in cell.parameters()) == D * 4 * 16 + 16 * 4 * 16 + 4 * 16


def test_trace_records_every_gate_at_every_step():
    torch.manual_seed(9)
    cell = perturbed(LSTMCell(D, H)).eval()
    x = torch.randn(B, T, D)
    tr = cell.trace(x)
    assert set(tr) == {"i", "f", "g", "o", "c", "h"}
    assert all(v.shape == (T, B, H) for v in tr.values())
    out, _ = cell.sequence(x)
    torch.testing.assert_close(tr["h"], out.transpose(0, 1))
    c_prev = torch.cat([torch.zeros(1, B, H), tr["c"][:-1]])
    torch.testing.assert_close(tr["c"], tr["f"] * c_prev + tr["i"] * tr["g"])
    assert ((tr["f"] > 0) & (tr["f"] < 1)).all()


def test_bad_keep_probability_is_an_error():
    with pytest.raises(ValueError, match="keep probability"):
        LSTMCell(D, H, dropout_keep=0.0)
