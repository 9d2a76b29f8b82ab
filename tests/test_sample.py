"""Sampling: the temperature convention, greedy mode, batching with per-sketch stops, encode/reconstruct, interpolation."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from sketchlib import sample as S
from sketchlib.config import HParams
from sketchlib.fast.numpy_lstm import NumpyLSTM


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


M = 3


def _y(n, q_hat, pi_hat, mu_x, mu_y, sx_hat, sy_hat, rho_hat):
    """Decoder outputs in the reference layout [q_hat(3) | pi_hat | mu_x | mu_y | sigma_hat_x | sigma_hat_y | rho_hat]."""
    row = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1)
                          for v in (q_hat, pi_hat, mu_x, mu_y, sx_hat, sy_hat, rho_hat)])
    return np.tile(row, (n, 1))


def _draw(y, m, tau, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = y.shape[0]
    return S.sample_outputs(y, m, tau, g_pi=S.gumbel((n, m), g), g_pen=S.gumbel((n, 3), g),
                            eps=torch.randn((n, 2), generator=g, dtype=torch.float64).numpy())


@pytest.mark.parametrize("tau", [1.0, 0.5, 0.1])
def test_offset_variance_scales_by_tau(tau):
    """One component, sigma = 2, rho = 0.5: Var(dx) = Var(dy) = 4 tau (the paper's sigma^2 tau), corr = rho."""
    n = 40_000
    y = _y(n, [0, 0, 0], [0.0], [1.0], [-2.0], [math.log(2.0)], [math.log(2.0)], [math.atanh(0.5)])
    dx, dy, _ = _draw(y, 1, tau)
    assert np.var(dx) == pytest.approx(4 * tau, rel=0.04)
    assert np.var(dy) == pytest.approx(4 * tau, rel=0.04)
    assert np.mean(dx) == pytest.approx(1.0, abs=0.05 * math.sqrt(tau) + 0.01)
    assert np.corrcoef(dx, dy)[0, 1] == pytest.approx(0.5, abs=0.02)


def test_component_and_pen_frequencies_follow_softmax_over_tau():
    n = 40_000
    pi_hat, q_hat = np.array([0.0, 1.0, -0.5]), np.array([0.3, -0.2, 0.0])
    y = _y(n, q_hat, pi_hat, [10.0, 20.0, 30.0], [0, 0, 0], [-9] * 3, [-9] * 3, [0] * 3)
    for tau in (1.0, 0.5, 2.0):
        dx, _, pen = _draw(y, M, tau, seed=3)
        k = np.rint(dx / 10).astype(int) - 1
        want_pi = np.exp(pi_hat / tau) / np.exp(pi_hat / tau).sum()
        want_q = np.exp(q_hat / tau) / np.exp(q_hat / tau).sum()
        np.testing.assert_allclose(np.bincount(k, minlength=M) / n, want_pi, atol=0.01)
        np.testing.assert_allclose(np.bincount(pen, minlength=3) / n, want_q, atol=0.01)


def test_small_tau_becomes_argmax_and_greedy_is_the_mean():
    n = 2000
    y = _y(n, [0.3, 0.5, 0.0], [0.0, 0.2, -0.5], [10.0, 20.0, 30.0], [1, 2, 3], [0] * 3, [0] * 3, [0] * 3)
    dx, dy, pen = _draw(y, M, 1e-4)
    assert np.all(np.abs(dx - 20.0) < 0.1) and np.all(pen == 1)
    gx, gy, gpen = S.sample_outputs(y, M, greedy=True)
    assert np.all(gx == 20.0) and np.all(gy == 2.0) and np.all(gpen == 1)


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan")])
def test_bad_temperature(tau):
    with pytest.raises(ValueError, match="temperature"):
        S.sample_outputs(_y(1, [0] * 3, [0] * 3, [0] * 3, [0] * 3, [0] * 3, [0] * 3, [0] * 3), M, tau)


class Scripted(nn.Module):
    """A fake decoder: sketch j draws offsets (1, j) with the pen down, lifts on odd steps, ends at step stop[j]."""

    def __init__(self, stops):
        super().__init__()
        self.hp = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=M, max_seq_len=20, batch_size=4)
        self.stops = torch.tensor(stops)
        self.dummy = nn.Parameter(torch.zeros(1))
        self.seen = []

    def initial_state(self, z, batch_size):
        return torch.zeros(batch_size, dtype=torch.long)

    def step(self, s_prev, z, state):
        self.seen.append(s_prev.clone())
        n = s_prev.shape[0]
        t = state
        y = torch.zeros(n, 6 * M + 3)
        y[:, 3] = 50.0  # component 0 always
        y[:, 3 + M] = 1.0  # mu_x
        y[:, 3 + 2 * M] = torch.arange(n, dtype=torch.float32)  # mu_y = j
        y[:, 3 + 3 * M: 3 + 5 * M] = -20.0  # sigma ~ 0
        pen = torch.where(t >= self.stops, 2, t % 2)
        y[torch.arange(n), pen] = 50.0
        return y, t + 1


