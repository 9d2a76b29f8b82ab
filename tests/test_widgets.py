"""The explorers' plain functions (PCA of z, decoding along it, canvas points -> stroke-3, complete)
and the widgets wired to them, constructed headless (no browser: setting .value fires the observers)."""

import re

import numpy as np
import pytest
import torch

from sketchlib import sample as S
from sketchlib.book import widgets as Wd
from sketchlib.config import HParams
from sketchlib.nn.model import SketchRNN

SCALE = 2.0


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    hp = HParams(enc_rnn_size=16, dec_rnn_size=32, z_size=8, num_mixture=3, max_seq_len=40,
                 extra={"scale": SCALE})
    return SketchRNN(hp).eval()


@pytest.fixture(scope="module")
def sketches():
    rng = np.random.default_rng(0)
    out = []
    for _ in range(12):
        n = int(rng.integers(5, 30))
        s = np.zeros((n, 3), dtype=np.float32)
        s[:, :2] = rng.normal(size=(n, 2))
        s[rng.random(n) < 0.2, 2] = 1
        s[-1, 2] = 1
        out.append(s)
    return out


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------- PCA of z


def test_latent_directions_are_the_principal_axes_of_the_codes(model, sketches):
    mean, dirs, std = Wd.latent_directions(model, sketches, k=3)
    mu = S.encode(model, sketches).double()
    assert mean.shape == (8,) and dirs.shape == (3, 8) and std.shape == (3,)
    torch.testing.assert_close(mean.double(), mu.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dirs.double() @ dirs.double().T, torch.eye(3, dtype=torch.float64), atol=1e-5, rtol=0)
    # each direction is an eigenvector of the covariance, with variance std^2, in decreasing order
    cov = torch.cov(mu.T)
    for d, s in zip(dirs.double(), std.double()):
        torch.testing.assert_close(cov @ d, s**2 * d, rtol=1e-3, atol=1e-9)
    assert torch.all(std[:-1] >= std[1:])
    # the projections of the codes have exactly that spread
    proj = (mu - mu.mean(0)) @ dirs.double().T
    torch.testing.assert_close(proj.std(0), std.double(), rtol=1e-4, atol=1e-9)
    # the sign is fixed: the largest entry of each direction is positive
    assert torch.all(dirs.gather(1, dirs.abs().argmax(1, keepdim=True)) > 0)
    again = Wd.latent_directions(model, sketches, k=3)
    assert all(torch.equal(a, b) for a, b in zip(again, (mean, dirs, std)))


def test_latent_directions_rejects_bad_requests(model, sketches):
    with pytest.raises(ValueError, match="at most"):
        Wd.latent_directions(model, sketches[:3], k=3)
    with pytest.raises(ValueError, match="positive integer"):
        Wd.latent_directions(model, sketches, k=0)
    hp = model.hp.replace(conditional=False)
    with pytest.raises(ValueError, match="conditional"):
        Wd.latent_directions(SketchRNN(hp), sketches, k=2)


def test_decode_along_is_sample_at_the_shifted_code_and_deterministic(model, sketches):
    lat = Wd.latent_directions(model, sketches, k=3)
    coeffs = [1.5, -0.5, 0.0]
    a = Wd.decode_along(model, lat.mean, lat.directions, coeffs, temperature=0.8, seed=7, std=lat.std)
    b = Wd.decode_along(model, lat.mean, lat.directions, coeffs, temperature=0.8, seed=7, std=lat.std)
    np.testing.assert_array_equal(a, b)
    z = lat.mean + 1.5 * lat.std[0] * lat.directions[0] - 0.5 * lat.std[1] * lat.directions[1]
    want = S.sample(model, 1, z=z[None], temperature=0.8, generator=_gen(7))[0]
    np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-5)
    # without std the coefficients are raw multiples of the unit directions
    raw = Wd.decode_along(model, lat.mean, lat.directions, np.asarray(coeffs) * lat.std.numpy(), 0.8, seed=7)
    np.testing.assert_allclose(raw, a, rtol=1e-5, atol=1e-5)
    c = Wd.decode_along(model, lat.mean, lat.directions, coeffs, temperature=0.8, seed=8, std=lat.std)
    assert c.shape != a.shape or not np.allclose(c, a)
    with pytest.raises(ValueError, match="coefficients"):
        Wd.decode_along(model, lat.mean, lat.directions, [1.0], seed=0)


