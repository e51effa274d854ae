# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Smoke test of the speed benchmark scripts (benchmarks/, issue 8): they run and their tables are consistent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_click_latency_times_every_method_with_and_without_tta(load_benchmark):
    bench = load_benchmark("bench_click_latency")
    table = bench.main(["--presets", "tiny", "--deepgrow-sizes", "32", "--objects", "1", "--max-clicks", "1"])
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ") and "method" not in line]
    names = [(row[0].strip(), row[1].strip()) for row in rows]
    expected = ["starter (shipped)", "tiny", "tiny/mask_fixed", "deepgrow@32", "random_walker", "watershed"]
    assert names == [(name, tta) for name in expected for tta in ("none", "zoom-in + flip")]
    assert all(float(row[2]) >= 0 and int(row[4]) == 1 for row in rows)  # one object, one click each
    assert [row[3].strip() for row in rows[2:4]] == ["1.00", "1.00"]  # the reference preset's ratio to itself


def test_click_latency_rejects_bad_arguments(load_benchmark):
    with pytest.raises(ValueError, match="must be >= 1"):
        load_benchmark("bench_click_latency").main(["--objects", "0"])


def test_starter_benchmark_splits_results_by_source(load_benchmark):
    from monai_adaptiveclick.engines.noc_results import NoCResult, ObjectRecord

    bench = load_benchmark("bench_starter")
    records = [ObjectRecord(f"o{i}", [0.5, 0.9], [(1, 1, True)] * 2, 0.1 * (i + 1)) for i in range(3)]
    result = NoCResult("m", 20, (0.85, 0.9), records, 1.0)
    groups = bench.split_by_source(result, {"o0": "tissue", "o1": "photo", "o2": "tissue"})
    assert {name: [r.object_id for r in group.records] for name, group in groups.items()} == {
        "tissue": ["o0", "o2"],
        "photo": ["o1"],
    }
    assert groups["tissue"].noc[0.85] == 2.0 and groups["tissue"].method == "m"
    assert groups["tissue"].spc == pytest.approx((0.1 + 0.3) / 4) and groups["photo"].spc == pytest.approx(0.2 / 2)


def test_ship_starter_writes_weights_and_a_card_with_the_run_facts(tmp_path):
    import json

    from monai_adaptiveclick.engines import TrainingSettings, run_training
    from monai_adaptiveclick.networks import load_pretrained

    spec = importlib.util.spec_from_file_location("ship_starter", BENCHMARKS.parent / "scripts" / "ship_starter.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    items = [
        {
            "image": np.random.default_rng(0).random((3, 32, 32), dtype=np.float32),
            "label": np.zeros((1, 32, 32), "uint8"),
        }
    ]
    items[0]["label"][0, 8:20, 8:20] = 1
    settings = TrainingSettings.from_recipe(preset="tiny", val_max_items=0, max_steps=2, epochs=5, batch_size=1)
    run_training(items, tmp_path / "run", settings, progress=False)
    figures = tmp_path / "summary.json"
    figures.write_text(json.dumps({"starter": {"noc": {"0.85": 3.0}}}))
    card = ship.main([str(tmp_path / "run"), "--figures", str(figures), "--folder", str(tmp_path / "out")])
    assert card["steps"]["total_iterations"] == 2 and card["figures"]["results"]["starter"]["noc"]["0.85"] == 3.0
    assert card["dtype"] == "float16" and "BSD-3-Clause" in card["licence"]
    model = load_pretrained("starter", folder=tmp_path / "out")
    assert model.image_size == 64 and card["architecture"]["embed_dim"] == model.config["embed_dim"]
