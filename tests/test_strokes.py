"""Tests of sketchlib.data.strokes: formats, round trips, augmentation, padding, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sketchlib.data import strokes as S

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------
# strategies: integer-valued coordinates, so every float sum below is exact


def stroke3_arrays(min_len=1, max_len=40, end_with_lift=None):
    """A stroke-3 float64 array with integer offsets in [-300, 300]."""

    @st.composite
    def build(draw):
        n = draw(st.integers(min_len, max_len))
        xy = draw(st.lists(st.tuples(st.integers(-300, 300), st.integers(-300, 300)), min_size=n, max_size=n))
        pen = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
        a = np.column_stack([np.array(xy, dtype=np.float64).reshape(n, 2), np.array(pen, dtype=np.float64)])
        lift = draw(st.booleans()) if end_with_lift is None else end_with_lift
        a[-1, 2] = 1.0 if lift else a[-1, 2]
        return a

    return build()


@st.composite
def polylines(draw):
    k = draw(st.integers(1, 6))
    out = []
    for _ in range(k):
        n = draw(st.integers(1, 10))
        pts = draw(st.lists(st.tuples(st.integers(-1000, 1000), st.integers(-1000, 1000)), min_size=n, max_size=n))
        out.append(np.array(pts, dtype=np.int64).reshape(n, 2))
    return out


def absolute(s3: np.ndarray) -> np.ndarray:
    return np.cumsum(s3[:, :2], axis=0)


def reference_augment_strokes(strokes, uniforms, prob):
    """The reference's ``utils.augment_strokes`` (Magenta sketch_rnn), transcribed line by line, with
    its ``np.random.rand()`` calls replaced by the given uniforms (one per point, in order)."""
    result = []
    prev_stroke = [0, 0, 1]
    count = 0
    stroke = [0, 0, 1]
    for i in range(len(strokes)):
        candidate = [strokes[i][0], strokes[i][1], strokes[i][2]]
        if candidate[2] == 1 or prev_stroke[2] == 1:
            count = 0
        else:
            count += 1
        urnd = uniforms[i]
        if candidate[2] == 0 and prev_stroke[2] == 0 and count > 2 and urnd < prob:
            stroke[0] += candidate[0]
            stroke[1] += candidate[1]
        else:
            stroke = candidate
            prev_stroke = stroke
            result.append(stroke)
    return np.array(result)


# ---------------------------------------------------------------------------------------------
# round trips


@SETTINGS
@given(stroke3_arrays(), st.integers(0, 10))
def test_stroke3_stroke5_round_trip_is_exact(s3, extra):
    n = s3.shape[0]
    s5 = S.stroke3_to_stroke5(s3, max_len=n + extra)
    assert s5.shape == (n + extra + 1, 5)
    back = S.stroke5_to_stroke3(s5)
    np.testing.assert_array_equal(back, s3)
    # without S_0 too
    back2 = S.stroke5_to_stroke3(s5[1:], start_token=False)
    np.testing.assert_array_equal(back2, s3)


@SETTINGS
@given(polylines(), st.tuples(st.integers(-50, 50), st.integers(-50, 50)))
def test_lines_stroke3_lines_round_trip_is_exact(lines, origin):
    s3 = S.lines_to_stroke3(lines, origin=origin)
    assert s3.shape == (sum(len(x) for x in lines), 3)
    assert S.num_strokes(s3) == len(lines)
    assert s3[-1, 2] == 1
    back = S.stroke3_to_lines(s3, origin=origin)
    assert len(back) == len(lines)
    for got, want in zip(back, lines):
        np.testing.assert_array_equal(got, want)


@SETTINGS
@given(stroke3_arrays())
def test_stroke3_lines_stroke3_round_trip(s3):
    lines = S.stroke3_to_lines(s3)
    back = S.lines_to_stroke3(lines)
    np.testing.assert_array_equal(back[:, :2], s3[:, :2])
    # a sketch whose last point is pen-down gets its final lift back; all else equal
    want_pen = s3[:, 2].copy()
    want_pen[-1] = 1
    np.testing.assert_array_equal(back[:, 2], want_pen)


def test_stroke3_to_stroke5_layout_by_hand():
    s3 = np.array([[1, 2, 0], [3, 4, 1], [5, 6, 0], [7, 8, 1]], dtype=np.float32)
    s5 = S.stroke3_to_stroke5(s3, max_len=6)
    want = np.array(
        [
            [0, 0, 1, 0, 0],
            [1, 2, 1, 0, 0],
            [3, 4, 0, 1, 0],
            [5, 6, 1, 0, 0],
            [7, 8, 0, 1, 0],
            [0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1],
        ],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(s5, want)


def test_stroke5_first_row_p3_gives_empty_sketch():
    s5 = np.array([[0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1]], dtype=np.float32)
    assert S.stroke5_to_stroke3(s5).shape == (0, 3)


def test_stroke5_start_token_missing_is_an_error_not_a_lost_point():
    s5 = np.array([[4, 5, 1, 0, 0], [1, 1, 0, 1, 0]], dtype=np.float32)
    with pytest.raises(ValueError, match=r"sketch 2: start_token=True but row 0 is \[4\.0, 5\.0"):
        S.stroke5_to_stroke3(s5, index=2)
    np.testing.assert_array_equal(S.stroke5_to_stroke3(s5, start_token=False), [[4, 5, 0], [1, 1, 1]])


def test_stroke5_not_one_hot_is_rejected():
    s5 = np.array([[0, 0, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=np.float32)
    with pytest.raises(ValueError, match=r"sketch 7: pen state \[1\.0, 1\.0, 0\.0\] at row 1 is not one-hot"):
        S.stroke5_to_stroke3(s5, index=7)
    with pytest.raises(ValueError, match=r"sketch: stroke-5 must have shape \[N, 5\], got \[2, 4\]"):
        S.validate_stroke5(np.zeros((2, 4)))


# ---------------------------------------------------------------------------------------------
# augmentation


@SETTINGS
@given(stroke3_arrays(), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_augment_drop_keeps_strokes_lift_points_and_displacement(s3, prob, seed):
    out = S.augment_drop(s3, prob, np.random.default_rng(seed))
    assert out.shape[1] == 3 and 1 <= out.shape[0] <= s3.shape[0]
    assert S.num_strokes(out) == S.num_strokes(s3)
    np.testing.assert_array_equal(out[:, :2].sum(axis=0), s3[:, :2].sum(axis=0))  # total displacement
    # absolute positions of the pen-lift points, in order
    np.testing.assert_array_equal(absolute(out)[out[:, 2] == 1], absolute(s3)[s3[:, 2] == 1])
    # stroke by stroke, in absolute positions: the first two points stay (a dropped offset merges
    # into the previous kept row, which then ends where the dropped point was, so rows 0-2 are never
    # dropped but row 2 may move), the last point stays (a lift point is never dropped; a final
    # pen-down point may be merged, landing its row exactly there), and every kept position is one
    # of the original positions, in order
    for got, want in zip(S.stroke3_to_lines(out), S.stroke3_to_lines(s3)):
        assert len(got) >= min(3, len(want))
        np.testing.assert_array_equal(got[: min(2, len(want))], want[: min(2, len(want))])
        np.testing.assert_array_equal(got[-1], want[-1])
        j = 0
        for p in got:
            while j < len(want) and not np.array_equal(want[j], p):
                j += 1
            assert j < len(want), "a kept point is not one of the original points"
            j += 1


@SETTINGS
@given(stroke3_arrays(), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_augment_drop_matches_the_reference_code(s3, prob, seed):
    out = S.augment_drop(s3, prob, np.random.default_rng(seed))
    uniforms = np.random.default_rng(seed).random(s3.shape[0])  # the draws augment_drop makes
    want = reference_augment_strokes(s3, uniforms, prob)
    np.testing.assert_array_equal(out, want)


def test_augment_drop_extremes():
    s3 = np.array([[1, 0, 0]] * 9 + [[1, 0, 1]] + [[0, 1, 0]] * 2 + [[0, 1, 1]] + [[2, 2, 0]] * 6, dtype=float)
    np.testing.assert_array_equal(S.augment_drop(s3, 0.0, np.random.default_rng(0)), s3)
    out = S.augment_drop(s3, 1.0, np.random.default_rng(0))
    # prob 1: every stroke keeps its first three points and its lift point; a final stroke without
    # a lift keeps its first three points only (its last point is an ordinary interior candidate)
    assert [len(x) for x in S.stroke3_to_lines(out)] == [4, 3, 3]
    np.testing.assert_array_equal(out[:4], [[1, 0, 0], [1, 0, 0], [7, 0, 0], [1, 0, 1]])
    np.testing.assert_array_equal(out[-3:], [[2, 2, 0], [2, 2, 0], [8, 8, 0]])
    with pytest.raises(ValueError, match="prob must be in"):
        S.augment_drop(s3, 1.5)


@SETTINGS
@given(stroke3_arrays(), st.floats(0.0, 0.9), st.integers(0, 2**32 - 1))
def test_augment_scale_keeps_pen_and_scales_within_bounds(s3, factor, seed):
    s3 = s3.copy()
    s3[0, :2] = (7, -5)  # at least one non-zero dx and dy to read the factors from
    before = s3.copy()
    out = S.augment_scale(s3, factor, np.random.default_rng(seed))
    np.testing.assert_array_equal(s3, before)  # input untouched
    np.testing.assert_array_equal(out[:, 2], s3[:, 2])
    sx, sy = out[0, 0] / 7, out[0, 1] / -5
    for f in (sx, sy):
        assert 1 - factor - 1e-12 <= f <= 1 + factor + 1e-12
    np.testing.assert_allclose(out[:, 0], s3[:, 0] * sx, rtol=1e-12, atol=0)
    np.testing.assert_allclose(out[:, 1], s3[:, 1] * sy, rtol=1e-12, atol=0)


def test_augment_scale_x_and_y_are_independent_and_factor_checked():
    s3 = np.array([[10.0, 10.0, 1.0]])
    outs = np.stack([S.augment_scale(s3, 0.15, np.random.default_rng(k))[0, :2] for k in range(50)])
    assert not np.allclose(outs[:, 0], outs[:, 1])
    assert outs.min() >= 8.5 and outs.max() <= 11.5
    with pytest.raises(ValueError, match="factor must be in"):
        S.augment_scale(s3, 1.0)


# ---------------------------------------------------------------------------------------------
# padding into a stroke-5 batch


@SETTINGS
@given(st.lists(stroke3_arrays(max_len=30), min_size=1, max_size=5), st.integers(0, 5))
def test_pad_batch_layout(sketches, extra):
    max_len = max(len(s) for s in sketches) + extra
    batch, lengths = S.pad_batch(sketches, max_len)
    assert batch.dtype == np.float32 and batch.shape == (len(sketches), max_len + 1, 5)
    assert lengths.dtype == np.int64
    np.testing.assert_array_equal(lengths, [len(s) for s in sketches])
    for b, (s, n) in enumerate(zip(sketches, lengths)):
        np.testing.assert_array_equal(batch[b, 0], S.START_TOKEN)
        np.testing.assert_array_equal(batch[b, 1 : n + 1, :2], s[:, :2])
        np.testing.assert_array_equal(batch[b, 1 : n + 1, 2], 1 - s[:, 2])
        np.testing.assert_array_equal(batch[b, 1 : n + 1, 3], s[:, 2])
        assert (batch[b, 1 : n + 1, 4] == 0).all()
        if s[-1, 2] == 1:
            assert batch[b, n, 3] == 1  # the last real point lifts the pen
        np.testing.assert_array_equal(batch[b, n + 1 :], np.tile(S.END_TOKEN, (max_len - n, 1)))
        np.testing.assert_array_equal(S.stroke5_to_stroke3(batch[b]), s)


def test_pad_batch_full_length_sketch_has_no_p3_row_and_round_trips():
    s = np.array([[1, 2, 0], [3, 4, 0], [5, 6, 1]], dtype=np.int16)
    short = np.array([[9, 9, 1]], dtype=np.int16)
    batch, lengths = S.pad_batch([s, short], max_len=3)
    assert batch.shape == (2, 4, 5)
    np.testing.assert_array_equal(lengths, [3, 1])
    assert (batch[0, :, 4] == 0).all()  # no end row: the sketch fills N_max
    np.testing.assert_array_equal(S.stroke5_to_stroke3(batch[0]), s)
    np.testing.assert_array_equal(batch[1, 2:], [S.END_TOKEN, S.END_TOKEN])


def test_pad_batch_rejects_bad_max_len():
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        S.pad_batch([np.array([[1, 1, 1]])], 0)
    with pytest.raises(ValueError, match="no sketches"):
        S.pad_batch([], 5)


# ---------------------------------------------------------------------------------------------
# unit tests


def test_scale_factor_is_std_of_pooled_offsets():
    rng = np.random.default_rng(0)
    sketches = [
        np.column_stack([rng.integers(-50, 50, (n, 2)), rng.integers(0, 2, n)]).astype(np.int16)
        for n in (3, 10, 25)
    ]
    pooled = np.concatenate([s[:, :2].astype(np.float64).ravel() for s in sketches])
    assert S.scale_factor(sketches) == pytest.approx(np.std(pooled), rel=1e-12)
    # not the per-axis std, and no per-sketch averaging
    assert S.scale_factor(sketches) != pytest.approx(np.mean([np.std(s[:, :2]) for s in sketches]), rel=1e-6)
    with pytest.raises(ValueError, match="no sketches"):
        S.scale_factor([])
    with pytest.raises(ValueError, match="scale would be 0"):
        S.scale_factor([np.array([[1, 1, 1], [1, 1, 0]])])


def test_normalize_divides_offsets_only():
    s = np.array([[10, -20, 0], [30, 40, 1]], dtype=np.int16)
    (out,) = S.normalize([s], 10.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1, -2, 0], [3, 4, 1]])
    np.testing.assert_array_equal(s, [[10, -20, 0], [30, 40, 1]])  # input untouched
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale must be a positive number"):
            S.normalize([s], bad)


def test_clamp_clips_offsets_not_pen():
    s = np.array([[1500.0, -2000.0, 0.0], [-999.0, 1000.0, 1.0]])
    out = S.clamp(s)
    np.testing.assert_array_equal(out, [[1000, -1000, 0], [-999, 1000, 1]])
    np.testing.assert_array_equal(s[0], [1500, -2000, 0])
    np.testing.assert_array_equal(S.clamp(s, limit=5), [[5, -5, 0], [-5, 5, 1]])


def test_rdp_collinear_points_collapse():
    line = np.column_stack([np.arange(10.0), 2 * np.arange(10.0)])
    np.testing.assert_array_equal(S.rdp(line, 0.5), [[0, 0], [9, 18]])


def test_rdp_keeps_corner_and_respects_epsilon():
    l_shape = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [3, 1], [3, 2], [3, 3]], dtype=float)
    np.testing.assert_array_equal(S.rdp(l_shape, 0.1), [[0, 0], [3, 0], [3, 3]])
    bump = np.array([[0, 0], [5, 0.5], [10, 0]])
    np.testing.assert_array_equal(S.rdp(bump, 0.1), bump)  # 0.5 from the chord: kept
    np.testing.assert_array_equal(S.rdp(bump, 1.0), [[0, 0], [10, 0]])  # within epsilon: dropped
    np.testing.assert_array_equal(S.rdp(bump[:2], 5.0), bump[:2])
    simplified = S.simplify_lines([l_shape, bump], 1.0)
    assert [len(x) for x in simplified] == [3, 2]
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        S.rdp(l_shape, -1)
    with pytest.raises(ValueError, match=r"rdp: points must have shape \[n, 2\]"):
        S.rdp(np.zeros((3, 3)), 1.0)


def test_num_strokes():
    assert S.num_strokes(np.array([[1, 1, 1]])) == 1
    assert S.num_strokes(np.array([[1, 1, 0]])) == 1
    assert S.num_strokes(np.array([[1, 1, 0], [1, 1, 1], [2, 2, 0], [2, 2, 1]])) == 2
    assert S.num_strokes(np.array([[1, 1, 1], [1, 1, 1], [2, 2, 0]])) == 3


def test_validate_accepts_int16_and_returns_float():
    s = np.array([[1, 2, 1]], dtype=np.int16)
    out = S.validate_stroke3(s)
    assert out.dtype == np.float32
    f64 = np.array([[1.5, 2.0, 1.0]])
    assert S.validate_stroke3(f64) is f64  # no copy when already float


# ---------------------------------------------------------------------------------------------
# bad input: ValueError naming the problem AND the sketch

GOOD = np.array([[1, 2, 0], [3, 4, 1]], dtype=np.int16)
N_MAX = 10

BAD = {
    "wrong width": (np.zeros((4, 4)), r"stroke-3 must have shape \[N, 3\], got \[4, 4\]"),
    "1-d": (np.zeros(3), r"stroke-3 must have shape \[N, 3\], got \[3\]"),
    "3-d": (np.zeros((2, 3, 1)), r"stroke-3 must have shape \[N, 3\]"),
    "bool": (np.ones((2, 3), dtype=bool), "expected real numbers, got dtype bool"),
    "object": (np.array([[1, 2, 1]], dtype=object), "expected real numbers, got dtype object"),
    "complex": (np.ones((2, 3), dtype=complex), "expected real numbers, got dtype complex128"),
    "strings": (np.array([["1", "2", "1"]]), "expected real numbers, got dtype <U1"),
    "ragged": ([[1, 2, 0], [3, 4]], "not a rectangular array of numbers"),
    "nan": (np.array([[1, 2, 0], [np.nan, 4, 1]]), "NaN or inf at row 1"),
    "inf": (np.array([[1, -np.inf, 1]]), "NaN or inf at row 0"),
    "pen 2": (np.array([[1, 2, 0], [3, 4, 2]]), "pen value 2 at row 1; stroke-3 pen must be 0 or 1"),
    "pen 0.5": (np.array([[1, 2, 0.5]]), r"pen value 0\.5 at row 0; stroke-3 pen must be 0 or 1"),
    "empty": (np.zeros((0, 3)), r"empty sketch \(0 points\)"),
    "too long": (np.tile([[1, 1, 1]], (N_MAX + 1, 1)), "11 points is longer than N_max = 10"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_sketch_is_named_with_its_problem(name):
    bad, problem = BAD[name]
    with pytest.raises(ValueError, match=rf"^sketch 3: {problem}"):
        S.validate_stroke3(bad, index=3, max_len=N_MAX)
    # the batch builder names the position of the bad sketch in the list
    with pytest.raises(ValueError, match=rf"^sketch 3: {problem}"):
        S.pad_batch([GOOD, GOOD, GOOD, bad], N_MAX)
    if name != "too long":
        with pytest.raises(ValueError, match=rf"^sketch 3: {problem}"):
            S.scale_factor([GOOD, GOOD, GOOD, bad])
        with pytest.raises(ValueError, match=rf"^sketch 3: {problem}"):
            S.normalize([GOOD, GOOD, GOOD, bad], 2.0)
        with pytest.raises(ValueError, match=rf"^sketch 3: {problem}"):
            S.stroke3_to_stroke5(bad, max_len=N_MAX, index=3)


def test_bad_polyline_names_sketch_and_stroke():
    with pytest.raises(ValueError, match=r"sketch 4, stroke 1: empty stroke"):
        S.lines_to_stroke3([np.zeros((2, 2)), np.zeros((0, 2))], index=4)
    with pytest.raises(ValueError, match=r"sketch 4, stroke 0: NaN or inf at row 1"):
        S.lines_to_stroke3([np.array([[0.0, 0.0], [np.nan, 1.0]])], index=4)
    with pytest.raises(ValueError, match=r"sketch 4, stroke 0: a polyline must have shape \[n, 2\]"):
        S.lines_to_stroke3([np.zeros((2, 3))], index=4)
    with pytest.raises(ValueError, match=r"sketch 4: no strokes"):
        S.lines_to_stroke3([], index=4)


# ---------------------------------------------------------------------------------------------
# real data


def test_omniglot_train_split(shared_data):
    with np.load(shared_data / "omniglot.npz", encoding="latin1", allow_pickle=True) as f:
        train = list(f["train"])
    assert len(train) == 30000
    longest = max(len(s) for s in train)
    for i, s in enumerate(train):
        s3 = S.validate_stroke3(s, index=i)
        assert s3.dtype == np.float32
        back = S.stroke5_to_stroke3(S.stroke3_to_stroke5(s, max_len=longest, index=i))
        np.testing.assert_array_equal(back, s)
    scale = S.scale_factor(train)
    assert round(scale, 2) == 53.44, scale  # facts file: omniglot 53.44
    batch, lengths = S.pad_batch(train[:100], longest)
    assert batch.shape == (100, longest + 1, 5)
    assert (batch[np.arange(100), lengths, 3] == 1).all()  # every omniglot sketch ends with a lift
