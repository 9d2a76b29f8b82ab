"""Where a training session runs: device, DDP group, speed switches, the run folder's lock, signals.

:class:`Session` is a context manager that sets these up for :func:`sketchlib.train.fit` and puts
everything back on exit (the process group, TF32, the fusion switch, the lock, the signal handlers).
:func:`make_update` picks the update: :func:`sketchlib.train.step.train_step` eagerly, or the same
function replayed as one CUDA graph (:class:`sketchlib.fast.cuda_graph.GraphedTrainStep`).
"""

from __future__ import annotations

import contextlib
import os
import warnings

import torch

from sketchlib import fast as fast_paths
from sketchlib.device import resolve_device
from sketchlib.train.guard import RunLock, StopSignals, remove_stale_temp_files
from sketchlib.train.run import RUN_FILES, Run, RunConfig
from sketchlib.train.step import set_learning_rate, train_step


class Session(contextlib.ExitStack):
    """``with Session(cfg) as s``: ``s.device``, ``s.rank``, ``s.world_size``, ``s.use_graph``, ``s.stop``, ``s.switches``."""

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.cfg = cfg
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.distributed = self.world_size > 1

    def __enter__(self) -> "Session":
        super().__enter__()
        cfg = self.cfg
        try:
            self.device = self._join_group() if self.distributed else resolve_device(cfg.device)
            # default: graphed on one CUDA device; under DDP only when asked (two graphs and an eager
            # all-reduce, sketchlib.fast.cuda_graph), until bench/gpu_session.sh has measured it on 2 GPUs
            use_graph = (self.device.type == "cuda" and not self.distributed) if cfg.cuda_graph is None \
                else bool(cfg.cuda_graph)
            if use_graph and self.device.type != "cuda":
                raise ValueError("cuda_graph=True needs a CUDA device")
            self.use_graph = use_graph
            use_compile = use_graph if cfg.compile is None else bool(cfg.compile)
            old_tf32 = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = bool(cfg.tf32)
            self.callback(setattr, torch.backends.cuda.matmul, "allow_tf32", old_tf32)

            self.enter_context(fast_paths.enabled(None, compile=use_compile))
            if self.rank == 0:  # one trainer per run folder; then nobody else writes there
                self.enter_context(RunLock(cfg.out_dir))
                remove_stale_temp_files(cfg.out_dir, RUN_FILES)
            self.stop = self.enter_context(StopSignals())
            self.switches = {"cuda_graph": use_graph, "compile": use_compile, "tf32": bool(cfg.tf32)}
        except BaseException:
            self.close()
            raise
        return self

    def _join_group(self) -> torch.device:
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = self.cfg.device or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        device = resolve_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.callback(lambda: dist.is_initialized() and dist.destroy_process_group())
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return device

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def agree(self, *flags: bool) -> list[bool]:
        """Each flag true on ANY rank (one all-reduce under DDP): all ranks stop at the same update."""
        if not self.distributed:
            return [bool(f) for f in flags]
        import torch.distributed as dist

        t = torch.tensor([float(f) for f in flags], dtype=torch.float64).to(self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def batches(self, batches):
        """``batches.batch`` (on a GPU: the next batches built in a thread while the GPU runs an update)."""
        if self.device.type != "cuda":
            return batches.batch
        prefetch = self.enter_context(contextlib.closing(Prefetch(batches)))
        return prefetch.get


class Prefetch:
    """``get(t)`` = ``batches.batch(t)``, with the next ``depth`` batches already being built in a thread."""

    def __init__(self, batches, depth: int = 3):
        from concurrent.futures import ThreadPoolExecutor

        self.batches, self.depth = batches, depth
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sketchlib-batches")
        self.futures: dict = {}

    def get(self, t: int):
        for u in range(t, t + self.depth + 1):
            if u not in self.futures:
                self.futures[u] = self.pool.submit(self.batches.batch, u)
        for u in [u for u in self.futures if u < t]:  # a jump (never in the loop): drop stale work
            self.futures.pop(u).cancel()
        return self.futures.pop(t).result()

    def close(self) -> None:
        for f in self.futures.values():
            f.cancel()
        self.pool.shutdown(wait=True)


def make_update(run: Run, s: Session):
    """``update(strokes, lengths, lr, w) -> losses [5]``: :func:`train_step` eagerly, or as a CUDA graph."""
    bare, optimizer, hp, device = run.model, run.optimizer, run.hp, s.device
    if not s.use_graph:
        if s.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(bare, device_ids=[device.index] if device.type == "cuda" else None)
        else:
            model = bare
        model.train()

        def update(strokes, lengths, lr, w):
            set_learning_rate(optimizer, lr)
            return train_step(model, optimizer, hp, strokes.to(device), lengths.to(device), w)

        return update

    # Imported here, not at the top: fast.cuda_graph captures train.step, and importing it while
    # sketchlib.train is still initialising would be circular.
    from sketchlib.fast.cuda_graph import GraphedTrainStep

    bare.train()
    graphed = GraphedTrainStep(bare, optimizer, hp, hp.batch_size, device, graph=True, distributed=s.distributed)

    def update_graphed(strokes, lengths, lr, w):
        nonlocal graphed
        try:
            return graphed(strokes, lengths, lr, w)
        except Exception as exc:  # noqa: BLE001 - compile problems come in many types
            if graphed.graph is not None or not fast_paths.is_compiling():
                raise
            warnings.warn(f"torch.compile failed ({type(exc).__name__}: {exc}); training without fusion",
                          stacklevel=2)
            fast_paths.configure(compile=False)
            run.run_info["compile"] = False
            graphed = GraphedTrainStep(bare, optimizer, hp, hp.batch_size, device, graph=True,
                                       distributed=s.distributed)
            return graphed(strokes, lengths, lr, w)

    return update_graphed