def test_batched_sampling_stops_each_sketch_at_its_own_p3():
    model = Scripted([3, 0, 7])
    out = S.sample(model, n=3, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in out] == [3, 0, 7]
    for j, s in enumerate(out):
        assert s.dtype == np.float32 and s.shape[1] == 3
        np.testing.assert_allclose(s[:, :2], np.tile([1.0, j], (len(s), 1)), atol=1e-6)
        np.testing.assert_array_equal(s[:, 2], np.arange(len(s)) % 2)
    assert len(model.seen) == 8  # the loop ends once the last sketch has ended
    np.testing.assert_array_equal(model.seen[0][0].numpy(), [0, 0, 1, 0, 0])  # S_0
    np.testing.assert_allclose(model.seen[2][0].numpy(), [1, 0, 0, 1, 0], atol=1e-6)  # fed back: lift at step 1
    out = S.sample(model, n=3, max_len=4, greedy=True)
    assert [len(s) for s in out] == [3, 0, 4]


def test_z_shapes_and_errors():
    model = Scripted([2, 2])
    z, n = S._prepare_z(model, 1, torch.zeros(2, 4), None)
    assert n == 2 and z.shape == (2, 4)
    z, n = S._prepare_z(model, 5, torch.zeros(4), None)
    assert n == 5 and z.shape == (5, 4)
    with pytest.raises(ValueError, match="N_z = 4"):
        S.sample(model, z=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="does not match"):
        S.sample(model, n=3, z=torch.zeros(2, 4))


def test_interpolate():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, generator=g), torch.randn(8, generator=g)
    b = b / b.norm() * a.norm()
    for method in ("slerp", "lerp"):
        zs = S.interpolate(a, b, 7, method)
        assert zs.shape == (7, 8)
        assert torch.equal(zs[0], a) and torch.equal(zs[-1], b)
    slerp = S.interpolate(a, b, 9, "slerp")
    torch.testing.assert_close(slerp.norm(dim=1), torch.full((9,), float(a.norm())), rtol=1e-5, atol=1e-5)
    lerp = S.interpolate(a, b, 3, "lerp")
    torch.testing.assert_close(lerp[1], (a + b) / 2)
    assert lerp[1].norm() < a.norm()  # lerp cuts through the ball, slerp stays on the sphere
    e0, e1 = torch.eye(2)
    torch.testing.assert_close(S.interpolate(e0, e1, 3)[1], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    torch.testing.assert_close(S.interpolate(e0, e0 * 2, 3)[1], e0 * 1.5)  # parallel: falls back to lerp
    with pytest.raises(ValueError, match="method"):
        S.interpolate(a, b, 3, "cubic")
    with pytest.raises(ValueError, match="steps"):
        S.interpolate(a, b, 1)


def test_numpy_split_matches_mdn():
    from sketchlib.nn import mdn

    y = torch.randn(5, 6 * M + 3, dtype=torch.float64) * 3
    y[0, 3 + 3 * M] = -50.0  # below the sigma floor
    y[1, 3 + 5 * M] = 30.0  # tanh rounds to 1: rho is kept inside (-1, 1)
    p = mdn.split(y)
    q = S._split_numpy(y.numpy(), M)
    for name in ("q_hat", "pi_hat", "mu_x", "mu_y", "sigma_x", "sigma_y", "rho"):
        np.testing.assert_allclose(getattr(q, name), getattr(p, name).numpy(), rtol=1e-12, err_msg=name)
    # sample_outputs uses the same transforms on the chosen component: greedy returns mu, and a
    # one-component draw with eps = (1, 0) returns mu + sigma * sqrt(tau) * (1, rho)
    yy = y.numpy()[:, [0, 1, 2, 3, 6, 9, 12, 15, 18]]  # keep component 0 only (M = 1)
    dx, dy, _ = S.sample_outputs(yy, 1, 0.25, g_pi=np.zeros((5, 1)), g_pen=np.zeros((5, 3)),
                                 eps=np.tile([1.0, 0.0], (5, 1)))
    np.testing.assert_allclose(dx, q.mu_x[:, 0] + q.sigma_x[:, 0] * 0.5, rtol=1e-12)
    np.testing.assert_allclose(dy, q.mu_y[:, 0] + q.sigma_y[:, 0] * 0.5 * q.rho[:, 0], rtol=1e-12)


HP = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=M, max_seq_len=20, batch_size=4)


