"""sketchlib: a tested, fast and faithful PyTorch Sketch-RNN.

Submodules are imported on demand (``from sketchlib import strokes``), so ``import sketchlib``
stays cheap and a headless training job never imports matplotlib or ipywidgets.
"""

__version__ = "0.1.0"
