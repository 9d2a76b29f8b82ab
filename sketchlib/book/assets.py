"""Result files that chapters plot (``data/<name>.json``), found the same way as the pretrained checkpoints.

Experiments too long for a chapter's execution are run offline by a script in ``tools/`` (for example
``tools/compare_cells.py``), which writes a small JSON file into the repository's ``data/`` folder
with the command, the budget and the hardware that made it. A chapter then reads it with
:func:`load_json`:

* in a source checkout (JupyterLab, the website build, the tests) ``data/`` exists and the file is
  read from there; a missing file is a ``FileNotFoundError`` that says which tool makes it;
* where ``data/`` is absent (sketchlib installed with pip, e.g. in Colab) the file is downloaded once
  from the repository's raw files, the base URL of :mod:`sketchlib.pretrained` (``$SKETCHLIB_PRETRAINED_URL``
  overrides it), into ``cache_dir()/book_data/``.

Only JSON is served: nothing here loads pickled or executable content.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sketchlib.data.download import download
from sketchlib.pretrained import BASE_URL, DATA_DIR, URL_ENV

#: The tool that writes each known result file (for the error message when it is missing).
MADE_BY = {
    "cell_comparison.json": "tools/compare_cells.py",
}


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.endswith(".json"):
        raise ValueError(f"a book data file is a .json name, got {name!r}")
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"a book data file name must not contain a path: {name!r}")
    return name


def data_path(name: str, *, data_dir=None, base_url: str | None = None, progress: bool = False) -> Path:
    """Local path of the result file ``name`` (e.g. ``"cell_comparison.json"``), downloading it if needed.

    ``data_dir`` defaults to the checkout's ``data/``; when that folder does not exist the file comes
    from ``base_url`` (default ``$SKETCHLIB_PRETRAINED_URL`` or the repository's raw ``data/``).
    """
    name = _check_name(name)
    folder = Path(data_dir) if data_dir is not None else DATA_DIR
    if folder.is_dir():
        path = folder / name
        if not path.is_file():
            tool = MADE_BY.get(name)
            hint = f"; it is written by `python {tool}`" if tool else ""
            raise FileNotFoundError(f"{name} is missing in {folder}{hint}")
        return path
    from sketchlib.data.fileio import cache_dir

    base = base_url or os.environ.get(URL_ENV) or BASE_URL
    base = base if base.endswith("/") else base + "/"
    dest = cache_dir() / "book_data" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    return download(base + name, dest, progress=progress)


def load_json(name: str, **kwargs) -> dict:
    """The parsed JSON of the result file ``name`` (see :func:`data_path` for where it is found)."""
    path = data_path(name, **kwargs)
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
