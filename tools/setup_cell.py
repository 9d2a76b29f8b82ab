"""The first cell of every chapter, generated from _config.yml so the repository URL lives in one place.

    python tools/setup_cell.py            # rewrite the first cell of every chapter in book/
    python tools/setup_cell.py --check    # exit 1 if a chapter's first cell differs (tests use this too)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def setup_source() -> str:
    url = repository_url()
    return (
        "# Set-up. In Colab this installs sketchlib from the book's repository; anywhere else\n"
        "# (JupyterLab after `make book`, the website build) sketchlib is already installed.\n"
        "import os, sys\n"
        "\n"
        'if "google.colab" in sys.modules or os.environ.get("SKETCHLIB_COLAB_TEST") == "1":\n'
        f'    SOURCE = os.environ.get("SKETCHLIB_SOURCE", "git+{url}")\n'
        '    %pip install -q "sketchlib[widgets] @ {SOURCE}"\n'
        '    if "google.colab" in sys.modules:\n'
        "        from google.colab import output\n"
        "\n"
        "        output.enable_custom_widget_manager()  # for the drawing canvas (ipycanvas)\n"
        "\n"
        "from sketchlib.book import edition\n"
        "\n"
        'LANG = edition.setup()  # "en" or "zh": figures and printed lines follow the edition (中文版 under zh/)'
    )


def chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def main(argv: list[str]) -> int:
    check = "--check" in argv
    wrong = []
    for path in chapters():
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0] if nb.cells else None
        ok = first is not None and first.cell_type == "code" and first.source == setup_source()
        if ok:
            continue
        wrong.append(path.name)
        if not check:
            cell = nbformat.v4.new_code_cell(setup_source(), metadata={"tags": ["hide-cell"]})
            if first is not None and first.cell_type == "code" and "SKETCHLIB_COLAB_TEST" in first.source:
                nb.cells[0] = cell
            else:
                nb.cells.insert(0, cell)
            nbformat.write(nb, path)
    if check and wrong:
        print("first cell is not the set-up cell in: " + ", ".join(wrong))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
