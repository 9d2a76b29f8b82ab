"""npz: the safe reader gives what numpy gives, and never runs pickled code."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

from sketchlib.data import npz


# --------------------------------------------------------------------------- the real file
def test_omniglot_equals_numpy_exactly(shared_data):
    path = shared_data / "omniglot.npz"
    ref = np.load(path, encoding="latin1", allow_pickle=True)
    ours = npz.read_arrays(path)
    assert sorted(ours) == sorted(ref.files) == ["test", "train", "valid"]
    loaded = npz.load_npz(path)
    for key in ref.files:
        r = ref[key]
        assert ours[key].dtype == r.dtype == object and ours[key].shape == r.shape
        assert len(loaded[key]) == len(r)
        for a, b, c in zip(ours[key], r, loaded[key]):
            assert a.dtype == b.dtype == c.dtype == np.int16
            assert a.shape == b.shape == c.shape
            assert np.array_equal(a, b) and np.array_equal(c, b)
    assert (len(loaded["train"]), len(loaded["valid"]), len(loaded["test"])) == (30000, 1000, 1000)


# --------------------------------------------------------------------------- malicious pickles
class _Evil:
    """Pickles as a call to ``func(arg)``: what an attacker puts into an .npz."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def _evil_npz(path, payload):
    arr = np.empty(2, dtype=object)
    arr[0] = np.zeros((3, 3), dtype=np.int16)
    arr[1] = payload
    np.savez(path, train=arr)  # numpy pickles the object array, payload included


def test_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    _evil_npz(path, _Evil(os.system, f"touch '{marker}'"))
    with pytest.raises(ValueError, match=r"refusing to unpickle (posix|nt|os)\.system"):
        npz.load_npz(path)
    with pytest.raises(ValueError, match="refusing to unpickle"):
        npz.read_arrays(path)
    assert not marker.exists()
    # (the file really is dangerous: plain numpy runs the payload)
    np.load(path, allow_pickle=True)["train"]
    assert marker.exists()


def test_builtins_eval_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned-eval"
    path = tmp_path / "evil.npz"
    _evil_npz(path, _Evil(eval, f"open({str(marker)!r}, 'w').write('x')"))
    with pytest.raises(ValueError, match=r"refusing to unpickle builtins\.eval"):
        npz.load_npz(path)
    assert not marker.exists()


def test_restricted_unpickler_allows_only_numpy_array_pieces():
    import pickle

    assert set(npz.ALLOWED_GLOBALS) == {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # the last: protocol-2 bytes only
    blob = pickle.dumps({"f": os.getcwd}, protocol=2)
    with pytest.raises(ValueError, match=r"refusing to unpickle (posix|nt)\.getcwd"):
        npz.RestrictedUnpickler(io.BytesIO(blob)).load()


# --------------------------------------------------------------------------- corrupt files
def test_truncated_npz(shared_data, tmp_path):
    data = (shared_data / "omniglot.npz").read_bytes()
    bad = tmp_path / "trunc.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="trunc.npz"):
        npz.load_npz(bad)


def test_not_a_zip(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(b"hello, not a zip")
    with pytest.raises(ValueError, match="not a valid .npz"):
        npz.read_arrays(p)


def _zip_with(tmp_path, name, member_bytes):
    p = tmp_path / name
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("train.npy", member_bytes)
    return p


def _npy_bytes(arr, **kw):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True, **kw)
    return buf.getvalue()


def test_truncated_pickle_inside_a_valid_zip(tmp_path):
    arr = np.empty(3, dtype=object)
    for i in range(3):
        arr[i] = np.ones((5, 3), dtype=np.int16)
    raw = _npy_bytes(arr)
    with pytest.raises(ValueError, match="corrupt pickled object array"):
        npz.read_arrays(_zip_with(tmp_path, "p.npz", raw[: len(raw) - 40]))


def test_truncated_numeric_data_and_bad_headers(tmp_path):
    raw = _npy_bytes(np.arange(100, dtype=np.int32))
    with pytest.raises(ValueError, match="truncated array data"):
        npz.read_arrays(_zip_with(tmp_path, "a.npz", raw[:-8]))
    with pytest.raises(ValueError, match="bad magic"):
        npz.read_arrays(_zip_with(tmp_path, "b.npz", b"NOTNUMPY" + raw[8:]))
    with pytest.raises(ValueError, match="corrupt .npy header"):
        npz.read_arrays(_zip_with(tmp_path, "c.npz", raw[:10] + b"__import__('os')" + raw[26:]))


def test_corrupt_member_crc(tmp_path):
    p = tmp_path / "crc.npz"
    np.savez(p, a=np.arange(1000, dtype=np.int64))
    data = bytearray(p.read_bytes())
    data[400] ^= 0xFF  # inside the stored array data: the zip CRC no longer matches
    p.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="crc.npz"):
        npz.read_arrays(p)


