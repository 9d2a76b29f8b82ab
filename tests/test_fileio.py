"""fileio: atomic writes never leave half a file or a temporary file behind; the cache folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sketchlib.data.fileio import atomic_path, atomic_write, cache_dir


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_bytes_and_str(tmp_path):
    p = tmp_path / "sub" / "a.bin"
    atomic_write(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    atomic_write(p, "héllo")  # overwrite, str is UTF-8
    assert p.read_text(encoding="utf-8") == "héllo"
    assert _leftovers(p.parent) == []


def test_atomic_write_gets_normal_permissions(tmp_path):
    p = atomic_write(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_write_rejects_other_types(tmp_path):
    with pytest.raises(ValueError, match="bytes or str"):
        atomic_write(tmp_path / "a", 123)
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "data.npz"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        assert tmp.name.endswith(".npz")  # the suffix is kept, so np.savez writes exactly there
        np.savez(tmp, a=np.arange(3))
        assert not target.exists()  # nothing visible before the block ends
    assert np.load(target)["a"].tolist() == [0, 1, 2]
    assert _leftovers(tmp_path) == []


def test_atomic_path_keeps_old_file_and_removes_temp_on_error(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_path_error_when_temp_was_deleted(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "f") as tmp:
            tmp.unlink()
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_env_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHLIB_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("SKETCHLIB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "sketchlib"
