"""Training: the update step, the loop, runs and checkpoints, export, the command line.

* :mod:`~sketchlib.train.step`: ONE update (:func:`train_step`), used by the loop, the CUDA graph and chapter 8;
* :mod:`~sketchlib.train.loop`: :func:`fit` (the loop), :func:`train` (fit with keyword settings), :func:`evaluate`;
* :mod:`~sketchlib.train.run`: :class:`RunConfig` and a run's bookkeeping (log, validation, checkpoints);
* :mod:`~sketchlib.train.session`, :mod:`~sketchlib.train.guard`: device, DDP, lock, signals;
* :mod:`~sketchlib.train.logs`, :mod:`~sketchlib.train.checkpoint`, :mod:`~sketchlib.train.export`,
  :mod:`~sketchlib.train.cli` (``python -m sketchlib.train --dataset kanjivg --out runs/x --steps 10000``).
"""

from sketchlib.train.cli import main
from sketchlib.train.export import export
from sketchlib.train.guard import RunLocked
from sketchlib.train.logs import plot_losses, read_log
from sketchlib.train.loop import TrainResult, evaluate, fit, train
from sketchlib.train.run import BEST, LAST, LOG, NonFiniteLoss, RunConfig
from sketchlib.train.step import clip_gradients, make_optimizer, set_learning_rate, step_seed, train_step

__all__ = ["BEST", "LAST", "LOG", "NonFiniteLoss", "RunConfig", "RunLocked", "TrainResult", "clip_gradients",
           "evaluate", "export", "fit", "main", "make_optimizer", "plot_losses", "read_log", "set_learning_rate",
           "step_seed", "train", "train_step"]
