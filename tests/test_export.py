"""The ONNX export (sketchlib.export) against the PyTorch model it came from, run with onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sketchlib.config import HParams
from sketchlib.data.strokes import pad_batch
from sketchlib.nn.model import SketchRNN

ort = pytest.importorskip("onnxruntime")

from sketchlib import sample  # noqa: E402
from sketchlib.export import HEAD_LAYOUT, OnnxSketchRNN, export_model  # noqa: E402


@pytest.fixture(scope="module")
def shipped(one_thread, tmp_path_factory):
    """The shipped kanjivg checkpoint, exported, and 12 test characters (normalised stroke-3)."""
    from sketchlib.data.datasets import load_dataset
    from sketchlib.pretrained import load_pretrained

    model, hp, _ = load_pretrained("kanjivg", progress=False)
    data = load_dataset("kanjivg", max_seq_len=hp.max_seq_len)
    out = tmp_path_factory.mktemp("onnx")
    latent = (torch.zeros(hp.z_size), torch.eye(hp.z_size)[:2], torch.ones(2))
    meta = export_model(model, out, "kanjivg", scale=hp.extra["scale"], grid_size=109, epsilon=1.0,
                        latent=latent, examples={"a": data.test[0]})
    return model, OnnxSketchRNN(out, "kanjivg"), data.test[:12], meta, out


def test_teacher_forced_outputs_agree(shipped):
    model, onnx, sketches, _, _ = shipped
    strokes, lengths = pad_batch(sketches, model.hp.max_seq_len)
    mu_o, sigma_hat_o = onnx.encode(strokes, lengths)
    with torch.no_grad():
        mu_t, sigma_hat_t = model.encode(torch.from_numpy(strokes), torch.from_numpy(lengths))
        y_t, _ = model.decoder(torch.from_numpy(strokes[:, :-1]), mu_t)  # [B, N_max, 6M+3]
    np.testing.assert_allclose(mu_o, mu_t.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(sigma_hat_o, sigma_hat_t.numpy(), atol=1e-4, rtol=0)
    y_o = onnx.teacher_forced(strokes, mu_t.numpy())
    assert y_o.shape == y_t.shape
    np.testing.assert_allclose(y_o, y_t.numpy(), atol=1e-4, rtol=0)


def test_head_output_is_the_mdn_of_y(shipped):
    model, onnx, _, _, _ = shipped
    from sketchlib.nn import mdn

    z = torch.randn(3, model.hp.z_size, generator=torch.Generator().manual_seed(0))
    s = np.tile(np.array([0.3, -0.2, 1, 0, 0], np.float32), (3, 1))
    y, state, head = onnx.step(s, z.numpy(), onnx.initial_state(z.numpy()))
    p = mdn.split(torch.from_numpy(y))
    expected = torch.cat([p.q_hat, p.pi_hat, p.mu_x, p.mu_y, p.sigma_x, p.sigma_y, p.rho], dim=1)
    np.testing.assert_allclose(head, expected.numpy(), rtol=1e-6, atol=1e-7)
    assert state.shape == (3, sum(model.decoder.cell.state_sizes))
    assert HEAD_LAYOUT == ("q_hat", "pi_hat", "mu_x", "mu_y", "sigma_x", "sigma_y", "rho")


def test_greedy_decodes_agree(shipped):
    """The same z: the same pen states, and offsets within 1e-4, for PyTorch and the ONNX graphs (batch 1 and 12)."""
    model, onnx, sketches, _, _ = shipped
    z = sample.encode(model, sketches)
    ref = sample.sample(model, n=len(sketches), z=z, greedy=True)
    got = onnx.sample(z.numpy(), greedy=True)
    one = onnx.sample(z[:1].numpy(), greedy=True)
    assert [len(a) for a in got] == [len(a) for a in ref]
    assert sum(len(a) for a in ref) > 50
    for a, b in zip(got + one, ref + ref[:1]):
        np.testing.assert_array_equal(a[:, 2], b[:, 2])
        np.testing.assert_allclose(a[:, :2], b[:, :2], atol=1e-4, rtol=0)


def test_json_describes_the_data_and_the_files(shipped):
    model, _, _, meta, out = shipped
    on_disk = json.loads((out / "kanjivg.json").read_text())
    assert on_disk == json.loads(json.dumps(meta))
    assert meta["scale"] == pytest.approx(model.hp.extra["scale"])
    assert meta["strokes"]["grid_size"] == 109 and meta["strokes"]["rdp_epsilon"] == 1.0
    assert meta["strokes"]["origin"] == [0.0, 0.0] and meta["strokes"]["start_token"] == [0, 0, 1, 0, 0]
    assert meta["max_seq_len"] == model.hp.max_seq_len and meta["config"] == model.hp.to_dict()
    assert len(meta["latent"]["directions"]) == 2 and len(meta["latent"]["directions"][0]) == model.hp.z_size
    assert set(meta["files"]) == {"encoder", "init", "step"}
    assert all((out / f).stat().st_size == meta["bytes"][k] for k, f in meta["files"].items())


def test_a_changed_file_is_refused(shipped, tmp_path):
    _, _, _, meta, out = shipped
    for f in [*meta["files"].values(), "kanjivg.json"]:
        (tmp_path / f).write_bytes((out / f).read_bytes())
    step = tmp_path / meta["files"]["step"]
    step.write_bytes(step.read_bytes()[:-1] + b"\0")
    with pytest.raises(ValueError, match="sha256 differs"):
        OnnxSketchRNN(tmp_path, "kanjivg")


def test_models_the_export_cannot_take_are_refused(tmp_path):
    hp = HParams(conditional=False, dec_rnn_size=16, max_seq_len=10, num_mixture=2)
    with pytest.raises(ValueError, match="unconditional"):
        export_model(SketchRNN(hp), tmp_path, "m", scale=1.0, grid_size=109, epsilon=1.0)
    hp = HParams(enc_model="layer_norm", enc_rnn_size=8, dec_rnn_size=16, z_size=4, max_seq_len=10, num_mixture=2)
    with pytest.raises(ValueError, match="plain LSTM"):
        export_model(SketchRNN(hp), tmp_path, "m", scale=1.0, grid_size=109, epsilon=1.0)
    hp = HParams(enc_rnn_size=8, dec_model="hyper", dec_rnn_size=16, z_size=4, max_seq_len=10, num_mixture=2)
    with pytest.raises(ValueError, match="plain LSTM"):
        export_model(SketchRNN(hp), tmp_path, "m", scale=1.0, grid_size=109, epsilon=1.0)
    hp = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, max_seq_len=10, num_mixture=2)
    with pytest.raises(ValueError, match="scale"):
        export_model(SketchRNN(hp), tmp_path, "m", scale=0.0, grid_size=109, epsilon=1.0)