def test_direction_sweep_grid(model, sketches):
    lat = Wd.latent_directions(model, sketches, k=2)
    grid = Wd.direction_sweep(model, lat, values=(-1, 0, 1), greedy=True)
    assert len(grid) == 2 and all(len(row) == 3 for row in grid)
    centre = Wd.decode_z(model, lat.mean, greedy=True)
    np.testing.assert_allclose(grid[0][1], centre, atol=1e-5)
    np.testing.assert_allclose(grid[1][1], centre, atol=1e-5)
    np.testing.assert_allclose(grid[1][2], Wd.decode_along(model, lat.mean, lat.directions, [0, 1], greedy=True,
                                                           std=lat.std), atol=1e-5)


def test_interpolation_frames_start_and_end_at_the_two_codes(model, sketches):
    codes = Wd.interpolation_codes(model, sketches[0], sketches[1], steps=5)
    mu = S.encode(model, sketches[:2])
    torch.testing.assert_close(codes[0], mu[0])
    torch.testing.assert_close(codes[-1], mu[1])
    frames = Wd.interpolation_frames(model, sketches[0], sketches[1], steps=5, temperature=0.5, seed=3)
    assert len(frames) == 5
    np.testing.assert_array_equal(frames[-1], Wd.decode_z(model, mu[1], temperature=0.5, seed=3))


# ---------------------------------------------------------------------------------------------- the canvas


def test_strokes_from_canvas_points_maps_simplifies_and_normalises():
    # canvas 218 px onto a 109 grid: 0.5 units per pixel; the middle point of stroke 0 is collinear
    pts = [[(20, 40), (40, 40), (60, 40)], [], [(100, 100), (100, 140)], [(10, 10)]]
    s3 = Wd.strokes_from_canvas_points(pts, scale=5.0, canvas_size=218, grid_size=109, epsilon=1.0)
    want = np.array([[10, 20, 0], [20, 0, 1],  # stroke 0: (10, 20) -> (30, 20), RDP drops (20, 20)
                     [20, 30, 0], [0, 20, 1],  # stroke 1: (50, 50) -> (50, 70)
                     [-45, -65, 1]], dtype=np.float32)  # a dot at (5, 5)
    want[:, :2] /= 5.0
    np.testing.assert_allclose(s3, want, rtol=1e-6)
    assert s3.dtype == np.float32
    # and back to canvas pixels
    lines = Wd.stroke3_to_canvas_lines(s3, 5.0, canvas_size=218, grid_size=109)
    np.testing.assert_allclose(lines[0], [[20, 40], [60, 40]], atol=1e-4)
    np.testing.assert_allclose(lines[1], [[100, 100], [100, 140]], atol=1e-4)
    np.testing.assert_allclose(lines[2], [[10, 10]], atol=1e-4)
    with pytest.raises(ValueError, match="empty"):
        Wd.strokes_from_canvas_points([[], []], scale=5.0)
    with pytest.raises(ValueError, match="scale"):
        Wd.strokes_from_canvas_points(pts, scale=0.0)


def test_drawing_box_follows_the_dataset(model):
    from sketchlib.data.kanjivg import GRID_SIZE

    assert Wd.KANJIVG_GRID == GRID_SIZE
    assert Wd.drawing_box(SketchRNN(model.hp.replace(extra={"dataset": "kanjivg"}))) == 109.0
    assert Wd.drawing_box(SketchRNN(model.hp.replace(extra={"dataset": "cat"}))) == 256.0
    assert Wd.drawing_box(SketchRNN(model.hp.replace(extra={"dataset": "cat", "grid_size": 50}))) == 50.0


def test_model_scale_comes_from_hp_extra_or_the_argument(model):
    assert Wd.model_scale(model) == SCALE
    assert Wd.model_scale(model, 3.5) == 3.5
    bare = SketchRNN(model.hp.replace(extra={}))
    with pytest.raises(ValueError, match="scale"):
        Wd.model_scale(bare)