def _model(**kw):
    from sketchlib.nn.model import SketchRNN

    torch.manual_seed(0)
    return SketchRNN(HP.replace(**kw))


def _never_end(model):
    with torch.no_grad():
        model.decoder.to_y.bias[2] = -1e4  # p3 logit: sketches run to max_len
    return model


def _perturbed(**kw):
    """A small model with every decoder parameter random (biases too), p3 never drawn."""
    model = _model(**kw)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return _never_end(model)


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("n", [1, 3])
def test_fast_path_equals_reference_path(conditional, n, monkeypatch):
    """fast=True (numpy LSTM step; for one sketch the partial y and the scalar draw) gives the
    sketches of fast=False (model.step and sample_outputs at every step) for the same generator."""
    made = []
    monkeypatch.setattr(S, "NumpyLSTM", lambda *a: made.append(a) or NumpyLSTM(*a))
    model = _perturbed(conditional=conditional)
    for kw in (dict(greedy=True), dict(temperature=0.7), dict(temperature=1.3)):
        a = S.sample(model, n=n, generator=torch.Generator().manual_seed(1), fast=True, **kw)
        b = S.sample(model, n=n, generator=torch.Generator().manual_seed(1), fast=False, **kw)
        for x, y in zip(a, b):
            assert x.shape == y.shape == (20, 3)
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    assert len(made) == 3  # the fast calls took the numpy step
    ended = _model(conditional=conditional)  # default init: sketches stop at their own p3
    for kw in (dict(greedy=True), dict(temperature=0.5)):
        a = S.sample(ended, n=n, generator=torch.Generator().manual_seed(2), fast=True, **kw)
        b = S.sample(ended, n=n, generator=torch.Generator().manual_seed(2), fast=False, **kw)
        assert [len(x) for x in a] == [len(x) for x in b]
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


def test_torch_fast_path_equals_reference_path(monkeypatch):
    """With the numpy step ruled out (as for a model on a GPU), fast=True runs the fused torch step."""
    monkeypatch.setattr(S, "_numpy_step_applies", lambda model, device: False)
    model = _perturbed()
    for n, kw in ((1, dict(temperature=0.7)), (3, dict(greedy=True))):
        a = S.sample(model, n=n, generator=torch.Generator().manual_seed(1), fast=True, **kw)
        b = S.sample(model, n=n, generator=torch.Generator().manual_seed(1), fast=False, **kw)
        np.testing.assert_allclose(np.stack(a), np.stack(b), rtol=1e-4, atol=1e-5)


