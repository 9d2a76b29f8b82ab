"""The data: stroke formats, the readers of each source, datasets and training batches.

``strokes`` (stroke-3 / stroke-5 and the conversions), ``kanjivg`` / ``quickdraw`` / ``npz``
(readers), ``datasets`` (``load_dataset``: a name or a file to a normalised, split
``SketchData``), ``batches`` (``StrokeBatches``: stateless training batches), and the I/O they use
(``download``, ``fileio``, ``examples``).
"""

from sketchlib.data.datasets import SketchData, load_dataset, prepare
from sketchlib.data.batches import StrokeBatches, collate_stroke5

__all__ = ["SketchData", "StrokeBatches", "collate_stroke5", "load_dataset", "prepare"]
