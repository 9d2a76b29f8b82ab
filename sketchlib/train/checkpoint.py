"""Checkpoints: one safetensors file holding the weights, the config and (optionally) the optimizer.

Format (``sketchlib.checkpoint/2``), one ``.safetensors`` file, so ONE atomic rename publishes it:

* tensors
  - ``<name>``: every entry of ``model.state_dict()`` under its own name (weights and buffers);
    a plain safetensors reader therefore sees an ordinary state dict plus the keys below.
  - ``__optimizer__/<i>/<key>``: the optimizer's per-parameter state tensors (for Adam ``exp_avg``,
    ``exp_avg_sq``, ``step``), ``i`` being the parameter's index in the optimizer. ``/`` never
    occurs in a module's parameter name, so these cannot collide with the weights.
* metadata (safetensors allows ``str -> str`` only, so every value is JSON text)
  - ``format``: ``"sketchlib.checkpoint/2"``; ``hparams``: :meth:`HParams.to_json`;
  - ``step``: completed training steps; ``metrics``: a JSON object (losses at that step);
    ``extra``: a JSON object (anything the caller adds: dataset, scale, wall time, ...);
  - ``optimizer``: JSON of the optimizer's class name, ``param_groups`` (lr, betas, eps, ...,
    ``params`` indices), the non-tensor per-parameter state and the parameter names, or ``null``;
  - ``digest``: sha256 over every tensor (name, dtype, shape, bytes, in sorted name order) AND every
    other metadata entry (config, step, metrics, extra with the scale and the dataset's identity,
    optimizer), so a corrupted file, or one edited by hand, is refused even where safetensors' own
    header check would not notice (one flipped bit in ``step`` would silently skip updates);
  - ``created``, ``torch``, ``sketchlib``: provenance.

Format 1 (the shipped ``data/*.safetensors``) is still read: its digest covers the tensors only.

No RNG state is stored: :mod:`sketchlib.train` draws its batches AND its noise (dropout masks,
the encoder's eps) from generators seeded by (seed, step, rank), so the step number is all a
resumed run needs to continue bit-exactly. Loading never unpickles anything (no ``torch.load``).
The file is written with :func:`sketchlib.data.fileio.atomic_write` (temp file in the same folder,
fsync, ``os.replace``): a crash while saving leaves the previous checkpoint untouched.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from sketchlib.config import HParams
from sketchlib.data.fileio import atomic_write

FORMAT = "sketchlib.checkpoint/2"
FORMAT_1 = "sketchlib.checkpoint/1"  # digest over the tensors only; read, never written
OPT_PREFIX = "__optimizer__/"


def _digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> str:
    """sha256 of the tensors (sorted by name) and, for format 2, of every metadata entry but the digest."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    if metadata is not None:
        h.update(b"|metadata|")
        h.update(json.dumps({k: v for k, v in metadata.items() if k != "digest"}, sort_keys=True).encode())
    return h.hexdigest()


def _json_default(obj):
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _dumps(obj) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True)


