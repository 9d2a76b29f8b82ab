"""The training update as one CUDA graph (sketchlib.fast.cuda_graph) and the fused element-wise steps
(sketchlib.fast.fusion). The bookkeeping is checked on the CPU (eager mode); capture, replay and
torch.compile run wherever a GPU is present (skipped otherwise)."""

import numpy as np
import pytest
import torch

from sketchlib.train import checkpoint
from sketchlib import fast as fast_paths
import sketchlib.train as T
from sketchlib.config import HParams
from sketchlib.fast import cuda_graph
from sketchlib.fast.cuda_graph import GraphedTrainStep
from sketchlib.nn.loss import LOSS_KEYS
from sketchlib.train import step as train_step_module
from sketchlib.train.step import clip_gradients, make_optimizer
from sketchlib.data import SketchData
from sketchlib.fast.hyper import hyper_update
from sketchlib.fast.sequence import layer_norm_lstm_update, lstm_update
from sketchlib.nn.loss import total_loss
from sketchlib.nn.model import SketchRNN

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (runs wherever one is present)")

B, N = 4, 10
HP = HParams(enc_rnn_size=8, dec_rnn_size=12, z_size=4, num_mixture=3, hyper_num_units=6, hyper_embedding_size=4,
             max_seq_len=N, batch_size=B)


@pytest.fixture(autouse=True)
def _exact_float32():
    """Compare float32 results without TF32 (a GPU default in some builds)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def batches(n, seed=0):
    """n stroke-5 batches [B, N + 1, 5] with lengths in [2, N]."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        lengths = torch.randint(2, N + 1, (B,), generator=g)
        s = torch.zeros(B, N + 1, 5)
        s[:, 0, 2] = 1
        for b, L in enumerate(lengths.tolist()):
            s[b, 1:L + 1, :2] = torch.randn(L, 2, generator=g)
            s[b, 1:L + 1, 2] = 1
            s[b, L, 2:4] = torch.tensor([0.0, 1.0])
            s[b, L + 1:, 4] = 1
        out.append((s, lengths))
    return out


def plain_updates(model, optimizer, hp, data, lrs, ws, seeds, device="cpu"):
    """The eager loop of sketchlib.train, written out: the reference for the step object."""
    losses = []
    for (s, L), lr, w, seed in zip(data, lrs, ws, seeds):
        torch.manual_seed(seed)
        for g in optimizer.param_groups:
            g["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        s, L = s.to(device), L.to(device)
        out = total_loss(model(s, L), s, L, w, hp.kl_tolerance)
        out["loss"].backward()
        clip_gradients(list(model.parameters()), hp)
        optimizer.step()
        losses.append(torch.stack([out[k].detach() for k in LOSS_KEYS]))
    return torch.stack(losses)


def step_updates(step, data, lrs, ws, seeds):
    losses = []
    for (s, L), lr, w, seed in zip(data, lrs, ws, seeds):
        torch.manual_seed(seed)
        losses.append(step(s, L, lr, w).clone())
    return torch.stack(losses)


def fresh(hp, device="cpu", capturable=False):
    torch.manual_seed(0)
    model = SketchRNN(hp).to(device).train()
    return model, make_optimizer(model.parameters(), hp, capturable=capturable)


SCHEDULE = dict(lrs=[1e-3, 5e-4, 2e-3], ws=[0.01, 0.2, 0.5], seeds=[5, 6, 7])


def test_the_graphed_step_runs_the_one_train_step(monkeypatch):
    """GraphedTrainStep has no update of its own: it calls sketchlib.train.step.train_step (the loop's)."""
    calls = []
    orig = train_step_module.train_step

    def spy(*a, **k):
        calls.append(a[0])
        return orig(*a, **k)

    monkeypatch.setattr(cuda_graph, "train_step", spy)
    model, opt = fresh(HP)
    step = GraphedTrainStep(model, opt, HP, B, "cpu", graph=False)
    step_updates(step, batches(2), lrs=[1e-3, 1e-3], ws=[0.1, 0.1], seeds=[1, 2])
    assert calls == [model, model]


@pytest.mark.parametrize("dec_model", ["lstm", "layer_norm", "hyper"])
def test_eager_mode_equals_the_plain_loop(dec_model):
    hp = HP.replace(dec_model=dec_model)
    data = batches(3)
    m1, o1 = fresh(hp)
    ref = plain_updates(m1, o1, hp, data, **SCHEDULE)
    m2, o2 = fresh(hp)
    got = step_updates(GraphedTrainStep(m2, o2, hp, B, "cpu", graph=False), data, **SCHEDULE)
    assert torch.equal(ref, got)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)


