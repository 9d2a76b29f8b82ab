"""Checkpoint format: round trip (weights, config, metrics, Adam state), clear errors, atomic writes, no pickle."""

import json
import os

import pytest
import torch
from torch import nn

from sketchlib.train import checkpoint
from sketchlib.config import HParams


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


class Tiny(nn.Module):
    """A stand-in model whose shapes depend on the config, like SketchRNN's."""

    def __init__(self, hp: HParams):
        super().__init__()
        self.enc = nn.Linear(5, hp.enc_rnn_size)
        self.dec = nn.Linear(hp.enc_rnn_size, hp.dec_rnn_size)
        self.register_buffer("counter", torch.arange(3))

    def forward(self, x):
        return self.dec(torch.tanh(self.enc(x)))


HP = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=20, batch_size=4)


def _trained(steps=3):
    torch.manual_seed(0)
    model = Tiny(HP)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(4, 5)).pow(2).mean().backward()
        opt.step()
    return model, opt


def _continue(model, opt, steps=2):
    torch.manual_seed(1)
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(4, 5)).pow(2).mean().backward()
        opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_round_trip_weights_config_metrics_and_exact_resume(tmp_path):
    model, opt = _trained()
    path = tmp_path / "ck.safetensors"
    checkpoint.save(path, model, HP, step=3, metrics={"loss": 0.25, "L_KL": 0.2}, optimizer=opt,
                    extra={"dataset": "kanjivg", "scale": 20.5})
    loaded, hp, info = checkpoint.load(path, build=Tiny)
    assert hp == HP
    assert info["step"] == 3 and info["metrics"] == {"loss": 0.25, "L_KL": 0.2}
    assert info["extra"] == {"dataset": "kanjivg", "scale": 20.5}
    assert not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    # the optimizer state resumes bit-exactly: continue both and compare
    opt2 = torch.optim.Adam(loaded.parameters(), lr=1e-2)
    checkpoint.restore_optimizer(opt2, info)
    loaded.train()
    a = _continue(model, opt)
    b = _continue(loaded, opt2)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_metadata_is_plain_json_and_no_pickle(tmp_path, monkeypatch):
    from safetensors import safe_open

    model, opt = _trained()
    path = tmp_path / "ck.safetensors"
    checkpoint.save(path, model, HP, step=7, metrics={"loss": 1.0}, optimizer=opt)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["format"] == checkpoint.FORMAT
    assert HParams.from_json(meta["hparams"]) == HP
    assert json.loads(meta["step"]) == 7
    assert {"enc.weight", "dec.bias", "counter", "__optimizer__/0/exp_avg", "__optimizer__/0/exp_avg_sq",
            "__optimizer__/0/step"} <= keys
    opt_meta = json.loads(meta["optimizer"])
    assert opt_meta["class"] == "Adam" and opt_meta["param_names"][0] == "enc.weight"

    def no_pickle(*a, **k):
        raise AssertionError("checkpoint loading must not unpickle")

    monkeypatch.setattr(torch, "load", no_pickle)
    monkeypatch.setattr("pickle.loads", no_pickle)
    checkpoint.load(path, build=Tiny)


def test_export_without_optimizer(tmp_path):
    model, _ = _trained()
    path = tmp_path / "m.safetensors"
    checkpoint.save(path, model, HP, step=1)
    _, _, info = checkpoint.load(path, build=Tiny)
    assert info["optimizer_state"] is None
    with pytest.raises(ValueError, match="no optimizer state"):
        checkpoint.restore_optimizer(torch.optim.Adam(Tiny(HP).parameters()), info)