def _greedy_with_lifts(model):
    """A greedy sample that runs to N_max and lifts the pen on some points but not all."""
    z = torch.randn(3, 8, generator=_gen(0))[2:]
    g = S.sample(model, 1, z=z, greedy=True)[0]
    assert len(g) == model.hp.max_seq_len and 0 < g[:, 2].sum() < len(g), "precondition on the test model"
    return z, g


def test_complete_continues_exactly_where_a_greedy_sample_was_cut(model):
    z, g = _greedy_with_lifts(model)
    for n in (1, 7, 25):
        cont = Wd.complete(model, g[:n], z=z, greedy=True)
        np.testing.assert_allclose(cont, g[n:], rtol=1e-4, atol=1e-5)


def test_complete_with_noise_is_seeded_bounded_and_chooses_its_z(model, sketches):
    prefix = sketches[0]
    a = Wd.complete(model, prefix, temperature=0.7, seed=1)
    np.testing.assert_array_equal(a, Wd.complete(model, prefix, temperature=0.7, seed=1))
    assert len(a) <= model.hp.max_seq_len - len(prefix)
    # default z = 0 (the prior's centre); z="drawing" = the encoder's code of the prefix
    np.testing.assert_array_equal(a, Wd.complete(model, prefix, z=torch.zeros(8), temperature=0.7, seed=1))
    mu = S.encode(model, [prefix])
    by_code = Wd.complete(model, prefix, z="drawing", temperature=0.7, seed=1)
    np.testing.assert_array_equal(by_code, Wd.complete(model, prefix, z=mu, temperature=0.7, seed=1))
    with pytest.raises(ValueError, match="no room"):
        Wd.complete(model, np.tile(prefix[:1], (40, 1)))
    with pytest.raises(ValueError, match="drawing"):
        Wd.complete(model, prefix, z="mine")
    with pytest.raises(ValueError, match="N_z"):
        Wd.complete(model, prefix, z=torch.zeros(3))


def test_complete_stops_at_p3(model, sketches):
    torch.manual_seed(1)
    m = SketchRNN(model.hp)
    with torch.no_grad():
        m.decoder.to_y.bias[:3] = torch.tensor([-50.0, -50.0, 50.0])  # the pen logits say "stop" always
    assert Wd.complete(m, sketches[0], temperature=0.5).shape == (0, 3)


def test_reconstruct_drawing_is_sample_reconstruct_with_the_seed(model, sketches):
    r = Wd.reconstruct_drawing(model, sketches[2], temperature=0.6, seed=4)
    want = S.reconstruct(model, [sketches[2]], temperature=0.6, generator=_gen(4))[0]
    np.testing.assert_array_equal(r, want)


def test_joined_colours_the_readers_and_the_models_strokes():
    a = np.array([[1, 1, 0], [1, 0, 1], [2, 2, 0], [0, 1, 1]], dtype=np.float32)  # 2 strokes
    b = np.array([[1, 1, 0], [1, 1, 1], [3, 0, 0]], dtype=np.float32)  # 2 more
    both, colors = Wd.joined(a, b)
    assert both.shape == (7, 3)
    assert colors == [Wd.READER_COLOR] * 2 + [Wd.MODEL_COLOR] * 2
    only, colors = Wd.joined(a, np.zeros((0, 3)))
    assert only.shape == (4, 3) and colors == [Wd.READER_COLOR] * 2


# ---------------------------------------------------------------------------------------------- static versions, latency


def test_sequence_animation_has_one_frame_per_sketch_and_plays_without_a_kernel(sketches):
    anim = Wd.sequence_animation(sketches[:4], [f"t = {i}" for i in range(4)])
    html = anim.to_jshtml()
    assert re.search(r"new Array\(4\)", html)  # four frames behind matplotlib's JS slider
    assert "<img" in html
    with pytest.raises(ValueError, match="titles"):
        Wd.sequence_animation(sketches[:2], ["one"])


def test_decode_latency_runs_exactly_the_requested_steps(model, monkeypatch):
    calls = []
    real_step = model.step
    monkeypatch.setattr(model, "step", lambda *a: calls.append(1) or real_step(*a))
    before = torch.get_num_threads()
    out = Wd.decode_latency(model, steps=30, repeats=2)
    assert len(calls) == 60
    assert out["steps"] == 30 and 0 < out["best_ms"] <= out["median_ms"]
    assert out["per_step_ms"] == pytest.approx(out["median_ms"] / 30)
    assert out["threads"] == 1 and torch.get_num_threads() == before  # restored