# --------------------------------------------------------------------------- numeric arrays: no pickle
def test_numeric_arrays_load_without_pickle(tmp_path, monkeypatch):
    def no_pickle(*a, **k):
        raise AssertionError("pickle used for a numeric array")

    monkeypatch.setattr(npz.RestrictedUnpickler, "load", no_pickle)
    arrays = {
        "ints": np.arange(24, dtype=np.int16).reshape(2, 4, 3),
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "big_endian": np.arange(5, dtype=">f8"),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "structured": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "text": np.array(["abc", "de"]),
    }
    p = tmp_path / "num.npz"
    np.savez_compressed(p, **arrays)
    ours = npz.read_arrays(p)
    ref = np.load(p)
    for k in arrays:
        assert ours[k].dtype == ref[k].dtype and ours[k].shape == ref[k].shape
        assert np.array_equal(ours[k], ref[k]), k
        assert ours[k].flags.f_contiguous == ref[k].flags.f_contiguous
    np.savez(tmp_path / "sk.npz", train=arrays["ints"] % 2)
    sketches = npz.load_npz(tmp_path / "sk.npz")["train"]  # a numeric [K, N, 3] array: K sketches
    assert len(sketches) == 2 and sketches[1].shape == (4, 3)
    with pytest.raises(ValueError, match="split .ints., sketch 0: pen value 2"):
        npz.load_npz(p)


def test_npy_format_version_2(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = _zip_with(tmp_path, "v2.npz", _npy_bytes(a, version=(2, 0)))
    assert np.array_equal(npz.read_arrays(p)["train"], a)


# --------------------------------------------------------------------------- Sketch-RNN layout
def test_save_load_round_trip_numpy2_pickles(tmp_path):
    rng = np.random.default_rng(0)
    splits = {s: [np.column_stack([rng.integers(-50, 50, (n, 2)), rng.integers(0, 2, n)]).astype(np.int16)
                  for n in (3, 7, 1)] for s in ("train", "valid", "test")}
    p = npz.save_npz(tmp_path / "rt.npz", splits)
    back = npz.load_npz(p)
    for s in splits:
        assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(splits[s], back[s]))


def test_invalid_sketch_names_split_and_index(tmp_path):
    good = np.array([[1, 2, 0], [3, 4, 1]], dtype=np.int16)
    bad = np.array([[1, 2, 0], [3, 4, 2]], dtype=np.int16)  # pen value 2
    p = npz.save_npz(tmp_path / "bad.npz", {"train": [good] * 3, "valid": [good, good, good, bad]})
    with pytest.raises(ValueError, match=r"split 'valid', sketch 3: pen value 2"):
        npz.load_npz(p)
    p2 = npz.save_npz(tmp_path / "bad2.npz", {"train": [good, np.zeros((4, 2), np.int16)]})
    with pytest.raises(ValueError, match=r"split 'train', sketch 1: stroke-3 must have shape"):
        npz.load_npz(p2)
    assert len(npz.load_npz(p, validate=False)["valid"]) == 4
