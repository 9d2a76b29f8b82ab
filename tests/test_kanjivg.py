"""kanjivg: our SVG path parser, stroke order, the deterministic split and the pickle-free cache."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sketchlib.data import kanjivg as K
from sketchlib.data import strokes, svg_path


def _ends(d):
    """(start, end) points of every segment of the one subpath of ``d``."""
    (cubics,) = K.parse_path(d)
    return cubics[:, 0].tolist(), cubics[:, 3].tolist(), cubics


def _on_segment(cubics):
    """Control points of a straight segment lie at 0, 1/3, 2/3, 1 of it."""
    p0, p3 = cubics[:, 0], cubics[:, 3]
    return np.allclose(cubics[:, 1], p0 + (p3 - p0) / 3) and np.allclose(cubics[:, 2], p0 + 2 * (p3 - p0) / 3)


# --------------------------------------------------------------------------- path parser
def test_absolute_and_relative_lines_with_implicit_repeats():
    starts, ends, c = _ends("M10,20 L30,40 50 60")  # the second pair repeats L
    assert starts == [[10, 20], [30, 40]] and ends == [[30, 40], [50, 60]] and _on_segment(c)
    starts, ends, c = _ends("m10,20 l20,20 20 20")  # relative, repeated
    assert ends == [[30, 40], [50, 60]] and _on_segment(c)
    _, ends, _ = _ends("M0,0 10,0 10,10")  # pairs after M are implicit linetos
    assert ends == [[10, 0], [10, 10]]
    _, ends, _ = _ends("m5,5 10,0 0,10")  # ... relative ones after m
    assert ends == [[15, 5], [15, 15]]


def test_horizontal_vertical_and_close():
    _, ends, c = _ends("M1,1 H5 V7 h-2 v-3")
    assert ends == [[5, 1], [5, 7], [3, 7], [3, 4]] and _on_segment(c)
    _, ends, _ = _ends("M0,0 L10,0 L10,10 Z")
    assert ends == [[10, 0], [10, 10], [0, 0]]  # Z draws the closing line
    first, second = K.parse_path("M0,0 L1,0 Z l5,5")  # after Z a new subpath starts at the start point
    assert second[:, 0].tolist() == [[0, 0]] and second[:, 3].tolist() == [[5, 5]]


def test_numbers_without_separators():
    assert svg_path._tokenize("M1.2-3.4.5.5") == ["M", 1.2, -3.4, 0.5, 0.5]
    assert svg_path._tokenize("c1e1,-2E-1+3 .5") == ["c", 10.0, -0.2, 3.0, 0.5]
    _, ends, _ = _ends("M1.2-3.4.5.5")
    assert ends == [[0.5, 0.5]]


def test_cubic_absolute_relative_and_implicit():
    (c,) = K.parse_path("M0 0C1 2 3 4 5 6 7 8 9 10 11 12")  # C repeated implicitly
    assert c.tolist() == [[[0, 0], [1, 2], [3, 4], [5, 6]], [[5, 6], [7, 8], [9, 10], [11, 12]]]
    (r,) = K.parse_path("M1,1c1,1,2,2,3,3 1,1,2,2,3,3")  # relative to the current point each time
    assert r.tolist() == [[[1, 1], [2, 2], [3, 3], [4, 4]], [[4, 4], [5, 5], [6, 6], [7, 7]]]


def test_smooth_cubic_reflects_the_previous_control_point():
    (a,) = K.parse_path("M0,0 C0,10 10,10 10,0 S20,-10 20,0")
    assert a[1].tolist() == [[10, 0], [10, -10], [20, -10], [20, 0]]
    (b,) = K.parse_path("M0,0 c0,10 10,10 10,0 s10,-10 10,0")  # the same, relative
    assert np.allclose(a, b)
    (c,) = K.parse_path("M3,4 S5,6 7,8")  # no previous cubic: the first control is the current point
    assert c[0].tolist() == [[3, 4], [3, 4], [5, 6], [7, 8]]
    (d,) = K.parse_path("M0,0 L5,0 S6,1 7,0")  # nor after a line
    assert d[1, 1].tolist() == [5, 0]


def test_quadratic_and_smooth_quadratic_are_exact():
    (c,) = K.parse_path("M0,0 Q5,10 10,0 T20,0")
    t = np.linspace(0, 1, 11)[:, None]

    def quad(p0, q, p2):
        return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * q + t**2 * p2

    def cubic(cp):
        return (1 - t) ** 3 * cp[0] + 3 * (1 - t) ** 2 * t * cp[1] + 3 * (1 - t) * t**2 * cp[2] + t**3 * cp[3]

    assert np.allclose(cubic(c[0]), quad(np.array([0, 0]), np.array([5, 10]), np.array([10, 0])))
    # T reflects the control point (5, 10) about (10, 0): (15, -10)
    assert np.allclose(cubic(c[1]), quad(np.array([10, 0]), np.array([15, -10]), np.array([20, 0])))
    (r,) = K.parse_path("m0,0 q5,10 10,0 t10,0")
    assert np.allclose(r, c)


def test_path_errors():
    for bad, msg in [("M0,0 A1,1 0 0 1 2,2", "arc"), ("M0,0 L1", "needs 2 numbers"), ("L1,1", "start with M"),
                     ("1,1", "start with a command"), ("M0,0 L1 Q", "needs 2 numbers"),
                     ("M0,0 X1", "unexpected"), ("M0,0 Z 1", "closepath")]:
        with pytest.raises(ValueError, match=msg):
            K.parse_path(bad)


def test_sample_cubics():
    cubic = np.array([[[0, 0], [0, 10], [10, 10], [10, 0]]], dtype=float)
    pts = K.sample_cubics(cubic, 4)
    assert pts.shape == (5, 2) and pts[0].tolist() == [0, 0] and pts[-1].tolist() == [10, 0]
    assert np.allclose(pts[2], (cubic[0, 0] + 3 * cubic[0, 1] + 3 * cubic[0, 2] + cubic[0, 3]) / 8)  # t = 1/2
    two = K.sample_cubics(np.concatenate([cubic, cubic + [10, 0]]), 4)
    assert two.shape == (9, 2) and two[4].tolist() == [10, 0]  # shared end point appears once


# --------------------------------------------------------------------------- real characters
def _svg(codepoint):
    return (K.kanjivg_folder() / f"{codepoint:05x}.svg").read_bytes()


def test_ichi_has_one_stroke_and_san_three_top_to_bottom():
    ichi = K.kanji_to_stroke3(_svg(0x4E00))
    assert strokes.num_strokes(ichi) == 1
    san = strokes.stroke3_to_lines(K.kanji_to_stroke3(_svg(0x4E09)))
    assert len(san) == 3
    starts_y = [line[0, 1] for line in san]
    assert starts_y == sorted(starts_y)  # written top to bottom (SVG y points down)
    for line in san:  # each stroke is horizontal, drawn left to right
        dx, dy = line[-1] - line[0]
        assert dx > 40 and abs(dy) < 10
    # the first point of 三 is the path's own start, on the 109 grid (the reference's origin is 0)
    assert np.allclose(san[0][0], [27.5, 23.65], atol=1e-4)


def test_juu_stroke_order_horizontal_then_vertical():
    first, second = strokes.stroke3_to_lines(K.kanji_to_stroke3(_svg(0x5341)))  # 十
    assert abs(np.subtract(*first[[-1, 0]])[0]) > abs(np.subtract(*first[[-1, 0]])[1])
    assert abs(np.subtract(*second[[-1, 0]])[1]) > abs(np.subtract(*second[[-1, 0]])[0])


def test_stroke_paths_in_document_order():
    svg = b"""<svg xmlns="http://www.w3.org/2000/svg"><g id="kvg:StrokePaths_00000"><g>
      <path id="kvg:x-s1" d="M1,1 L2,2"/></g><path id="kvg:x-s2" d="M3,3 L4,4"/></g>
      <g id="kvg:StrokeNumbers_00000"><text>1</text></g></svg>"""
    assert K.stroke_paths(svg) == ["M1,1 L2,2", "M3,3 L4,4"]
    with pytest.raises(ValueError, match="StrokePaths"):
        K.stroke_paths(b"<svg><path d='M0,0 L1,1'/></svg>")
    with pytest.raises(ValueError, match="does not parse"):
        K.stroke_paths(b"<svg><g")


def test_files_skip_variants_by_default():
    base = K.kanji_files()
    assert all("-" not in p.name for _, p in base)
    with_variants = K.kanji_files(variants=True)
    assert len(with_variants) > len(base) > 6000
    assert (0x4E00, K.kanjivg_folder() / "04e00.svg") in base


# --------------------------------------------------------------------------- split and cache
def test_split_is_deterministic_and_near_90_5_5():
    cps = range(0x4E00, 0x4E00 + 20000)
    first = [K.split_of(c) for c in cps]
    assert first == [K.split_of(c) for c in cps]  # a pure function of the code point
    frac = {s: first.count(s) / len(first) for s in K.SPLITS}
    assert abs(frac["train"] - 0.90) < 0.01 and abs(frac["valid"] - 0.05) < 0.01
    assert K.split_of(0x4E00) in K.SPLITS


def test_cache_round_trip_is_exact(tmp_path, monkeypatch):
    built = K.build_kanjivg(cache=tmp_path, limit=40)
    (path,) = tmp_path.glob("kanjivg-*.npz")
    assert K.kanjivg_version() in path.name

    def no_rebuild(*a, **k):
        raise AssertionError("rebuilt although the cache is valid")

    monkeypatch.setattr(K, "_process", no_rebuild)
    again = K.build_kanjivg(cache=tmp_path, limit=40)
    for s in K.SPLITS:
        assert again.codepoints[s] == built.codepoints[s]
        assert len(again.split(s)) == len(built.split(s))
        for a, b in zip(again.split(s), built.split(s)):
            assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b)
    assert again.labels == built.labels
    # a different parameter is a different cache entry
    monkeypatch.undo()
    K.build_kanjivg(cache=tmp_path, limit=40, epsilon=2.0)
    assert len(list(tmp_path.glob("kanjivg-*.npz"))) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncate", "wrong_meta", "bad_offsets"])
def test_corrupt_cache_is_rebuilt_not_trusted(tmp_path, monkeypatch, damage):
    good = K.build_kanjivg(cache=tmp_path, limit=20)
    (path,) = tmp_path.glob("kanjivg-*.npz")
    if damage == "garbage":
        path.write_bytes(b"not an npz at all")
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    else:
        arrays = dict(np.load(path))
        if damage == "wrong_meta":
            arrays["meta"] = np.frombuffer(b'{"version": "0", "params": {}}', dtype=np.uint8)
        else:
            arrays["offsets"] = arrays["offsets"][::-1].copy()
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    calls = []
    real = K._process
    monkeypatch.setattr(K, "_process", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.warns(UserWarning, match="invalid"):
        rebuilt = K.build_kanjivg(cache=tmp_path, limit=20)
    assert calls == [1]
    assert rebuilt.codepoints == good.codepoints
    assert all(np.array_equal(a, b) for a, b in zip(rebuilt.train, good.train))
    K.build_kanjivg(cache=tmp_path, limit=20)  # the rebuilt file is valid again: no second rebuild
    assert calls == [1]


@pytest.mark.slow
def test_full_build(tmp_path):
    t0 = time.perf_counter()
    ks = K.build_kanjivg(cache=tmp_path)
    seconds = time.perf_counter() - t0
    sizes = {s: len(ks.split(s)) for s in K.SPLITS}
    assert sum(sizes.values()) == len(K.kanji_files())
    assert 0.87 < sizes["train"] / sum(sizes.values()) < 0.93
    sets = [set(ks.codepoints[s]) for s in K.SPLITS]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    lengths = np.array([len(s) for sp in K.SPLITS for s in ks.split(sp)])
    assert lengths.max() <= 250  # nothing is lost to the default N_max
    assert 15 < strokes.scale_factor(ks.train) < 25  # the reference's "KanjiVG at RDP 1.0": about 20
    split, i = ks.find("一")
    assert ks.labels[split][i] == "一" and ks.codepoints[split][i] == 0x4E00
    assert strokes.num_strokes(ks.split(split)[i]) == 1
    assert seconds < 60, f"full KanjiVG build took {seconds:.1f} s"  # ~10-20 s on the 2-core CI machine


def test_fast_stroke_paths_equal_the_xml_parser():
    files = K.kanji_files(variants=True)[::25]  # ~470 files, variants included
    for _, path in files:
        svg = path.read_bytes()
        assert K.stroke_paths(svg) == K.stroke_paths_xml(svg), path.name