def test_decoding_runs_single_threaded_and_restores_the_thread_count(model, monkeypatch):
    seen = []
    real_step = model.step
    monkeypatch.setattr(model, "step", lambda *a: seen.append(torch.get_num_threads()) or real_step(*a))
    initial = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        Wd.decode_z(model, torch.zeros(8), temperature=0.5, max_len=5)
        Wd.complete(model, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]), temperature=0.5, max_len=6)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(initial)


# ---------------------------------------------------------------------------------------------- widgets, headless


def test_z_slider_explorer_redraws_once_per_change_with_the_expected_sketch(model, sketches):
    ex = Wd.z_slider_explorer(model, sketches, k=3, temperature=0.5, seed=2)
    assert ex.redraws == 1 and "<svg" in ex.view.value
    assert set(ex.controls) == {"pc1", "pc2", "pc3", "temperature"}
    lat = ex.latent
    ex.controls["pc2"].value = 1.2
    assert ex.redraws == 2
    want = Wd.decode_along(model, lat.mean, lat.directions, [0.0, 1.2, 0.0], 0.5, seed=2, std=lat.std)
    np.testing.assert_array_equal(ex.sketch, want)
    ex.controls["temperature"].value = 0.9
    assert ex.redraws == 3
    want = Wd.decode_along(model, lat.mean, lat.directions, [0.0, 1.2, 0.0], 0.9, seed=2, std=lat.std)
    np.testing.assert_array_equal(ex.sketch, want)
    ex.controls["pc2"].value = 1.2  # no change, no redraw
    assert ex.redraws == 3
    assert ex.timings["decode_ms"] > 0 and ex.timings["points"] == len(want)
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()


def test_interpolation_explorer_follows_the_slerp_path(model, sketches):
    ex = Wd.interpolation_explorer(model, sketches[3], sketches[4], steps=5, temperature=0.4, seed=1)
    frames = Wd.interpolation_frames(model, sketches[3], sketches[4], steps=5, temperature=0.4, seed=1)
    np.testing.assert_array_equal(ex.sketch, frames[0])
    ex.controls["t"].value = 0.75
    assert ex.redraws == 2
    np.testing.assert_array_equal(ex.sketch, frames[3])
    ex.controls["t"].value = 1.0
    np.testing.assert_array_equal(ex.sketch, frames[4])
    assert ex.redraws == 3


def test_drawing_canvas_records_strokes_and_its_buttons_run_the_plain_functions(model):
    pad = Wd.drawing_canvas(model, canvas_size=218, grid_size=109, temperature=0.5, seed=3)
    pad.buttons["Reconstruct"].click()  # nothing drawn yet: a message, no result
    assert pad.result is None and "empty" in pad.status.value
    pad.pointer_move(5, 5)  # a move with the button up draws nothing
    assert pad.points == []
    for stroke in ([(20, 40), (40, 60), (60, 40)], [(100, 100), (120, 150)]):
        pad.pointer_down(*stroke[0])
        for p in stroke[1:]:
            pad.pointer_move(*p)
        pad.pointer_up(*stroke[-1])
    pad.pointer_move(0, 0)
    assert pad.points == [[(20.0, 40.0), (40.0, 60.0), (60.0, 40.0)], [(100.0, 100.0), (120.0, 150.0)]]
    drawn = Wd.strokes_from_canvas_points(pad.points, SCALE, canvas_size=218, grid_size=109)
    np.testing.assert_array_equal(pad.drawing(), drawn)

    pad.buttons["Reconstruct"].click()
    np.testing.assert_array_equal(pad.result, Wd.reconstruct_drawing(model, drawn, 0.5, seed=3))
    pad.buttons["Complete"].click()
    cont = Wd.complete(model, drawn, temperature=0.5, seed=3)
    np.testing.assert_array_equal(pad.result, Wd.joined(drawn, cont)[0])
    assert "completed" in pad.status.value and "<svg" in pad.view.value
    pad.z_source.value = "drawing"
    pad.buttons["Complete"].click()
    cont = Wd.complete(model, drawn, z="drawing", temperature=0.5, seed=3)
    np.testing.assert_array_equal(pad.result, Wd.joined(drawn, cont)[0])
    pad.buttons["Clear"].click()
    assert pad.points == [] and pad.result is None
    assert "application/vnd.jupyter.widget-view+json" in pad._repr_mimebundle_()


