# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Smoke test of the speed benchmark scripts (benchmarks/, issue 8): they run and their tables are consistent."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_click_latency_times_every_method_with_and_without_tta():
    bench = _load("bench_click_latency")
    table = bench.main(["--presets", "tiny", "--deepgrow-sizes", "32", "--objects", "1", "--max-clicks", "1"])
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ") and "method" not in line]
    names = [(row[0].strip(), row[1].strip()) for row in rows]
    expected = ["tiny", "tiny/mask_fixed", "deepgrow@32", "random_walker", "watershed"]
    assert names == [(name, tta) for name in expected for tta in ("none", "zoom-in + flip")]
    assert all(float(row[2]) >= 0 and int(row[4]) == 1 for row in rows)  # one object, one click each
    assert [row[3].strip() for row in rows[:2]] == ["1.00", "1.00"]  # the reference preset's ratio to itself


def test_click_latency_rejects_bad_arguments():
    with pytest.raises(ValueError, match="must be >= 1"):
        _load("bench_click_latency").main(["--objects", "0"])
