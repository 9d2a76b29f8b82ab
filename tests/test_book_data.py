"""sketchlib.book.assets: result JSON files read from data/ in a checkout, downloaded (file://) elsewhere."""

import json

import pytest

from sketchlib.book import assets as book_data


def test_reads_the_local_file(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({"steps": 3}))
    assert book_data.load_json("result.json", data_dir=tmp_path) == {"steps": 3}
    assert book_data.data_path("result.json", data_dir=tmp_path) == tmp_path / "result.json"


def test_missing_file_names_the_tool_that_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="tools/compare_cells.py"):
        book_data.load_json("cell_comparison.json", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="other.json is missing"):
        book_data.load_json("other.json", data_dir=tmp_path)


@pytest.mark.parametrize("bad", ["../x.json", "a/b.json", "x.npz", ".hidden.json", 3])
def test_rejects_names_that_are_not_plain_json_files(tmp_path, bad):
    with pytest.raises(ValueError):
        book_data.data_path(bad, data_dir=tmp_path)


def test_invalid_json_is_a_value_error(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        book_data.load_json("broken.json", data_dir=tmp_path)


def test_downloads_into_the_cache_when_data_dir_is_absent(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    (served / "result.json").write_text(json.dumps({"cells": ["lstm"]}))
    monkeypatch.setenv("SKETCHLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(book_data.URL_ENV, served.as_uri())
    got = book_data.load_json("result.json", data_dir=tmp_path / "absent")
    assert got == {"cells": ["lstm"]}
    assert (tmp_path / "cache" / "book_data" / "result.json").is_file()
    # the cached copy is reused without the server
    (served / "result.json").unlink()
    assert book_data.load_json("result.json", data_dir=tmp_path / "absent") == {"cells": ["lstm"]}


def test_a_download_that_fails_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHLIB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(OSError):
        book_data.load_json("nothing.json", data_dir=tmp_path / "absent", base_url=(tmp_path / "empty").as_uri())
    assert not (tmp_path / "cache" / "book_data" / "nothing.json").exists()
