"""sketchlib: a tested, fast and faithful PyTorch Sketch-RNN.

The package reads like the book::

    sketchlib.data     stroke formats, readers (KanjiVG, Quick, Draw!, .npz), datasets, batches
    sketchlib.nn       the cells, encoder, reparameterisation, decoder, MDN head, loss, SketchRNN
    sketchlib.fast     what exists only for speed (each piece tested equal to sketchlib.nn)
    sketchlib.train    the update step, the loop, checkpoints, the command line
    sketchlib.sample   the sampling loop, reconstruction, interpolation
    sketchlib.render   matplotlib, SVG and animation
    sketchlib.book     what serves only the book (source display, widgets)

The public API below is imported on first use, so ``import sketchlib`` stays cheap and a headless
training job never imports matplotlib or ipywidgets.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys

__version__ = "0.1.0"

#: name -> (module, attribute); attribute None means the module itself.
_API = {
    "HParams": ("sketchlib.config", "HParams"),
    "load_dataset": ("sketchlib.data.datasets", "load_dataset"),
    "SketchRNN": ("sketchlib.nn.model", "SketchRNN"),
    "sample": ("sketchlib.sample", None),
    "reconstruct": ("sketchlib.sample", "reconstruct"),
    "load_pretrained": ("sketchlib.pretrained", "load_pretrained"),
    "render": ("sketchlib.render", None),
}
__all__ = sorted(_API)

#: Modules that moved when the package was split into sub-packages: old name -> new name.
MOVED = {
    "strokes": "data.strokes", "kanjivg": "data.kanjivg", "quickdraw": "data.quickdraw", "npz": "data.npz",
    "download": "data.download", "fileio": "data.fileio", "examples": "data.examples",
    "lstm": "nn.lstm", "layer_norm_lstm": "nn.layer_norm_lstm", "hyper_lstm": "nn.hyper_lstm",
    "encoder": "nn.encoder", "reparam": "nn.reparam", "decoder": "nn.decoder", "mdn": "nn.mdn",
    "loss": "nn.loss", "model": "nn.model",
    "bptt": "fast.bptt", "fusion": "fast.fusion", "cuda_graph": "fast.cuda_graph", "decode_cpu": "fast.numpy_lstm",
    "schedules": "train.schedules", "checkpoint": "train.checkpoint",
    "show": "book.source", "book_data": "book.assets", "widgets": "book.widgets",
}


def _moved_error(old: str) -> ImportError:
    return ImportError(f"sketchlib.{old} moved to sketchlib.{MOVED[old]}: "
                       f"use `from sketchlib.{MOVED[old].rsplit('.', 1)[0]} import {MOVED[old].rsplit('.', 1)[1]}`")


def __getattr__(name: str):
    if name in _API:
        module, attr = _API[name]
        mod = importlib.import_module(module)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    if name in MOVED:  # `from sketchlib import model` (an import path the first edition showed)
        raise _moved_error(name)
    raise AttributeError(f"module 'sketchlib' has no attribute {name!r}")


class _MovedFinder(importlib.abc.MetaPathFinder):
    """``import sketchlib.model`` (an old path) fails with a message naming the new one."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, rest = fullname.partition(".")
        if prefix == "sketchlib" and rest in MOVED:
            raise _moved_error(rest)
        return None


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedFinder())
