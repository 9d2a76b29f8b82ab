"""SketchRNN put together: sampling steps reproduce the teacher-forced pass, fast == plain, training reduces the
loss, parameter counts follow the equations."""

import math
from unittest import mock

import pytest
import torch

from sketchlib.nn import mdn
from sketchlib.config import HParams
from sketchlib.nn.loss import total_loss
from sketchlib.nn.model import ModelOutput, SketchRNN
from sketchlib.nn.recurrent import FAST_PATHS, RecurrentCell
from sketchlib import fast as fast_paths
from sketchlib.fast import native


def on(fast: bool, fn, *args, **kw):
    """fn(*args, **kw) with the fast paths on or off (sketchlib.fast's one switch)."""
    with fast_paths.enabled(fast):
        return fn(*args, **kw)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


B, N_MAX = 3, 8
EH, DH, NZ, M, NH, E = 8, 12, 4, 3, 6, 4
CELLS = ["lstm", "layer_norm", "hyper"]


def hparams(**kw):
    base = dict(enc_rnn_size=EH, dec_rnn_size=DH, z_size=NZ, num_mixture=M, hyper_num_units=NH,
                hyper_embedding_size=E, max_seq_len=N_MAX, batch_size=B)
    return HParams(**{**base, **kw})


def batch(seed=0):
    """A stroke-5 batch [B, N_max + 1, 5] with lengths 8, 5, 2."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([8, 5, 2])
    s = torch.zeros(B, N_MAX + 1, 5)
    s[:, 0, 2] = 1  # S_0
    for b, L in enumerate(lengths.tolist()):
        s[b, 1:L + 1, :2] = torch.randn(L, 2, generator=g)
        s[b, 1:L + 1, 2] = 1
        s[b, L, 2:4] = torch.tensor([0.0, 1.0])
        s[b, L + 1:, 4] = 1
    return s, lengths


def perturb(model, scale=0.2, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("dec_model", CELLS)
def test_sampling_steps_reproduce_the_teacher_forced_pass(dec_model, conditional):
    torch.manual_seed(0)
    model = perturb(SketchRNN(hparams(dec_model=dec_model, conditional=conditional))).eval()
    strokes, lengths = batch()
    eps = torch.randn(B, NZ)
    out = model(strokes, lengths, eps=eps)
    assert out.y.shape == (B, N_MAX, mdn.output_size(M))
    state = model.initial_state(out.z, B)
    ys = []
    for t in range(N_MAX):  # feed the true previous point S_{t}, as teacher forcing does
        y, state = model.step(strokes[:, t], out.z, state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), out.y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dec_model", CELLS)
def test_fast_path_equals_plain_path_in_training(dec_model):
    """Training mode (recurrent dropout on): with one seed both paths draw the same masks and ε."""
    model = perturb(SketchRNN(hparams(dec_model=dec_model, enc_model="layer_norm" if dec_model == "hyper"
                                      else "lstm"))).train()
    strokes, lengths = batch(seed=2)
    results = []
    for fast in (False, True):
        torch.manual_seed(3)
        model.zero_grad()
        out = on(fast, model, strokes, lengths)
        loss = total_loss(out, strokes, lengths, kl_weight=0.5, kl_tolerance=0.0)["loss"]
        loss.backward()
        results.append((loss.detach(), out.y.detach(), [p.grad.clone() for p in model.parameters()]))
    (l1, y1, g1), (l2, y2, g2) = results
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(l1, l2, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dec_model", ["lstm", "hyper"])
def test_a_few_optimisation_steps_reduce_the_loss(dec_model):
    torch.manual_seed(4)
    model = SketchRNN(hparams(dec_model=dec_model)).train()
    strokes, lengths = batch(seed=5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    eps = torch.zeros(B, NZ)  # fixed ε so the comparison is not blurred by sampling noise
    model.eval()
    with torch.no_grad():
        before = total_loss(model(strokes, lengths, eps=eps), strokes, lengths, 0.5, 0.2)["loss"].item()
    model.train()
    for _ in range(25):
        opt.zero_grad()
        loss = total_loss(model(strokes, lengths), strokes, lengths, 0.5, 0.2)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    with torch.no_grad():
        after = total_loss(model(strokes, lengths, eps=eps), strokes, lengths, 0.5, 0.2)["loss"].item()
    assert math.isfinite(after) and after < before - 0.3


def lstm_count(d, h):
    return d * 4 * h + h * 4 * h + 4 * h  # W_xh, W_hh, bias


def layer_norm_count(d, h):
    return d * 4 * h + h * 4 * h + 2 * 4 * h + 2 * h  # no bias; (γ, β) per gate and for c


def hyper_count(d, h, n, e):
    hyper = layer_norm_count(d + h, n)  # the hypernetwork reads [x ; h]
    heads = 8 * (n * e + e) + 8 * e * h + 4 * n * e + 4 * e * h  # z_k (+b), d_k, β_k of the W_h blocks
    return lstm_count(d, h) + 2 * 4 * h + 2 * h + hyper + heads


@pytest.mark.parametrize("enc_model", ["lstm", "layer_norm"])
@pytest.mark.parametrize("dec_model", CELLS)
def test_parameter_counts_follow_the_equations(enc_model, dec_model):
    model = SketchRNN(hparams(enc_model=enc_model, dec_model=dec_model))
    enc_cell = {"lstm": lstm_count, "layer_norm": layer_norm_count}[enc_model](5, EH)
    encoder = 2 * enc_cell + 2 * (2 * EH * NZ + NZ)  # two directions; μ and σ̂ heads
    d = 5 + NZ  # [S_{i-1} ; z]
    dec_cell = {"lstm": lambda: lstm_count(d, DH), "layer_norm": lambda: layer_norm_count(d, DH),
                "hyper": lambda: hyper_count(d, DH, NH, E)}[dec_model]()
    state = 2 * DH + (2 * NH if dec_model == "hyper" else 0)
    decoder = dec_cell + (NZ * state + state) + (DH * (6 * M + 3) + 6 * M + 3)  # cell, z -> state, y head
    assert sum(p.numel() for p in model.encoder.parameters()) == encoder
    assert sum(p.numel() for p in model.decoder.parameters()) == decoder
    assert sum(p.numel() for p in model.parameters()) == encoder + decoder


def test_unconditional_model_has_no_encoder_and_no_z():
    model = SketchRNN(hparams(conditional=False, dec_model="layer_norm"))
    assert model.encoder is None
    strokes, lengths = batch()
    out = model(strokes, lengths)
    assert isinstance(out, ModelOutput) and out.mu is None and out.sigma_hat is None and out.z is None
    assert model.decoder.cell.input_size == 5
    h, c = model.initial_state(None, 2)
    assert torch.count_nonzero(h) == 0 and torch.count_nonzero(c) == 0 and h.shape == (2, DH)
    decoder = sum(p.numel() for p in model.parameters())
    assert decoder == layer_norm_count(5, DH) + DH * (6 * M + 3) + 6 * M + 3
    with pytest.raises(ValueError, match="unconditional"):
        model.encode(strokes, lengths)


def test_forward_draws_eps_and_z_is_mu_plus_sigma_eps():
    torch.manual_seed(8)
    model = perturb(SketchRNN(hparams())).eval()
    strokes, lengths = batch()
    out = model(strokes, lengths)
    mu, sigma_hat = model.encode(strokes, lengths)
    torch.testing.assert_close(out.mu, mu)
    eps = (out.z - mu) / torch.exp(sigma_hat / 2)
    assert eps.abs().max() > 0.01  # ε was drawn
    torch.testing.assert_close(model(strokes, lengths, eps=eps).y, out.y, rtol=1e-5, atol=1e-5)


def test_bad_batches_are_errors():
    model = SketchRNN(hparams())
    strokes, lengths = batch()
    with pytest.raises(ValueError, match="stroke-5 batch"):
        model(strokes[..., :3], lengths)
    with pytest.raises(ValueError, match="z must be"):
        model.initial_state(torch.zeros(B, NZ + 1), B)
    with pytest.raises(ValueError, match="lengths"):
        model(strokes, torch.tensor([9, 5, 2]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (runs wherever one is present)")
@pytest.mark.parametrize("dec_model", CELLS)
def test_cuda_paths_equal_the_cpu_reference(dec_model):
    """On a GPU: the cuDNN path (eval) and our loops (eval and training) agree with the float64 CPU plain path."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        torch.manual_seed(10)
        model = perturb(SketchRNN(hparams(dec_model=dec_model)))
        strokes, lengths = batch(seed=11)
        eps = torch.randn(B, NZ)
        ref = on(False, model.double().eval(), strokes.double(), lengths, eps=eps.double()).y.float()
        gpu = model.float().cuda().eval()
        for use_native in (True, False):  # cuDNN where it applies (LSTM cells, eval), then our loops
            with mock.patch.object(native, "wants_native", native.wants_native if use_native else lambda c, x: False):
                y = gpu(strokes.cuda(), lengths.cuda(), eps=eps.cuda()).y
            torch.testing.assert_close(y.cpu(), ref, rtol=1e-4, atol=1e-4)
        gpu.train()
        results = []
        for fast in (False, True):
            torch.manual_seed(12)
            gpu.zero_grad()
            out = on(fast, gpu, strokes.cuda(), lengths.cuda())
            total_loss(out, strokes.cuda(), lengths.cuda(), 0.5, 0.0)["loss"].backward()
            results.append((out.y.detach().cpu(), [p.grad.cpu() for p in gpu.parameters()]))
        torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-4)
        for a, b in zip(results[0][1], results[1][1]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


@pytest.mark.parametrize("dec_model", CELLS)
def test_one_switch_default_fast_plain_when_asked(dec_model, monkeypatch):
    """By default SketchRNN runs the registered fast versions; inside ``sketchlib.fast.enabled(False)``
    the plain loop runs and no fast version is called; the two agree."""
    model = perturb(SketchRNN(hparams(dec_model=dec_model))).train()
    strokes, lengths = batch(seed=4)
    calls = {"fast": 0, "plain": 0}
    for key, fn in list(FAST_PATHS.impls.items()):
        monkeypatch.setitem(FAST_PATHS.impls, key, lambda *a, fn=fn: calls.__setitem__("fast", calls["fast"] + 1) or fn(*a))
    plain = RecurrentCell.plain_sequence
    monkeypatch.setattr(RecurrentCell, "plain_sequence",
                        lambda *a: calls.__setitem__("plain", calls["plain"] + 1) or plain(*a))
    results = []
    for fast in (None, False):  # None: the default, untouched
        torch.manual_seed(5)
        model.zero_grad()
        out = model(strokes, lengths) if fast is None else on(False, model, strokes, lengths)
        total_loss(out, strokes, lengths, kl_weight=0.5, kl_tolerance=0.0)["loss"].backward()
        results.append((out.y.detach(), [p.grad.clone() for p in model.parameters()]))
        if fast is None:
            assert calls == {"fast": 2, "plain": 0}  # encoder (both directions) and decoder
    assert calls == {"fast": 2, "plain": 3}  # plain: encoder forwards, backwards, decoder
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
