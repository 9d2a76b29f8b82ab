"""Shipped, pretrained checkpoints: find them, verify them, load them.

A checkpoint named ``<name>`` is three files in the repository's ``data/`` folder:

* ``<name>.safetensors``: the weights and config (:mod:`sketchlib.train.checkpoint`, weights only);
* ``<name>.manifest.json``: how it was made (command, config, steps, wall time, hardware, commit,
  final train / valid losses, a held-out test evaluation) and the file's ``sha256``;
* ``<name>.log.jsonl``: the training log.

:func:`load_pretrained` checks the weights' sha256 against the manifest BEFORE reading them. In
a source checkout (JupyterLab, the website build, the tests) the files are read from ``data/``.
Where ``data/`` is absent (sketchlib installed with pip, e.g. in Colab) the manifest and then
the weights are downloaded from :data:`BASE_URL` (the repository's raw files) into the cache
with :func:`sketchlib.data.download.download`, which verifies the weights' sha256 the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sketchlib.data.download import download, file_sha256
from sketchlib.data.fileio import cache_dir
from sketchlib.train import checkpoint

#: The repository's data/ folder as raw files (tests/test_pretrained.py checks it against _config.yml).
BASE_URL = "https://raw.githubusercontent.com/sketchlib/sketch-rnn-book/main/data/"
#: Environment variable overriding :data:`BASE_URL` (a mirror, or file:// in tests).
URL_ENV = "SKETCHLIB_PRETRAINED_URL"
#: ``data/`` beside the package in a source checkout.
DATA_DIR = Path(__file__).resolve().parents[1] / "data"

WEIGHTS, MANIFEST, LOG = ".safetensors", ".manifest.json", ".log.jsonl"


def list_checkpoints(data_dir=None) -> list[str]:
    """Names of the checkpoints in ``data_dir`` (default :data:`DATA_DIR`) that have weights AND a manifest."""
    folder = Path(data_dir) if data_dir is not None else DATA_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(MANIFEST)] for p in folder.glob(f"*{MANIFEST}")
                  if (folder / (p.name[: -len(MANIFEST)] + WEIGHTS)).is_file())


def read_manifest(path) -> dict:
    """The manifest JSON; ValueError if it is not JSON or has no valid ``sha256``."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable manifest: {e}") from None
    sha = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(sha, str) or len(sha) != 64:
        raise ValueError(f"{path}: the manifest records no sha256 of the weights; refusing to load unverified weights")
    return manifest


def verify(weights_path, manifest: dict) -> Path:
    """ValueError unless ``weights_path``'s sha256 equals the manifest's."""
    weights_path = Path(weights_path)
    actual = file_sha256(weights_path)
    if actual != manifest["sha256"].lower():
        raise ValueError(f"{weights_path}: sha256 mismatch (manifest {manifest['sha256']}, file {actual}); "
                         "the file is corrupt or does not belong to this manifest")
    return weights_path


def _local(name: str, folder: Path) -> tuple[Path, dict]:
    manifest_path, weights_path = folder / f"{name}{MANIFEST}", folder / f"{name}{WEIGHTS}"
    if not manifest_path.is_file() or not weights_path.is_file():
        missing = [p.name for p in (weights_path, manifest_path) if not p.is_file()]
        raise FileNotFoundError(f"pretrained checkpoint {name!r}: {', '.join(missing)} missing in {folder} "
                                f"(available: {', '.join(list_checkpoints(folder)) or 'none'})")
    manifest = read_manifest(manifest_path)
    return verify(weights_path, manifest), manifest


def _downloaded(name: str, base_url: str, progress: bool) -> tuple[Path, dict]:
    folder = cache_dir() / "pretrained"
    base = base_url if base_url.endswith("/") else base_url + "/"
    manifest_path = folder / f"{name}{MANIFEST}"
    manifest_path.unlink(missing_ok=True)  # always the current manifest
    download(base + f"{name}{MANIFEST}", manifest_path, progress=False, validate=read_manifest)  # never cache a bad one
    manifest = read_manifest(manifest_path)
    weights = download(base + f"{name}{WEIGHTS}", folder / f"{name}{WEIGHTS}", sha256=manifest["sha256"],
                       progress=progress)
    return weights, manifest


def load_pretrained(name: str = "kanjivg", *, data_dir=None, base_url: str | None = None, map_location="cpu",
                    progress: bool = True):
    """``(model, hp, info)`` of the shipped checkpoint ``name``; the model is in eval mode.

    ``info`` is :func:`sketchlib.train.checkpoint.load`'s plus ``manifest`` and ``path``. Looks in
    ``data_dir`` (default :data:`DATA_DIR`); when that folder does not exist, downloads from
    ``base_url`` (default ``$SKETCHLIB_PRETRAINED_URL`` or :data:`BASE_URL`). The weights'
    sha256 is checked against the manifest before they are read.
    """
    folder = Path(data_dir) if data_dir is not None else DATA_DIR
    if folder.is_dir():
        path, manifest = _local(name, folder)
    else:
        path, manifest = _downloaded(name, base_url or os.environ.get(URL_ENV) or BASE_URL, progress)
    model, hp, info = checkpoint.load(path, map_location=map_location)
    info = {**info, "manifest": manifest, "path": str(path)}
    return model, hp, info
