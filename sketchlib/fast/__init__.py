"""What exists only for speed, and the one switch that chooses it.

The teaching code in :mod:`sketchlib.nn` is the reference: each cell's ``forward`` is one step of
its equations and ``sequence`` runs it in a loop. The faster versions here compute the same
numbers (tested equal to the plain ones) and register themselves for a cell class in
:data:`sketchlib.nn.recurrent.FAST_PATHS`:

* :mod:`~sketchlib.fast.sequence` input projections of all steps in one matmul, the LSTM and LayerNorm
  loops for K cells at once (the encoder's two directions), element-wise work in one function;
* :mod:`~sketchlib.fast.hyper` the same for the HyperLSTM;
* :mod:`~sketchlib.fast.native` PyTorch's LSTM kernel (cuDNN) for the plain LSTM without recurrent
  dropout, on a GPU only (on a CPU our loop is faster);
* :mod:`~sketchlib.fast.bptt` the recurrent weights' gradients in one product;
* :mod:`~sketchlib.fast.fusion` the element-wise work compiled by ``torch.compile`` (opt-in, GPU);
* :mod:`~sketchlib.fast.cuda_graph` (a training update as a CUDA graph, also under DDP),
  :mod:`~sketchlib.fast.numpy_lstm` (the CPU's sampling step) and :mod:`~sketchlib.fast.graph_sampling`
  (the GPU's sampling loop as CUDA graphs), used by training and sampling directly.

The switch: ``with sketchlib.fast.enabled(False): ...`` runs the plain code; ``enabled(True,
compile=True)`` also fuses with ``torch.compile`` on a GPU. :func:`configure` sets the same two
values for good. Default: fast on, compile off, i.e. fast where it is exact, plain when asked.

How the default reaches :class:`~sketchlib.nn.model.SketchRNN` although ``sketchlib.nn`` never
imports this package (``tests/test_layering.py``): the first time a cell or the encoder asks
``FAST_PATHS.lookup``, that hook imports ``sketchlib.fast`` by name, which registers everything below.
"""

from __future__ import annotations

import contextlib

from sketchlib.fast import hyper, native, sequence
from sketchlib.nn.layer_norm_lstm import LayerNormLSTMCell
from sketchlib.nn.hyper_lstm import HyperLSTMCell
from sketchlib.nn.lstm import LSTMCell
from sketchlib.nn.recurrent import FAST_PATHS

FAST_PATHS.register("sequence", LSTMCell, native.lstm_sequence)
FAST_PATHS.register("sequence", LayerNormLSTMCell, sequence.loop_sequence)
FAST_PATHS.register("sequence", HyperLSTMCell, hyper.hyper_sequence)
FAST_PATHS.register("encoder", LSTMCell, native.encoder_final_hidden)
FAST_PATHS.register("encoder", LayerNormLSTMCell, native.encoder_final_hidden)
FAST_PATHS.loaded = True


def configure(fast: bool | None = None, *, compile: bool | None = None) -> None:
    """Set the switch for good: ``fast`` (use the registered fast versions), ``compile`` (fuse them on a GPU)."""
    if fast is not None:
        FAST_PATHS.on = bool(fast)
    if compile is not None:
        FAST_PATHS.compile = bool(compile)


def is_on() -> bool:
    return FAST_PATHS.on


def is_compiling() -> bool:
    return FAST_PATHS.on and FAST_PATHS.compile


@contextlib.contextmanager
def enabled(fast: bool | None = True, *, compile: bool | None = None):
    """``with enabled(False):`` plain code in the block; ``enabled(True, compile=True)`` fast and fused.

    None (for either) keeps its current value. The previous setting comes back on exit.
    """
    old = FAST_PATHS.on, FAST_PATHS.compile
    configure(fast, compile=compile)
    try:
        yield
    finally:
        FAST_PATHS.on, FAST_PATHS.compile = old
