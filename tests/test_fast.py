"""The one switch of sketchlib.fast: default fast, plain when asked, restored on exit; what registers
itself for which cell; how the default reaches sketchlib.nn without an import there."""

import subprocess
import sys

import pytest
import torch

from sketchlib import fast as fast_paths
from sketchlib.fast import fusion, hyper, native, sequence
from sketchlib.nn.hyper_lstm import HyperLSTMCell
from sketchlib.nn.layer_norm_lstm import LayerNormLSTMCell
from sketchlib.nn.lstm import LSTMCell
from sketchlib.nn.recurrent import FAST_PATHS

from conftest import ROOT


def test_default_is_fast_without_compilation():
    assert fast_paths.is_on() and not fast_paths.is_compiling()


def test_enabled_nests_and_restores():
    with fast_paths.enabled(False):
        assert not fast_paths.is_on()
        with fast_paths.enabled(True, compile=True):
            assert fast_paths.is_on() and fast_paths.is_compiling()
            with fast_paths.enabled(None, compile=False):  # None keeps fast on
                assert fast_paths.is_on() and not fast_paths.is_compiling()
            assert fast_paths.is_compiling()
        assert not fast_paths.is_on() and not FAST_PATHS.compile
    assert fast_paths.is_on() and not fast_paths.is_compiling()
    with pytest.raises(RuntimeError):
        with fast_paths.enabled(False):
            raise RuntimeError("the setting comes back even so")
    assert fast_paths.is_on()


def test_configure_sets_for_good():
    try:
        fast_paths.configure(False)
        assert not fast_paths.is_on()
        assert FAST_PATHS.lookup("sequence", LSTMCell) is None  # switched off: the plain loop runs
    finally:
        fast_paths.configure(True)
    assert FAST_PATHS.lookup("sequence", LSTMCell) is native.lstm_sequence


def test_each_cell_has_its_fast_versions():
    assert FAST_PATHS.lookup("sequence", LayerNormLSTMCell) is sequence.loop_sequence
    assert FAST_PATHS.lookup("sequence", HyperLSTMCell) is hyper.hyper_sequence
    for cell in (LSTMCell, LayerNormLSTMCell):
        assert FAST_PATHS.lookup("encoder", cell) is native.encoder_final_hidden
    assert FAST_PATHS.lookup("encoder", HyperLSTMCell) is None  # the encoder is never a HyperLSTM


def test_compile_only_on_a_gpu(monkeypatch):
    """With compilation on, a fused function on CPU tensors still runs as written (nothing is compiled)."""
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(fn) or fn)
    f = fusion.fused(lambda a, b: a * b)
    with fast_paths.enabled(True, compile=True):
        assert torch.equal(f(torch.ones(2), torch.full((2,), 3.0)), torch.full((2,), 3.0))
    assert compiled == []


def test_nn_loads_the_fast_versions_on_first_use_only():
    """Importing the model does not import sketchlib.fast; the first forward pass does (by name), so the
    default is fast without any import statement in sketchlib.nn."""
    code = """
import sys, torch
from sketchlib.config import HParams
from sketchlib.nn.model import SketchRNN
assert "sketchlib.fast" not in sys.modules
m = SketchRNN(HParams(max_seq_len=4, batch_size=2, enc_rnn_size=4, dec_rnn_size=4, z_size=2, num_mixture=1))
s = torch.zeros(2, 5, 5); s[:, :, 2] = 1
m(s, torch.tensor([4, 3]))
assert "sketchlib.fast" in sys.modules
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