def _unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel / DataParallel wrapper."""
    return getattr(model, "module", model)


def _optimizer_tensors_and_meta(optimizer: torch.optim.Optimizer, model: nn.Module):
    sd = optimizer.state_dict()
    names = {id(p): n for n, p in model.named_parameters()}
    flat_params = [p for g in optimizer.param_groups for p in g["params"]]
    tensors, scalars = {}, {}
    for i, st in sd["state"].items():
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{OPT_PREFIX}{i}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(i), {})[key] = value
    # a learning rate held in a device tensor (the CUDA-graph path) is stored as a number
    groups = [{k: (float(v) if isinstance(v, torch.Tensor) else v) for k, v in g.items()} for g in sd["param_groups"]]
    meta = {
        "class": type(optimizer).__name__,
        "param_groups": groups,
        "state_scalars": scalars,
        "param_names": [names.get(id(p), "") for p in flat_params],
    }
    return tensors, meta


def save(path, model: nn.Module, hp: HParams, *, step: int, metrics: dict | None = None,
         optimizer: torch.optim.Optimizer | None = None, extra: dict | None = None) -> Path:
    """Write ``model`` (+ ``hp``, ``step``, ``metrics``, ``extra``, optimizer state) to ``path`` atomically.

    ``model`` may be wrapped in DistributedDataParallel; its bare state dict is saved. The optimizer
    is saved only when given (a training checkpoint); an exported model omits it.
    """
    import safetensors.torch

    from sketchlib import __version__

    bare = _unwrap(model)
    tensors = {k: v.detach().cpu().contiguous() for k, v in bare.state_dict().items()}
    bad = [k for k in tensors if k.startswith(OPT_PREFIX)]
    if bad:
        raise ValueError(f"model parameter name {bad[0]!r} uses the reserved prefix {OPT_PREFIX!r}")
    opt_meta = None
    if optimizer is not None:
        opt_tensors, opt_meta = _optimizer_tensors_and_meta(optimizer, bare)
        tensors.update(opt_tensors)
    metadata = {
        "format": FORMAT,
        "hparams": hp.to_json(),
        "step": str(int(step)),
        "metrics": _dumps(metrics or {}),
        "extra": _dumps(extra or {}),
        "optimizer": _dumps(opt_meta),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "sketchlib": __version__,
    }
    metadata["digest"] = _digest(tensors, metadata)
    data = safetensors.torch.save(tensors, metadata=metadata)
    return atomic_write(Path(path), data)


def read(path) -> tuple[dict[str, torch.Tensor], HParams, dict]:
    """Read a checkpoint file into (model weights on CPU, hp, info) without building a model.

    ``info`` has ``step``, ``metrics``, ``extra``, ``optimizer_state`` (a state dict ready for
    ``optimizer.load_state_dict``, or None), ``created``, ``torch``, ``sketchlib``, ``path``.
    Raises ``ValueError`` naming the file for anything that is not an intact sketchlib checkpoint.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own SafetensorError (and OSError, ValueError)
        raise ValueError(f"{path}: not a readable safetensors checkpoint (corrupt or truncated?): {exc}") from None
    if meta.get("format") not in (FORMAT, FORMAT_1):
        raise ValueError(f"{path}: not a sketchlib checkpoint (metadata format={meta.get('format')!r}, "
                         f"expected {FORMAT!r})")
    if meta.get("digest") != _digest(tensors, meta if meta["format"] == FORMAT else None):
        raise ValueError(f"{path}: the tensors or the metadata (config, step, scale, dataset) do not match the "
                         f"recorded digest (corrupted or edited file)")
    try:
        hp = HParams.from_json(meta["hparams"])
        step = int(meta["step"])
        metrics = json.loads(meta["metrics"])
        extra = json.loads(meta["extra"])
        opt_meta = json.loads(meta["optimizer"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: bad checkpoint metadata: {exc}") from None
    weights = {k: v for k, v in tensors.items() if not k.startswith(OPT_PREFIX)}
    opt_state = None
    if opt_meta is not None:
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith(OPT_PREFIX):
                i, key = k[len(OPT_PREFIX):].split("/", 1)
                state.setdefault(int(i), {})[key] = v
        for i, scalars in opt_meta["state_scalars"].items():
            state.setdefault(int(i), {}).update(scalars)
        groups = []
        for g in opt_meta["param_groups"]:
            g = dict(g)
            if isinstance(g.get("betas"), list):
                g["betas"] = tuple(g["betas"])  # JSON has no tuples; Adam stores a tuple
            groups.append(g)
        opt_state = {"state": state, "param_groups": groups, "class": opt_meta["class"],
                     "param_names": opt_meta["param_names"]}
    info = {"step": step, "metrics": metrics, "extra": extra, "optimizer_state": opt_state,
            "created": meta.get("created"), "torch": meta.get("torch"), "sketchlib": meta.get("sketchlib"),
            "path": str(path)}
    return weights, hp, info


def check_weights(model: nn.Module, weights: dict[str, torch.Tensor], source="checkpoint") -> None:
    """ValueError naming the first missing / unexpected key or shape mismatch between ``model`` and ``weights``."""
    expected = {k: tuple(v.shape) for k, v in _unwrap(model).state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing:
        raise ValueError(f"{source}: missing key {missing[0]!r} ({len(missing)} missing in all) for this config")
    if unexpected:
        raise ValueError(f"{source}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected in all) "
                         f"for this config")
    for k, shape in expected.items():
        if tuple(weights[k].shape) != shape:
            raise ValueError(f"{source}: shape mismatch for {k!r}: checkpoint has {list(weights[k].shape)}, "
                             f"the config builds {list(shape)}")


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], source="checkpoint") -> nn.Module:
    """Copy ``weights`` into ``model`` (DDP-wrapped or not) after :func:`check_weights`."""
    check_weights(model, weights, source)
    _unwrap(model).load_state_dict(weights, strict=True)
    return model


def restore_optimizer(optimizer: torch.optim.Optimizer, info: dict) -> None:
    """Load the optimizer state saved in a checkpoint (``info`` from :func:`read` / :func:`load`)."""
    st = info.get("optimizer_state")
    if st is None:
        raise ValueError(f"{info.get('path', 'checkpoint')}: has no optimizer state (an exported model?)")
    if st["class"] != type(optimizer).__name__:
        raise ValueError(f"{info.get('path')}: optimizer state is for {st['class']}, not {type(optimizer).__name__}")
    # How the update is computed (capturable for CUDA graphs, foreach, fused) and a learning rate
    # held in a tensor belong to this optimizer, not to the run: a GPU run resumes on a CPU and back.
    own = [{k: g[k] for k in _IMPLEMENTATION_KEYS if k in g} for g in optimizer.param_groups]
    lrs = [g["lr"] for g in optimizer.param_groups]
    optimizer.load_state_dict({"state": st["state"], "param_groups": st["param_groups"]})
    for g, keep, lr in zip(optimizer.param_groups, own, lrs):
        g.update(keep)
        if isinstance(lr, torch.Tensor):
            lr.fill_(float(g["lr"]))
            g["lr"] = lr


_IMPLEMENTATION_KEYS = ("capturable", "foreach", "fused", "differentiable")


def _default_build(hp: HParams) -> nn.Module:
    from sketchlib.nn.model import SketchRNN

    return SketchRNN(hp)


def load(path, map_location="cpu", *, build: Callable[[HParams], nn.Module] | None = None):
    """Rebuild the model from the checkpoint's config and load its weights: ``(model, hp, info)``.

    ``build(hp)`` makes the empty model (default :class:`sketchlib.nn.model.SketchRNN`). The model is
    returned in eval mode on ``map_location``. Tensors that do not fit the config raise ValueError.
    """
    weights, hp, info = read(path)
    model = (build or _default_build)(hp)
    load_weights(model, weights, source=str(path))
    model.to(map_location)
    model.eval()
    return model, hp, info
