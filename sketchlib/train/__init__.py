"""Training: the update step, the loop, runs and checkpoints, the command line.

``python -m sketchlib.train --dataset kanjivg --out runs/x --steps 10000`` runs :func:`main`.
"""

from sketchlib.train.loop import NonFiniteLoss, TrainResult, evaluate, export, main, train

__all__ = ["NonFiniteLoss", "TrainResult", "evaluate", "export", "main", "train"]
