"""Sampling as CUDA graphs (sketchlib.fast.graph_sampling): the step and the draw on the device, K steps a replay.

On the CPU the same chunk function runs eagerly on the same buffers (``graph=False``): these tests
check that bookkeeping (noise per chunk, per-sketch p3 lengths, the prefix, the cache) against the
plain path. Capture and replay run wherever a GPU is present (skipped otherwise).
"""

import numpy as np
import pytest
import torch

from sketchlib import sample as S
from sketchlib.config import HParams
from sketchlib.fast import graph_sampling as G
from sketchlib.nn.model import SketchRNN

pytestmark = pytest.mark.usefixtures("one_thread")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (runs wherever one is present)")

HP = HParams(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3, max_seq_len=20, batch_size=4)


def _model(seed=0, never_end=False, **kw):
    torch.manual_seed(seed)
    model = SketchRNN(HP.replace(**kw)).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        model.decoder.to_y.bias[2] = -1e4 if never_end else 1.0  # p3 logit: never, or now and then
    return model


@pytest.fixture
def graph_on_cpu(monkeypatch):
    """Route fast sampling of the plain LSTM to the graph sampler on the CPU (eager: graph=False); count its runs."""
    runs = []
    real = G.GraphSampler.run
    monkeypatch.setattr(S, "_graph_step_applies", lambda model, device, steps, n: S._plain_lstm_decoder(model))
    monkeypatch.setattr(G.GraphSampler, "run", lambda self, *a, **k: runs.append(self) or real(self, *a, **k))
    return runs


def _same(a, b):
    assert [len(x) for x in a] == [len(x) for x in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("n", [1, 5])
def test_eager_chunks_equal_the_plain_path(graph_on_cpu, conditional, n):
    """The graph sampler's chunk, run eagerly, draws the plain path's sketches for the same generator:
    every sketch stops at its own p3 (the alive mask), across chunk borders (K = 3 does not divide 20)."""
    model = _model(conditional=conditional)
    for kw in (dict(greedy=True), dict(temperature=0.7), dict(temperature=1.3)):
        G._CACHE.clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(G, "CHUNK", 3)
            a = S.sample(model, n=n, generator=torch.Generator().manual_seed(1), fast=True, **kw)
        b = S.sample(model, n=n, generator=torch.Generator().manual_seed(1), fast=False, **kw)
        _same(a, b)
    assert len(graph_on_cpu) == 3 and {r.K for r in graph_on_cpu} == {3}
    lengths = {len(x) for x in a}
    assert n == 1 or len(lengths) > 1, "the test model should end its sketches at different steps"


def test_full_length_prefix_and_no_stop(graph_on_cpu):
    model = _model(never_end=True)
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    _same(S.sample(model, n=3, generator=g(), fast=True), S.sample(model, n=3, generator=g(), fast=False))
    prefix = np.array([[0.5, 0.1, 0], [0.2, -0.3, 1], [-0.1, 0.4, 0]], dtype=np.float32)
    _same(S.sample(model, n=2, prefix=prefix, generator=g(), fast=True, temperature=0.5),
          S.sample(model, n=2, prefix=prefix, generator=g(), fast=False, temperature=0.5))
    ends = _model()
    a = S.sample(ends, n=3, generator=g(), fast=True, stop_at_p3=False)
    _same(a, S.sample(ends, n=3, generator=g(), fast=False, stop_at_p3=False))
    assert all(len(x) == 20 for x in a)
    assert len(graph_on_cpu) == 3


def test_cache_reuses_the_sampler_until_a_weight_changes():
    model = _model()
    a = G.graph_sampler(model, 4, False, graph=False)
    assert G.graph_sampler(model, 4, False, graph=False) is a
    assert G.graph_sampler(model, 4, True, graph=False) is not a  # greedy is another graph
    with torch.no_grad():
        model.decoder.cell.W_hh.add_(0.1)
    b = G.graph_sampler(model, 4, False, graph=False)
    assert b is not a and not torch.equal(b.W, a.W)


def test_refusals():
    model = _model()
    with pytest.raises(ValueError, match="CUDA device"):
        G.GraphSampler(model, 2, False, graph=True)
    with pytest.raises(ValueError, match="chunk"):
        G.GraphSampler(model, 2, False, chunk=0)
    assert G.graph_sampling_applies(250, 64, 20) and not G.graph_sampling_applies(10 ** 9, 64, 20)
    assert S.stepper_name(model) == "numpy"  # on the CPU the numpy step stays the fast path


@cuda
@pytest.mark.parametrize("n", [1, 16])
def test_cuda_graph_sampling_equals_the_plain_path(n):
    """On a GPU, fast=True replays the captured chunks; the sketches are the plain path's (model.step on
    the GPU, sample_outputs in numpy) for the same generator, and a second call replays the cached graph."""
    torch.backends.cuda.matmul.allow_tf32 = False
    model = _model().cuda()
    assert S.stepper_name(model) == "cuda graph"
    for kw in (dict(greedy=True), dict(temperature=0.6)):
        for _ in range(2):
            a = S.sample(model, n=n, generator=torch.Generator().manual_seed(2), fast=True, **kw)
            b = S.sample(model, n=n, generator=torch.Generator().manual_seed(2), fast=False, **kw)
            _same(a, b)
    sampler = G.graph_sampler(model, n, False)
    assert sampler.graph is not None and sampler.graph_enabled
