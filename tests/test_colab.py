"""A chapter runs top to bottom in a NEW virtual environment, with the Colab path of its first cell taken.

The new environment sees the test environment's third-party packages (torch, numpy, ...) through
a filtered directory of links that leaves sketchlib out, so the only sketchlib it can import is the
one the chapter's first cell installs with `%pip install "sketchlib[widgets] @ <repository>"`.
SKETCHLIB_SOURCE points that install at this checkout instead of GitHub (no network here).
"""

from __future__ import annotations

import subprocess
import sysconfig
import venv
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

pytestmark = pytest.mark.book
CHAPTER = ROOT / "book" / "01_stroke5_data.ipynb"


def _site_packages(prefix: Path) -> Path:
    rel = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    return prefix / rel


def test_chapter_runs_in_a_fresh_venv_with_the_colab_install(tmp_path, monkeypatch):
    if not CHAPTER.exists():
        pytest.fail(f"{CHAPTER.name} is missing")
    from nbclient import NotebookClient

    env_dir = tmp_path / "colab-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"

    # Third-party packages of this environment, without sketchlib.
    view = tmp_path / "deps"
    view.mkdir()
    here = Path(sysconfig.get_path("purelib"))
    for entry in here.iterdir():
        name = entry.name.lower()
        if name.startswith(("sketchlib", "__editable__", "_sketchlib")) or name.endswith(".pth"):
            continue
        (view / entry.name).symlink_to(entry)
    (_site_packages(env_dir) / "colab_deps.pth").write_text(str(view) + "\n")

    subprocess.run([str(py), "-m", "ipykernel", "install", "--prefix", str(env_dir), "--name", "colab-test"],
                   check=True, capture_output=True)
    probe = subprocess.run([str(py), "-c", "import sketchlib"], capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode != 0, "the fresh venv must not see sketchlib before the Colab cell installs it"

    monkeypatch.setenv("JUPYTER_PATH", str(env_dir / "share" / "jupyter"))
    monkeypatch.setenv("SKETCHLIB_COLAB_TEST", "1")
    monkeypatch.setenv("SKETCHLIB_SOURCE", ROOT.as_uri())

    nb = nbformat.read(CHAPTER, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sketchlib\nprint('SKETCHLIB_AT', sketchlib.__file__)"))
    client = NotebookClient(nb, kernel_name="colab-test", timeout=900, resources={"metadata": {"path": str(ROOT / "book")}})
    client.execute()

    first = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "error" not in first.lower(), first
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "SKETCHLIB_AT" in last
    installed_at = Path(last.split("SKETCHLIB_AT", 1)[1].strip())
    assert env_dir in installed_at.parents, f"sketchlib came from {installed_at}, not from the Colab install"
