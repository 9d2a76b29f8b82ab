"""Tests of sketchlib.render on real sketches: the pictures must have ink where the pen was down
and nowhere else."""

from __future__ import annotations

import base64
import io
import json
import re
import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sketchlib import render as R  # noqa: E402
from sketchlib.data import strokes as S  # noqa: E402

SVG_NS = "{http://www.w3.org/2000/svg}"

# animations built only to count their frames are never rendered; matplotlib warns about that
pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering anything")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import gc

    import matplotlib.pyplot as plt

    plt.close("all")
    gc.collect()  # unrendered animations warn when collected: let that happen inside this test


@pytest.fixture(scope="module")
def omniglot(shared_data):
    with np.load(shared_data / "omniglot.npz", encoding="latin1", allow_pickle=True) as f:
        return list(f["train"][:8])


@pytest.fixture(scope="module")
def cat(shared_data):
    """The first Quick, Draw! cat (simplified ndjson: strokes of [[x...], [y...]] in a 0-255 box)."""
    with open(shared_data / "quickdraw_simplified_sample" / "cat.ndjson", encoding="utf-8") as f:
        record = json.loads(f.readline())
    assert record["word"] == "cat"
    lines = [np.array(stroke[:2], dtype=np.float64).T for stroke in record["drawing"]]
    return lines, S.lines_to_stroke3(lines)


def ink(img: np.ndarray) -> np.ndarray:
    return img < 128


# A pen-up jump: two short horizontal strokes 80 units apart, and the same points as ONE stroke.
TWO_DASHES = np.array([[0, 0, 0], [10, 0, 1], [80, 0, 0], [10, 0, 1]], dtype=np.float32)
ONE_LINE = np.array([[0, 0, 0], [10, 0, 0], [80, 0, 0], [10, 0, 1]], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# rasters of real sketches


def test_real_omniglot_sketches_have_sensible_ink(omniglot):
    for i, s in enumerate(omniglot):
        img = R.to_image(s, size=64)
        assert img.shape == (64, 64) and img.dtype == np.uint8
        frac = ink(img).mean()
        assert 0.01 < frac < 0.35, (i, frac)
        assert img.max() == 255  # paper stays white


def test_real_quickdraw_cat_has_sensible_ink_and_one_line_per_stroke(cat):
    lines, s3 = cat
    img = R.to_image(s3, size=96)
    assert 0.02 < ink(img).mean() < 0.30
    ax = R.draw(s3)
    assert len(ax.lines) == len(lines) == S.num_strokes(s3)
    for art, line in zip(ax.lines, lines):  # each Line2D is exactly one stroke, in order
        np.testing.assert_array_equal(np.column_stack([art.get_xdata(), art.get_ydata()]), line)
    assert ax.yaxis_inverted() and not ax.axison
    assert ax.get_aspect() == 1.0


def test_pen_up_jump_leaves_no_ink():
    img = R.to_image(TWO_DASHES, size=64)
    rows = slice(24, 40)  # the dashes lie on the middle rows (y = 0 centred in a square)
    cols_of = lambda x: int(round((x + 0.05 * 100) / (100 * 1.1) * 64))  # noqa: E731  (x in 0..100)
    assert ink(img[rows, cols_of(2) : cols_of(8)]).any()  # first dash
    assert ink(img[rows, cols_of(92) : cols_of(98)]).any()  # second dash
    assert not ink(img[:, cols_of(25) : cols_of(75)]).any()  # nothing along the pen-up move
    # control: the same points with the pen down all the way do ink the middle
    assert ink(R.to_image(ONE_LINE, size=64)[rows, cols_of(25) : cols_of(75)]).all(axis=1).any()


def test_invert_y_puts_data_y_down():
    # a bar at y = 0 and a long stem going to y = +30 (down the page in the data's convention)
    gamma = np.array([[0, 0, 0], [30, 0, 1], [-30, 0, 0], [0, 30, 1]], dtype=float)
    top, bottom = slice(0, 16), slice(48, 64)
    right = slice(40, 64)
    down = R.to_image(gamma, size=64)
    assert ink(down[top, right]).any() and not ink(down[bottom, right]).any()
    up = R.to_image(gamma, size=64, invert_y=False)
    assert ink(up[bottom, right]).any() and not ink(up[top, right]).any()
    assert not R.draw(gamma, invert_y=False).yaxis_inverted()


# ---------------------------------------------------------------------------------------------
# input forms


def test_stroke5_with_and_without_start_token_and_torch_draw_the_same(omniglot):
    s3 = omniglot[0]
    want = R.to_image(s3, size=48)
    s5 = S.stroke3_to_stroke5(s3, max_len=len(s3) + 7)
    np.testing.assert_array_equal(R.to_image(s5, size=48), want)  # S_0 detected
    np.testing.assert_array_equal(R.to_image(s5[1:], size=48, start_token=False), want)
    np.testing.assert_array_equal(R.to_image(s5, size=48, start_token=True), want)
    torch = pytest.importorskip("torch")
    t = torch.tensor(s5, requires_grad=True)
    np.testing.assert_array_equal(R.to_image(t, size=48), want)
    np.testing.assert_array_equal(R.to_image(torch.tensor(s3.astype(np.float32)), size=48), want)


@pytest.mark.parametrize(
    "empty",
    [np.zeros((0, 3)), np.zeros((0, 5)), np.zeros(0), [], np.array([[0, 0, 1, 0, 0], [0, 0, 0, 0, 1]])],
    ids=["stroke3", "stroke5", "flat", "list", "S0-then-end"],
)
def test_empty_sketch_draws_nothing(empty):
    ax = R.draw(empty)
    assert len(ax.lines) == 0
    assert (R.to_image(empty, size=32) == 255).all()
    svg = R.to_svg(empty)
    assert "<path" not in svg
    ET.fromstring(svg)
    assert len(list(R.animate(empty).new_frame_seq())) == 1
    assert len(R.draw_grid([empty, empty]).axes) == 2


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match=r"expected stroke-3 \[N, 3\] or stroke-5 \[N, 5\], got shape \[4, 4\]"):
        R.draw(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="NaN or inf"):
        R.to_svg(np.array([[np.nan, 0, 1]]))
    with pytest.raises(ValueError, match="stroke_colors must be None"):
        R.draw(TWO_DASHES, stroke_colors="rainbow")
    with pytest.raises(ValueError, match="draw_grid: sketch 1: .*pen value 3"):
        R.draw_grid([TWO_DASHES, np.array([[1, 1, 3]])])


