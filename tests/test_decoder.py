"""Decoder: initial state from z, input [S_{i-1} ; z], output layer and its init, step == teacher forcing,
input/output dropout, the unconditional decoder."""

import math

import pytest
import torch

from sketchlib.nn import mdn
from sketchlib.config import HParams
from sketchlib.nn.decoder import Decoder, make_cell
from sketchlib.nn.hyper_lstm import HyperLSTMCell
from sketchlib.nn.layer_norm_lstm import LayerNormLSTMCell
from sketchlib.nn.lstm import LSTMCell


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


B, T, H, NZ, M, NH, E = 3, 7, 12, 4, 3, 6, 4
CELLS = ["lstm", "layer_norm", "hyper"]


def hparams(**kw):
    base = dict(dec_rnn_size=H, z_size=NZ, num_mixture=M, hyper_num_units=NH, hyper_embedding_size=E)
    return HParams(**{**base, **kw})


def perturb(module, scale=0.2, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return module


def inputs(seed=0):
    """S_0..S_{T-1}: the start token, then random offsets with one-hot pen states."""
    g = torch.Generator().manual_seed(seed)
    s = torch.zeros(B, T, 5)
    s[:, 0, 2] = 1
    s[:, 1:, :2] = torch.randn(B, T - 1, 2, generator=g)
    s[:, 1:, 2:] = torch.eye(3)[torch.randint(0, 3, (B, T - 1), generator=g)]
    return s


@pytest.mark.parametrize("dec_model", CELLS)
def test_initial_state_is_tanh_of_a_projection_of_z(dec_model):
    torch.manual_seed(0)
    dec = perturb(Decoder(hparams(dec_model=dec_model)))
    z = torch.randn(B, NZ)
    state = dec.initial_state(z, B)
    v = torch.tanh(z @ dec.to_state.weight.t() + dec.to_state.bias)  # [h_0 ; c_0 (; ĥ_0 ; ĉ_0)]
    torch.testing.assert_close(torch.cat(state, 1), v)
    cell = {"lstm": LSTMCell, "layer_norm": LayerNormLSTMCell, "hyper": HyperLSTMCell}[dec_model]
    assert isinstance(dec.cell, cell)
    assert dec.cell.input_size == 5 + NZ
    assert dec.to_state.out_features == dec.cell.state_size == 2 * H + (2 * NH if dec_model == "hyper" else 0)


@pytest.mark.parametrize("dec_model", CELLS)
def test_step_by_step_equals_teacher_forcing(dec_model):
    torch.manual_seed(1)
    dec = perturb(Decoder(hparams(dec_model=dec_model))).eval()
    s, z = inputs(), torch.randn(B, NZ)
    y, final = dec(s, z)
    assert y.shape == (B, T, mdn.output_size(M))
    state = dec.initial_state(z, B)
    ys = []
    for t in range(T):
        y_t, state = dec.step(s[:, t], z, state)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, 1), y, rtol=1e-5, atol=1e-5)
    for a, b in zip(state, final):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_cell_input_is_the_previous_point_and_z():
    dec = Decoder(hparams())
    s, z = inputs(), torch.randn(B, NZ)
    x = dec.cell_inputs(s, z)  # [B, T, 5 + N_z]
    torch.testing.assert_close(x[..., :5], s)
    torch.testing.assert_close(x[..., 5:], z[:, None].expand(B, T, NZ))
    torch.testing.assert_close(dec.cell_inputs(s[:, 0], z), torch.cat([s[:, 0], z], 1))


def test_output_layer_is_linear_in_h():
    torch.manual_seed(2)
    dec = perturb(Decoder(hparams())).eval()
    s, z = inputs(), torch.randn(B, NZ)
    y, _ = dec(s, z)
    h, _ = dec.cell.sequence(dec.cell_inputs(s, z), dec.initial_state(z, B))
    torch.testing.assert_close(y, h @ dec.to_y.weight.t() + dec.to_y.bias)  # y_i = W_y h_i + b_y


def test_reference_initialisation_of_the_heads():
    torch.manual_seed(3)
    dec = Decoder(HParams(dec_rnn_size=256, z_size=64, num_mixture=20))
    w = dec.to_state.weight
    assert w.shape == (2 * 256, 64) and abs(w.std().item() - 0.001) < 1e-4  # N(0, 0.001)
    assert torch.count_nonzero(dec.to_state.bias) == 0
    n = 6 * 20 + 3
    assert dec.to_y.weight.shape == (n, 256)
    assert dec.to_y.weight.abs().max() <= math.sqrt(6 / (256 + n))  # Glorot-uniform
    assert dec.to_y.bias.abs().max() <= math.sqrt(3 / n)  # TF's Glorot on a 1-D variable
    assert dec.to_y.bias.abs().max() > 0.5 * math.sqrt(3 / n)


def test_input_and_output_dropout_only_in_training():
    torch.manual_seed(4)
    dec = perturb(Decoder(hparams(use_input_dropout=True, use_output_dropout=True, use_recurrent_dropout=False)))
    assert dec.input_drop == pytest.approx(0.1) and dec.output_drop == pytest.approx(0.1)
    plain = Decoder(hparams(use_recurrent_dropout=False))
    plain.load_state_dict(dec.state_dict())
    s, z = inputs(), torch.randn(B, NZ)
    y_eval, _ = dec.eval()(s, z)
    torch.testing.assert_close(y_eval, plain.eval()(s, z)[0])
    dec.train()
    assert not torch.allclose(dec(s, z)[0], y_eval)
    assert not torch.allclose(dec.step(s[:, 0], z, dec.initial_state(z, B))[0], y_eval[:, 0])


def test_unconditional_decoder_reads_only_the_points_from_a_zero_state():
    dec = Decoder(hparams(conditional=False, dec_model="hyper"))
    assert not hasattr(dec, "to_state")
    assert dec.cell.input_size == 5
    state = dec.initial_state(None, 2)
    assert [tuple(t.shape) for t in state] == [(2, H), (2, H), (2, NH), (2, NH)]
    assert all(torch.count_nonzero(t) == 0 for t in state)
    y, _ = dec(inputs(), None)
    assert y.shape == (B, T, mdn.output_size(M))
    with pytest.raises(ValueError, match="batch_size"):
        dec.initial_state(None)


@pytest.mark.parametrize("dec_model", CELLS)
def test_trace_follows_the_teacher_forced_pass(dec_model):
    torch.manual_seed(5)
    dec = perturb(Decoder(hparams(dec_model=dec_model))).eval()
    s, z = inputs(), torch.randn(B, NZ)
    tr = dec.trace(s, z)
    assert all(tr[k].shape == (T, B, H) for k in "ifgoch")
    torch.testing.assert_close(dec.to_y(tr["h"].transpose(0, 1)), dec(s, z)[0], rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_errors():
    dec = Decoder(hparams())
    with pytest.raises(ValueError, match="z must be"):
        dec.initial_state(torch.zeros(B, NZ + 1), B)
    with pytest.raises(ValueError, match="needs z"):
        dec(inputs(), None)
    with pytest.raises(ValueError, match=r"\[B, T, 5\]"):
        dec(inputs()[..., :4], torch.zeros(B, NZ))
    with pytest.raises(ValueError, match="unknown cell"):
        make_cell("gru", 5, H, hparams())
