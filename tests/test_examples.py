"""examples.quickdraw_examples: local sample folders first, then the cache, then a download (file:// only here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from sketchlib.data import examples, quickdraw


def _record(k: int, word: str = "cat") -> dict:
    # a tiny drawing whose first x coordinate identifies it
    return {"word": word, "recognized": True, "key_id": str(k), "drawing": [[[k, k + 10], [0, 5]], [[3], [4]]]}


def _write(path: Path, records, blank_lines: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sep = "\n\n" if blank_lines else "\n"
    path.write_text(sep.join(json.dumps(r) for r in records) + "\n")
    return path


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No sample folder anywhere but where a test puts one: a bare cwd, no env var, a private cache,
    and the search beside the package switched off (the checkout's ../shared/data would be found)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(examples.SAMPLES_ENV, raising=False)
    monkeypatch.setenv("SKETCHLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(examples, "__file__", str(tmp_path / "site" / "sketchlib" / "examples.py"))
    return tmp_path


def test_simplified_url_quotes_spaces_and_rejects_paths():
    base = "https://storage.googleapis.com/quickdraw_dataset/full/simplified/"
    assert examples.simplified_url("cat") == base + "cat.ndjson"
    assert examples.simplified_url("The Eiffel Tower") == base + "The%20Eiffel%20Tower.ndjson"
    for bad in ("", " ", "a/b", "..", None):
        with pytest.raises(ValueError):
            examples.simplified_url(bad)


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_bad_n_is_refused(isolated, n):
    with pytest.raises(ValueError, match="n must be"):
        examples.quickdraw_examples("cat", n)


def test_folder_argument_gives_the_first_n(isolated):
    folder = isolated / "samples"
    _write(folder / "cat.ndjson", [_record(k) for k in range(6)], blank_lines=True)
    got = examples.quickdraw_examples("cat", 4, folder=folder, url="file:///nonexistent/never-read.ndjson")
    assert [r["key_id"] for r in got] == ["0", "1", "2", "3"]
    assert not (isolated / "cache" / "quickdraw_examples").exists()  # a local sample is not cached


def test_env_var_folder_is_used(isolated, monkeypatch):
    folder = _write(isolated / "env" / "pig.ndjson", [_record(k, "pig") for k in range(3)]).parent
    monkeypatch.setenv(examples.SAMPLES_ENV, str(folder))
    got = examples.quickdraw_examples("pig", 3, url="file:///nonexistent/never-read.ndjson")
    assert [r["word"] for r in got] == ["pig"] * 3


def test_shared_data_found_from_a_subfolder_of_the_cwd_ancestors(isolated, monkeypatch):
    # <root>/shared/data/quickdraw_simplified_sample, and the notebook runs in <root>/repo/book
    _write(isolated / examples.SAMPLE_SUBDIR / "owl.ndjson", [_record(k, "owl") for k in range(2)])
    book = isolated / "repo" / "book"
    book.mkdir(parents=True)
    monkeypatch.chdir(book)
    assert examples.sample_folders()[0] == (isolated / examples.SAMPLE_SUBDIR).resolve()
    got = examples.quickdraw_examples("owl", 2, url="file:///nonexistent/never-read.ndjson")
    assert [r["key_id"] for r in got] == ["0", "1"]


def test_download_reads_only_n_lines_caches_them_and_reuses_the_cache(isolated):
    src = _write(isolated / "remote" / "The Eiffel Tower.ndjson", [_record(k) for k in range(50)], blank_lines=True)
    got = examples.quickdraw_examples("The Eiffel Tower", 5, url=src.as_uri())
    assert [r["key_id"] for r in got] == [str(k) for k in range(5)]
    cached = isolated / "cache" / "quickdraw_examples" / "The Eiffel Tower.ndjson"
    assert len(cached.read_text().splitlines()) == 5  # only what was asked for, no blank lines
    assert not [p for p in cached.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
    os.remove(src)  # the source is gone: the cache must answer
    again = examples.quickdraw_examples("The Eiffel Tower", 3, url=src.as_uri())
    assert again == got[:3]
    with pytest.raises(OSError, match="could not read"):  # more than the cache holds -> download -> fails
        examples.quickdraw_examples("The Eiffel Tower", 6, url=src.as_uri())


def test_a_short_local_file_falls_through_to_the_download(isolated):
    folder = _write(isolated / "samples" / "cat.ndjson", [_record(k) for k in range(2)]).parent
    src = _write(isolated / "remote" / "cat.ndjson", [_record(100 + k) for k in range(4)])
    got = examples.quickdraw_examples("cat", 3, folder=folder, url=src.as_uri())
    assert [r["key_id"] for r in got] == ["100", "101", "102"]


def test_too_few_or_corrupt_drawings_raise_and_cache_nothing(isolated):
    short = _write(isolated / "remote" / "a.ndjson", [_record(k) for k in range(2)])
    with pytest.raises(ValueError, match="only 2 drawings, 3 requested"):
        examples.quickdraw_examples("a", 3, url=short.as_uri())
    bad = isolated / "remote" / "b.ndjson"
    bad.write_text(json.dumps(_record(0)) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"b\.ndjson.*line 2"):
        examples.quickdraw_examples("b", 2, url=bad.as_uri())
    assert not (isolated / "cache" / "quickdraw_examples").exists() or not any(
        (isolated / "cache" / "quickdraw_examples").iterdir())


def test_missing_url_is_an_oserror(isolated):
    with pytest.raises(OSError):
        examples.quickdraw_examples("cat", 1, url=(isolated / "nowhere.ndjson").as_uri())


def test_real_sample_matches_the_file_and_converts(shared_data, isolated):
    folder = shared_data / "quickdraw_simplified_sample"
    got = examples.quickdraw_examples("cat", 25, folder=folder)
    assert got == quickdraw.parse_ndjson(folder / "cat.ndjson")
    s3 = quickdraw.simplified_to_stroke3(got[0]["drawing"])
    assert s3.shape[1] == 3 and s3[-1, 2] == 1
    assert np.cumsum(s3[:, :2], axis=0).max() <= 255