# ---------------------------------------------------------------------------------------------
# colours, start marker, grid


def test_stroke_colors_cycle_gives_distinct_colours(cat):
    lines, s3 = cat
    from matplotlib.colors import to_hex

    ax = R.draw(s3, stroke_colors="cycle")
    colours = [to_hex(a.get_color()) for a in ax.lines]
    assert len(colours) == len(lines) and len(set(colours)) == len(lines)
    many = S.lines_to_stroke3([np.array([[k, 0], [k, 5]]) for k in range(0, 150, 10)])  # 15 strokes
    colours = [to_hex(a.get_color()) for a in R.draw(many, stroke_colors="cycle").lines]
    assert len(set(colours)) == 15
    ax = R.draw(TWO_DASHES, stroke_colors=["red", "blue"])
    assert [to_hex(a.get_color()) for a in ax.lines] == ["#ff0000", "#0000ff"]
    ax = R.draw(TWO_DASHES, color="green")
    assert {to_hex(a.get_color()) for a in ax.lines} == {"#008000"}


def test_show_start_marks_first_point():
    ax = R.draw(TWO_DASHES, show_start=True, title="dashes")
    starts = [a for a in ax.lines if a.get_gid() == "start"]
    assert len(starts) == 1 and len(ax.lines) == 3
    assert (starts[0].get_xdata()[0], starts[0].get_ydata()[0]) == (0, 0)
    assert ax.get_title() == "dashes"


def test_draw_grid_axes_and_titles(omniglot):
    titles = [f"char {i}" for i in range(7)]
    fig = R.draw_grid(omniglot[:7], titles=titles, ncols=3, cell_size=1.5)
    assert len(fig.axes) == 7
    assert [ax.get_title() for ax in fig.axes] == titles
    assert all(len(ax.lines) == S.num_strokes(s) for ax, s in zip(fig.axes, omniglot))
    assert tuple(fig.get_size_inches()) == pytest.approx((4.5, 3 * 1.5 * 1.15))
    assert [ax.get_title() for ax in R.draw_grid(omniglot[:2]).axes] == ["", ""]
    with pytest.raises(ValueError, match="2 titles for 3 sketches"):
        R.draw_grid(omniglot[:3], titles=["a", "b"])
    with pytest.raises(ValueError, match="no sketches"):
        R.draw_grid([])


# ---------------------------------------------------------------------------------------------
# SVG


