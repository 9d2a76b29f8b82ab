"""A whole training update (forward, loss, backward, clipping, Adam) as one CUDA graph.

Sketch-RNN's decoder runs N_max = 250 steps one after the other. Even with the fast cells, an
update is tens of thousands of small kernels, and Python launches them more slowly than a GPU
runs them: the GPU waits on the CPU. A CUDA graph records every kernel of one update once and
replays the whole update with a single launch, so the GPU never waits.

A graph replays fixed kernels on fixed memory, so :class:`GraphedTrainStep` keeps

* the batch in fixed buffers: every Sketch-RNN batch has the same shape, [B, N_max + 1, 5]
  strokes and [B] lengths, and each new batch is copied into them;
* the learning rate lr_t and the KL weight w_KL(t) in device scalars that change between
  replays (Adam is built with ``capturable=True`` and a tensor learning rate,
  :func:`make_optimizer`);
* the gradients in the graph's own memory (captured from ``None``, so every replay writes them
  afresh, as ``zero_grad`` then ``backward`` would).

Random numbers (recurrent dropout masks, the encoder's eps) come from PyTorch's graph-safe
generator: each replay reads the generator's seed and offset at that moment, so seeding before
an update (the training loop seeds with ``step_seed(seed, step, rank)``) makes a replay
reproducible, and a resumed run repeats it exactly. They are different numbers from the eager
loop's, which consumes the generator in another order.

Under DDP (``distributed=True``) the gradients must be averaged over the ranks between backward
and Adam, and a collective inside a captured graph needs NCCL's own graph support (and is not
possible with gloo). So the update is TWO graphs with one eager all-reduce between them: graph A =
forward, loss, backward, and the gradients copied into one flat buffer; then
``all_reduce(flat)`` (one NCCL call, outside any graph); graph B = flat / world_size back into
the gradients, clipping, Adam. The weights are broadcast from rank 0 once, as DDP does when it
wraps a model. Eagerly (``graph=False``) the same three parts run in the same order, which the
two-process gloo test checks against DDP's update.

Capture needs a few eager updates first (cuBLAS and cuDNN set themselves up, ``torch.compile``
compiles, Adam creates its state). Those updates are undone: the weights, Adam's state and the
random generators are put back, so the first replay is the update the caller asked for. On a CPU (``graph=False``) the same
object runs the same update eagerly; the tests use that to check the bookkeeping without a GPU.
"""

from __future__ import annotations

import torch
from torch import nn

from sketchlib.config import HParams
from sketchlib.nn.encoder import check_lengths
from sketchlib.train.step import (apply_gradients, clip_gradients, loss_and_gradients, make_optimizer,
                                  set_learning_rate, train_step)

# make_optimizer and clip_gradients live in sketchlib.train.step (re-exported here for bench/train_step.py)
__all__ = ["GraphedTrainStep", "clip_gradients", "make_optimizer"]


