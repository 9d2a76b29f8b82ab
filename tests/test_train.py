"""Training loop: exact resume, determinism, NaN stop, files and logs, clipping, CLI + export, DDP on 2 CPU processes."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchlib.train import checkpoint
import sketchlib.train as T
from sketchlib.train import cli, loop, session, step as S
from sketchlib.nn.loss import LOSS_KEYS
from sketchlib.nn.model import SketchRNN
from sketchlib.config import HParams
from sketchlib.data import SketchData


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny tensors run fastest on one thread


ROOT = Path(__file__).resolve().parents[1]
HP = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=20, batch_size=4)


def _sketches(rng, n):
    out = []
    for _ in range(n):
        m = int(rng.integers(4, 19))
        s = np.zeros((m, 3), dtype=np.float32)
        s[:, :2] = rng.normal(size=(m, 2))
        s[rng.random(m) < 0.2, 2] = 1
        s[-1, 2] = 1
        out.append(s)
    return out


def tiny_data(seed=0) -> SketchData:
    rng = np.random.default_rng(seed)
    tr, va, te = _sketches(rng, 40), _sketches(rng, 10), _sketches(rng, 10)
    return SketchData("tiny", tr, va, te, 1.0, max(len(s) for s in tr + va + te))


def _run(out, steps, **kw):
    args = dict(eval_every=5, save_every=4, seed=3, log_every=1, progress=False, plot=False)
    args.update(kw)
    return T.train(HP, tiny_data(), out, steps, **args)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _strip(records):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


def test_resume_is_bit_exact(tmp_path):
    full = _run(tmp_path / "full", 12)
    half = _run(tmp_path / "split", 6)
    assert half.step == 6
    resumed = _run(tmp_path / "split", 12)
    assert resumed.step == 12 and full.step == 12
    # the same losses at every step (log_every=1), before and after the resume ...
    assert _strip(resumed.train) == _strip(full.train)
    assert len(full.train) == 12
    # ... and the same weights and Adam state at the end, bit for bit
    a, b = _weights(full.model), _weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    _, _, ia = checkpoint.read(full.checkpoint)
    _, _, ib = checkpoint.read(resumed.checkpoint)
    for i, st in ia["optimizer_state"]["state"].items():
        for k, v in st.items():
            assert torch.equal(v, ib["optimizer_state"]["state"][i][k]), (i, k)
    assert ia["step"] == ib["step"] == 12


def test_deterministic_with_a_seed_and_seed_matters(tmp_path):
    r1 = _run(tmp_path / "a", 3, seed=1)
    r2 = _run(tmp_path / "b", 3, seed=1)
    r3 = _run(tmp_path / "c", 3, seed=2)
    assert _strip(r1.train) == _strip(r2.train)
    w1, w2, w3 = _weights(r1.model), _weights(r2.model), _weights(r3.model)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert not all(torch.equal(w1[k], w3[k]) for k in w1)


def test_files_logs_checkpoints_and_schedules(tmp_path):
    res = _run(tmp_path / "run", 10, log_every=2, plot=True)
    out = tmp_path / "run"
    assert {p.name for p in out.iterdir()} == {"last.safetensors", "best.safetensors", "log.jsonl", "loss_curve.png", ".lock"}
    recs = T.read_log(out / "log.jsonl")
    train = [r for r in recs if r["split"] == "train"]
    valid = [r for r in recs if r["split"] == "valid"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10] and [r["step"] for r in valid] == [5, 10]
    from sketchlib.train.schedules import kl_weight, learning_rate
    assert train[-1]["lr"] == learning_rate(9, res.model.hp) and train[-1]["kl_weight"] == kl_weight(9, res.model.hp)
    for r in recs:
        assert set(LOSS_KEYS) <= set(r) and all(np.isfinite(r[k]) for k in LOSS_KEYS)
    assert res.valid == valid and res.train == train
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, hp, info = checkpoint.load(out / "last.safetensors")
    assert info["step"] == 10 and hp.max_seq_len == tiny_data().max_seq_len and hp.extra["dataset"] == "tiny"
    assert info["metrics"]["valid"]["step"] == 10
    assert info["extra"]["run_info"]["seed"] == 3
    best_valid = min(valid, key=lambda r: r["loss"])
    assert checkpoint.read(out / "best.safetensors")[2]["step"] == best_valid["step"]
    # validation is deterministic (fixed batches, fixed eps): evaluating the saved model gives the logged value
    v = T.evaluate(model, tiny_data().valid, hp, kl_weight_value=valid[-1]["kl_weight"] if "kl_weight" in valid[-1]
                   else kl_weight(9, hp), seed=3)
    assert v["L_R"] == pytest.approx(valid[-1]["L_R"], rel=1e-6) and v["L_KL"] == pytest.approx(valid[-1]["L_KL"])


def test_training_mode_augmentation_and_eval_mode(tmp_path, monkeypatch):
    seen = {"train_modes": set(), "batches": []}
    orig_loss = S.total_loss

    class Spy(loop.StrokeBatches):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            seen["batches"].append(self.augment)

    def spy_loss(out, *a, **k):
        seen["train_modes"].add(torch.is_grad_enabled())
        return orig_loss(out, *a, **k)

    monkeypatch.setattr(loop, "StrokeBatches", Spy)
    monkeypatch.setattr(S, "total_loss", spy_loss)
    modes = []
    orig_forward = SketchRNN.forward
    monkeypatch.setattr(SketchRNN, "forward", lambda self, *a, **k: (modes.append(self.training),
                                                                       orig_forward(self, *a, **k))[1])
    _run(tmp_path / "r", 2, eval_every=2)
    assert seen["batches"][0] is True  # the training batches augment ...
    assert seen["batches"][1:] and not any(seen["batches"][1:])  # ... validation batches do not
    assert modes[:2] == [True, True] and modes[2:] and not any(modes[2:])  # dropout on in training only


def test_gradient_clipping_by_value_and_norm():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([3.0, -0.5, -7.0, 0.2])
    T.clip_gradients([p], HP)
    assert torch.equal(p.grad, torch.tensor([1.0, -0.5, -1.0, 0.2]))
    p.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    T.clip_gradients([p], HP.replace(grad_clip_mode="norm"))
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.8, 0.0, 0.0]))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    orig = S.total_loss
    calls = {"n": 0}

    def poisoned(*a, **k):
        losses = orig(*a, **k)
        calls["n"] += 1
        if calls["n"] == 6:  # the 6th update's loss is NaN
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(S, "total_loss", poisoned)
    out = tmp_path / "r"
    with pytest.raises(T.NonFiniteLoss, match=r"non-finite loss at step 6.*loss=nan.*last good checkpoint.*step 4"):
        _run(out, 10, eval_every=100, save_every=4)
    weights, _, info = checkpoint.read(out / "last.safetensors")
    assert info["step"] == 4
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert max(r["step"] for r in T.read_log(out / "log.jsonl")) == 5


def test_time_budget_stops_cleanly(tmp_path):
    res = _run(tmp_path / "r", 1000, time_budget_s=0.0)
    assert res.stopped == "time_budget" and res.step == 1
    assert checkpoint.read(res.checkpoint)[2]["step"] == 1 and res.valid[-1]["step"] == 1


def test_resume_refuses_a_different_config(tmp_path):
    _run(tmp_path / "r", 2)
    with pytest.raises(ValueError, match="same seed"):
        T.train(HP, tiny_data(), tmp_path / "r", 4, seed=99, progress=False, plot=False)
    with pytest.raises(ValueError, match="different config"):
        T.train(HP.replace(dec_rnn_size=8), tiny_data(), tmp_path / "r", 4, progress=False, plot=False)
    fresh = T.train(HP.replace(dec_rnn_size=8), tiny_data(), tmp_path / "r", 2, resume=False, progress=False,
                    plot=False)
    assert fresh.step == 2 and len(fresh.train) == 1


def test_unconditional_and_layer_norm_decoders_train(tmp_path):
    for i, hp in enumerate((HP.replace(conditional=False), HP.replace(dec_model="layer_norm"))):
        res = T.train(hp, tiny_data(), tmp_path / str(i), 2, log_every=1, progress=False, plot=False)
        assert res.step == 2 and np.isfinite(res.train[-1]["loss"])


def test_hp_from_args():
    hp = cli.hp_from_args(["dec_rnn_size=32", "use_recurrent_dropout=false", "kl_weight=0.25", "dec_model=hyper"])
    assert (hp.dec_rnn_size, hp.use_recurrent_dropout, hp.kl_weight, hp.dec_model) == (32, False, 0.25, "hyper")
    with pytest.raises(ValueError, match="unknown hyperparameter 'nope'"):
        cli.hp_from_args(["nope=1"])
    with pytest.raises(ValueError, match="expected int"):
        cli.hp_from_args(["z_size=1.5"])


def _write_npz(path):
    from sketchlib.data.npz import save_npz

    rng = np.random.default_rng(0)

    def split(n):
        return [np.round(s * np.array([10, 10, 1])).astype(np.int16) for s in _sketches(rng, n)]

    save_npz(path, {"train": split(40), "valid": split(10), "test": split(10)})
    return path


def test_cli_train_resume_and_export(tmp_path, capsys):
    npz = _write_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    hp_args = ["--hp", "enc_rnn_size=8", "dec_rnn_size=16", "z_size=4", "num_mixture=3", "max_seq_len=20",
               "batch_size=4"]
    base = ["--dataset", str(npz), "--out", str(out), "--no-progress", "--no-plot", "--eval-every", "2", "--save-every", "2",
            "--log-every", "1", "--dec-model", "layer_norm", *hp_args]
    assert T.main(base + ["--steps", "3"]) == 0
    assert T.main(base + ["--steps", "5"]) == 2  # an existing run needs --resume
    assert "pass --resume" in capsys.readouterr().err
    assert T.main(base + ["--steps", "5", "--resume"]) == 0
    _, hp, info = checkpoint.read(out / "last.safetensors")
    assert info["step"] == 5 and hp.dec_model == "layer_norm" and hp.dec_rnn_size == 16
    run_info = info["extra"]["run_info"]
    assert run_info["command"].startswith("python -m sketchlib.train --dataset") and "--steps 3" in run_info["command"]
    assert "--resume" in run_info["resumed_with"][0]

    from sketchlib.data import load_dataset
    dest = tmp_path / "data"
    data = load_dataset(str(npz), max_seq_len=20, progress=False)
    path = T.export(out, "tiny", dest, which="last.safetensors", data=data, test_sketches=6)
    assert sorted(p.name for p in dest.iterdir()) == ["tiny.log.jsonl", "tiny.manifest.json", "tiny.safetensors"]
    man = json.loads((dest / "tiny.manifest.json").read_text())
    assert man["steps"] == 5 and man["config"]["dec_model"] == "layer_norm" and man["dataset"] == "tiny"
    assert man["command"] == run_info["command"] and man["hardware"] and "commit" in man
    assert man["final_train"]["step"] == 5 and man["final_valid"]["step"] == 5
    assert man["test_eval"]["sketches"] == 6 and np.isfinite(man["test_eval"]["L_R"])
    assert man["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert checkpoint.read(path)[2]["optimizer_state"] is None  # exported weights only
    assert T.read_log(dest / "tiny.log.jsonl") == T.read_log(out / "log.jsonl")
    # exporting an earlier checkpoint of a run keeps only the log up to that checkpoint
    import shutil
    shutil.copy(out / "best.safetensors", out / "early.safetensors")
    early_step = checkpoint.read(out / "early.safetensors")[2]["step"]
    T.export(out, "early", dest, which="early.safetensors", data=data, test_sketches=6)
    man = json.loads((dest / "early.manifest.json").read_text())
    assert man["steps"] == early_step and max(r["step"] for r in T.read_log(dest / "early.log.jsonl")) == early_step
    assert man["final_train"]["step"] <= early_step

    # half-precision export: F16 tensors in the file, float32 model on load, the manifest's loss is the file's
    half = T.export(out, "half", dest, which="last.safetensors", data=data, test_sketches=6, dtype="float16")
    weights, _, _ = checkpoint.read(half)
    assert {v.dtype for v in weights.values()} == {torch.float16}
    man16 = json.loads((dest / "half.manifest.json").read_text())
    assert man16["weights_dtype"] == "float16" and man16["sha256"] == hashlib.sha256(half.read_bytes()).hexdigest()
    model16, _, _ = checkpoint.load(half)
    assert all(p.dtype == torch.float32 for p in model16.parameters())
    again = T.evaluate(model16, data.test, model16.hp, max_sketches=6, seed=0)
    assert again["L_R"] == pytest.approx(man16["test_eval"]["L_R"], abs=1e-5)
    nbytes = lambda ws: sum(v.numel() * v.element_size() for v in ws.values())  # noqa: E731
    assert 2 * nbytes(weights) == nbytes(checkpoint.read(path)[0])
    with pytest.raises(ValueError, match="dtype must be"):
        T.export(out, "bad", dest, data=data, dtype="int8")


DDP_SCRIPT = textwrap.dedent('''
    import hashlib, os, sys
    import torch
    sys.path.insert(0, sys.argv[2])
    from test_train import HP, tiny_data
    import sketchlib.train as T
    torch.set_num_threads(1)
    out = sys.argv[1]
    res = T.train(HP, tiny_data(), os.path.join(out, "run"), 4, eval_every=2, save_every=2, log_every=1,
                  seed=5, progress=False, plot=False)
    h = hashlib.sha256()
    for k, v in sorted(res.model.state_dict().items()):
        h.update(k.encode()); h.update(v.numpy().tobytes())
    rank = os.environ["RANK"]
    with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
        f.write(f"{h.hexdigest()} {res.step} {res.checkpoint} {len(res.train)}")
''')


def test_ddp_two_cpu_processes_keep_identical_weights(tmp_path):
    script = tmp_path / "ddp_job.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                           str(script), str(tmp_path), str(ROOT / "tests")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = (tmp_path / "rank0.txt").read_text().split()
    r1 = (tmp_path / "rank1.txt").read_text().split()
    assert r0[0] == r1[0]  # the same weights on both ranks after 4 updates
    assert r0[1] == r1[1] == "4"
    assert r0[2].endswith("last.safetensors") and r1[2] == "None"  # only rank 0 writes
    assert r0[3] == "4" and r1[3] == "0"
    info = checkpoint.read(tmp_path / "run" / "last.safetensors")[2]
    assert info["step"] == 4 and info["extra"]["run_info"]["world_size"] == 2
    # the ranks drew different batches: the weights differ from a 1-process run with the same seed
    single = T.train(HP, tiny_data(), tmp_path / "single", 4, eval_every=2, save_every=2, log_every=1, seed=5,
                     progress=False, plot=False)
    h = hashlib.sha256()
    for k, v in sorted(single.model.state_dict().items()):
        h.update(k.encode())
        h.update(v.numpy().tobytes())
    assert h.hexdigest() != r0[0]


def test_prefetch_gives_the_same_batches_in_order():
    from sketchlib.data import StrokeBatches

    data = tiny_data()
    b = StrokeBatches(data.train, 4, 20, augment=True, seed=7)
    pre = session.Prefetch(b, depth=2)
    try:
        for t in [0, 1, 2, 5, 6, 3]:
            got, ref = pre.get(t), b.batch(t)
            assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
    finally:
        pre.close()


# --------------------------------------------------------------------------- issue 10 (hardening), issue 14
def _diverge_after(monkeypatch, t0):
    """Updates t >= t0 use a learning rate of 1e6: the weights jump to ~1e6 and the losses to inf / NaN."""
    orig = loop.learning_rate
    monkeypatch.setattr(loop, "learning_rate", lambda t, hp: orig(t, hp) if t < t0 else 1e6)


def test_item2_a_diverged_run_never_overwrites_the_last_good_checkpoint(tmp_path, monkeypatch):
    _diverge_after(monkeypatch, 2)
    out = tmp_path / "r"
    with pytest.raises(T.NonFiniteLoss, match=r"the last good checkpoint is .*last.safetensors \(step 2\)"):
        _run(out, 10, eval_every=1, save_every=1)
    weights, _, info = checkpoint.read(out / "last.safetensors")
    assert info["step"] == 2
    assert all(torch.isfinite(v).all() and v.abs().max() < 1e3 for v in weights.values())
    for rec in (info["metrics"]["train"], info["metrics"]["valid"]):
        assert all(np.isfinite(rec[k]) for k in LOSS_KEYS)
    assert checkpoint.read(out / "best.safetensors")[2]["step"] <= 2


def test_item2_with_no_good_checkpoint_the_message_says_so(tmp_path, monkeypatch):
    _diverge_after(monkeypatch, 0)
    out = tmp_path / "r"
    with pytest.raises(T.NonFiniteLoss, match="no good checkpoint exists"):
        _run(out, 10, eval_every=1, save_every=100)
    assert not (out / "last.safetensors").exists() and not (out / "best.safetensors").exists()


def test_item5_export_reloads_the_local_file_the_run_was_trained_on(tmp_path):
    npz = _write_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    hp_args = ["--hp", "enc_rnn_size=8", "dec_rnn_size=16", "z_size=4", "num_mixture=3", "batch_size=4"]
    assert T.main(["--dataset", str(npz), "--out", str(out), "--steps", "2", "--no-progress", "--no-plot",
                   "--eval-every", "2", *hp_args]) == 0
    dest = tmp_path / "data"
    T.export(out, "tiny", dest, test_sketches=6)  # no data=: the run's own record says which data
    man = json.loads((dest / "tiny.manifest.json").read_text())
    assert man["dataset_identity"]["spec"] == str(npz.resolve())
    assert man["dataset_identity"]["sha256"] == {str(npz.resolve()): hashlib.sha256(npz.read_bytes()).hexdigest()}
    from sketchlib.data import load_dataset
    model, hp, _ = checkpoint.load(dest / "tiny.safetensors")
    ref = T.evaluate(model, load_dataset(str(npz), max_seq_len=hp.max_seq_len, progress=False).test, hp,
                     max_sketches=6, seed=0)
    assert man["test_eval"]["L_R"] == ref["L_R"]
    _write_npz(npz)  # the same content: still fine
    npz.write_bytes(npz.read_bytes() + b"\0")  # a changed file is refused, not silently used
    with pytest.raises(ValueError, match="has changed"):
        T.export(out, "tiny2", dest, test_sketches=6)


def test_item12_a_truncated_last_log_line_is_dropped_with_a_warning_and_the_run_resumes(tmp_path):
    out = tmp_path / "r"
    _run(out, 4)
    with open(out / "log.jsonl", "a") as f:
        f.write('{"split": "train", "st')  # a kill mid-append
    with pytest.warns(UserWarning, match="truncated last line"):
        res = _run(out, 6)
    assert res.step == 6
    assert [r["step"] for r in T.read_log(out / "log.jsonl") if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    lines = (out / "log.jsonl").read_text().splitlines()
    lines.insert(1, "{not json")
    (out / "log.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"log.jsonl: line 2 is not a JSON object"):
        T.read_log(out / "log.jsonl")


def _cli_error(capsys, argv) -> str:
    assert T.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_item13_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    out = ["--out", str(tmp_path / "r"), "--steps", "2", "--no-progress"]
    assert "no-such.npz" in _cli_error(capsys, ["--dataset", str(tmp_path / "no-such.npz"), *out])
    npz = str(_write_npz(tmp_path / "tiny.npz"))
    assert "grad_clip must be in (0, inf)" in _cli_error(capsys, ["--dataset", npz, *out, "--hp", "grad_clip=-1"])
    assert "expected int" in _cli_error(capsys, ["--dataset", npz, *out, "--hp", "z_size=1.5"])
    assert "checkpoint not found" in _cli_error(capsys, ["--export", str(tmp_path / "nothing"), "--dest", str(tmp_path / "d")])


def test_item14_bad_limits_are_refused(tmp_path, capsys):
    npz = str(_write_npz(tmp_path / "tiny.npz"))
    base = ["--dataset", npz, "--out", str(tmp_path / "r"), "--steps", "2", "--no-progress"]
    assert "--limit must be >= 1, got -1" in _cli_error(capsys, base + ["--limit", "-1"])
    assert "--valid-max must be >= 1, got 0" in _cli_error(capsys, base + ["--valid-max", "0"])
    with pytest.raises(ValueError, match="valid_max_sketches must be"):
        _run(tmp_path / "x", 2, valid_max_sketches=0)


def test_item14_an_empty_validation_split_is_a_warning_and_logged(tmp_path):
    data = tiny_data()
    data.valid = []
    with pytest.warns(UserWarning, match="validation split is empty"):
        res = T.train(HP, data, tmp_path / "r", 2, progress=False, plot=False, log_every=1)
    assert res.valid == [] and res.step == 2
    notes = [r for r in T.read_log(tmp_path / "r" / "log.jsonl") if r["split"] == "warning"]
    assert len(notes) == 1 and "validation split is empty" in notes[0]["message"] and notes[0]["step"] == 0


def test_issue14_export_ships_the_best_checkpoint_and_says_why(tmp_path):
    out = tmp_path / "r"
    res = _run(out, 10, eval_every=2, save_every=5)
    best = min(res.valid, key=lambda r: r["loss"])
    path = T.export(out, "tiny", tmp_path / "data", data=tiny_data(), test_sketches=6)
    man = json.loads((tmp_path / "data" / "tiny.manifest.json").read_text())
    assert man["checkpoint"]["file"] == "best.safetensors" and man["checkpoint"]["step"] == best["step"]
    assert man["steps"] == best["step"] == checkpoint.read(path)[2]["step"]
    assert "lowest validation loss" in man["checkpoint"]["reason"]
    assert man["checkpoint"]["valid_loss"] == best["loss"] and man["checkpoint"]["last_step_of_run"] == 10
    T.export(out, "last", tmp_path / "data", which="last.safetensors", data=tiny_data(), test_sketches=6)
    man = json.loads((tmp_path / "data" / "last.manifest.json").read_text())
    assert man["checkpoint"]["file"] == "last.safetensors" and man["steps"] == 10
