"""One config object for every Sketch-RNN hyperparameter, with the reference implementation's defaults.

The checkpoint stores it as JSON, so a model can always be rebuilt exactly as it was trained.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

CELLS = ("lstm", "layer_norm", "hyper")


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
        if self.enc_model not in ("lstm", "layer_norm"):
            raise ValueError(f"enc_model must be 'lstm' or 'layer_norm', got {self.enc_model!r}")
        if self.dec_model not in CELLS:
            raise ValueError(f"dec_model must be one of {CELLS}, got {self.dec_model!r}")
        if self.grad_clip_mode not in ("value", "norm"):
            raise ValueError(f"grad_clip_mode must be 'value' or 'norm', got {self.grad_clip_mode!r}")
        for name in ("max_seq_len", "enc_rnn_size", "dec_rnn_size", "z_size", "num_mixture", "batch_size",
                     "hyper_num_units", "hyper_embedding_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("recurrent_dropout_prob", "input_dropout_prob", "output_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} is a keep probability in (0, 1], got {value!r}")

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
