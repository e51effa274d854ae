# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The MONAI bundle (issue 6): metadata validated offline, training / resume / evaluation through the bundle CLI,
inference config components and TorchScript export equal to eager."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundle"
SCHEMA = BUNDLE / "configs" / "schema" / "meta_schema_20240725.json"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
TINY = ["--preset", "tiny", "--batch_size", "2", "--val_max_items", "1", "--val_max_clicks", "2"]


def bundle_cli(*args: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory, write_png_dataset, copy_bundle):
    """A copy of the bundle trained for one epoch on a handful of tiny images via the model-zoo CLI form."""
    work = tmp_path_factory.mktemp("bundle")
    copy_bundle(work / "bundle")
    data = write_png_dataset(work / "data")
    data_args = ["--dataset", "brats_png", "--dataset_dir", str(data), "--val_dataset", "brats_png"]
    data_args += ["--val_dataset_dir", str(data)]
    proc = bundle_cli(
        "run",
        "training",
        "--meta_file",
        "bundle/configs/metadata.json",
        "--config_file",
        "bundle/configs/train.json",
        "--logging_file",
        "bundle/configs/logging.conf",
        "--epochs",
        "1",
        *TINY,
        *data_args,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work, data_args, proc


def test_metadata_verifies_offline_against_repo_schema(tmp_path):
    proc = bundle_cli(
        "verify_metadata",
        "--meta_file",
        str(BUNDLE / "configs" / "metadata.json"),
        "--filepath",
        str(SCHEMA),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "metadata is verified with no error" in proc.stdout + proc.stderr
    assert "skipped downloading" in proc.stdout + proc.stderr
    # the local schema really checks: a metadata without a required key fails
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    del meta["network_data_format"]
    bad = tmp_path / "bad_metadata.json"
    bad.write_text(json.dumps(meta))
    proc = bundle_cli("verify_metadata", "--meta_file", str(bad), "--filepath", str(SCHEMA), cwd=tmp_path)
    assert proc.returncode != 0
    assert "network_data_format" in proc.stdout + proc.stderr


def test_one_epoch_through_bundle_cli(trained_bundle):
    work, _, proc = trained_bundle
    models = work / "bundle" / "models"
    assert (models / "checkpoint_epoch=1.pt").is_file()
    state = torch.load(models / "checkpoint_epoch=1.pt", map_location="cpu", weights_only=True)
    assert state["trainer"]["iteration"] == 2  # 4 images, batch 2, one epoch
    assert set(state) >= {"model", "optimizer", "lr_scheduler", "trainer", "model_config"}
    from monai_adaptiveclick.networks import load_model

    model = load_model(models / "model.pt")
    assert model.image_size == 64
    assert any((work / "bundle" / "runs" / "tensorboard").iterdir())
    assert "noc85" in proc.stdout + proc.stderr  # validation ran and was logged


def test_resume_and_epochs_override_through_run_form(trained_bundle):
    work, data_args, _ = trained_bundle
    proc = bundle_cli(
        "run",
        "--config_file",
        "bundle/configs/train.json",
        "--epochs",
        "2",
        "--resume",
        "true",
        *TINY,
        *data_args,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Restored all variables" in proc.stdout + proc.stderr
    state = torch.load(work / "bundle" / "models" / "checkpoint_epoch=2.pt", map_location="cpu", weights_only=True)
    assert state["trainer"]["iteration"] == 4  # continued from iteration 2, not restarted
    assert state["lr_scheduler"]["last_epoch"] == 2


def test_bad_dataset_dir_fails_before_training(tmp_path, copy_bundle):
    copy_bundle(tmp_path / "bundle")
    (tmp_path / "bundle" / "models" / "checkpoint_epoch=3.pt").write_bytes(b"not a checkpoint of this run")
    proc = bundle_cli(
        "run",
        "--config_file",
        "bundle/configs/train.json",
        "--dataset",
        "brats_png",
        "--dataset_dir",
        str(tmp_path / "missing"),
        *TINY,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr
    assert [p.name for p in (tmp_path / "bundle" / "models").glob("checkpoint_*.pt")] == ["checkpoint_epoch=3.pt"]


def test_evaluate_config_prints_and_saves_noc(trained_bundle, tmp_path):
    work, _, _ = trained_bundle
    data = work / "data"
    proc = bundle_cli(
        "run",
        "--config_file",
        "bundle/configs/evaluate.json",
        "--dataset",
        "brats_png",
        "--dataset_dir",
        str(data),
        "--max_items",
        "2",
        "--max_clicks",
        "3",
        "--zoom_in",
        "false",
        "--flip",
        "false",
        "--progress",
        "false",
        "--output_dir",
        str(tmp_path / "eval"),
        "--checkpoint",
        "bundle/models/model.pt",
        cwd=work,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "eval" / "noc.json").read_text())
    assert (tmp_path / "eval" / "miou_vs_clicks.png").is_file()
    assert (tmp_path / "eval" / "noc.csv").is_file()
    assert "NoC" in proc.stdout or "noc" in proc.stdout.lower()
    assert result


def test_inference_run_writes_the_predictor_mask_with_the_image_geometry(trained_bundle, tmp_path):
    from monai.bundle import ConfigWorkflow

    from monai_adaptiveclick.inference import Predictor

    work, _, _ = trained_bundle
    image_path = work / "data" / "image" / "case0.png"
    workflow = ConfigWorkflow(
        config_file=str(work / "bundle" / "configs" / "inference.json"),
        workflow_type="infer",
        bundle_root=str(work / "bundle"),
        output_dir=str(tmp_path / "out"),
        device="$torch.device('cpu')",
        checkpoint=str(work / "bundle" / "models" / "model.pt"),
        dataset=[{"image": str(image_path), "foreground": [[10, 12]], "background": [[2, 2]]}],
    )
    workflow.initialize()
    workflow.run()
    written = list((tmp_path / "out").glob("case0_seg.*"))
    assert len(written) == 1
    from monai.transforms import LoadImage

    saved = np.asarray(LoadImage(image_only=True)(str(written[0])))
    image = np.asarray(LoadImage(image_only=True)(str(image_path)))  # the array order the bundle clicks refer to
    expected = Predictor.from_checkpoint(work / "bundle" / "models" / "model.pt")(
        image[None], [(10, 12, True), (2, 2, False)]
    )
    np.testing.assert_array_equal(saved.reshape(image.shape) > 0, expected.mask())


def test_ckpt_export_torchscript_equals_eager(trained_bundle):
    work, _, _ = trained_bundle
    ts_path = work / "bundle" / "models" / "model.ts"
    proc = bundle_cli(
        "ckpt_export",
        "network_def",
        "--filepath",
        str(ts_path),
        "--ckpt_file",
        "bundle/models/model.pt",
        "--meta_file",
        "bundle/configs/metadata.json",
        "--config_file",
        "bundle/configs/inference.json",
        "--key_in_ckpt",
        "model",
        "--use_trace",
        "true",
        "--input_shape",
        "[1, 6, 64, 64]",
        "--preset",
        "tiny",
        cwd=work,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from monai_adaptiveclick.networks import AdaptiveClickExportWrapper, load_model

    eager = AdaptiveClickExportWrapper(load_model(work / "bundle" / "models" / "model.pt")).eval()
    scripted = torch.jit.load(str(ts_path)).eval()
    x = torch.rand(2, 6, 64, 64, generator=torch.Generator().manual_seed(0))
    x[:, 4:] = (x[:, 4:] > 0.97).float()
    with torch.no_grad():
        assert torch.allclose(scripted(x), eager(x), atol=1e-4)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.json")), ids=lambda p: p.name)
def test_every_recipe_sets_only_training_settings_the_bundle_exposes(path):
    from monai_adaptiveclick.engines import TrainingSettings
    from monai_adaptiveclick.networks import PRESETS

    train = json.loads((BUNDLE / "configs" / "train.json").read_text())
    names = TrainingSettings.field_names()
    assert all(train[name] is None for name in names)  # null = the recipe's value: no second default
    recipe = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    assert set(recipe) <= set(names), sorted(set(recipe) - set(names))
    settings = TrainingSettings.from_recipe(path)
    assert settings.preset in PRESETS
    assert all(0 < m <= settings.epochs for m in settings.milestones())