# ---------------------------------------------------------------------------------------------- issue 12, item 13; the one loop


def test_item13_labels_are_not_cut_off_in_jupyterlab(model, sketches):
    """Every slider and the dropdown give their label the width it needs (a fixed 90px cut them off)."""
    ex = Wd.z_slider_explorer(model, sketches, k=2)
    interp = Wd.interpolation_explorer(model, sketches[0], sketches[1], steps=3)
    pad = Wd.drawing_canvas(model)
    labelled = [*ex.controls.values(), *interp.controls.values(), pad.temperature, pad.z_source]
    assert {w.description for w in labelled} >= {"direction 1 (σ)", "temperature τ", "Complete with"}
    for w in labelled:
        assert w.style.description_width == "initial", w.description


def test_item13_canvas_pane_prompts_until_something_is_drawn(model):
    """Before a drawing (and after Clear) the result pane invites the reader; only an empty RESULT says so."""
    pad = Wd.drawing_canvas(model)
    assert Wd.DRAW_PROMPT in pad.view.value and "stopped at once" not in pad.view.value
    pad.pointer_down(20, 20)
    pad.pointer_move(80, 90)
    pad.pointer_up(80, 90)
    pad.buttons["Reconstruct"].click()
    assert pad.result is not None and Wd.DRAW_PROMPT not in pad.view.value
    pad.buttons["Clear"].click()
    assert Wd.DRAW_PROMPT in pad.view.value and "stopped at once" not in pad.view.value
    assert "stopped at once" in Wd.svg_html(np.zeros((0, 3)))


def test_decode_latency_times_the_explorers_stepper(model, monkeypatch):
    """Unpatched, decode_latency runs what the explorers run (sample(), the numpy step on the CPU) for
    exactly the requested steps; fast=False times model.step."""
    from sketchlib.fast import numpy_lstm

    advances = []
    real = numpy_lstm.NumpyLSTM.advance
    monkeypatch.setattr(numpy_lstm.NumpyLSTM, "advance", lambda self: advances.append(1) or real(self))
    out = Wd.decode_latency(model, steps=25, repeats=3, temperature=0.5)
    assert out["stepper"] == S.stepper_name(model) == "numpy" and len(advances) == 75
    assert out["steps"] == 25 and out["threads"] == 1
    assert Wd.decode_latency(model, steps=5, repeats=1, fast=False)["stepper"] == "model.step"
    assert len(advances) == 75


def test_complete_is_sample_with_the_drawing_as_prefix(model, sketches):
    prefix = sketches[0]
    got = Wd.complete(model, prefix, temperature=0.7, seed=1)
    want = S.sample(model, 1, z=torch.zeros(1, 8), temperature=0.7, generator=_gen(1), prefix=prefix)[0]
    np.testing.assert_array_equal(got, want)
    ref = S.sample(model, 1, z=torch.zeros(1, 8), temperature=0.7, generator=_gen(1), prefix=prefix, fast=False)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------- the Chinese edition


def _labels(ex, interp, pad):
    """Every label a reader sees on the three explorers (descriptions, titles, options, buttons)."""
    return {
        "sliders": [w.description for w in [*ex.controls.values(), *interp.controls.values(), pad.temperature]],
        "titles": [ex.widget.children[0].value, interp.widget.children[0].value],
        "dropdown": [pad.z_source.description, *pad.z_source._options_labels],
        "buttons": {name: b.description for name, b in pad.buttons.items()},
        "status": pad.status.value,
        "view": pad.view.value,
    }


def _draw(pad):
    pad.pointer_down(20, 20)
    pad.pointer_move(80, 90)
    pad.pointer_move(120, 40)
    pad.pointer_up(120, 40)


def _explorers_in(lang, model, sketches, monkeypatch):
    """The three explorers, built in a session of language ``lang``, and their labels."""
    from sketchlib.book import edition

    monkeypatch.setenv(edition.LANG_ENV, lang)
    ex = Wd.z_slider_explorer(model, sketches, k=2)
    interp = Wd.interpolation_explorer(model, sketches[0], sketches[1], steps=3)
    pad = Wd.drawing_canvas(model, temperature=0.5, seed=3)
    return ex, pad, _labels(ex, interp, pad)


