"""Files written atomically, and the cache folder.

Every file sketchlib writes (downloads, the processed KanjiVG cache, checkpoints) goes through
:func:`atomic_path` / :func:`atomic_write`: the bytes land in a temporary file in the SAME folder
and are moved over the target with :func:`os.replace` only once complete. A reader therefore sees
either the old file or the whole new one, never half a file, and an interrupted write (an
exception, Ctrl-C) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

#: Environment variable that overrides the cache folder.
CACHE_ENV = "SKETCHLIB_CACHE"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on error removed.

    The temporary name keeps ``path``'s suffix (``.name.XXXX.tmp.npz``) so writers that insist on a
    suffix (``np.savez``) write exactly there. Parent folders are created. The final file gets the
    usual permissions (``0o666 & ~umask``), not the private ``0o600`` of :func:`tempfile.mkstemp`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_path: nothing was written to the temporary file for {path}")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write(path, data) -> Path:
    """Write ``data`` (``bytes`` or ``str``, UTF-8) to ``path`` atomically (fsynced, then renamed)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"atomic_write: data must be bytes or str, got {type(data).__name__}")
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return path


def cache_dir() -> Path:
    """The cache folder: ``$SKETCHLIB_CACHE`` if set, else ``~/.cache/sketchlib`` (created if missing)."""
    env = os.environ.get(CACHE_ENV)
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "sketchlib"
    root.mkdir(parents=True, exist_ok=True)
    return root