def test_torch_fused_step_equals_model_step():
    """The fused torch step (the fast path on a GPU) computes model.step's y and state."""
    model = _perturbed().eval()
    g = torch.Generator().manual_seed(3)
    z = torch.randn(3, 4, generator=g)
    with torch.inference_mode():
        state, step = S._stepper(model, z, 3, fast=True)
        ref = model.initial_state(z, 3)
        for _ in range(5):
            s = torch.zeros(3, 5)
            s[:, :2] = torch.randn(3, 2, generator=g)
            s[:, 3] = 1.0
            y, state = step(s, state)
            want, ref = model.step(s, z, ref)
            torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(state, tuple(ref), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("greedy", [False, True])
def test_one_sketch_draw_equals_sample_outputs(greedy):
    """_choose_one and _offset_one (Python floats, one sketch) draw exactly what sample_outputs draws."""
    rng = np.random.default_rng(0)
    m = 4
    y = (rng.normal(size=(300, 6 * m + 3)) * 2).astype(np.float32)
    y[:5, 3:3 + m] = 1.0  # ties in pi_hat: the first maximum wins in both
    y[5, 3 + 5 * m:] = 30.0  # rho clamped
    y[6, 3 + 3 * m:3 + 5 * m] = -50.0  # sigma floored
    for tau in (0.3, 1.0, 2.0):
        g = torch.Generator().manual_seed(4)
        g_pi, g_pen = S.gumbel((300, m), g), S.gumbel((300, 3), g)
        eps = torch.randn((300, 2), generator=g, dtype=torch.float64).numpy()
        if greedy:
            g_pi = g_pen = eps = None
        dx, dy, pen = S.sample_outputs(y, m, tau, greedy, g_pi=g_pi, g_pen=g_pen, eps=eps)
        noise = None if greedy else (tau * np.concatenate([g_pen, g_pi], axis=1)).tolist()
        for j in range(300):
            p, k = S._choose_one(y[j, :3 + m].tolist(), greedy, None if greedy else noise[j])
            assert p == pen[j]
            ox, oy = S._offset_one(y[j, 3 + m + k::m].tolist(), tau, greedy, None if greedy else eps[j])
            assert ox == pytest.approx(dx[j], rel=1e-12, abs=1e-12)
            assert oy == pytest.approx(dy[j], rel=1e-12, abs=1e-12)


def test_non_lstm_cells_and_dropout_keep_model_step():
    """Only the plain LSTM decoder in eval mode gets the numpy step."""
    assert S._plain_lstm_decoder(_model().eval())
    assert not S._plain_lstm_decoder(_model().train())
    assert not S._plain_lstm_decoder(_model(dec_model="layer_norm").eval())
    assert not S._plain_lstm_decoder(_model(use_output_dropout=True).eval())


@pytest.mark.parametrize("dec_model", ["lstm", "layer_norm", "hyper"])
def test_batched_greedy_equals_one_at_a_time(dec_model):
    model = _model(dec_model=dec_model, hyper_num_units=8, hyper_embedding_size=4)
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    batch = S.sample(model, z=z, greedy=True)
    for i in range(3):
        alone = S.sample(model, z=z[i], greedy=True)[0]
        np.testing.assert_allclose(batch[i], alone, atol=1e-5)


def test_sampling_is_reproducible_and_restores_training_mode():
    model = _model()
    model.train()
    a = S.sample(model, n=4, generator=torch.Generator().manual_seed(5))
    b = S.sample(model, n=4, generator=torch.Generator().manual_seed(5))
    c = S.sample(model, n=4, generator=torch.Generator().manual_seed(6))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, c))
    assert model.training
    for s in a:
        assert s.dtype == np.float32 and s.ndim == 2 and s.shape[1] == 3 and len(s) <= 20
        assert set(np.unique(s[:, 2])) <= {0.0, 1.0}


def test_encode_and_reconstruct():
    model = _model()
    rng = np.random.default_rng(0)
    sketches = []
    for m in (5, 9, 14):
        s = np.zeros((m, 3), dtype=np.float32)
        s[:, :2] = rng.normal(size=(m, 2))
        s[-1, 2] = 1
        sketches.append(s)
    mu = S.encode(model, sketches)
    assert mu.shape == (3, 4) and model.training  # encode uses eval mode and restores the mode
    strokes, lengths = S._batch(model, sketches)
    model.eval()
    with torch.no_grad():
        ref_mu, _ = model.encode(strokes, lengths)
    torch.testing.assert_close(mu, ref_mu)
    torch.testing.assert_close(S.encode(model, sketches[1])[0], mu[1])  # one sketch alone = its row
    rec = S.reconstruct(model, sketches, greedy=True)
    assert len(rec) == 3
    assert all(np.array_equal(r, s) for r, s in zip(rec, S.sample(model, z=mu, greedy=True)))
    rz = S.reconstruct(model, sketches, temperature=0.5, sample_z=True, generator=torch.Generator().manual_seed(0))
    assert len(rz) == 3
    with pytest.raises(ValueError, match="unconditional"):
        S.encode(_model(conditional=False), sketches)
    with pytest.raises(ValueError, match="unconditional"):
        S.sample(_model(conditional=False), z=torch.zeros(4))


# ---------------------------------------------------------------------------------------------- issue 10, item 8


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_item8_nan_z_is_refused(bad):
    """A NaN or infinite z is a clear error, not a sketch of NaN offsets."""
    model = _model()
    z = torch.zeros(4)
    z[2] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        S.sample(model, z=z, temperature=0.5)
    with pytest.raises(ValueError, match="NaN or infinite"):
        S.sample(model, n=2, z=torch.stack([torch.zeros(4), z]), greedy=True, fast=False)


