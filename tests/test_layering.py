"""The package's layers, read from the source (AST): the teaching code never imports the fast code,
and the data layer imports nothing from the network, training, sampling, rendering or book layers."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "sketchlib"


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement in ``path`` names (relative ones resolved)."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from sketchlib import fast`
    return names


def offending(subpackage: str, forbidden: tuple[str, ...], root: Path = ROOT) -> dict[str, list[str]]:
    """{file: forbidden modules it imports} for every module under ``root/subpackage``."""
    found = {}
    for path in sorted((root / subpackage).rglob("*.py")):
        bad = sorted(m for m in imported_modules(path, root)
                     if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            found[str(path.relative_to(root.parent))] = bad
    return found


def test_teaching_code_never_imports_the_fast_code():
    assert offending("nn", ("sketchlib.fast",)) == {}


def test_data_layer_imports_no_higher_layer():
    higher = tuple(f"sketchlib.{m}" for m in ("nn", "train", "sample", "render", "book", "fast"))
    assert offending("data", higher) == {}


@pytest.mark.parametrize("source, expected", [
    ("from sketchlib.fast.bptt import RecurrentWeight", "sketchlib.fast.bptt"),
    ("from sketchlib import fast", "sketchlib.fast"),
    ("import sketchlib.fast.fusion as f", "sketchlib.fast.fusion"),
    ("from ..fast import native", "sketchlib.fast"),
])
def test_the_check_sees_every_form_of_import(tmp_path, source, expected):
    """The walker catches each way of writing the forbidden import (so the tests above can fail)."""
    fake = tmp_path / "sketchlib" / "nn"
    fake.mkdir(parents=True)
    (fake / "cell.py").write_text(source + "\n")
    assert expected in offending("nn", ("sketchlib.fast",), root=tmp_path / "sketchlib")["sketchlib/nn/cell.py"]
