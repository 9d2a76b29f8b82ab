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
CHAPTER_ZH = ROOT / "zh" / "book" / "01_stroke5_data.ipynb"

# For the Chinese notebook the kernel also gets a stand-in for Colab's own module: the set-up cell takes
# its Colab branch, and the language comes where it comes from in Colab, the open notebook's metadata
# (the kernel runs in a folder that says nothing of the language).
_FAKE_COLAB = """
import json, sys, types
_nb = json.load(open({path!r}, encoding="utf-8"))
_message = types.ModuleType("google.colab._message")
_message.blocking_request = lambda kind, request="", timeout_sec=0: {{"ipynb": _nb}}
_output = types.ModuleType("google.colab.output")
_output.enable_custom_widget_manager = lambda: None
google = types.ModuleType("google"); colab = types.ModuleType("google.colab")
colab._message, colab.output, google.colab = _message, _output, colab
sys.modules.update({{"google": google, "google.colab": colab, "google.colab._message": _message,
                    "google.colab.output": _output}})
"""


def _site_packages(prefix: Path) -> Path:
    rel = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    return prefix / rel


@pytest.mark.parametrize("chapter", [CHAPTER, CHAPTER_ZH], ids=["en", "zh"])
def test_chapter_runs_in_a_fresh_venv_with_the_colab_install(tmp_path, monkeypatch, chapter):
    if not chapter.exists():
        pytest.fail(f"{chapter} is missing")
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

    zh = chapter == CHAPTER_ZH
    nb = nbformat.read(chapter, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sketchlib\nprint('SKETCHLIB_AT', sketchlib.__file__)"))
    if zh:
        nb.cells.insert(0, nbformat.v4.new_code_cell(_FAKE_COLAB.format(path=str(chapter))))
        nb.cells.append(nbformat.v4.new_code_cell("print('LANG_IS', LANG)"))
        # the chapter reads its data relative to nothing; run it where Colab would: a folder of its own
        workdir = tmp_path / "content"
        workdir.mkdir()
        monkeypatch.delenv("SKETCHBOOK_LANG", raising=False)
        monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
        samples = ROOT.parent / "shared" / "data" / "quickdraw_simplified_sample"
        if samples.is_dir():  # in Colab the chapter downloads these; here nothing may be downloaded
            monkeypatch.setenv("SKETCHLIB_QUICKDRAW_SAMPLES", str(samples))
    else:
        workdir = ROOT / "book"
    client = NotebookClient(nb, kernel_name="colab-test", timeout=900, resources={"metadata": {"path": str(workdir)}})
    client.execute()
    if zh:
        nb.cells.pop(0)
        outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        assert "LANG_IS zh" in outputs, "the Chinese notebook did not find its language in Colab's notebook metadata"
        assert "本章执行用时" in outputs, "printed lines were not translated in the Chinese notebook"
        n_png = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        assert n_png > 3, "the Chinese notebook drew no figures"

    first = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "error" not in first.lower(), first
    last = "".join(o.get("text", "") for o in nb.cells[-2 if zh else -1].outputs)
    assert "SKETCHLIB_AT" in last
    installed_at = Path(last.split("SKETCHLIB_AT", 1)[1].strip())
    assert env_dir in installed_at.parents, f"sketchlib came from {installed_at}, not from the Colab install"
