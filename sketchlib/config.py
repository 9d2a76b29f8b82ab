"""One config object for every Sketch-RNN hyperparameter, with the reference implementation's defaults.

The checkpoint stores it as JSON, so a model can always be rebuilt exactly as it was trained.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

CELLS = ("lstm", "layer_norm", "hyper")
CHOICES = {"enc_model": ("lstm", "layer_norm"), "dec_model": CELLS, "grad_clip_mode": ("value", "norm")}


def _positive(v) -> bool:
    return v > 0


def _non_negative(v) -> bool:
    return v >= 0


def _at_most_1(v) -> bool:
    return v <= 1


def _below_1(v) -> bool:
    return v < 1


def _any(v) -> bool:
    return True


#: field -> (lower test, upper test, the range in words); types are checked from the defaults.
RANGES = {
    **{name: (_positive, _any, "[1, inf) (a positive integer)")
       for name in ("max_seq_len", "enc_rnn_size", "dec_rnn_size", "z_size", "num_mixture", "batch_size",
                    "hyper_num_units", "hyper_embedding_size")},
    "num_steps": (_non_negative, _any, "[0, inf)"),
    "random_scale_factor": (_non_negative, _below_1, "[0, 1)"),
    "augment_stroke_prob": (_non_negative, _at_most_1, "[0, 1]"),
    "layer_norm_eps": (_positive, _any, "(0, inf)"),
    **{name: (_positive, _at_most_1, "(0, 1] (a KEEP probability)")
       for name in ("recurrent_dropout_prob", "input_dropout_prob", "output_dropout_prob")},
    "learning_rate": (_positive, _any, "(0, inf)"),
    "decay_rate": (_positive, _at_most_1, "(0, 1]"),
    "min_learning_rate": (_non_negative, _any, "[0, learning_rate]"),
    "grad_clip": (_positive, _any, "(0, inf)"),
    "kl_weight": (_non_negative, _any, "[0, inf)"),
    "kl_weight_start": (_non_negative, _any, "[0, inf)"),
    "kl_decay_rate": (_positive, _at_most_1, "(0, 1]"),
    "kl_tolerance": (_non_negative, _any, "[0, inf)"),
}


@dataclass
class HParams:
    """Hyperparameters. Defaults are the reference's (Ha & Eck 2017, Magenta ``sketch_rnn``)."""

    # data
    max_seq_len: int = 250  # N_max; the data layer resets it to the longest sketch it keeps
    random_scale_factor: float = 0.15  # x, y scaled by U(1 - f, 1 + f), training only
    augment_stroke_prob: float = 0.10  # interior point drop, training only
    # model
    conditional: bool = True  # False: decoder only (unconditional model, no z)
    enc_model: str = "lstm"  # lstm | layer_norm (bidirectional either way)
    enc_rnn_size: int = 256  # units of each direction
    dec_model: str = "lstm"  # lstm | layer_norm | hyper
    dec_rnn_size: int = 512
    z_size: int = 128  # N_z
    num_mixture: int = 20  # M
    hyper_num_units: int = 256
    hyper_embedding_size: int = 32
    forget_bias: float = 1.0
    layer_norm_eps: float = 1e-3
    use_recurrent_dropout: bool = True
    recurrent_dropout_prob: float = 0.90  # KEEP probability, as the reference names it
    use_input_dropout: bool = False
    input_dropout_prob: float = 0.90
    use_output_dropout: bool = False
    output_dropout_prob: float = 0.90
    # training
    batch_size: int = 100
    learning_rate: float = 1e-3
    decay_rate: float = 0.9999
    min_learning_rate: float = 1e-5
    grad_clip: float = 1.0
    grad_clip_mode: str = "value"  # value (reference) | norm
    kl_weight: float = 0.5  # w_KL
    kl_weight_start: float = 0.01
    kl_decay_rate: float = 0.99995  # R
    kl_tolerance: float = 0.2  # KL_min
    num_steps: int = 10_000_000
    # free-form notes (dataset name, scale factor, ...), kept with the checkpoint
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the first field outside its allowed range (see ``RANGES``)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = type(f.default) if f.default is not dataclasses.MISSING else dict
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"{f.name} must be true or false, got {value!r}")
            if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if kind is int and not isinstance(value, int):
                raise ValueError(f"{f.name} must be an integer, got {value!r}")
            if kind is float and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            if kind is dict and not isinstance(value, dict):
                raise ValueError(f"{f.name} must be a dict, got {type(value).__name__}")
            if f.name in CHOICES and value not in CHOICES[f.name]:
                raise ValueError(f"{f.name} must be one of {CHOICES[f.name]}, got {value!r}")
            if f.name in RANGES:
                low, high, text = RANGES[f.name]
                if not (low(value) and high(value)):
                    raise ValueError(f"{f.name} must be in {text}, got {value!r}")
        if self.min_learning_rate > self.learning_rate:
            raise ValueError(f"min_learning_rate ({self.min_learning_rate}) must be <= learning_rate "
                             f"({self.learning_rate})")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "HParams":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "HParams":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> "HParams":
        return dataclasses.replace(self, **changes)