def test_explorers_speak_chinese_in_a_chinese_session_and_their_buttons_still_work(model, sketches, monkeypatch):
    from sketchlib.book import edition

    ex, pad, got = _explorers_in("zh", model, sketches, monkeypatch)
    assert got["sliders"] == ["z 沿主成分 PC1（标准差）", "z 沿主成分 PC2（标准差）", "温度 τ",
                              "t（A → B）", "温度 τ", "温度 τ"]
    assert got["titles"] == ["<b>沿主成分方向漫游潜空间</b>", "<b>在两个编码之间插值（slerp）</b>"]
    assert got["dropdown"] == ["补全时使用", "z = 0（任意字符）", "z = 我这幅画的编码"]
    assert got["buttons"] == {"Reconstruct": "重构", "Complete": "补全", "Clear": "清除"}
    assert got["status"] == "<small>请用鼠标书写，然后按下一个按钮。</small>"
    assert edition.words(Wd.DRAW_PROMPT) in got["view"] and Wd.DRAW_PROMPT not in got["view"]
    assert re.fullmatch(r"<small>\d+ 个点 · 解码 \d+ ms · 渲染 [\d.]+ ms</small>", ex.info.value)
    assert Wd.EMPTY_TEXT in edition.catalog()  # what an empty result says

    # the buttons act by their key, not their (now Chinese) label: click the one labelled 重构
    by_label = {b.description: b for b in pad.buttons.values()}
    by_label["重构"].click()  # nothing drawn yet: the error, in Chinese
    assert pad.result is None and "画布上还没有笔画" in pad.status.value
    _draw(pad)
    by_label["重构"].click()
    drawn = pad.drawing()
    np.testing.assert_array_equal(pad.result, Wd.reconstruct_drawing(model, drawn, 0.5, seed=3))
    assert re.fullmatch(r"<small>已重构：输入 \d+ 个点，输出 \d+ 个点（用时 \d+ ms）</small>", pad.status.value)
    by_label["补全"].click()
    np.testing.assert_array_equal(pad.result, Wd.joined(drawn, Wd.complete(model, drawn, temperature=0.5, seed=3))[0])
    assert re.fullmatch(r"<small>已补全：模型添加了 \d+ 个点（红色）（用时 \d+ ms）</small>", pad.status.value)
    by_label["清除"].click()
    assert pad.points == [] and pad.result is None
    assert pad.status.value == "<small>已清除。请用鼠标书写，然后按下一个按钮。</small>"
    assert edition.words(Wd.DRAW_PROMPT) in pad.view.value
    # no English word is left on any label
    for text in [*got["sliders"], *got["titles"], *got["dropdown"], *got["buttons"].values(), pad.status.value]:
        assert not edition.needs_words(re.sub(r"<[^>]+>", "", text)), text


def test_explorers_speak_english_in_an_english_session(model, sketches, monkeypatch):
    ex, pad, got = _explorers_in("en", model, sketches, monkeypatch)
    assert got["sliders"] == ["direction 1 (σ)", "direction 2 (σ)", "temperature τ",
                              "t (A → B)", "temperature τ", "temperature τ"]
    assert got["titles"] == ["<b>Walk the latent space along its principal directions</b>",
                             "<b>Interpolate the codes (slerp)</b>"]
    assert got["dropdown"] == ["Complete with", "z = 0 (any character)", "z = code of my drawing"]
    assert got["buttons"] == {"Reconstruct": "Reconstruct", "Complete": "Complete", "Clear": "Clear"}
    assert got["status"] == "<small>Draw with the mouse, then press a button.</small>"
    assert Wd.DRAW_PROMPT in got["view"]
    assert re.fullmatch(r"<small>\d+ points · decode \d+ ms · render [\d.]+ ms</small>", ex.info.value)
    _draw(pad)
    pad.buttons["Complete"].click()
    assert re.fullmatch(r"<small>completed: the model added \d+ points \(red\) \(\d+ ms\)</small>", pad.status.value)
    pad.buttons["Clear"].click()
    assert pad.status.value == "<small>Cleared. Draw with the mouse, then press a button.</small>"