def test_item8_huge_max_len_allocates_nothing_up_front(monkeypatch):
    """max_len = 10**9: the noise comes in bounded blocks, the output grows as drawn; sketches end at p3."""
    requested = []
    real_rand, real_randn = torch.rand, torch.randn

    def spy(real):
        def draw(*a, **k):
            shape = a[0] if isinstance(a[0], (tuple, list)) else [x for x in a if isinstance(x, int)]
            requested.append(math.prod(shape))
            assert requested[-1] * 8 <= 1 << 27, f"{shape}: noise for every step, drawn up front"  # 128 MiB
            return real(*a, **k)
        return draw

    monkeypatch.setattr(torch, "rand", spy(real_rand))
    monkeypatch.setattr(torch, "randn", spy(real_randn))
    model = _model()
    for n, fast in ((1, True), (3, True), (3, False)):
        requested.clear()
        g = torch.Generator().manual_seed(0)
        out = S.sample(model, n=n, temperature=0.5, max_len=10**9, generator=g, fast=fast)
        assert len(out) == n and all(len(s) < 10**6 for s in out)
        assert requested
    out = S.sample(Scripted([3, 5]), n=2, max_len=10**9, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in out] == [3, 5]
    with pytest.raises(ValueError, match="max_len"):
        S.sample(model, max_len=0)


def test_noise_in_blocks_is_the_up_front_draw_when_it_fits(monkeypatch):
    """One block = the old up-front draw (so seeds give the same sketches); smaller blocks are still seeded."""
    model = _perturbed()
    ref = S.sample(model, n=2, temperature=0.8, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 4, generator=g)  # sample draws z first, then the noise
    M = HP.num_mixture
    g_pi, g_pen = S.gumbel((20, 2, M), g), S.gumbel((20, 2, 3), g)
    eps = torch.randn((20, 2, 2), generator=g, dtype=torch.float64).numpy()
    noise = S.Noise(20, 2, M, torch.Generator().manual_seed(3))
    torch.randn(2, 4, generator=noise.generator)
    for t in (0, 7, 19):
        for got, want in zip(noise.at(t), (g_pi[t], g_pen[t], eps[t])):
            np.testing.assert_array_equal(got, want)
    from sketchlib import draw

    monkeypatch.setattr(draw, "NOISE_BLOCK_BYTES", 2 * (M + 5) * 8 * 3)  # blocks of 3 steps
    small = [S.sample(model, n=2, temperature=0.8, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    for a, b, r in zip(small[0], small[1], ref):
        np.testing.assert_array_equal(a, b)
        assert a.shape == r.shape == (20, 3)


# ---------------------------------------------------------------------------------------------- the one loop


def test_prefix_continues_a_greedy_sample_on_every_stepper():
    """sample(prefix=the first k points of a greedy sample) gives back the rest, for each stepper."""
    model = _perturbed()
    z = torch.randn(1, 4, generator=torch.Generator().manual_seed(5))
    full = S.sample(model, z=z, greedy=True, fast=False)[0]
    for fast, numpy_ok in ((True, True), (True, False), (False, True)):
        for k in (1, 6):
            with pytest.MonkeyPatch.context() as mp:
                if not numpy_ok:
                    mp.setattr(S, "_numpy_step_applies", lambda model, device: False)
                cont = S.sample(model, z=z, greedy=True, fast=fast, prefix=full[:k])[0]
            np.testing.assert_allclose(cont, full[k:], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="no room"):
        S.sample(model, z=z, prefix=full, max_len=20)


def test_replaced_model_step_is_never_bypassed():
    """A model whose step was replaced on the instance (a wrapper) gets model.step, not a fast twin."""
    model = _perturbed().eval()
    assert S.stepper_name(model) == "numpy" and S.stepper_name(model, fast=False) == "model.step"
    calls = []
    real = model.step
    model.step = lambda *a: calls.append(1) or real(*a)
    assert S.stepper_name(model) == "model.step"
    S.sample(model, max_len=5, greedy=True)
    assert len(calls) == 5


def test_stop_at_p3_false_runs_every_step():
    model = _model()
    with torch.no_grad():
        model.decoder.to_y.bias[2] = 1e4  # p3 always
    assert len(S.sample(model, greedy=True)[0]) == 0
    for n in (1, 2):
        assert [len(s) for s in S.sample(model, n=n, greedy=True, max_len=7, stop_at_p3=False)] == [7] * n
