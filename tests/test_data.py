"""data: load_dataset's preparation (clamp, drop, scale, normalise, N_max) and stateless batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sketchlib.data import batches as B
from sketchlib.data import datasets as D
from sketchlib.data import npz, strokes


def _sketch(rng, n):
    xy = rng.integers(-30, 30, (n, 2))
    pen = (rng.random(n) < 0.2).astype(int)
    pen[-1] = 1
    return np.column_stack([xy, pen]).astype(np.int16)


def _toy_npz(tmp_path, lengths=(5, 12, 40, 7, 300), seed=0, name="toy.npz"):
    rng = np.random.default_rng(seed)
    splits = {s: [_sketch(rng, n) for n in lengths] for s in D.SPLITS}
    return npz.save_npz(tmp_path / name, splits), splits


# --------------------------------------------------------------------------- load_dataset
def test_omniglot_preparation(shared_data):
    d = D.load_dataset(shared_data / "omniglot.npz", max_seq_len=250)
    assert d.name == "omniglot" and (len(d.train), len(d.valid), len(d.test)) == (30000, 1000, 1000)
    assert d.max_seq_len == 157 and d.dropped == {"train": 0, "valid": 0, "test": 0}
    assert abs(d.scale - 53.44) < 0.01  # the reference's measured scale for omniglot
    offsets = np.concatenate([s[:, :2].ravel() for s in d.train])
    assert abs(offsets.std() - 1.0) < 1e-4  # normalised by the pooled training std
    assert all(s.dtype == np.float32 for s in d.train[:100] + d.test[:100])
    raw = npz.load_npz(shared_data / "omniglot.npz")
    assert np.allclose(d.test[7][:, :2], raw["test"][7][:, :2] / d.scale)
    assert np.array_equal(d.test[7][:, 2], raw["test"][7][:, 2])
    assert d.labels == {}
    assert D._known_npz("omniglot", None, False) == shared_data / "omniglot.npz"  # the name finds it too


def test_drop_long_sketches_and_reset_n_max(tmp_path, caplog):
    path, raw = _toy_npz(tmp_path)
    with caplog.at_level("WARNING"):
        d = D.load_dataset(path, max_seq_len=50)
    assert d.dropped == {"train": 1, "valid": 1, "test": 1}
    assert "dropped 3 sketches longer than N_max = 50" in caplog.text
    assert d.max_seq_len == 40  # the longest KEPT sketch, not the requested 50
    assert [len(s) for s in d.train] == [5, 12, 40, 7]
    kept = [s for s in raw["train"] if len(s) <= 50]
    assert d.scale == pytest.approx(strokes.scale_factor(kept))


def test_clamp_and_scale_from_train_only(tmp_path):
    base = np.array([[3, -4, 0], [5000, -7000, 0], [1, 1, 1]], dtype=np.int16)
    train = [np.array([[10, 0, 0], [-10, 5, 1]], dtype=np.int16), base]
    valid = [np.array([[30000, 30000, 1]], dtype=np.int16)]  # huge: must not change the scale
    path = npz.save_npz(tmp_path / "c.npz", {"train": train, "valid": valid, "test": valid})
    d = D.load_dataset(path)
    clamped = [strokes.clamp(s) for s in train]
    assert d.scale == pytest.approx(strokes.scale_factor(clamped))
    assert d.train[1][1, :2].tolist() == pytest.approx([1000 / d.scale, -1000 / d.scale])
    assert d.valid[0][0, :2].tolist() == pytest.approx([1000 / d.scale] * 2)


def test_ndjson_split_is_deterministic_with_labels(shared_data):
    path = shared_data / "quickdraw_simplified_sample" / "cat.ndjson"
    a = D.load_dataset(path, max_seq_len=250)
    b = D.load_dataset(path, max_seq_len=250)
    assert (len(a.train), len(a.valid), len(a.test)) == (23, 1, 1)
    for s in D.SPLITS:
        assert all(np.array_equal(x, y) for x, y in zip(a.split(s), b.split(s)))
        assert a.labels[s] == ["cat"] * len(a.split(s))
    c = D.load_dataset(path, seed=1)
    assert not all(np.array_equal(x, y) for x, y in zip(a.train, c.train))
    idx = D._split_indices(25, 0)
    assert sorted(np.concatenate(list(idx.values())).tolist()) == list(range(25))


def test_category_name_uses_fetch(tmp_path, monkeypatch):
    path, raw = _toy_npz(tmp_path, lengths=(4, 9, 6))
    monkeypatch.setenv("SKETCHLIB_CACHE", str(tmp_path / "cache"))
    d = D.load_dataset("toy category", url=path.as_uri(), progress=False)
    assert (tmp_path / "cache" / "quickdraw" / "toy category.npz").exists()
    assert d.name == "toy category" and len(d.train) == 3


def test_kanjivg_labels_align(tmp_path):
    d = D.load_dataset("kanjivg", cache=tmp_path, limit=60, progress=False)
    assert d.name == "kanjivg" and set(d.labels) == set(D.SPLITS)
    from sketchlib.data.kanjivg import build_kanjivg

    ks = build_kanjivg(cache=tmp_path / "kanjivg", limit=60)  # the cached set (same key)
    for s in D.SPLITS:
        assert d.labels[s] == ks.labels[s]
        assert all(np.allclose(x[:, :2], y[:, :2] / d.scale) for x, y in zip(d.split(s), ks.split(s)))


def test_bad_names(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        D.load_dataset(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="unknown dataset"):
        D.load_dataset(tmp_path / "sketches.txt")
    bad = npz.save_npz(tmp_path / "bad.npz", {"train": [np.array([[1, 1, 3]], np.int16)],
                                                "valid": [], "test": []})
    with pytest.raises(ValueError, match="split 'train', sketch 0: pen value 3"):
        D.load_dataset(bad)
    noval = npz.save_npz(tmp_path / "nv.npz", {"train": [np.array([[1, 1, 1]], np.int16)]})
    with pytest.raises(ValueError, match="missing split"):
        D.load_dataset(noval)
    with pytest.raises(ValueError, match="max_seq_len must be a positive integer"):
        D.load_dataset(bad, max_seq_len=0)


# --------------------------------------------------------------------------- StrokeBatches
@pytest.fixture
def toy():
    rng = np.random.default_rng(3)
    return [strokes.normalize([_sketch(rng, int(n))], 10.0)[0] for n in rng.integers(4, 30, 50)]


def test_batch_is_a_pure_function_of_seed_step_rank(toy):
    a = B.StrokeBatches(toy, 8, 32, augment=True, seed=7)
    b = B.StrokeBatches(toy, 8, 32, augment=True, seed=7)
    s5, lengths = a.batch(5)
    a.batch(3)  # other calls in between change nothing
    for x, y in zip((s5, lengths), b.batch(5)):
        assert torch.equal(x, y)
    assert s5.dtype == torch.float32 and lengths.dtype == torch.int64 and s5.shape == (8, 33, 5)
    assert not torch.equal(a.batch(6)[0], s5)
    assert not torch.equal(B.StrokeBatches(toy, 8, 32, augment=True, seed=8).batch(5)[0], s5)


def test_augmentation_only_when_asked(toy):
    plain = B.StrokeBatches(toy, 8, 32, augment=False, seed=1)
    aug = B.StrokeBatches(toy, 8, 32, augment=True, seed=1)
    idx = plain.indices(4)
    assert len(set(idx.tolist())) == 8  # without replacement
    assert np.array_equal(idx, aug.indices(4))  # augmentation draws after the indices
    expected, lengths = strokes.pad_batch([toy[i] for i in idx], 32)
    got, got_len = plain.batch(4)
    assert np.array_equal(got.numpy(), expected) and np.array_equal(got_len.numpy(), lengths)
    augmented, aug_len = aug.batch(4)
    assert not torch.equal(augmented, got) and (aug_len <= got_len).all()
    # only scale and drop: the pen column still has the same number of lifts per sketch
    assert torch.equal(augmented[:, :, 3].sum(1), got[:, :, 3].sum(1))
    no_aug = B.StrokeBatches(toy, 8, 32, augment=True, random_scale_factor=0.0, augment_stroke_prob=0.0, seed=1)
    assert torch.equal(no_aug.batch(4)[0], got)


def test_ranks_draw_from_disjoint_shards(toy):
    r0 = B.StrokeBatches(toy, 5, 32, augment=False, seed=2, rank=0, world_size=2)
    r1 = B.StrokeBatches(toy, 5, 32, augment=False, seed=2, rank=1, world_size=2)
    seen0 = set(np.concatenate([r0.indices(t) for t in range(40)]).tolist())
    seen1 = set(np.concatenate([r1.indices(t) for t in range(40)]).tolist())
    assert not seen0 & seen1
    assert seen0 <= set(range(0, 50, 2)) and seen1 <= set(range(1, 50, 2))
    with pytest.raises(ValueError, match="fewer than batch_size"):
        B.StrokeBatches(toy, 30, 32, augment=False, rank=0, world_size=2)
    with pytest.raises(ValueError, match="rank"):
        B.StrokeBatches(toy, 5, 32, augment=False, rank=2, world_size=2)


def test_iter_fixed_covers_everything_in_order(toy):
    sb = B.StrokeBatches(toy, 8, 32, augment=True, seed=0, rank=1, world_size=2)
    batches = list(sb.iter_fixed(batch_size=16))
    assert [b[0].shape[0] for b in batches] == [16, 16, 16, 2]
    all_s5 = torch.cat([b[0] for b in batches])
    all_len = torch.cat([b[1] for b in batches])
    expected, lengths = strokes.pad_batch(toy, 32)
    assert np.array_equal(all_s5.numpy(), expected) and np.array_equal(all_len.numpy(), lengths)
    assert sum(1 for _ in sb.iter_fixed()) == 7  # default: the batch size


def test_too_long_sketch_is_refused(toy):
    with pytest.raises(ValueError, match="longer than N_max"):
        B.StrokeBatches(toy, 4, 10, augment=False)


def test_collate(toy):
    s5, lengths = B.collate_stroke5(toy[:3], 32)
    assert s5.shape == (3, 33, 5) and lengths.tolist() == [len(s) for s in toy[:3]]


def test_summary_is_json_friendly(tmp_path):
    path, _ = _toy_npz(tmp_path, lengths=(4, 9, 6))
    d = D.load_dataset(path)
    assert "toy: 3/3/3 sketches" in d.summary()
    json.dumps({"scale": d.scale, "max_seq_len": d.max_seq_len, "dropped": d.dropped})


def test_several_datasets_joined_with_one_scale(tmp_path, monkeypatch):
    """'a,b' joins the splits (labels name the source) and normalises by the pooled training std of both."""
    monkeypatch.setenv("SKETCHLIB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "quickdraw"
    folder.mkdir(parents=True)
    _, ra = _toy_npz(folder, lengths=(4, 9, 6), seed=1, name="cat.npz")  # as if downloaded before
    _, rb = _toy_npz(folder, lengths=(5, 7), seed=2, name="sheep.npz")
    d = D.load_dataset("cat,sheep", progress=False)
    assert d.name == "cat,sheep"
    assert d.labels["train"] == ["cat"] * 3 + ["sheep"] * 2 and len(d.test) == 5
    offsets = np.concatenate([np.clip(s[:, :2], -1000, 1000).ravel() for s in ra["train"] + rb["train"]])
    assert d.scale == pytest.approx(float(offsets.astype(np.float64).std()), rel=1e-5)
    np.testing.assert_allclose(d.train[3][:, :2], rb["train"][0][:, :2] / d.scale, rtol=1e-6)
    # paths work in lists too, and a list is named the same way again (export reloads it by that name)
    pa, _ = _toy_npz(tmp_path, lengths=(4, 5), seed=3, name="p.npz")
    both = D.load_dataset(f"{pa},sheep", progress=False)
    assert both.labels["valid"] == [str(pa)] * 2 + ["sheep"] * 2
    for bad in ("cat,,sheep", "cat,cat"):
        with pytest.raises(ValueError, match="non-empty and distinct"):
            D.load_dataset(bad, progress=False)
    with pytest.raises(ValueError, match="url= names one file"):
        D.load_dataset("cat,sheep", url="file:///nowhere.npz", progress=False)
