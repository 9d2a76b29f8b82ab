"""The public API: what ``sketchlib/__init__`` names, the README's example and commands as written,
and the import paths of the first edition (they fail with a message naming the new path)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import sketchlib
from sketchlib.train.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_public_api_names_resolve_lazily():
    for name in ("load_dataset", "SketchRNN", "HParams", "sample", "reconstruct", "load_pretrained", "render"):
        assert getattr(sketchlib, name) is not None, name
    assert callable(sketchlib.load_dataset) and callable(sketchlib.sample.sample)


def test_import_sketchlib_stays_cheap():
    """``import sketchlib`` imports neither torch nor matplotlib (a headless job, a quick --help)."""
    code = "import sys, sketchlib; print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("old, new", [("model", "sketchlib.nn.model"), ("strokes", "sketchlib.data.strokes"),
                                      ("widgets", "sketchlib.book.widgets"), ("fusion", "sketchlib.fast.fusion"),
                                      ("checkpoint", "sketchlib.train.checkpoint")])
def test_old_import_paths_name_the_new_one(old, new):
    with pytest.raises(ImportError, match=re.escape(new)):
        exec(f"from sketchlib import {old}", {})
    with pytest.raises(ImportError, match=re.escape(new)):
        exec(f"import sketchlib.{old}", {})


def test_readme_library_example_runs_as_written(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    block = README.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert len(scope["sketches"]) == 8 and len(scope["codes_drawn"]) == 4


def test_readme_training_commands_parse():
    commands = [line.split("#")[0].strip() for line in README.splitlines()
                if line.startswith(".venv/bin/python -m sketchlib.train")]
    assert len(commands) >= 3
    for line in commands:
        args = shlex.split(line)[3:]  # after ".venv/bin/python -m sketchlib.train"
        ns = build_parser().parse_args(args)
        assert ns.out and ns.steps > 0


def test_both_entry_points_start():
    """``python -m sketchlib.train`` and the ``sketchlib-train`` script's target both answer --help."""
    out = subprocess.run([sys.executable, "-m", "sketchlib.train", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "--dataset" in out.stdout
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["sketchlib-train"]
    module, func = target.split(":")
    code = f"import sys; from {module} import {func} as main; sys.argv = ['sketchlib-train', '--help']; main()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "--dataset" in out.stdout


def test_readme_held_out_figures_are_the_manifests():
    """The README's caption gives each shipped model's held-out L_R: it must be the manifest's, rounded."""
    import json

    for name in ("kanjivg", "kanjivg_hyper"):
        manifest = json.loads((ROOT / "data" / f"{name}.manifest.json").read_text())
        l_r = manifest["test_eval"]["L_R"]
        shown = "held-out L_R " + f"{l_r:.2f}".replace("-", "\u2212")
        assert shown in README, f"README should say {shown!r} for data/{name}.safetensors"
