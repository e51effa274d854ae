# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The README's two commands are real: CI runs the README's test command, and both Makefile targets exist; the
shipped models are package data."""

from __future__ import annotations

import fnmatch
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    """The commands of the README's first fenced code block (comments stripped)."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert block is not None, "README.md has no ```bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def _make_recipe(target: str) -> list[str]:
    """The recipe lines of a Makefile target."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_readme_opens_with_exactly_demo_and_test():
    assert _readme_commands() == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    ci_commands = [
        line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]
    assert _readme_commands()[1] in ci_commands


def test_make_targets_install_then_run():
    assert "venv" in (REPO / "Makefile").read_text().split("test:")[1].splitlines()[0]
    assert any("pytest" in line for line in _make_recipe("test"))
    assert any("monai_adaptiveclick demo" in line for line in _make_recipe("demo"))
    venv_recipe = " ".join(_make_recipe("$(STAMP)"))
    assert "torch==2.14.1" in venv_recipe and "torchvision==0.29.1" in venv_recipe
    assert "-r requirements-label.txt" in venv_recipe


def test_the_shipped_models_are_package_data():
    """Needs the shipped ``starter``: every file of ``monai_adaptiveclick/pretrained/`` is matched by pyproject's
    package-data (so a wheel carries it), and ``safetensors`` (their format) is a dependency."""
    toml = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    project = toml.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["monai_adaptiveclick"]
    package = REPO / "monai_adaptiveclick"
    shipped = {p.relative_to(package).as_posix() for p in (package / "pretrained").iterdir() if p.name[0] != "."}
    assert {"pretrained/starter.safetensors", "pretrained/starter.json"} <= shipped
    assert [name for name in shipped if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)] == []
    assert any(re.match(r"safetensors\b", dependency) for dependency in project["project"]["dependencies"])
