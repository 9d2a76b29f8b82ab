"""The network, one idea per module, in the book's order: the recurrent cells (``lstm``,
``layer_norm_lstm``, ``hyper_lstm``), the bidirectional ``encoder``, the reparameterisation
(``reparam``), the ``decoder``, the mixture density head (``mdn``), the ``loss`` and the whole
``model`` (``SketchRNN``). Nothing here is written for speed: that lives in :mod:`sketchlib.fast`.
"""

from sketchlib.nn.model import ModelOutput, SketchRNN

__all__ = ["ModelOutput", "SketchRNN"]
