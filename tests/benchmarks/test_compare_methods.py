# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Smoke test of the one-command method comparison (benchmarks/compare_methods.py, issue 8) and of its package
(benchmarks/comparison/)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from monai_adaptiveclick.engines import NoCResult

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "compare_methods.py"


@pytest.fixture(scope="module")
def compare():
    """The command-line script loaded by path; loading it also makes the ``comparison`` package importable."""
    spec = importlib.util.spec_from_file_location("compare_methods", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare_methods"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def comparison(compare):
    """The modules of the ``comparison`` package, by name."""
    names = ("layout", "report", "statistics", "training")
    return SimpleNamespace(**{name: importlib.import_module(f"comparison.{name}") for name in names})


SMOKE = [
    "--methods",
    "afl",
    "watershed",
    "--preset",
    "tiny",
    "--image-size",
    "64",
    "--steps",
    "2",
    "--batch-size",
    "2",
    "--max-clicks",
    "2",
    "--max-eval-objects",
    "2",
    "--hard-cases",
    "1",
    "--no-progress",
]


def test_smoke_run_and_resume(compare, tmp_path, capsys):
    out = compare.run_comparison(["--output", str(tmp_path), *SMOKE])
    assert set(out["results"]) == {"afl", "watershed"}
    afl = out["results"]["afl"][0]
    assert afl.num_objects == 2 and afl.max_clicks == 2
    assert afl.settings["training"]["steps"] == 2  # the same budget of steps for every learned method
    assert out["results"]["watershed"][0].settings["training"] is None
    for name in ("comparison.md", "miou_vs_clicks.png", "results/afl_seed0.json", "results/watershed.json"):
        assert (tmp_path / name).is_file(), name
    assert len(out["hard_cases"]) == 1 and out["hard_cases"][0].is_file()
    model_dir = tmp_path / "models" / "afl_seed0"
    assert (model_dir / "model.pt").is_file() and not list(model_dir.glob("checkpoint_*.pt"))  # no --keep-checkpoints
    table = (tmp_path / "comparison.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "method" not in line]
    assert len(rows) == 2 and rows[0].startswith("| AdaptiveClick + AFL |")
    stored = json.loads((tmp_path / "results" / "afl_seed0.json").read_text())
    assert len(stored["records"]) == 2
    # the NoC in the table equals the mean of the stored per-object NoC90 computed here
    nocs = []
    for record in stored["records"]:
        reached = [k for k, iou in enumerate(record["ious"], start=1) if iou >= 0.9]
        nocs.append(min(reached[0], 2) if reached else 2)
    assert rows[0].split("|")[3].strip() == f"{np.mean(nocs):.2f}"

    capsys.readouterr()
    again = compare.run_comparison(["--output", str(tmp_path), *SMOKE])
    assert "loading" in capsys.readouterr().out  # resumed from the stored JSON, nothing re-trained
    assert again["results"]["afl"][0].records[0].ious == afl.records[0].ious

    (tmp_path / "results" / "afl_seed0.json").unlink()
    third = compare.run_comparison(["--output", str(tmp_path), *SMOKE])
    assert "loading the model trained earlier" in capsys.readouterr().out  # evaluated again, not re-trained
    assert third["results"]["afl"][0].records[0].ious == afl.records[0].ious
    assert third["results"]["afl"][0].settings["training"]["steps"] == 2


@pytest.mark.parametrize(
    "bad", [["--steps", "0"], ["--max-clicks", "-1"], ["--seeds", "1", "1"], ["--synthetic-share", "1.0"]]
)
def test_bad_overrides_raise(compare, tmp_path, bad):
    args = compare.build_parser().parse_args(["--output", str(tmp_path), *bad])
    with pytest.raises(ValueError):
        compare.resolve_budget(args)


def test_budgets_share_settings_across_methods(compare):
    quick = compare.BUDGETS["quick"]
    assert quick.max_clicks == 20 and not quick.zoom_in and not quick.flip and quick.seeds == (0,)
    learned = [spec for spec in compare.METHODS.values() if spec.learned]
    assert {spec.key for spec in learned} >= {"afl", "fl", "nfl", "bce", "mask_fixed_nfl", "deepgrow"}
    assert compare.METHODS["afl_ada_only"].loss_kwargs == {"agr": False}
    assert compare.METHODS["afl_agr_only"].loss_kwargs == {"ada": False}


def test_hard_case_ids_rank_by_noc90_then_iou(comparison):
    records = [
        SimpleNamespace(object_id="easy", ious=[0.95]),
        SimpleNamespace(object_id="hard_low", ious=[0.1, 0.2, 0.3]),
        SimpleNamespace(object_id="hard_high", ious=[0.5, 0.6, 0.8]),
    ]
    result = NoCResult("m", 3, (0.85, 0.9), records, 1.0)
    assert comparison.report.hard_case_ids(result, 2) == ["hard_low", "hard_high"]


def test_mean_sd_over_seeds(comparison):
    assert comparison.statistics.mean_sd([1.0, 3.0], 2) == "2.00 ± 1.41"  # sample sd (ddof=1)
    assert comparison.statistics.mean_sd([2.0, None, math.nan], 1) == "2.0"
    assert comparison.statistics.mean_sd([math.nan], 1) == "n/a"


def test_run_names(comparison):
    assert comparison.layout.run_name("afl", 2) == "afl_seed2"
    assert comparison.layout.run_name("watershed", None) == "watershed"


@pytest.mark.parametrize("key", ["afl_ada_only", "afl_agr_only", "deepgrow"])
def test_train_method_hands_the_budget_and_ablation_to_run_training(compare, comparison, monkeypatch, tmp_path, key):
    """Every learned method gets the same steps / batch / lr schedule; only head, loss, loss_kwargs, widths differ."""
    calls = []

    def fake_run_training(items, output_dir, settings, **kwargs):
        calls.append(dataclasses.asdict(settings))
        (output_dir / "checkpoint_epoch=1.pt").write_bytes(b"")
        return {"checkpoint": str(output_dir / "model.pt"), "iterations": settings.max_steps}

    monkeypatch.setattr(comparison.training, "run_training", fake_run_training)
    spec = compare.METHODS[key]
    args = compare.build_parser().parse_args(
        ["--output", str(tmp_path), "--budget", "full", "--synthetic-share", "0.25"]
    )
    budget = dataclasses.replace(compare.resolve_budget(args), steps=30)  # 10 items, batch 16: 1 step per epoch
    options = compare.RunOptions(pretrained_backbone="mae.pth")
    record = comparison.training.train_method(spec, budget, [{}] * 10, tmp_path, 3, options)
    (kwargs,) = calls
    assert (kwargs["head"], kwargs["loss"], kwargs["loss_kwargs"]) == (spec.head, spec.loss, dict(spec.loss_kwargs))
    assert (kwargs["max_steps"], kwargs["epochs"], kwargs["lr_milestones"], kwargs["seed"]) == (30, 30, [20], 3)
    assert (kwargs["batch_size"], kwargs["lr"], kwargs["preset"]) == (16, 5e-5, "vit_b_448")
    if key == "deepgrow":  # a U-Net with its own widths and no ViT backbone
        assert kwargs["model_overrides"] == {"image_size": 448, "features": (32, 64, 128, 256, 512, 32)}
        assert kwargs["pretrained_backbone"] is None and record["preset"] == "BasicUNet"
    else:
        assert kwargs["model_overrides"] == {"image_size": 448}
        assert kwargs["pretrained_backbone"] == "mae.pth" and record["preset"] == "vit_b_448"
    assert record["steps"] == 30 and record["loss_kwargs"] == dict(spec.loss_kwargs)
    assert kwargs["synthetic_share"] == record["synthetic_share"] == 0.25
    assert compare.BUDGETS["quick"].synthetic_share == 0.0  # the recipe's value unless --synthetic-share
    # the settings the budget does not fix come from its recipe over configs/train_defaults.json
    assert (
        kwargs["max_extra_clicks"]
        == json.loads((REPO / "configs" / "train_defaults.json").read_text())["max_extra_clicks"]
    )
    assert not list(tmp_path.glob("checkpoint_*.pt"))  # deleted without keep_checkpoints


def test_keep_checkpoints_and_missing_backbone(compare, tmp_path):
    compare.run_comparison(["--output", str(tmp_path), *SMOKE, "--methods", "afl", "--keep-checkpoints"])
    assert list((tmp_path / "models" / "afl_seed0").glob("checkpoint_*.pt"))
    with pytest.raises(FileNotFoundError, match="--pretrained-backbone"):
        compare.run_comparison(["--output", str(tmp_path), *SMOKE, "--pretrained-backbone", str(tmp_path / "no.pth")])


def test_any_registered_dataset_given_a_path(compare, tmp_path):
    """A dataset of the data issue (Berkeley layout here) runs through the same command; every 5th object evaluates."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    for i in range(5):
        disk = (yy - 20 - i) ** 2 + (xx - 24) ** 2 <= (8 + i) ** 2
        photo = (rng.normal(60, 8, (48, 48, 3)) + 120 * disk[..., None]).clip(0, 255).astype(np.uint8)
        (tmp_path / "data" / "images").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "masks").mkdir(exist_ok=True)
        Image.fromarray(photo).save(tmp_path / "data" / "images" / f"im{i}.png")
        Image.fromarray((disk * 255).astype(np.uint8)).save(tmp_path / "data" / "masks" / f"im{i}.png")
    out = compare.run_comparison(
        ["--output", str(tmp_path / "out"), "--dataset", "berkeley", "--dataset-dir", str(tmp_path / "data")]
        + ["--methods", "watershed", "--max-clicks", "3", "--hard-cases", "0", "--no-progress"]
    )
    result = out["results"]["watershed"][0]
    assert [record.object_id for record in result.records] == [result.records[0].object_id]  # 1 of 5 held out
    assert "im4" in result.records[0].object_id
    report = (tmp_path / "out" / "comparison.md").read_text()
    assert "berkeley at" in report and "4 training objects, 1 evaluation objects" in report


def test_parallel_jobs_give_the_same_results_as_one_job(tmp_path):
    """``--jobs 2`` (two spawned worker processes) reproduces the single-process numbers, in the same order."""
    common = [sys.executable, str(SCRIPT), *SMOKE, "--methods", "afl", "watershed", "--seeds", "0", "1"]
    for jobs, folder in ((1, "one"), (2, "two")):
        done = subprocess.run(
            [*common, "--jobs", str(jobs), "--output", str(tmp_path / folder)],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        assert done.returncode == 0, done.stderr[-2000:]
    for name in ("afl_seed0", "afl_seed1", "watershed"):
        one = json.loads((tmp_path / "one" / "results" / f"{name}.json").read_text())
        two = json.loads((tmp_path / "two" / "results" / f"{name}.json").read_text())
        assert [r["ious"] for r in one["records"]] == [r["ious"] for r in two["records"]], name
    assert "2 job(s) x 1 CPU thread(s)" in (tmp_path / "two" / "comparison.md").read_text()