def test_restore_undoes_the_warm_up_updates():
    """What the capture does after its warm-up: weights and Adam state back, so update one is update one."""
    data = batches(2)
    m1, o1 = fresh(HP)
    ref = plain_updates(m1, o1, HP, data[1:], [1e-3], [0.5], [9])
    m2, o2 = fresh(HP)
    step = GraphedTrainStep(m2, o2, HP, B, "cpu", graph=False)
    weights = [p.detach().clone() for p in step.params]
    state = {p: {k: v.clone() for k, v in st.items()} for p, st in o2.state.items()}  # empty: a fresh Adam
    step_updates(step, data[:1], [1e-2], [0.3], [4])  # the "warm-up"
    assert not all(torch.equal(p, w) for p, w in zip(step.params, weights))
    step._restore(weights, state)
    assert all(torch.equal(p, w) for p, w in zip(step.params, weights))
    assert all(float(st["step"]) == 0 and not st["exp_avg"].any() for st in o2.state.values())
    got = step_updates(step, data[1:], [1e-3], [0.5], [9])
    assert torch.equal(ref, got)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)


def test_bad_input_is_refused_with_a_clear_error():
    model, opt = fresh(HP)
    with pytest.raises(ValueError, match="need a CUDA device"):
        GraphedTrainStep(model, opt, HP, B, "cpu", graph=True)
    with pytest.raises(ValueError, match="warmup"):
        GraphedTrainStep(model, opt, HP, B, "cpu", graph=False, warmup=0)
    step = GraphedTrainStep(model, opt, HP, B, "cpu", graph=False)
    (s, L), = batches(1)
    with pytest.raises(ValueError, match=r"strokes must be \[4, 11, 5\]"):
        step(s[:, :-1], L, 1e-3, 0.5)
    with pytest.raises(ValueError, match="lengths must lie in"):
        step(s, torch.tensor([0, 3, 3, 3]), 1e-3, 0.5)
    model.eval()
    with pytest.raises(ValueError, match="training mode"):
        step(s, L, 1e-3, 0.5)


def test_checkpoint_keeps_a_tensor_learning_rate_and_the_optimizers_own_settings(tmp_path):
    model, opt = fresh(HP)
    plain_updates(model, opt, HP, batches(1), [1e-3], [0.5], [1])
    checkpoint.save(tmp_path / "c.safetensors", model, HP, step=1, optimizer=opt)
    _, _, info = checkpoint.read(tmp_path / "c.safetensors")
    assert info["optimizer_state"]["param_groups"][0]["lr"] == pytest.approx(1e-3)
    lr = torch.tensor(0.5)
    other = torch.optim.Adam(model.parameters(), lr=lr, capturable=True)  # as make_optimizer builds it on a GPU
    checkpoint.restore_optimizer(other, info)
    g = other.param_groups[0]
    assert g["lr"] is lr and float(lr) == pytest.approx(1e-3) and g["capturable"] is True
    # and a GPU run's state (capturable, tensor lr) saves as plain numbers
    checkpoint.save(tmp_path / "d.safetensors", model, HP, step=1, optimizer=other)
    _, _, info2 = checkpoint.read(tmp_path / "d.safetensors")
    assert isinstance(info2["optimizer_state"]["param_groups"][0]["lr"], float)
    back = torch.optim.Adam(model.parameters(), lr=1.0)
    checkpoint.restore_optimizer(back, info2)
    assert back.param_groups[0]["capturable"] is False and back.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_train_refuses_a_cuda_graph_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    data = SketchData("tiny", [np.array([[1.0, 0, 0], [0, 1, 1]], np.float32)] * 8, [], [], 1.0, 2)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        T.train(HP, data, tmp_path / "r", 1, cuda_graph=True, progress=False, plot=False)


# --------------------------------------------------------------------------- on a GPU
@cuda
@pytest.mark.parametrize("dec_model", ["lstm", "layer_norm", "hyper"])
def test_graph_replay_equals_the_eager_loop(dec_model):
    """No randomness (unconditional, no dropout): replays give the eager loop's losses and weights."""
    hp = HP.replace(dec_model=dec_model, conditional=False, use_recurrent_dropout=False)
    data = batches(3)
    m1, o1 = fresh(hp, "cuda", capturable=True)
    ref = plain_updates(m1, o1, hp, data, **SCHEDULE, device="cuda")
    m2, o2 = fresh(hp, "cuda", capturable=True)
    step = GraphedTrainStep(m2, o2, hp, B, "cuda")
    got = step_updates(step, data, **SCHEDULE)
    assert step.graph is not None
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@cuda
def test_graph_randomness_follows_the_seed():
    """With dropout and eps: the same seeds give the same updates, another seed another update."""
    runs = []
    for seeds in ([5, 6, 7], [5, 6, 7], [5, 6, 8]):
        model, opt = fresh(HP, "cuda", capturable=True)
        runs.append(step_updates(GraphedTrainStep(model, opt, HP, B, "cuda"), batches(3), SCHEDULE["lrs"],
                                 SCHEDULE["ws"], seeds).cpu())
    # (GPU backward passes add with atomics, so "the same" is to rounding, not bit for bit)
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(runs[0][:2], runs[2][:2], rtol=1e-5, atol=1e-6)
    assert (runs[0][2] - runs[2][2]).abs().max() > 1e-3
    assert torch.isfinite(runs[0]).all()


