# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The layout the README describes: imports flow one way between the subpackages, and no module is oversized."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "monai_adaptiveclick"
# data -> transforms -> networks -> losses -> inference -> engines -> adapters (cli); protocol is below everything
LAYERS = ["protocol", "data", "transforms", "networks", "losses", "inference", "engines", "cli"]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "monai_adaptiveclick" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def _imports(path: Path) -> set[str]:
    """Absolute names of the package modules ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    own = _layer(".".join(path.relative_to(ROOT).with_suffix("").parts))
    if own is None:
        return
    upstream = [name for name in _imports(path) if (layer := _layer(name)) and LAYERS.index(layer) > LAYERS.index(own)]
    assert not upstream, f"{own} must not import the later layers {upstream}"


def test_no_module_is_oversized():
    sizes = {
        p: len(p.read_text(encoding="utf-8").splitlines())
        for p in [*PACKAGE.rglob("*.py"), *(ROOT / "apps").rglob("*.py")]
    }
    assert not {str(p.relative_to(ROOT)): n for p, n in sizes.items() if n > 420}
