"""The reader's drawing -> model input (sketchlib.data.drawing), and its JavaScript twin (drawing.mjs)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from conftest import ROOT, in_ci
from sketchlib.data.drawing import drawing_to_lines, drawing_to_stroke3, drawing_to_stroke5, keep_middle
from sketchlib.data.strokes import stroke3_to_lines

SCALE = 20.444916649338605
PX = 256 / 109  # canvas pixels per grid unit


def line(p, q, n=60):
    """A ruler-straight mouse stroke from p to q: n points rounded to whole pixels."""
    t = np.linspace(0, 1, n)[:, None]
    return (np.asarray(p, float) * (1 - t) + np.asarray(q, float) * t).round()


def ten():
    """十 as a mouse draws it, in KanjiVG's order: the horizontal, then the vertical."""
    return [line((20 * PX, 52 * PX), (96 * PX, 47 * PX)), line((54 * PX, 15 * PX), (54 * PX, 97 * PX))]


def test_first_offset_is_measured_from_the_grid_corner_and_scaled():
    s3 = drawing_to_stroke3([[(128.0, 64.0)], [(0.0, 256.0), (256.0, 256.0)]], SCALE)
    assert s3.dtype == np.float32
    np.testing.assert_allclose(s3[0], [128 / PX / SCALE, 64 / PX / SCALE, 1], rtol=1e-6)
    np.testing.assert_allclose(s3[1], [-128 / PX / SCALE, 192 / PX / SCALE, 0], rtol=1e-6)
    np.testing.assert_allclose(s3[2], [109 / SCALE, 0, 1], rtol=1e-6)


def test_simplified_at_the_data_epsilon_in_grid_units():
    wobble = [(x, 100 + (0.8 * PX if x % 40 == 20 else 0.0)) for x in range(0, 257, 10)]  # 0.8 grid units off the line
    assert len(drawing_to_lines([wobble], long_stroke=np.inf)[0]) == 2
    assert len(drawing_to_lines([wobble], epsilon=0.5, long_stroke=np.inf)[0]) > 2


def test_long_straight_strokes_keep_their_middle_point_and_short_ones_do_not():
    long_raw = line((0, 0), (50, 0), n=11)
    out = keep_middle(long_raw, long_raw[[0, -1]])
    np.testing.assert_array_equal(out, [[0, 0], [25, 0], [50, 0]])
    short = line((0, 0), (30, 0), n=11)
    assert keep_middle(short, short[[0, -1]]).shape == (2, 2)
    three = line((0, 0), (50, 0), n=3)
    np.testing.assert_array_equal(keep_middle(three, three), three)  # RDP kept 3 points: unchanged
    assert [len(s) for s in drawing_to_lines(ten())] == [3, 3]