def _svg_paths(svg: str):
    root = ET.fromstring(svg)
    paths = []
    for p in root.iter(SVG_NS + "path"):
        d = p.get("d")
        assert d.count("M") == 1 and d.startswith("M ") and not re.search("[mlhvcsqtaz]", d)
        nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
        paths.append(np.array(nums).reshape(-1, 2))
    return root, paths


def test_svg_one_path_per_stroke_and_no_pen_up_segment(cat):
    lines, s3 = cat
    svg = R.to_svg(s3, size=200, stroke_colors="cycle")
    root, paths = _svg_paths(svg)
    assert len(paths) == len(lines)
    allpts = np.concatenate(lines)
    lo, span = allpts.min(axis=0), (allpts.max(axis=0) - allpts.min(axis=0)).max()
    scale = 200 / (span * 1.1)
    for got, line in zip(paths, lines):
        # every stroke's path visits exactly its points (a one-point stroke is a zero-length line)
        want = (line - lo + 0.05 * span) * scale
        if len(line) == 1:
            want = np.vstack([want, want])
        np.testing.assert_allclose(got, want, atol=0.006)
    # no segment joins the end of one stroke to the start of the next
    segments = {(tuple(a), tuple(b)) for p in paths for a, b in zip(p[:-1], p[1:])}
    for p, q in zip(paths[:-1], paths[1:]):
        assert (tuple(p[-1]), tuple(q[0])) not in segments
    # the viewBox is fitted to the drawing: every point inside, the extremes at the margin
    w, h = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert max(w, h) == pytest.approx(200, abs=0.01)
    pts = np.concatenate(paths)
    margin = 0.05 * span * scale
    assert pts[:, 0].min() == pytest.approx(margin, abs=0.01) and pts[:, 0].max() == pytest.approx(w - margin, abs=0.01)
    assert pts[:, 1].min() == pytest.approx(margin, abs=0.01) and pts[:, 1].max() == pytest.approx(h - margin, abs=0.01)
    assert len({p.get("stroke") for p in root.iter(SVG_NS + "path")}) == len(lines)


def test_svg_pen_up_jump_is_absent():
    root, paths = _svg_paths(R.to_svg(TWO_DASHES, size=100))
    assert len(paths) == 2 and [len(p) for p in paths] == [2, 2]
    assert paths[0][:, 0].max() < 15 and paths[1][:, 0].min() > 85
    _, one = _svg_paths(R.to_svg(ONE_LINE, size=100))
    assert len(one) == 1 and len(one[0]) == 4


def test_save_svg_is_atomic_and_matches_to_svg(tmp_path, omniglot):
    target = tmp_path / "a.svg"
    target.write_text("old")
    R.save_svg(omniglot[1], target, size=64)
    assert target.read_text() == R.to_svg(omniglot[1], size=64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.svg"]


# ---------------------------------------------------------------------------------------------
# animation


def _jshtml_frames(html: str) -> list[np.ndarray]:
    from PIL import Image

    frames = re.findall(r'frames\[\d+\] = "data:image/png;base64,(.*?)"', html, flags=re.S)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(f.replace("\\\n", "")))).convert("L")) for f in frames]


