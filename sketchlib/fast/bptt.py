"""Backpropagation through time with the recurrent weight's gradient in ONE matrix product.

A recurrent loop uses the same matrix at every step, ``a_t = pre_t + h_{t-1} W_hh``. Autograd
differentiates it step by step: at each of the T steps it forms ``h_{t-1}^T da_t``, a product
with only B rows to sum over that writes a whole [H, 4H] matrix, and adds it to a running sum.
That sum is one product::

    dW_hh = Σ_t h_{t-1}^T da_t = H_prev^T dA        H_prev [T·B, H],  dA [T·B, 4H]

which a GPU computes at full speed, instead of T thin products and T additions of a full-size
matrix (for the 2048-unit HyperLSTM: 250 matrices of 75 MB each, per training step).

:class:`RecurrentWeight` does this inside ordinary autograd. In the forward loop each step's
product is a small custom function whose backward returns only the gradients of ``pre_t`` and
``h_{t-1}`` and keeps ``(h_{t-1}, da_t)``. A 0-dimensional *token*, made from the weight before
the loop and passed to every step, orders the backward pass: autograd reaches the token's node
only after every step's backward has run, and that node forms dW in one product.

The gradient is the same sum in a different order, so it agrees with the step-by-step one to
float32 rounding (tested against the plain path). Outside autograd (``torch.no_grad``, or a
weight that needs no gradient) the steps are plain ``addmm`` calls.
"""

from __future__ import annotations

import torch


class RecurrentWeight:
    """The recurrent matrix W [(K,) H, G] of one loop; ``step(pre_t, h, t)`` = pre_t + h W.

    ``pre_t`` [(K,) B, G] or None, ``h`` [(K,) B, H] (a leading K runs K cells with their own
    weights in one batched product, as the bidirectional encoder does); ``t`` the step's index,
    each index used once per forward pass.
    """

    #: Defer the weight's gradient (True); ``bench/train_step.py`` sets it False for one row, to
    #: measure what deferring saves against autograd's step-by-step sum.
    defer = True

    def __init__(self, W: torch.Tensor):
        self.W = W
        self.deferred = self.defer and torch.is_grad_enabled() and W.requires_grad
        self.h: dict[int, torch.Tensor] = {}
        self.da: dict[int, torch.Tensor] = {}
        if self.deferred:
            self.token = _WeightGradient.apply(W, self)  # 0-dim; its backward forms dW

    def step(self, pre: torch.Tensor | None, h: torch.Tensor, t: int) -> torch.Tensor:
        if not self.deferred:
            return _product(pre, h, self.W)
        return _RecurrentProduct.apply(pre, h, self.W.detach(), self.token, self, t)


def _product(pre, h, W):
    if pre is None:
        return h @ W
    return torch.addmm(pre, h, W) if h.dim() == 2 else torch.baddbmm(pre, h, W)


class _RecurrentProduct(torch.autograd.Function):
    """pre_t + h_{t-1} W for one step; backward gives d pre_t, d h_{t-1} and files (h_{t-1}, da_t)."""

    @staticmethod
    def forward(ctx, pre, h, W, token, rw, t):
        ctx.save_for_backward(h, W)
        ctx.rw, ctx.t, ctx.has_pre = rw, t, pre is not None
        return _product(pre, h, W)

    @staticmethod
    def backward(ctx, da):
        h, W = ctx.saved_tensors
        ctx.rw.h[ctx.t], ctx.rw.da[ctx.t] = h, da
        dh = da @ W.transpose(-1, -2)  # [(K,) B, H]
        return (da if ctx.has_pre else None), dh, None, None, None, None


class _WeightGradient(torch.autograd.Function):
    """Identity-free anchor: forward returns a 0-dim token; backward returns dW = H_prev^T dA."""

    @staticmethod
    def forward(ctx, W, rw):
        ctx.rw = rw
        ctx.shape = W.shape
        return W.new_zeros(())

    @staticmethod
    def backward(ctx, _unused):
        rw = ctx.rw
        if not rw.da:  # no step's output reached the loss
            return None, None
        steps = sorted(rw.da)
        h = torch.stack([rw.h[t] for t in steps])  # [T, (K,) B, H]
        da = torch.stack([rw.da[t] for t in steps])  # [T, (K,) B, G]
        rw.h.clear()
        rw.da.clear()
        if h.dim() == 3:
            dW = h.flatten(0, 1).t() @ da.flatten(0, 1)  # [H, T·B] @ [T·B, G]
        else:  # K cells: [K, H, T·B] @ [K, T·B, G]
            dW = torch.bmm(h.transpose(0, 1).flatten(1, 2).transpose(1, 2), da.transpose(0, 1).flatten(1, 2))
        return dW, None
