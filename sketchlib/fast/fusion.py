"""The element-wise work of a recurrent step, fused into a few kernels by ``torch.compile``.

After its matrix products a cell's step is all element-wise: sigmoids, tanh, the cell update,
layer norms. Run one operation at a time that is 8 (LSTM) to 30 (HyperLSTM) kernels a step,
twice that in the backward pass, each too small to keep a GPU busy: for 250 steps the launches,
not the arithmetic, set the time. Each cell keeps that work in one function of tensors, marked
with :func:`fused`. Normally the function simply runs. With fusion on (:func:`set_enabled`, or
``with enabled(True):``) and its inputs on a GPU, it runs as
``torch.compile(fn, fullgraph=True, dynamic=False)``: Inductor writes a handful of Triton
kernels for the forward and the backward. On a CPU, or with fusion off, nothing is compiled.

Fusion is off by default; the training command turns it on for CUDA (``--compile``, default
auto). Compiling takes seconds once per shape (warm-up, compile and capture together took 1 to 13 s
in ``bench/results/train_step-full-cuda.json``), which pays back within a few hundred
steps. The compiled and plain functions are tested equal (``tests/test_cuda_graph.py``, on a GPU).
"""

from __future__ import annotations

import contextlib
import functools

import torch

_state = {"enabled": False}


def set_enabled(flag: bool) -> None:
    """Turn fusion on or off for every :func:`fused` function."""
    _state["enabled"] = bool(flag)


def is_enabled() -> bool:
    return _state["enabled"]


@contextlib.contextmanager
def enabled(flag: bool = True):
    """``with enabled(True): ...`` runs the block with fusion on (restores the previous setting)."""
    old = _state["enabled"]
    _state["enabled"] = bool(flag)
    try:
        yield
    finally:
        _state["enabled"] = old


def fused(fn):
    """Mark ``fn`` (tensors in, tensors out, no side effects) as one fusable block of a cell's step."""
    compiled = None

    @functools.wraps(fn)
    def wrapper(*args):
        nonlocal compiled
        if _state["enabled"] and args[0].is_cuda:
            if compiled is None:
                compiled = torch.compile(fn, fullgraph=True, dynamic=False)
            return compiled(*args)
        return fn(*args)

    return wrapper
