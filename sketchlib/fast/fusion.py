"""The element-wise work of a recurrent step, fused into a few kernels by ``torch.compile``.

After its matrix products a cell's step is all element-wise: sigmoids, tanh, the cell update,
layer norms. Run one operation at a time that is 8 (LSTM) to 30 (HyperLSTM) kernels a step,
twice that in the backward pass, each too small to keep a GPU busy: for 250 steps the launches,
not the arithmetic, set the time. Each fast cell keeps that work in one function of tensors,
marked with :func:`fused`. Normally the function simply runs. With compilation on
(``sketchlib.fast.enabled(compile=True)``) and its inputs on a GPU, it runs as
``torch.compile(fn, fullgraph=True, dynamic=False)``: Inductor writes a handful of Triton
kernels for the forward and the backward. On a CPU, or with compilation off, nothing is compiled.

Compilation is off by default; the training command turns it on for CUDA (``--compile``, default
auto). Compiling takes seconds once per shape (warm-up, compile and capture together took 1 to 13 s
in ``bench/results/train_step-full-cuda.json``), which pays back within a few hundred
steps. The compiled and plain functions are tested equal (``tests/test_cuda_graph.py``, on a GPU).
"""

from __future__ import annotations

import functools

import torch

from sketchlib.nn.recurrent import FAST_PATHS


def fused(fn):
    """Mark ``fn`` (tensors in, tensors out, no side effects) as one fusable block of a cell's step."""
    compiled = None

    @functools.wraps(fn)
    def wrapper(*args):
        nonlocal compiled
        if FAST_PATHS.compile and args[0].is_cuda:
            if compiled is None:
                compiled = torch.compile(fn, fullgraph=True, dynamic=False)
            return compiled(*args)
        return fn(*args)

    return wrapper