def test_animation_draws_point_by_point_in_order():
    anim = R.animate(TWO_DASHES, show_pen=False)
    assert len(list(anim.new_frame_seq())) == len(TWO_DASHES) + 1
    html = R.animation_html(TWO_DASHES, show_pen=False)
    assert "<script" in html
    frames = _jshtml_frames(html)
    assert len(frames) == len(TWO_DASHES) + 1
    w = frames[0].shape[1]
    left, right = slice(0, w // 3), slice(2 * w // 3, w)
    amount = [(ink(f[:, left]).sum(), ink(f[:, right]).sum()) for f in frames]
    assert amount[0] == amount[-1] and amount[0][0] > 0 and amount[0][1] > 0  # opens on the finished drawing
    assert amount[1] == (0, 0)  # then replays it: one point, no segment yet
    assert amount[2][0] > 0 and amount[2][1] == 0  # first dash done, second not begun
    assert amount[3] == amount[2]  # pen-up move: no new ink
    assert amount[4][1] > 0  # second dash
    assert not ink(frames[-1][:, w // 3 + 2 : 2 * w // 3 - 2]).any()  # nothing along the jump


def test_animation_of_real_sketch_has_one_frame_per_point(omniglot):
    s = omniglot[2]
    assert len(list(R.animate(s).new_frame_seq())) == len(s) + 1


def test_save_gif_valid_and_atomic(tmp_path, monkeypatch):
    from matplotlib.animation import PillowWriter
    from PIL import Image

    target = tmp_path / "dashes.gif"
    R.save_gif(TWO_DASHES, target, fps=10)
    data = target.read_bytes()
    assert data[:6] in (b"GIF89a", b"GIF87a")
    with Image.open(target) as im:
        assert im.n_frames == len(TWO_DASHES) + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dashes.gif"]

    # a failure half-way leaves the old file whole and no temporary file behind
    def boom(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(PillowWriter, "finish", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        R.save_gif(ONE_LINE, target)
    assert target.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dashes.gif"]
    with pytest.raises(ValueError, match="must end in .gif"):
        R.save_gif(TWO_DASHES, tmp_path / "x.png")


def test_a_grid_returned_by_a_notebook_cell_is_shown_as_an_image():
    """In a fresh kernel that never touched pyplot, a Figure from draw_grid must display as PNG."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import numpy as np\nfrom sketchlib import render\n"
        "render.draw_grid([np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 1.0]])], titles=['a'])")]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    kinds = [k for out in nb.cells[0].outputs for k in out.get("data", {})]
    assert "image/png" in kinds, kinds


# ---------------------------------------------------------------------------------------------
# characters in figures (the CJK font)


def _render_warnings(fig) -> list[str]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    return [str(w.message) for w in caught]


def test_figure_titles_with_characters_render_with_the_cjk_font():
    """Kanji, kana and simplified Chinese in titles: no "Glyph ... missing from font" warning, and
    the characters are drawn in the CJK font, not as empty boxes."""
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    assert R.use_cjk_font() == R.CJK_FONT_FAMILY
    text = "猫 永 山 かな 汉字 編"
    fig = R.draw_grid([ONE_LINE, TWO_DASHES], titles=[text, "猫, 12 strokes"])
    warnings = _render_warnings(fig)
    assert not [w for w in warnings if "missing from font" in w], warnings
    path = findfont(FontProperties(family=R.CJK_FONT_FAMILY), fallback_to_default=False)
    font = FT2Font(path)
    assert all(font.get_char_index(ord(c)) for c in text.replace(" ", "")), "the CJK font lacks a character"


def test_without_the_cjk_font_the_same_title_warns(monkeypatch):
    """The check above can fail: with the CJK font taken out of the family list, matplotlib warns."""
    import matplotlib

    fig = R._new_figure((2, 2))  # registers the CJK font and adds it to font.family
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["DejaVu Sans"])
    fig.add_subplot(1, 1, 1).set_title("猫")
    assert any("missing from font" in w for w in _render_warnings(fig))


def test_use_cjk_font_keeps_latin_text_in_the_default_face():
    import matplotlib

    R.use_cjk_font()
    R.use_cjk_font()  # idempotent
    family = matplotlib.rcParams["font.family"]
    assert family[-1] == R.CJK_FONT_FAMILY and family.count(R.CJK_FONT_FAMILY) == 1
    assert family[0] == "DejaVu Sans"


def test_a_title_drawn_on_an_axes_made_before_the_font_was_registered_has_the_characters(monkeypatch):
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["DejaVu Sans"])  # as in a fresh kernel
    fig = Figure(figsize=(2, 2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)  # its title Text takes the font of this moment
    R.draw(ONE_LINE, ax, title="猫 永")
    assert not [w for w in _render_warnings(fig) if "missing from font" in w]


def test_bold_characters_log_no_font_weight_complaint(caplog):
    import logging

    R.use_cjk_font()
    fig = R._new_figure((2, 2))
    fig.add_subplot(1, 1, 1).set_title("猫 bold", weight="bold")
    with caplog.at_level(logging.WARNING, logger="matplotlib.font_manager"):
        warnings = _render_warnings(fig)
    assert not [w for w in warnings if "missing from font" in w]
    assert "Failed to find font weight" not in caplog.text


def test_animation_html_fetches_nothing_from_another_site():
    """matplotlib's player links Font Awesome from a CDN; the book's pages must not (no request leaves the site)."""
    html = R.animation_html(np.array([[1.0, 1.0, 0.0], [2.0, 0.0, 1.0], [1.0, 1.0, 0.0]]))
    assert "https://" not in html and "<link" not in html and 'class="fa ' not in html
    assert "\u25b6" in html and "\u275a" in html  # play and pause are still labelled
