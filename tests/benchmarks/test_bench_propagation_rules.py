# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The stop-rule measurement script (issue 15 item 1): it runs on a small volume folder, its offline stop rule agrees
with ``segment_volume`` (checked inside the script) and its records give the 3-D Dice of a known case."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_adaptiveclick.networks import create_model, save_model

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_propagation_rules.py"


def test_runs_on_a_folder_and_prints_both_tables(tmp_path, load_benchmark):
    i, j, k = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in (32, 32, 12)), indexing="ij")
    truth = ((i - 16) / 9) ** 2 + ((j - 15) / 7) ** 2 + ((k - 6) / 4) ** 2 <= 1
    image = np.random.default_rng(0).normal(0.2, 0.05, truth.shape) + 0.6 * truth
    for sub, data in (("imagesTr", image.astype(np.float32)), ("labelsTr", truth.astype(np.uint8))):
        (tmp_path / sub).mkdir()
        nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / sub / "blob.nii.gz")
    model = save_model(create_model("tiny", in_channels=1), tmp_path / "tiny.pt")
    bench = load_benchmark("bench_propagation_rules")
    report = bench.main(["--checkpoint", str(model), "--dataset-dir", str(tmp_path), "--dev", "blob", "--margin", "2"])
    rows = [line for line in report.splitlines() if line.startswith("| blob:1 |")]
    assert [row.split("|")[2].strip() for row in rows] == list(bench.MODES)
    assert "dev 3-D Dice" in report
    with pytest.raises(ValueError, match="--margin"):
        bench.main(["--checkpoint", str(model), "--margin", "-1"])


def test_three_d_dice_and_cuts_from_the_records(load_benchmark):
    bench = load_benchmark("bench_propagation_rules")
    rows = [{"area": 10, "previous_area": 10, "overlap": 1.0, "inside": 1.0, "hit": 8}] * 2
    record = {"seed": (10, 10), "look": (1.0, 1.0), "sides": {-1: rows, 1: rows[:1]}}
    assert bench.dice_3d(record, 40, {-1: 2, 1: 1}) == pytest.approx(2 * (10 + 24) / (40 + 40))
    assert bench.cut_of(record, bench.DEFAULTS) == {-1: 2, 1: 1}
    far = dict(rows[0], inside=3.0)  # the mean inside moved by 2 > 0.5 x contrast 1: the appearance rule
    assert bench.stops(far, record["look"], bench.DEFAULTS) == "appearance"
    assert bench.stops(dict(rows[0], area=1), record["look"], bench.DEFAULTS) == "area"
    assert bench.stops(dict(rows[0], area=100), record["look"], bench.DEFAULTS) == "ratio"
    assert bench.stops(dict(rows[0], overlap=0.1), record["look"], bench.DEFAULTS) == "overlap"