def test_stroke5_and_bad_drawings():
    s5, n = drawing_to_stroke5(ten(), SCALE, max_len=10)
    assert n == 6 and s5.shape == (11, 5)
    np.testing.assert_array_equal(s5[0], [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(s5[1:7, 2:].argmax(1), [0, 0, 1, 0, 0, 1])
    assert (s5[7:, 4] == 1).all()
    with pytest.raises(ValueError, match="N_max = 5"):
        drawing_to_stroke5(ten(), SCALE, max_len=5)
    with pytest.raises(ValueError, match="empty"):
        drawing_to_stroke3([[], []], SCALE)
    with pytest.raises(ValueError, match="stroke 1"):
        drawing_to_stroke3([[(1, 2)], [(1, 2, 3)]], SCALE)
    with pytest.raises(ValueError, match="NaN"):
        drawing_to_stroke3([[(1, float("nan"))]], SCALE)
    with pytest.raises(ValueError, match="scale"):
        drawing_to_stroke3(ten(), 0.0)


def test_the_notebook_canvas_uses_the_same_conversion():
    from sketchlib.book.widgets import strokes_from_canvas_points

    np.testing.assert_array_equal(strokes_from_canvas_points(ten(), SCALE), drawing_to_stroke3(ten(), SCALE))


def _strokes(sketch):
    return [line_ * SCALE for line_ in stroke3_to_lines(sketch.astype(np.float64))]


def test_a_mouse_ten_is_reconstructed_as_ten(one_thread):
    """Issue 12, item 14: with the bare two-point strokes a mouse gives, the model reconstructs 十 as
    three unrelated lines; with the data's conventions plus the middle point it draws 十 again."""
    from sketchlib import sample
    from sketchlib.pretrained import load_pretrained

    model, hp, _ = load_pretrained("kanjivg", progress=False)
    good = sample.reconstruct(model, [drawing_to_stroke3(ten(), hp.extra["scale"])], greedy=True)[0]
    bare = sample.reconstruct(model, [drawing_to_stroke3(ten(), hp.extra["scale"], long_stroke=np.inf)],
                              greedy=True)[0]
    horizontal, vertical = _strokes(good)
    assert np.ptp(horizontal[:, 0]) > 50 and np.ptp(horizontal[:, 1]) < 10
    assert np.ptp(vertical[:, 1]) > 70 and np.ptp(vertical[:, 0]) < 10
    assert len(_strokes(bare)) != 2


# ---------------------------------------------------------------------------------------------
# the same point lists through Python and through book/_static/live/drawing.mjs (Node)

NODE_SCRIPT = """
import { drawingToStroke3, stroke3ToStroke5 } from %s;
import { readFileSync } from "node:fs";
const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = cases.drawings.map((d) => {
  const s3 = drawingToStroke3(d, cases.conv);
  return { s3, s5: Array.from(stroke3ToStroke5(s3, cases.conv.max_seq_len)) };
});
console.log(JSON.stringify(out));
"""


def _random_drawings(rng, n=150):
    drawings = []
    for _ in range(n):
        d = []
        for _ in range(rng.integers(1, 5)):
            k, kind = int(rng.integers(1, 60)), rng.integers(0, 4)
            if kind == 0:  # scattered whole pixels
                pts = rng.integers(0, 256, (k, 2)).astype(float)
            elif kind == 1:  # a random walk, fractional pixels (as pointer events report)
                pts = np.cumsum(rng.normal(0, 4, (k, 2)), 0) + 128
            elif kind == 2:  # a ruler-straight stroke: ties and collinear points
                pts = line(rng.integers(0, 256, 2), rng.integers(0, 256, 2), n=k)
            else:  # a closed loop (first point = last point)
                t = np.linspace(0, 2 * np.pi, k + 1)
                pts = np.column_stack([128 + 60 * np.cos(t), 128 + 40 * np.sin(t)]).round(2)
            d.append(pts.tolist())
        drawings.append(d)
    return drawings


def test_python_and_javascript_conversions_give_the_same_arrays(tmp_path):
    node = shutil.which("node")
    if node is None:
        if in_ci():
            pytest.fail("node is needed for the JavaScript conversion test")
        pytest.skip("node is not installed")
    drawings = _random_drawings(np.random.default_rng(7)) + [ten()]
    drawings = [[np.asarray(s).tolist() for s in d] for d in drawings]
    conv = dict(grid_size=109.0, rdp_epsilon=1.0, origin=[0.0, 0.0], scale=SCALE, max_seq_len=400)
    (tmp_path / "cases.json").write_text(json.dumps({"drawings": drawings, "conv": conv}))
    module = json.dumps((ROOT / "book" / "_static" / "live" / "drawing.mjs").as_uri())
    (tmp_path / "run.mjs").write_text(NODE_SCRIPT % module)
    run = subprocess.run([node, str(tmp_path / "run.mjs"), str(tmp_path / "cases.json")], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    js = json.loads(run.stdout)
    assert len(js) == len(drawings)
    for i, (d, j) in enumerate(zip(drawings, js)):
        s3 = drawing_to_stroke3(d, SCALE)
        s5, _ = drawing_to_stroke5(d, SCALE, max_len=400)
        np.testing.assert_array_equal(np.array(j["s3"], dtype=np.float32).reshape(-1, 3), s3, err_msg=f"drawing {i}")
        np.testing.assert_array_equal(np.array(j["s5"], dtype=np.float32).reshape(-1, 5), s5, err_msg=f"drawing {i}")
