"""Issue 10 (hardening), the data items: each test is named after its item and fails on the code before it.

No test reaches the internet: sources are ``file://`` URLs or a server on 127.0.0.1, and every wait
is bounded (the slow-server tests use limits of a fraction of a second).
"""

from __future__ import annotations

import ast
import http.server
import io
import json
import pickle
import time
import tomllib
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import local_http_server

from sketchlib.data import datasets as D
from sketchlib.data import kanjivg as K
from sketchlib.data import npz, quickdraw
from sketchlib.data.download import download
from sketchlib.data.examples import quickdraw_examples

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "valid", "test")


def _small_splits(seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for s in SPLITS:
        sketches = []
        for n in (3, 5, 4):
            a = np.column_stack([rng.integers(-20, 20, (n, 2)), np.zeros(n, int)]).astype(np.int16)
            a[-1, 2] = 1
            sketches.append(a)
        out[s] = sketches
    return out


def _npz_bytes(tmp_path, seed=0) -> bytes:
    return npz.save_npz(tmp_path / f"src{seed}.npz", _small_splits(seed)).read_bytes()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


class _Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.0: without Content-Length a response ends when the server closes the connection."""

    body = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        try:
            if self.path == "/html.npz":  # an error page served with status 200
                page = b"<html><body>Sorry, try again later</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
            elif self.path == "/cut.npz":  # no Content-Length, half the file, then hang up
                self.send_response(200)
                self.end_headers()
                self.wfile.write(type(self).body[: len(type(self).body) // 2])
            elif self.path == "/trickle.bin":  # 1 byte every 50 ms, promising 400
                self.send_response(200)
                self.send_header("Content-Length", "400")
                self.end_headers()
                for _ in range(400):
                    self.wfile.write(b"x")
                    time.sleep(0.05)
            else:
                self.send_error(404)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    with local_http_server(_Handler) as url:
        yield url


# --------------------------------------------------------------------------- item 1: corrupt downloads
def test_item1_html_page_with_status_200_is_not_cached(server, tmp_path):
    cache = tmp_path / "qd"
    with pytest.raises(ValueError, match=r"not valid, nothing cached.*not a valid \.npz"):
        quickdraw.fetch_category("cat", cache=cache, url=f"{server}/html.npz", progress=False)
    assert _files(cache) == []


def test_item1_transfer_cut_short_without_content_length_is_not_cached(server, tmp_path):
    _Handler.body = _npz_bytes(tmp_path)
    cache = tmp_path / "qd"
    with pytest.raises(ValueError, match="not valid, nothing cached"):
        quickdraw.fetch_category("cat", cache=cache, url=f"{server}/cut.npz", progress=False)
    assert _files(cache) == []


def test_item1_corrupt_cached_file_is_set_aside_and_fetched_again(tmp_path):
    good = npz.save_npz(tmp_path / "src" / "cat.npz", _small_splits())
    cache = tmp_path / "qd"
    cache.mkdir()
    (cache / "cat.npz").write_bytes(b"<html>an error page cached by an older version</html>")
    with pytest.warns(UserWarning, match=r"cat\.npz is corrupt .*moved it to cat\.npz\.corrupt"):
        data = quickdraw.fetch_category("cat", cache=cache, url=good.as_uri(), progress=False)
    assert np.array_equal(data["valid"][1], _small_splits()["valid"][1])
    assert _files(cache) == ["cat.npz", "cat.npz.corrupt"]
    assert (cache / "cat.npz").read_bytes() == good.read_bytes()
    assert (cache / "cat.npz.corrupt").read_bytes().startswith(b"<html>")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the good copy is reused: no warning, no download
        good.unlink()
        again = quickdraw.fetch_category("cat", cache=cache, url=good.as_uri(), progress=False)
    assert np.array_equal(again["test"][2], data["test"][2])


# --------------------------------------------------------------------------- item 7: KanjiVG cache claims
def test_item7_kanjivg_cache_with_shifted_stroke_boundaries_is_rebuilt(tmp_path):
    good = K.build_kanjivg(cache=tmp_path, limit=12)
    (path,) = tmp_path.glob("kanjivg-*.npz")
    arrays = dict(np.load(path))
    arrays["offsets"][1:-1] += 1  # every boundary one point late: still increasing, still ends at P
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.warns(UserWarning, match="digest mismatch"):
        rebuilt = K.build_kanjivg(cache=tmp_path, limit=12)
    assert rebuilt.codepoints == good.codepoints
    assert all(np.array_equal(a, b) for s in SPLITS for a, b in zip(rebuilt.split(s), good.split(s)))
    # the same shift with a digest recomputed to match is still caught: a sketch must end with a pen lift
    arrays = dict(np.load(path))
    arrays["offsets"][1:-1] += 1
    arrays["digest"] = np.frombuffer(K._digest(arrays).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.warns(UserWarning, match="pen lift"):
        K.build_kanjivg(cache=tmp_path, limit=12)


# --------------------------------------------------------------------------- item 9: pickle protocol 2
def _npz_with_protocol(path: Path, splits: dict, protocol: int) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for key, sketches in splits.items():
            arr = np.empty(len(sketches), dtype=object)
            for i, s in enumerate(sketches):
                arr[i] = s
            buf = io.BytesIO()  # np.save's layout, but numpy always pickles with protocol 3: write it by hand
            np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr))
            pickle.dump(arr, buf, protocol=protocol)
            zf.writestr(f"{key}.npy", buf.getvalue())
    return path


def test_item9_protocol2_object_arrays_load(tmp_path):
    splits = _small_splits(3)
    path = _npz_with_protocol(tmp_path / "old.npz", splits, protocol=2)
    with zipfile.ZipFile(path) as zf:
        assert b"_codecs\nencode" in zf.read("train.npy")  # the file really has the protocol-2 form
    loaded = npz.load_npz(path)
    for s in SPLITS:
        assert len(loaded[s]) == 3
        for a, b in zip(loaded[s], splits[s]):
            assert a.dtype == np.int16 and np.array_equal(a, b)
    ref = np.load(path, allow_pickle=True, encoding="latin1")  # what plain numpy gives
    assert all(np.array_equal(a, b) for a, b in zip(loaded["test"], ref["test"]))


@pytest.mark.parametrize("blob, refused", [
    (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00x\x85R.", "encode"),  # no encoding given
    (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R.", "rot13"),
    (b"\x80\x02c_codecs\nencode\nC\x01xX\x06\x00\x00\x00latin1\x86R.", "bytes"),  # not a str
    (b"\x80\x02c_codecs\ndecode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00latin1\x86R.", "_codecs.decode"),
])
def test_item9_codecs_encode_is_allowed_only_for_latin1_text(blob, refused):
    allowed = npz.RestrictedUnpickler(io.BytesIO(
        b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00\xc3\xa9X\x06\x00\x00\x00latin1\x86R."), encoding="latin1")
    assert allowed.load() == b"\xe9"  # U+00E9 as latin1
    with pytest.raises((ValueError, TypeError), match=f"refusing to unpickle.*{refused}|{refused}"):
        npz.RestrictedUnpickler(io.BytesIO(blob), encoding="latin1").load()


# --------------------------------------------------------------------------- item 10: slow servers
@pytest.mark.parametrize("limits, which", [
    ({"deadline": 0.4, "min_rate": 0}, "overall deadline of 0.4 s"),
    ({"deadline": None, "min_rate": 100, "rate_window": 0.3}, "below the minimum rate of 100 bytes/s"),
])
def test_item10_trickling_server_is_stopped(server, tmp_path, limits, which):
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=which):
        download(f"{server}/trickle.bin", tmp_path / "t.bin", progress=False, timeout=5, **limits)
    assert time.monotonic() - t0 < 3  # the whole file would take 20 s
    assert _files(tmp_path) == []


def test_item10_examples_stream_has_a_deadline_too(server, tmp_path, monkeypatch):
    """The chapters' Quick, Draw! examples stream from the same kind of server: bounded as well."""
    from sketchlib.data import examples

    monkeypatch.setattr(examples, "sample_folders", lambda: [])  # no local sample: go to the server
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="overall deadline of 0.4 s"):
        quickdraw_examples("cat", 2, url=f"{server}/trickle.bin", cache=tmp_path, timeout=5, deadline=0.4)
    assert time.monotonic() - t0 < 3 and _files(tmp_path) == []


