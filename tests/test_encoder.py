"""Bidirectional encoder: true lengths (the backward pass starts at the real end), every path equal to a
per-sketch reference run step by step, head init."""

import pytest
import torch

from sketchlib.config import HParams
from sketchlib.nn.encoder import Encoder, reverse_within_lengths
from sketchlib import fast as fast_paths
from sketchlib.fast import native


def on(fast: bool, fn, *args, **kw):
    """fn(*args, **kw) with the fast paths on or off (sketchlib.fast's one switch)."""
    with fast_paths.enabled(fast):
        return fn(*args, **kw)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


B, T, H, NZ = 3, 10, 8, 4


def hparams(**kw):
    return HParams(enc_rnn_size=H, z_size=NZ, max_seq_len=T, **kw)


def batch(seed=0, pad_value=None):
    """Random stroke-5 rows S_1..S_{N_max} with lengths 10, 6, 3; padding rows (0,0,0,0,1) or garbage."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([10, 6, 3])
    x = torch.zeros(B, T, 5)
    for b, L in enumerate(lengths.tolist()):
        x[b, :L, :2] = torch.randn(L, 2, generator=g)
        x[b, :L, 2] = 1
        x[b, L - 1, 2:4] = torch.tensor([0.0, 1.0])
        x[b, L:, 4] = 1
        if pad_value is not None:
            x[b, L:] = pad_value
    return x, lengths


def perturb(module, scale=0.3, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return module


def per_sketch_reference(enc: Encoder, x, lengths):
    """Each sketch alone, cut to its real length, both directions with the cells' plain one-step forward."""
    hs = []
    for b, L in enumerate(lengths.tolist()):
        seq = x[b:b + 1, :L]
        finals = []
        for cell, s in ((enc.cell_fw, seq), (enc.cell_bw, seq.flip(1))):
            state = cell.zero_state(1)
            for t in range(L):
                h, state = cell(s[:, t], state)
            finals.append(h)
        hs.append(torch.cat(finals, 1))
    h = torch.cat(hs)
    return enc.to_mu(h), enc.to_sigma_hat(h)


@pytest.mark.parametrize("enc_model", ["lstm", "layer_norm"])
@pytest.mark.parametrize("fast", [False, True])
def test_matches_per_sketch_reference(enc_model, fast):
    torch.manual_seed(0)
    enc = perturb(Encoder(hparams(enc_model=enc_model))).eval()
    x, lengths = batch()
    mu, sigma_hat = on(fast, enc, x, lengths)
    mu_ref, sigma_hat_ref = per_sketch_reference(enc, x, lengths)
    assert mu.shape == sigma_hat.shape == (B, NZ)
    torch.testing.assert_close(mu, mu_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sigma_hat, sigma_hat_ref, rtol=1e-5, atol=1e-5)


class _OnGPU:
    """Stands in for a CUDA tensor where only ``is_cuda`` is read."""
    is_cuda = True


def test_native_packed_path_equals_our_loop_outputs_and_grads(monkeypatch):
    torch.manual_seed(1)
    enc = perturb(Encoder(hparams(enc_model="lstm"))).eval()
    assert native.wants_native([enc.cell_fw, enc.cell_bw], _OnGPU())
    x, lengths = batch(seed=2)
    results = []
    for use_native in (True, False):  # chosen on a GPU; forced here to compare on the CPU
        monkeypatch.setattr(native, "wants_native", lambda cells, x, use=use_native: use)
        enc.zero_grad()
        mu, sigma_hat = enc(x, lengths)
        (mu.sum() + sigma_hat.pow(2).sum()).backward()
        results.append((mu, sigma_hat, [p.grad.clone() for p in enc.parameters()]))
    (m1, s1, g1), (m2, s2, g2) = results
    torch.testing.assert_close(m1, m2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s1, s2, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_native_unpacked_path_equals_packed():
    """The path used when lengths live on the GPU (no host read, CUDA-graph safe) gives the same h and gradients."""
    torch.manual_seed(3)
    enc = perturb(Encoder(hparams(enc_model="lstm"))).eval()
    x, lengths = batch(seed=5)
    results = []
    for packed in (True, False):
        enc.zero_grad()
        h = native.native_final_hidden(enc.cell_fw, enc.cell_bw, x, lengths, packed=packed)
        h.pow(2).sum().backward()
        results.append((h, [p.grad.clone() for p in enc.parameters() if p.grad is not None]))
    (h1, g1), (h2, g2) = results
    torch.testing.assert_close(h1, h2, rtol=1e-5, atol=1e-6)
    assert len(g1) == len(g2) > 0
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("enc_model", ["lstm", "layer_norm"])
def test_padding_content_is_never_read(enc_model):
    torch.manual_seed(2)
    enc = perturb(Encoder(hparams(enc_model=enc_model))).eval()
    x, lengths = batch(seed=3)
    garbage, _ = batch(seed=3, pad_value=7.5)
    for fast in (False, True):
        torch.testing.assert_close(on(fast, enc, x, lengths), on(fast, enc, garbage, lengths))
    # but the real rows are: changing the first point of the shortest sketch changes its code
    changed = x.clone()
    changed[2, 0, 0] += 1.0
    assert not torch.allclose(enc(x, lengths)[0][2], enc(changed, lengths)[0][2])


def test_training_mode_fast_equals_plain_with_the_same_seed():
    """With recurrent dropout the fast loop runs; it draws its masks like the plain path, so a seed fixes both."""
    enc = perturb(Encoder(hparams(enc_model="lstm", recurrent_dropout_prob=0.7))).train()
    assert not native.wants_native([enc.cell_fw, enc.cell_bw], _OnGPU())
    x, lengths = batch(seed=4)
    torch.manual_seed(5)
    mu1, _ = on(False, enc, x, lengths)
    torch.manual_seed(5)
    mu2, _ = on(True, enc, x, lengths)
    torch.testing.assert_close(mu1, mu2, rtol=1e-5, atol=1e-6)
    torch.manual_seed(6)
    assert not torch.allclose(enc(x, lengths)[0], mu1)  # dropout is really on


def test_reverse_within_lengths():
    x = torch.arange(B * T, dtype=torch.float32).view(B, T, 1)
    lengths = torch.tensor([10, 6, 3])
    r = reverse_within_lengths(x, lengths)[..., 0]
    assert r[0].tolist() == list(range(9, -1, -1))
    assert r[1].tolist() == [15, 14, 13, 12, 11, 10, 16, 17, 18, 19]
    assert r[2].tolist() == [22, 21, 20] + list(range(23, 30))


def test_head_initialisation():
    torch.manual_seed(7)
    enc = Encoder(HParams(enc_rnn_size=64, z_size=32))
    for head in (enc.to_mu, enc.to_sigma_hat):
        assert head.weight.shape == (32, 128)
        assert abs(head.weight.std().item() - 0.001) < 1e-4
        assert torch.count_nonzero(head.bias) == 0


def test_bad_lengths_and_shapes_are_errors():
    enc = Encoder(hparams())
    x, lengths = batch()
    with pytest.raises(ValueError, match="lengths must lie in"):
        enc(x, torch.tensor([10, 0, 3]))
    with pytest.raises(ValueError, match="lengths must lie in"):
        enc(x, torch.tensor([11, 6, 3]))
    with pytest.raises(ValueError, match="shape"):
        enc(x, torch.tensor([10, 6]))
    with pytest.raises(ValueError, match="integers"):
        enc(x, lengths.float())
    with pytest.raises(ValueError, match=r"\[B, N_max, 5\]"):
        enc(x[..., :3], lengths)