class GraphedTrainStep:
    """``step(strokes, lengths, lr, kl_weight) -> losses`` [5] (``LOSS_KEYS`` order, on the device).

    ``model`` (in training mode) and ``optimizer`` (from :func:`make_optimizer`) are updated in
    place. ``graph=None`` captures a CUDA graph on a GPU and runs eagerly elsewhere. The first
    call runs ``warmup`` eager updates, undoes them, and captures.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, hp: HParams, batch_size: int,
                 device, *, graph: bool | None = None, warmup: int = 3, distributed: bool = False):
        device = torch.device(device)
        self.graph_enabled = device.type == "cuda" if graph is None else bool(graph)
        if self.graph_enabled and device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {device}")
        if self.graph_enabled and not all(g.get("capturable") for g in optimizer.param_groups):
            raise ValueError("a CUDA-graph update needs an optimizer built with capturable=True (make_optimizer)")
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1 (cuBLAS, cuDNN and autograd set up before capture), got {warmup}")
        self.model, self.optimizer, self.hp, self.device, self.warmup = model, optimizer, hp, device, warmup
        self.params = [p for p in model.parameters() if p.requires_grad]
        B, N = int(batch_size), int(hp.max_seq_len)
        self.strokes = torch.zeros(B, N + 1, 5, device=device)  # [B, N_max + 1, 5] fixed input buffers
        self.lengths = torch.ones(B, dtype=torch.long, device=device)  # [B]
        self.kl_weight = torch.zeros((), device=device)
        if self.graph_enabled:
            self.lr = optimizer.param_groups[0]["lr"]
            if not isinstance(self.lr, torch.Tensor):
                self.lr = torch.tensor(float(self.lr), dtype=torch.float32, device=device)
            for g in optimizer.param_groups:
                g["lr"] = self.lr  # every group reads the one scalar the graph captured
        self.graph: torch.cuda.CUDAGraph | None = None
        self.losses: torch.Tensor | None = None
        self.distributed = bool(distributed)
        if self.distributed:  # DDP's start: every rank from rank 0's weights; one flat buffer for the all-reduce
            import torch.distributed as dist

            self.world_size = dist.get_world_size()
            with torch.no_grad():
                for p in self.params:
                    dist.broadcast(p.data, src=0)
            self.flat = torch.zeros(sum(p.numel() for p in self.params), device=device)
            self.graph_b: torch.cuda.CUDAGraph | None = None

    # -- one update --------------------------------------------------------------------------
    def __call__(self, strokes: torch.Tensor, lengths: torch.Tensor, lr: float, kl_weight: float) -> torch.Tensor:
        if tuple(strokes.shape) != tuple(self.strokes.shape):
            raise ValueError(f"strokes must be {list(self.strokes.shape)} (the shape the step was built for), "
                             f"got {list(strokes.shape)}")
        check_lengths(lengths.cpu(), self.strokes.shape[0], self.strokes.shape[1] - 1)
        if not self.model.training:
            raise ValueError("the model must be in training mode")
        self.strokes.copy_(strokes)
        self.lengths.copy_(lengths)
        self.kl_weight.fill_(float(kl_weight))
        if not self.graph_enabled:
            set_learning_rate(self.optimizer, lr)
            return self._update()
        self.lr.fill_(float(lr))
        if self.graph is None:
            self._capture()
        self.graph.replay()
        if self.distributed:
            self._all_reduce()
            self.graph_b.replay()
        return self.losses

    def _update(self) -> torch.Tensor:
        """:func:`sketchlib.train.step.train_step` on the fixed buffers; the losses [5], detached."""
        if not self.distributed:
            return train_step(self.model, self.optimizer, self.hp, self.strokes, self.lengths, self.kl_weight)
        losses = self._gradients()
        self._all_reduce()
        self._apply()
        return losses

    def _gradients(self) -> torch.Tensor:
        """Graph A (distributed): forward, loss, backward, every gradient into ``flat``."""
        losses = loss_and_gradients(self.model, self.optimizer, self.hp, self.strokes, self.lengths, self.kl_weight)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        torch.cat([g.reshape(-1) for g in grads], out=self.flat)
        return losses

    def _all_reduce(self) -> None:
        """Between the graphs, eager: the sum of ``flat`` over the ranks (one collective)."""
        import torch.distributed as dist

        dist.all_reduce(self.flat)

    def _apply(self) -> None:
        """Graph B (distributed): the ranks' mean gradient back into ``p.grad``, clipping, Adam."""
        mean = (self.flat / self.world_size).split([p.numel() for p in self.params])
        for p, g in zip(self.params, mean):
            if p.grad is None:
                p.grad = g.view_as(p).clone()
            else:
                p.grad.copy_(g.view_as(p))
        apply_gradients(self.optimizer, self.hp)

    # -- capture -----------------------------------------------------------------------------
    def _capture(self) -> None:
        # the warm-up draws random numbers: put the generators back afterwards, so the first
        # replay uses the state the caller seeded (a resumed run repeats its updates exactly)
        rng = torch.get_rng_state(), torch.cuda.get_rng_state(self.device)
        weights = [p.detach().clone() for p in self.params]
        state = {p: {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in st.items()}
                 for p, st in self.optimizer.state.items()}
        quiet = getattr(torch.autograd.graph, "set_warn_on_accumulate_grad_stream_mismatch", None)
        if quiet is not None:  # the side-stream warm-up is the documented recipe; its stream warning is expected
            quiet(False)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        try:
            with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
                for _ in range(self.warmup):
                    self._update()
        finally:  # also when the warm-up fails (say torch.compile): the model is as it was
            torch.cuda.current_stream(self.device).wait_stream(side)
            self._restore(weights, state)
        self.optimizer.zero_grad(set_to_none=True)  # captured from None: each replay writes fresh gradients
        self.graph = torch.cuda.CUDAGraph()
        if not self.distributed:
            with torch.cuda.graph(self.graph):
                self.losses = self._update()
        else:  # A, the eager all-reduce at replay, then B in A's memory pool (it reads A's gradients)
            with torch.cuda.graph(self.graph):
                self.losses = self._gradients()
            self.graph_b = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph_b, pool=self.graph.pool()):
                self._apply()
        torch.set_rng_state(rng[0])
        torch.cuda.set_rng_state(rng[1], self.device)

    @torch.no_grad()
    def _restore(self, weights, state) -> None:
        """Undo the warm-up: weights back, Adam's state back (zeros = a fresh Adam), in the same tensors."""
        for p, w in zip(self.params, weights):
            p.copy_(w)
        for p, st in self.optimizer.state.items():
            before = state.get(p)
            for k, v in st.items():
                if not isinstance(v, torch.Tensor):
                    if before is not None:
                        st[k] = before[k]
                elif before is not None and k in before:
                    v.copy_(before[k])
                else:
                    v.zero_()
