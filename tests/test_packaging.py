"""The environment files agree: pyproject.toml (ranges), environment.yml (conda/Binder) and the exact CI pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def pyproject_requirements() -> list[Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def environment_requirements() -> list[Requirement]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [Requirement(r) for r in pip if not r.startswith("-e")]


def lock_versions() -> dict[str, Version]:
    out = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            out[canonicalize_name(m.group(1))] = Version(m.group(2))
    return out


def test_environment_yml_names_the_same_packages_as_pyproject():
    py = {canonicalize_name(r.name): str(r.specifier) for r in pyproject_requirements()}
    env = {canonicalize_name(r.name): str(r.specifier) for r in environment_requirements()}
    assert env == py


def test_lock_pins_every_requirement_within_its_range():
    lock = lock_versions()
    for req in pyproject_requirements():
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is not pinned in requirements-lock.txt"
        assert req.specifier.contains(lock[name], prereleases=True), f"lock pins {name}=={lock[name]}, outside {req}"


def test_torch_is_pinned_to_the_cpu_build_on_disk_and_ranged_for_colab():
    assert str(lock_versions()["torch"]) == "2.13.0"
    torch_req = next(r for r in pyproject_requirements() if r.name == "torch")
    assert "==" not in str(torch_req.specifier), "the library must not pin torch exactly (Colab ships its own)"


def test_publishing_workflow_builds_with_make_book_and_deploys_the_html():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "publish-book.yml").read_text())
    steps = wf["jobs"]["build"]["steps"]
    assert any(s.get("run") == "make book" for s in steps)
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert any(str(s.get("uses", "")).startswith("actions/deploy-pages") for s in wf["jobs"]["deploy"]["steps"])


def test_ci_entry_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert "make test" in ci


def test_the_cjk_font_is_a_core_dependency_so_every_install_path_gets_it():
    """make book (the lock), the Pages workflow (make book) and the Colab cell (pip install sketchlib[...])
    all install the core dependencies: the figures' CJK font must be one of them, and pinned."""
    core = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    assert "noto-cjk-sans-jp-regular" in {canonicalize_name(r.name) for r in core}
    assert "noto-cjk-sans-jp-regular" in lock_versions()
    assert "make book" in (ROOT / ".github" / "workflows" / "publish-book.yml").read_text()


def test_make_lab_starts_jupyterlab_with_allow_root_as_root():
    makefile = (ROOT / "Makefile").read_text()
    lab = makefile.split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert "jupyter lab" in lab and "--allow-root" in lab and "id -u" in lab
    assert "make lab" in (ROOT / "README.md").read_text()
