"""The numpy LSTM decoder step (sketchlib.fast.numpy_lstm): the equations of model.step, its weight cache, its threads."""

import numpy as np
import pytest
import torch

from sketchlib.fast import numpy_lstm as D
from sketchlib.config import HParams
from sketchlib.nn.model import SketchRNN

HP = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=20, batch_size=4)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


def _perturbed(seed=0, **kw):
    """A small model with every decoder parameter random (biases too), in eval mode."""
    torch.manual_seed(seed)
    model = SketchRNN(HP.replace(**kw)).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return model


def _s_prev(g, n):
    """Random S_{i-1} [n, 5]: offsets and a one-hot pen state."""
    s = torch.zeros(n, 5)
    s[:, :2] = torch.randn(n, 2, generator=g)
    s[torch.arange(n), 2 + torch.randint(0, 3, (n,), generator=g)] = 1.0
    return s


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("n", [1, 3])
def test_numpy_step_equals_model_step(conditional, n):
    """y and (h, c) after each of 8 steps equal model.step's to float32 rounding, for one sketch
    (numpy's tanh) and a batch (tanh as 2 sigmoid(2u) - 1)."""
    model = _perturbed(conditional=conditional)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, HP.z_size, generator=g) if conditional else None
    with torch.inference_mode():
        dec = D.NumpyLSTM(model, z, n)
        state = model.initial_state(z, n)
        torch.testing.assert_close(dec.state(), tuple(state))
        for _ in range(8):
            s = _s_prev(g, n)
            dec.x[:5] = s.t().numpy()
            y = dec.step()
            want_y, state = model.step(s, z, state)
            torch.testing.assert_close(torch.from_numpy(y.copy()), want_y, rtol=1e-5, atol=1e-6)
            h, c = dec.state()
            torch.testing.assert_close(h, state[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(c, state[1], rtol=1e-5, atol=1e-6)


def test_feed_writes_the_stroke5_input():
    model = _perturbed()
    with torch.inference_mode():
        dec = D.NumpyLSTM(model, torch.zeros(3, HP.z_size), 3)
    np.testing.assert_array_equal(dec.x[:5].T, np.tile([0, 0, 1, 0, 0], (3, 1)))  # S_0
    dec.feed(np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.0, -3.0]), np.array([0, 2, 1]))
    np.testing.assert_array_equal(dec.x[:5].T, [[0.5, 1.5, 1, 0, 0], [-1, 0, 0, 0, 1], [2, -3, 0, 1, 0]])
    np.testing.assert_array_equal(dec.x[-1], 1.0)  # the bias row


def test_weights_are_cached_until_a_parameter_changes():
    model = _perturbed()
    dec = model.decoder
    W, Wy = D.numpy_weights(dec)
    assert not W.flags.writeable and not Wy.flags.writeable
    assert D.numpy_weights(dec)[0] is W
    H = HP.dec_rnn_size
    # the layout: gate rows (o, i, f, g) of [W_s^T | W_hh^T | b], the forget bias in f's b
    i, g_, f, o = (slice(k * H, (k + 1) * H) for k in range(4))
    cell = dec.cell
    np.testing.assert_array_equal(W[:H, 5:5 + H], cell.W_hh.detach()[:, o].t().numpy())
    np.testing.assert_array_equal(W[3 * H:, :5], cell.W_xh.detach()[:5, g_].t().numpy())
    np.testing.assert_allclose(W[2 * H:3 * H, -1], (cell.bias.detach()[f] + cell.forget_bias).numpy())
    with torch.no_grad():
        dec.to_y.bias[0] = 7.0  # in place: bumps the version counter
    W2, Wy2 = D.numpy_weights(dec)
    assert W2 is not W and Wy2[0, -1] == 7.0
    dec.half().float()  # new storages (values rounded), same version counters
    W3, _ = D.numpy_weights(dec)
    assert W3 is not W2
    np.testing.assert_array_equal(W3[:H, 5:5 + H], cell.W_hh.detach()[:, o].t().numpy())


def test_cpu_threads_hands_torch_threads_to_blas_and_restores_both():
    blas = D.openblas_threads()
    before_torch = torch.get_num_threads()
    before_blas = blas[0]() if blas else None
    torch.set_num_threads(1)
    try:
        with D.cpu_threads():
            assert torch.get_num_threads() == 1
            if blas:
                assert blas[0]() == 1
        assert torch.get_num_threads() == 1
        if blas:
            assert blas[0]() == before_blas
    finally:
        torch.set_num_threads(before_torch)