@cuda
def test_resume_is_exact_with_the_cuda_graph(tmp_path):
    rng = np.random.default_rng(0)
    sk = [np.c_[rng.normal(size=(m, 2)), (rng.random(m) < 0.2)].astype(np.float32) for m in rng.integers(3, N, 40)]
    data = SketchData("tiny", sk[:30], sk[30:35], sk[35:], 1.0, N)
    args = dict(eval_every=3, save_every=2, seed=3, log_every=1, progress=False, plot=False, device="cuda",
                compile=False)
    full = T.train(HP, data, tmp_path / "full", 6, **args)
    T.train(HP, data, tmp_path / "split", 3, **args)
    resumed = T.train(HP, data, tmp_path / "split", 6, **args)
    strip = lambda recs: [{k: v for k, v in r.items() if k != "time_s"} for r in recs]  # noqa: E731
    a, b = strip(full.train), strip(resumed.train)
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(a, b):  # equal to rounding (GPU backward passes add with atomics)
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5, abs=1e-6)
    for pa, pb in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(pb, pa, rtol=1e-5, atol=1e-6)
    _, _, info = checkpoint.read(full.checkpoint)
    assert info["extra"]["run_info"]["cuda_graph"] is True


@cuda
def test_fused_functions_equal_the_plain_ones():
    g = torch.Generator(device="cuda").manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g, device="cuda").requires_grad_()  # noqa: E731
    Bc, H = 5, 16
    mask = (torch.rand(Bc, H, generator=g, device="cuda") < 0.9).float() / 0.9
    cases = [
        (lstm_update, (r(Bc, 4 * H), r(Bc, H), mask)),
        (layer_norm_lstm_update, (r(Bc, 4, H), r(Bc, H), mask, r(4, H), r(4, H), r(H), r(H), 1e-3)),
        (hyper_update, (r(Bc, 12, H), r(Bc, 4, H), r(Bc, 4, H), r(4, H), r(4, H), r(4, H), r(Bc, H), None,
                        r(H), r(H), 1e-3)),
    ]
    for fn, args in cases:
        tensors = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
        results = []
        for on in (False, True):
            with fast_paths.enabled(True, compile=on):
                h, c = fn(*args)
            grads = torch.autograd.grad((h * 1.3 + c * 0.7).sum(), tensors)
            results.append((h, c, grads))
        (h1, c1, g1), (h2, c2, g2) = results
        torch.testing.assert_close(h2, h1, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(c2, c1, rtol=1e-5, atol=1e-5)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


DDP_GRAPH_SCRIPT = r'''
import sys, torch, torch.distributed as dist
sys.path[:0] = [sys.argv[3], sys.argv[4]]
from test_cuda_graph import HP, batches
from sketchlib.fast.cuda_graph import GraphedTrainStep
from sketchlib.nn.model import SketchRNN
from sketchlib.train.step import make_optimizer, set_learning_rate, train_step
from torch.nn.parallel import DistributedDataParallel as DDP

def main(rank, out):
    dist.init_process_group("gloo", init_method="file://" + out + "/rdv", rank=rank, world_size=2)
    hp = HP.replace(conditional=False, use_recurrent_dropout=False)  # nothing random: the two updates compare exactly
    data = batches(3, seed=10 + rank)  # each rank its own batches
    results = []
    for kind in ("ddp", "step"):
        torch.manual_seed(rank)  # different weights on each rank: both must start from rank 0's
        model = SketchRNN(hp).train()
        opt = make_optimizer(model.parameters(), hp)
        if kind == "ddp":
            ddp = DDP(model)
            for (s, L), lr in zip(data, (1e-3, 5e-4, 2e-4)):
                set_learning_rate(opt, lr)
                losses = train_step(ddp, opt, hp, s, L, 0.5)
        else:
            step = GraphedTrainStep(model, opt, hp, B_, "cpu", graph=False, distributed=True)
            for (s, L), lr in zip(data, (1e-3, 5e-4, 2e-4)):
                losses = step(s, L, lr, 0.5)
        results.append((torch.cat([p.detach().reshape(-1) for p in model.parameters()]), losses))
    torch.save(results, out + f"/rank{rank}.pt")
    dist.destroy_process_group()

B_ = HP.batch_size
if __name__ == "__main__":
    torch.multiprocessing.spawn(main, args=(sys.argv[1],), nprocs=2)
'''


def test_distributed_step_equals_ddp_on_two_gloo_ranks(tmp_path):
    """The distributed update (graph A's part, one all-reduce of the flat gradients, graph B's part), run
    eagerly on two CPU processes, gives DDP's weights and losses; both ranks end with the same weights."""
    import subprocess
    import sys

    from conftest import ROOT

    script = tmp_path / "job.py"
    script.write_text(DDP_GRAPH_SCRIPT)
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), "x", str(ROOT / "tests"), str(ROOT)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = [torch.load(tmp_path / f"rank{k}.pt") for k in (0, 1)]
    (ddp0, loss_ddp0), (step0, loss_step0) = r[0]
    (ddp1, _), (step1, loss_step1) = r[1]
    assert torch.equal(step0, step1) and torch.equal(ddp0, ddp1)
    torch.testing.assert_close(step0, ddp0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss_step0, loss_ddp0, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(loss_step0, loss_step1)  # the ranks did see different batches