def test_item10_limits_are_checked():
    for bad in ({"deadline": -1}, {"min_rate": -5}, {"rate_window": float("nan")}):
        with pytest.raises(ValueError, match="must be >= 0"):
            download("file:///nowhere", "/nonexistent/x", **bad)


# --------------------------------------------------------------------------- item 13: unknown names
def test_item13_typo_is_one_clear_error_with_suggestions(tmp_path, monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("an unknown name must not start a download")

    monkeypatch.setattr(quickdraw, "download", no_network)
    monkeypatch.setattr(D, "download", no_network)
    with pytest.raises(ValueError) as info:
        D.load_dataset("kanjvg", cache=tmp_path, progress=False)
    msg = str(info.value)
    assert "neither a built-in dataset" in msg and "Quick, Draw! categories" in msg and "'kanjivg'" in msg
    assert info.value.__cause__ is None and info.value.__context__ is None  # one error, no chain
    with pytest.raises(ValueError, match="'The Eiffel Tower'"):
        D.load_dataset("eiffel tower", cache=tmp_path, progress=False)
    with pytest.raises(ValueError, match="'hockey puck'"):
        quickdraw.fetch_category("hocky puck", cache=tmp_path)


def test_item13_the_345_categories_ship_with_the_package():
    cats = quickdraw.categories()
    assert len(cats) == len(set(cats)) == 345
    for name in ("The Eiffel Tower", "The Great Wall of China", "The Mona Lisa", "aircraft carrier",
                 "hockey puck", "t-shirt", "teddy-bear", "see saw", "flip flops", "zigzag"):
        assert name in cats


def test_item13_categories_are_spelled_as_googles_files(shared_data):
    cats = quickdraw.categories()
    sample = {p.stem for p in (shared_data / "quickdraw_simplified_sample").glob("*.ndjson")}
    assert len(sample) == 344 and sample <= set(cats)  # Google's own files name them the same way


def test_item13_package_data_lists_every_data_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    listed = config["sketchlib.data"]
    folder = ROOT / "sketchlib" / "data"
    shipped = [p.name for p in folder.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert shipped and all(any(Path(name).match(pattern) for pattern in listed) for name in shipped), shipped


# --------------------------------------------------------------------------- item 14: clear messages
def test_item14_directory_where_an_npz_is_expected(tmp_path):
    folder = tmp_path / "data.npz"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        npz.load_npz(folder)
    with pytest.raises(ValueError, match="is a directory"):
        D.load_dataset(str(folder), progress=False)
    with pytest.raises(ValueError, match="is a directory"):
        D.load_dataset(str(tmp_path), progress=False)


def test_item14_npy_header_with_2_to_the_62_rows(tmp_path):
    header = "{'descr': '<i2', 'fortran_order': False, 'shape': (%d, 3), }" % 2**62
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 60
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train.npy", member)
    with pytest.raises(ValueError, match=r"huge\.npz: array 'train': truncated array data: the header declares shape "
                       r"\(4611686018427387904, 3\) of int16 \(27670116110564327424 bytes\), but only 60 bytes follow"):
        npz.read_arrays(path)


@pytest.mark.parametrize("value", [1e308, -1e308])
def test_item14_ndjson_coordinates_out_of_range_name_the_line(tmp_path, value):
    good = {"word": "cat", "drawing": [[[0, 10, 20], [0, 5, 0]]]}
    bad_simplified = {"word": "cat", "drawing": [[[0, value], [0, 5]]]}
    bad_raw = {"word": "cat", "drawing": [[[0, 3], [0, value], [0, 16]]]}
    for bad in (bad_simplified, bad_raw):
        path = tmp_path / "cat.ndjson"
        path.write_text("\n".join(json.dumps(r) for r in (good, bad, good)) + "\n")
        with pytest.raises(ValueError, match=r"cat\.ndjson: line 2, stroke 0: coordinate .*out of range"):
            D.load_dataset(str(path), progress=False)


def test_item14_deeply_nested_ndjson_line(tmp_path):
    path = tmp_path / "deep.ndjson"
    path.write_text('{"drawing": [[[0, 1], [0, 1]]]}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ValueError, match=r"deep\.ndjson: line 2: JSON nested too deeply"):
        quickdraw.parse_ndjson(path)


@pytest.mark.parametrize("limit", [-1, 0, 2.5, True])
def test_item14_limit_must_be_at_least_one(tmp_path, limit):
    path = npz.save_npz(tmp_path / "toy.npz", _small_splits())
    with pytest.raises(ValueError, match="limit must be an integer >= 1 or None"):
        D.load_dataset(str(path), limit=limit, progress=False)
    assert len(D.load_dataset(str(path), limit=2, progress=False).train) == 2


# --------------------------------------------------------------------------- issue 9: imports, module sizes
_OWN = sorted((ROOT / "sketchlib" / "data").glob("*.py")) + [ROOT / "sketchlib" / "pretrained.py"]


@pytest.mark.parametrize("path", _OWN, ids=lambda p: p.name)
def test_issue9_no_hidden_sketchlib_imports_and_short_modules(path):
    source = path.read_text()
    tree = ast.parse(source)
    for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("sketchlib")):
                raise AssertionError(f"{path.name}:{node.lineno}: import inside {fn.name}(); hoist it")
            if isinstance(node, ast.Import) and any(a.name.startswith("sketchlib") for a in node.names):
                raise AssertionError(f"{path.name}:{node.lineno}: import inside {fn.name}(); hoist it")
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)), "use absolute imports"
    assert len(source.splitlines()) <= 350, f"{path.name} has {len(source.splitlines())} lines"