def test_config_mismatch_names_the_key(tmp_path):
    model, _ = _trained()
    path = tmp_path / "ck.safetensors"
    checkpoint.save(path, model, HP, step=1)
    with pytest.raises(ValueError, match=r"shape mismatch for 'dec.weight'"):
        checkpoint.load_weights(Tiny(HP.replace(dec_rnn_size=32)), checkpoint.read(path)[0])

    class Missing(Tiny):
        def __init__(self, hp):
            super().__init__(hp)
            self.extra_head = nn.Linear(2, 2)

    with pytest.raises(ValueError, match=r"missing key 'extra_head.bias'"):
        checkpoint.load(path, build=Missing)

    class Fewer(nn.Module):
        def __init__(self, hp):
            super().__init__()
            self.enc = nn.Linear(5, hp.enc_rnn_size)
            self.register_buffer("counter", torch.arange(3))

    with pytest.raises(ValueError, match=r"unexpected key 'dec.bias'"):
        checkpoint.load(path, build=Fewer)


def test_corrupt_and_truncated_files(tmp_path):
    model, opt = _trained()
    path = tmp_path / "ck.safetensors"
    checkpoint.save(path, model, HP, step=1, optimizer=opt)
    data = path.read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(data[: len(data) - 100])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        checkpoint.load(trunc, build=Tiny)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint")
    with pytest.raises(ValueError, match="trunc|corrupt"):
        checkpoint.load(garbage, build=Tiny)
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF  # a bit flip inside the tensor data: the header still parses
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="digest"):
        checkpoint.load(bad, build=Tiny)
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "nope.safetensors", build=Tiny)


def test_plain_safetensors_is_not_a_sketchlib_checkpoint(tmp_path):
    import safetensors.torch

    path = tmp_path / "plain.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not a sketchlib checkpoint"):
        checkpoint.read(path)


def test_crashed_write_leaves_old_checkpoint(tmp_path, monkeypatch):
    model, opt = _trained()
    path = tmp_path / "ck.safetensors"
    checkpoint.save(path, model, HP, step=1, metrics={"loss": 1.0}, optimizer=opt)
    before = path.read_bytes()

    def crash(fd):  # the new bytes are in the temporary file, the process dies before the rename
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, model, HP, step=2, metrics={"loss": 0.5}, optimizer=opt)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]  # no temp file left
    assert checkpoint.read(path)[2]["step"] == 1


def _edit_header(src, dst, old: bytes, new: bytes):
    """Replace ``old`` by ``new`` (same length) in the file's JSON header: the header still parses."""
    data = src.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1, (old, data[:2000])
    dst.write_bytes(data.replace(old, new))
    return dst


def test_item3_metadata_is_covered_by_the_digest(tmp_path):
    model, opt = _trained()
    path = tmp_path / "ck.safetensors"
    checkpoint.save(path, model, HP.replace(extra={"scale": 1.5}), step=10, optimizer=opt,
                    extra={"run_info": {"dataset": {"spec": "/data/cats.npz"}}})
    assert checkpoint.read(path)[2]["step"] == 10
    edits = {"step": (b'"step":"10"', b'"step":"30"'),  # resume would silently skip 20 updates
             "forget_bias": (b'"forget_bias\\": 1.0', b'"forget_bias\\": 2.0'),
             "scale": (b'"scale\\": 1.5', b'"scale\\": 2.5'),
             "dataset": (b'cats.npz', b'dogs.npz')}
    for name, (old, new) in edits.items():
        bad = _edit_header(path, tmp_path / f"{name}.safetensors", old, new)
        with pytest.raises(ValueError, match="metadata .*digest.*corrupted"):
            checkpoint.read(bad)


def test_item3_format_1_files_still_load(tmp_path):
    """The shipped data/*.safetensors are format 1 (digest over the tensors only): still readable."""
    import safetensors.torch

    model, _ = _trained()
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"format": checkpoint.FORMAT_1, "hparams": HP.to_json(), "step": "7", "metrics": "{}", "extra": "{}",
            "optimizer": "null", "digest": checkpoint._digest(tensors)}
    path = tmp_path / "old.safetensors"
    path.write_bytes(safetensors.torch.save(tensors, metadata=meta))
    weights, hp, info = checkpoint.read(path)
    assert info["step"] == 7 and hp == HP and all(torch.equal(weights[k], tensors[k]) for k in tensors)
    assert checkpoint.FORMAT != checkpoint.FORMAT_1
