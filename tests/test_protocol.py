# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The protocol constants are the only place their values are written (no 0.49 / radius literal elsewhere)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from monai_adaptiveclick.protocol import CLICK_RADIUS, GUIDANCE_CHANNEL_ORDER, PROB_THRESHOLD, is_foreground

PACKAGE = Path(__file__).resolve().parents[1] / "monai_adaptiveclick"
APP = Path(__file__).resolve().parents[1] / "apps"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_values_of_the_paper_protocol():
    assert PROB_THRESHOLD == 0.49 and CLICK_RADIUS == 5
    assert GUIDANCE_CHANNEL_ORDER == ("prev_mask", "positive_clicks", "negative_clicks")
    assert is_foreground(np.array([0.49, 0.4901])).tolist() == [False, True]


def _literals(path: Path) -> list[str]:
    """``0.49`` number literals and ``radius=5`` defaults in the code of ``path`` (docstrings and comments aside)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and node.value == 0.49 and not isinstance(node.value, bool):
            found.append(f"{path.name}:{node.lineno}: 0.49")
        if isinstance(node, ast.arguments):
            names = [a.arg for a in node.args + node.kwonlyargs]
            defaults = [None] * (len(node.args) - len(node.defaults)) + list(node.defaults) + list(node.kw_defaults)
            for name, default in zip(names, defaults, strict=True):
                if name == "radius" and isinstance(default, ast.Constant):
                    found.append(f"{path.name}:{default.lineno}: radius={default.value}")
    return found


def test_no_module_writes_the_threshold_or_radius_itself():
    offenders = [
        hit
        for path in [*PACKAGE.rglob("*.py"), *APP.rglob("*.py"), *BENCHMARKS.rglob("*.py")]
        if path.name != "protocol.py"
        for hit in _literals(path)
    ]
    assert not offenders, offenders
