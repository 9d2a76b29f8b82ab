"""Static checks of the chapters: committed clean, set up for Colab, listed in the table of contents."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import setup_cell  # noqa: E402

CHAPTERS = setup_cell.chapters()


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [c["file"] for c in part["chapters"]]
    return files


def test_every_chapter_is_in_the_toc_and_every_toc_entry_exists():
    listed = toc_files()
    for nb in CHAPTERS:
        assert f"book/{nb.stem}" in listed, f"{nb.name} is not in _toc.yml"
    for entry in listed:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".ipynb", ".md")), f"{entry} in _toc.yml has no file"
    assert len(CHAPTERS) == 9


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_starts_with_the_colab_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].source == setup_cell.setup_source()
    assert setup_cell.repository_url() in nb.cells[0].source


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_imports_sketchlib_and_ends_with_exercises(path):
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "sketchlib" in code
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert markdown[-1].lstrip().startswith("## Exercises"), f"{path.name} must end with an Exercises section"


def test_the_extra_the_colab_cell_installs_exists():
    import re
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = re.search(r"sketchlib\[(\w+)\]", setup_cell.setup_source()).group(1)
    assert wanted in extras
    assert any(r.startswith("ipycanvas") for r in extras[wanted]), "the drawing canvas needs ipycanvas in Colab"
