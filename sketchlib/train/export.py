"""Export a run: its best checkpoint's weights, a manifest saying what they are, and the log.

The manifest records the command, config, steps, wall time, hardware, commit, which checkpoint was
shipped and why, the final train and valid losses (from the log), the file's sha256 and the loss
on the first ``test_sketches`` held-out test sketches that ``tests/test_pretrained.py`` re-checks.
The test data is reloaded by the dataset identity the run recorded (a file's path and sha256, or a
registered name), so a run trained on a local file is evaluated on that file.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sketchlib.data import SketchData
from sketchlib.data.fileio import atomic_write
from sketchlib.nn.loss import LOSS_KEYS
from sketchlib.train import checkpoint
from sketchlib.train.logs import git_commit, read_log
from sketchlib.train.loop import evaluate
from sketchlib.train.run import BEST, LAST, LOG

#: How many test sketches (the first ones, in order) the manifest's held-out evaluation uses.
EXPORT_TEST_SKETCHES = 300


def dataset_identity(spec: str, limit: int | None = None) -> dict:
    """What :func:`reload_dataset` needs to load exactly this data again: files by absolute path and sha256."""
    from sketchlib.data.download import file_sha256

    parts, files = [], {}
    for part in str(spec).split(","):
        path = Path(part.strip()).expanduser()
        if path.is_file():
            part = str(path.resolve())
            files[part] = file_sha256(path)
        parts.append(part.strip())
    return {"spec": ",".join(parts), "limit": limit, "sha256": files}


def reload_dataset(identity: dict | None, hp) -> SketchData:
    """The run's dataset from its recorded identity (files checked by sha256), else by ``hp.extra['dataset']``."""
    from sketchlib.data import load_dataset
    from sketchlib.data.download import file_sha256

    if not identity:  # a run from before identities were recorded: its registered name
        return load_dataset(hp.extra.get("dataset", "kanjivg"), max_seq_len=hp.max_seq_len, progress=False)
    for path, sha in identity.get("sha256", {}).items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"the run was trained on {path}, which is gone; pass data= to export")
        if file_sha256(path) != sha:
            raise ValueError(f"the run was trained on {path} with sha256 {sha[:12]}..., the file has changed since")
    return load_dataset(identity["spec"], max_seq_len=hp.max_seq_len, limit=identity.get("limit"), progress=False)


def _choose(run_dir: Path, which: str | None) -> tuple[str, str]:
    """The checkpoint file to ship and why: ``which`` as given, else best.safetensors if the run has one."""
    if which is not None:
        return which, "chosen by the exporter"
    if (run_dir / BEST).is_file():
        return BEST, "lowest validation loss of the run"
    return LAST, "the run has no validated checkpoint (no best.safetensors): the last one"


def export(run_dir, name: str, dest="data", *, which: str | None = None, data: SketchData | None = None,
           test_sketches: int = EXPORT_TEST_SKETCHES, dtype: str = "float32") -> Path:
    """Copy a run into ``dest`` as ``<name>.safetensors`` (weights only) + ``.manifest.json`` + ``.log.jsonl``.

    ``which`` (default: ``best.safetensors`` when the run has one, else ``last.safetensors``) picks
    the checkpoint; the manifest's ``checkpoint`` says which, its step and why. ``data`` overrides
    the dataset the run recorded. ``dtype="float16"`` stores the weights in half precision; the
    manifest's losses are those of the rounded weights.
    """
    from sketchlib.data.download import file_sha256

    run_dir, dest = Path(run_dir), Path(dest)
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    which, reason = _choose(run_dir, which)
    model, hp, info = checkpoint.load(run_dir / which)
    if dtype == "float16":  # evaluate what the file will hold
        model.half().float()
    run_info = info["extra"].get("run_info", {})
    data = data if data is not None else reload_dataset(run_info.get("dataset"), hp)
    if abs(data.scale - hp.extra.get("scale", data.scale)) > 1e-4 * data.scale:
        raise ValueError(f"dataset scale {data.scale} differs from the run's {hp.extra.get('scale')}")
    # only what led to this checkpoint (a run still going has logged further)
    records = [r for r in read_log(run_dir / LOG) if r.get("step", 0) <= info["step"]]
    train_recs = [r for r in records if r.get("split") == "train"]
    valid_recs = [r for r in records if r.get("split") == "valid"]
    test = evaluate(model, data.test, hp, max_sketches=test_sketches, seed=0)
    dest.mkdir(parents=True, exist_ok=True)
    weights_path = dest / f"{name}.safetensors"
    checkpoint.save(weights_path, model.half() if dtype == "float16" else model, hp, step=info["step"],
                    metrics=info["metrics"], extra={"wall_time_s": info["extra"].get("wall_time_s"),
                                                    "run_info": run_info})
    model.float()
    atomic_write(dest / f"{name}.log.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    chosen_valid = next((r for r in valid_recs if r["step"] == info["step"]), None)
    manifest = {
        "name": name, "file": weights_path.name, "sha256": file_sha256(weights_path), "weights_dtype": dtype,
        "log": f"{name}.log.jsonl", "log_sha256": file_sha256(dest / f"{name}.log.jsonl"),
        "command": run_info.get("command"), "config": hp.to_dict(),
        "dataset": hp.extra.get("dataset"), "dataset_identity": run_info.get("dataset"), "scale": hp.extra.get("scale"),
        "steps": info["step"],
        "checkpoint": {"file": which, "step": info["step"], "reason": reason,
                       "valid_loss": chosen_valid["loss"] if chosen_valid else None,
                       "last_step_of_run": max((r["step"] for r in read_log(run_dir / LOG)), default=None)},
        "wall_time_s": info["extra"].get("wall_time_s"), "hardware": run_info.get("hardware"),
        "commit": run_info.get("commit"),  # when training started
        "commit_at_export": git_commit(), "seed": run_info.get("seed"),
        "final_train": train_recs[-1] if train_recs else None,
        "final_valid": valid_recs[-1] if valid_recs else None,
        "test_eval": {"sketches": test["n"], "first_n_of_test_split": test_sketches, "seed": 0,
                      "kl_weight": hp.kl_weight, **{k: test[k] for k in LOSS_KEYS}},
        "exported_from": str(run_dir / which), "torch": torch.__version__,
    }
    atomic_write(dest / f"{name}.manifest.json", json.dumps(manifest, indent=2) + "\n")
    return weights_path
