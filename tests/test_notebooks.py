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


@pytest.mark.parametrize("path", CHAPTERS + [ROOT / "book" / "benchmarks.ipynb"], ids=lambda p: p.stem)
def test_links_are_plain_markdown_that_jupyterlab_renders_too(path):
    """MyST's {doc} role shows as raw text in JupyterLab; a Markdown link to the .ipynb works in both."""
    import re

    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            assert "{doc}" not in cell.source, f"{path.name} cell {i}: use [text](chapter.ipynb), not {{doc}}"
            for target in re.findall(r"\]\(([^)#\s]+\.(?:ipynb|md))\)", cell.source):
                assert (path.parent / target).exists(), f"{path.name} cell {i}: link to a missing {target}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_figures_title_characters_not_code_points(path):
    """The figures have a CJK font (sketchlib.render.use_cjk_font): no title may fall back to U+XXXX."""
    import re

    code = "\n".join(c.source for c in nb_cells(path) if c.cell_type == "code")
    assert not re.search(r"U\+\{ord\(", code), f"{path.name} formats a character as a code point"


def nb_cells(path):
    return nbformat.read(path, as_version=4).cells


def test_chapter_8_gpu_training_fits_the_cell_timeout():
    """The book builds unchanged on a GPU: chapter 8's default GPU budget, plus room to compile,
    validate and draw, must fit the per-cell timeout of _config.yml."""
    import re

    timeout = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"]
    cells = nb_cells(ROOT / "book" / "08_training.ipynb")
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    budget = int(re.search(r"^GPU_BUDGET_S = (\d+)", code, flags=re.M).group(1))
    assert re.search(r'SKETCHLIB_TRAIN_BUDGET", GPU_BUDGET_S if on_gpu', code), "the GPU default must be GPU_BUDGET_S"
    margin = 240  # compile and capture (up to ~15 s measured), validation, the final checkpoint, slack
    assert budget + margin <= timeout, f"GPU budget {budget} s + {margin} s margin > cell timeout {timeout} s"
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert f"`GPU_BUDGET_S` = {budget} ({budget // 60} minutes)" in prose, "the text must quote the budget"


# Numbers the prose quotes from cell outputs, each guarded by an assertion in a code cell of the same
# chapter (or produced by the code itself), so that a new checkpoint updates the text or fails the build.
GUARDED = {
    "02_encoder": ["assert chars[b] == \"猫\" and n == 35", "assert len(sketch) == 35"],
    "03_reparameterization": ["assert L_KL_test > hp_best.kl_tolerance", "assert w_now < 0.5 * hp_best.kl_weight",
                              "assert sigma_c.max() / sigma_c.min() > 3",
                              "assert g_score_b.var(0).mean() > 10 * g_path.var(0).mean()"],
    "04_lstm_gates": ["assert f0[\"mean\"] > 0", "assert f1[\"mean\"] < 0", "assert r_u[\"mean\"] < 0",
                      "assert (r_drawn[\"mean\"] > 0) if lag == 0 else (r_drawn[\"mean\"] < 0)"],
    "05_hyperlstm": ["assert all(r == [\"hyper\", \"layer_norm\", \"lstm\"] for r in ranks)",
                     "{v['hyper']['L_R']:.2f}", "rate = man[\"steps\"] / man[\"wall_time_s\"]"],
    "08_training": ["{lstm_m['steps']:,}", "{hyper_m['steps']:,}", "{hyper_m['wall_time_s'] / 60:.1f}"],
}


@pytest.mark.parametrize("stem", sorted(GUARDED))
def test_numbers_in_the_prose_are_computed_or_asserted(stem):
    code = "\n".join(c.source for c in nb_cells(ROOT / "book" / f"{stem}.ipynb") if c.cell_type == "code")
    missing = [g for g in GUARDED[stem] if g not in code]
    assert not missing, f"{stem}: the guards of the prose's numbers are gone: {missing}"


def test_hand_typed_model_numbers_are_gone_from_the_prose():
    """Numbers that used to be typed from one checkpoint's outputs must not come back as plain prose."""
    stale = {"05_hyperlstm": ["0.25 after 500 steps", "about 20 updates a second"],
             "08_training": ["was trained much longer", "the book's configuration (LSTM 512"],
             "04_lstm_gates": ["0.05–0.4"], "03_reparameterization": ["where the KL term exerts no pull"]}
    for stem, phrases in stale.items():
        prose = "\n".join(c.source for c in nb_cells(ROOT / "book" / f"{stem}.ipynb") if c.cell_type == "markdown")
        for phrase in phrases:
            assert phrase not in prose, f"{stem}: {phrase!r}"
