"""HParams: every field's type and range is checked, with a message naming the field and the range."""

import math

import pytest

from sketchlib.config import HParams, RANGES


@pytest.mark.parametrize("field, value, allowed", [
    ("grad_clip", -1.0, r"\(0, inf\)"),  # would turn every gradient into -1
    ("learning_rate", -1e-3, r"\(0, inf\)"),
    ("learning_rate", math.nan, "finite"),  # used to fail deep inside Adam
    ("decay_rate", 1.01, r"\(0, 1\]"),
    ("kl_decay_rate", 0.0, r"\(0, 1\]"),
    ("kl_weight", -0.5, r"\[0, inf\)"),
    ("kl_weight_start", -0.1, r"\[0, inf\)"),
    ("kl_tolerance", -0.2, r"\[0, inf\)"),
    ("min_learning_rate", -1e-5, r"\[0, learning_rate\]"),
    ("random_scale_factor", 1.0, r"\[0, 1\)"),
    ("augment_stroke_prob", 1.5, r"\[0, 1\]"),
    ("layer_norm_eps", 0.0, r"\(0, inf\)"),
    ("forget_bias", math.inf, "finite"),
    ("recurrent_dropout_prob", 0.0, "KEEP probability"),
    ("num_steps", -1, r"\[0, inf\)"),
    ("z_size", 0, "positive integer"),
    ("z_size", 1.5, "integer"),
    ("batch_size", True, "number"),
    ("conditional", 1, "true or false"),
    ("dec_model", "gru", "one of"),
    ("grad_clip_mode", "max", "one of"),
    ("extra", [], "dict"),
])
def test_item4_out_of_range_hyperparameters_are_refused(field, value, allowed):
    with pytest.raises(ValueError, match=rf"^{field} must .*{allowed}"):
        HParams(**{field: value})
    with pytest.raises(ValueError, match=rf"^{field} must"):
        HParams().replace(**{field: value})  # replace validates too


def test_item4_min_learning_rate_above_learning_rate_is_refused():
    with pytest.raises(ValueError, match=r"min_learning_rate \(0.1\) must be <= learning_rate \(0.01\)"):
        HParams(learning_rate=0.01, min_learning_rate=0.1)


def test_item4_the_defaults_and_the_edges_of_each_range_are_accepted():
    HParams()
    HParams(decay_rate=1.0, kl_decay_rate=1.0, kl_weight=0.0, kl_weight_start=0.0, kl_tolerance=0.0,
            min_learning_rate=0.0, random_scale_factor=0.0, augment_stroke_prob=1.0, recurrent_dropout_prob=1.0,
            num_steps=0, learning_rate=1, grad_clip=5)  # an int where a float is expected is fine
    assert set(RANGES) <= {f for f in HParams.__dataclass_fields__}


def test_item4_a_checkpoints_config_is_validated_on_load():
    text = HParams().to_json().replace('"grad_clip": 1.0', '"grad_clip": -1.0')
    with pytest.raises(ValueError, match="grad_clip must be in"):
        HParams.from_json(text)
