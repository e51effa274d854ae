# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``python -m monai_adaptiveclick``: help, ``evaluate`` outputs, and user errors (exit status 2, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_adaptiveclick.cli import main
from monai_adaptiveclick.data import get_dataset
from monai_adaptiveclick.engines import BASELINES, get_baseline

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
DATASET = "cli_test_disks"  # conftest.DISKS


@pytest.fixture(autouse=True)
def _registered(disks_dataset):
    """Every test here may name the disk dataset (conftest.py)."""


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monai_adaptiveclick", *args], capture_output=True, text=True, env=ENV, cwd=REPO
    )


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "evaluate" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    assert exit_info.value.code == 0
    for option in ("--dataset", "--method", "--checkpoint", "--max-clicks", "--no-zoom-in", "--no-flip", "--limit"):
        assert option in text
    assert all(name in text for name in BASELINES)  # every registered baseline is offered


def test_evaluate_two_methods_writes_outputs(tmp_path, capsys):
    status = main(
        ["evaluate", "--dataset", DATASET, "--method", "random_walker", "--method", "watershed", "--no-zoom-in"]
        + ["--no-flip", "--max-clicks", "3", "--output", str(tmp_path), "--quiet", "--overlays", "1"]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "| random_walker |" in printed and "| watershed |" in printed
    for name in ("table.md", "miou_vs_clicks.png", "results_random_walker.json", "records_watershed.csv"):
        assert (tmp_path / name).is_file(), name
    summary = json.loads((tmp_path / "results_random_walker.json").read_text())["summary"]
    assert summary["objects"] == 2 and summary["max_clicks"] == 3
    # replay every recorded click sequence on the plain baseline and recompute IoU and NoC90 with numpy
    records = json.loads((tmp_path / "results_random_walker.json").read_text())["records"]
    nocs = []
    for item, record in zip(get_dataset(DATASET), records, strict=True):
        gt = item["label"][0] > 0
        ious = []
        for k in range(1, len(record["clicks"]) + 1):
            clicks = [tuple(c) for c in record["clicks"][:k]]
            pred = get_baseline("random_walker")(item["image"], clicks).prob > 0.49
            ious.append((pred & gt).sum() / (pred | gt).sum())
        np.testing.assert_allclose(record["ious"], ious, atol=1e-9)
        nocs.append(next((k for k, iou in enumerate(ious, start=1) if iou >= 0.9), 3))
    assert summary["noc"]["0.90"] == pytest.approx(np.mean(nocs))
    assert len(list((tmp_path / "overlays" / "watershed").glob("*.png"))) == 1
    assert (tmp_path / "table.md").read_text().count("\n| ") == 3  # header + two methods


def test_evaluate_limit(tmp_path):
    status = main(["evaluate", "--dataset", DATASET, "--limit", "1", "--max-clicks", "2", "--output", str(tmp_path)])
    assert status == 0
    assert json.loads((tmp_path / "results_random_walker.json").read_text())["summary"]["objects"] == 1


def test_evaluate_checkpoint_method(tmp_path, capsys):
    from monai_adaptiveclick.networks import create_model, save_model

    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny_model.pt"
    save_model(create_model("tiny", in_channels=1), checkpoint)
    out = tmp_path / "out"
    status = main(
        ["evaluate", "--dataset", DATASET, "--checkpoint", str(checkpoint), "--max-clicks", "2", "--no-flip"]
        + ["--output", str(out), "--quiet"]
    )
    assert status == 0
    assert "| checkpoint:tiny_model |" in capsys.readouterr().out
    summary = json.loads((out / "results_checkpoint_tiny_model.json").read_text())["summary"]
    assert summary["objects"] == 2 and summary["total_clicks"] >= 2


def test_evaluate_sample_subprocess(tmp_path):
    out = run_module("evaluate", "--limit", "2", "--max-clicks", "3", "--no-flip", "--output", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "NoC@90" in out.stdout
    assert (tmp_path / "table.md").is_file() and (tmp_path / "miou_vs_clicks.png").is_file()
    assert json.loads((tmp_path / "results_random_walker.json").read_text())["summary"]["objects"] == 2


def test_missing_data_folder_exits_2_without_traceback(tmp_path, capsys):
    assert main(["evaluate", "--dataset", "brats_png", "--dataset-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nope" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "brats_png"], "brats_png"),  # needs a folder
        (["--dataset", "no_such_dataset"], "no_such_dataset"),
        (["--dataset", DATASET, "--method", "checkpoint"], "--checkpoint"),
        (["--dataset", DATASET, "--checkpoint", "missing.pt"], "missing.pt"),
        (["--dataset", DATASET, "--max-clicks", "0"], "--max-clicks"),
        (["--dataset", DATASET, "--method", "grabcut"], "grabcut"),
    ],
)
def test_user_errors_exit_2(args, message, tmp_path, capsys):
    assert main(["evaluate", *args, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err


def test_train_then_evaluate_the_trained_checkpoint(tmp_path, capsys):
    output = tmp_path / "train"
    status = main(
        ["train", "--preset", "tiny", "--epochs", "1", "--max-steps", "2", "--batch-size", "2"]
        + ["--max-extra-clicks", "1", "--val-max-items", "0", "--output", str(output), "--quiet"]
    )
    assert status == 0
    model_file = output / "model.pt"
    assert model_file.is_file() and f"model written to {model_file}" in capsys.readouterr().out
    status = main(
        ["evaluate", "--dataset", DATASET, "--checkpoint", str(model_file), "--max-clicks", "2"]
        + ["--no-zoom-in", "--no-flip", "--output", str(tmp_path / "eval"), "--quiet"]
    )
    assert status == 0
    assert (tmp_path / "eval" / "results_checkpoint_model.json").is_file()


def test_train_reads_the_recipe_and_flags_override_it(tmp_path, capsys, monkeypatch):
    from monai_adaptiveclick.cli import train as train_cli

    seen = {}
    monkeypatch.setattr(
        "monai_adaptiveclick.engines.train_from_settings",
        lambda settings, output, **kwargs: seen.update(settings=settings) or {"checkpoint": str(output)},
    )
    recipe = tmp_path / "mine.json"
    recipe.write_text(json.dumps({"epochs": 3, "lr": 0.25, "batch_size": 5}))
    assert main(["train", "--recipe", str(recipe), "--batch-size", "2", "--output", str(tmp_path), "--quiet"]) == 0
    settings = seen["settings"]
    assert (settings.epochs, settings.lr, settings.batch_size) == (3, 0.25, 2)
    assert (
        settings.max_extra_clicks
        == json.loads((REPO / "configs" / "train_defaults.json").read_text())["max_extra_clicks"]
    )
    assert set(train_cli._SETTING_FLAGS) <= set(type(settings).field_names())
    assert main(["train", "--recipe", "no_such_recipe", "--output", str(tmp_path)]) == 2
    assert "known recipes" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_evaluate_bad_checkpoint_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save({"config": {"head": "camd", "in_channels": 1}, "state_dict": {"nope": torch.zeros(1)}}, path)
    else:
        path.write_bytes(content)
    assert main(["evaluate", "--dataset", DATASET, "--checkpoint", str(path), "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot load checkpoint") and "Traceback" not in err and err.count("\n") == 1


def test_train_missing_dataset_dir_is_a_usage_error(tmp_path, capsys):
    status = main(["train", "--dataset", "brats_png", "--dataset-dir", str(tmp_path / "absent"), "--quiet"])
    assert status == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_bad_pretrained_backbone_is_a_usage_error(tmp_path, capsys):
    common = ["train", "--preset", "tiny", "--epochs", "1", "--output", str(tmp_path / "out"), "--quiet"]
    assert main([*common, "--pretrained-backbone", str(tmp_path / "absent.pth")]) == 2
    assert "pretrained backbone file" in capsys.readouterr().err
    torch.save({"model": {"pos_embed": torch.zeros(1, 5, 7)}}, tmp_path / "wrong.pth")
    assert main([*common, "--pretrained-backbone", str(tmp_path / "wrong.pth")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot train:") and "Traceback" not in err


def test_demo_writes_report_plot_and_overlays(tmp_path, capsys):
    status = main(
        ["demo", "--minutes", "0.1", "--eval-objects", "2", "--max-clicks", "2", "--output", str(tmp_path), "--quiet"]
    )
    assert status == 0
    report = tmp_path / "report.md"
    assert f"demo report: {report}" in capsys.readouterr().out
    text = report.read_text()
    for method in ("starter (shipped)", "starter fine-tuned here", "random_walker", "watershed"):
        assert f"| {method} |" in text
    assert (tmp_path / "miou_vs_clicks.png").is_file() and (tmp_path / "finetune" / "model.pt").is_file()
    assert (
        sorted(p.name.split("_")[0] for p in (tmp_path / "overlays").glob("*.png"))
        == ["finetuned"] * 2 + ["starter"] * 2
    )


def test_serve_sample_serves_given_weights_and_rejects_missing_ones(tmp_path, monkeypatch):
    from monai_adaptiveclick import cli
    from monai_adaptiveclick.networks import create_model, save_model

    weights = save_model(create_model("tiny", in_channels=1), tmp_path / "model.pt")
    args = cli.build_parser().parse_args(["serve-sample", "--port", "8123", "--weights", str(weights)])
    argv, env = cli.serve_sample_command(args)
    assert argv[1].endswith("apps/adaptiveclick/start_sample_server.sh") and Path(argv[1]).is_file()
    assert argv[2:] == ["--conf", "bundle_checkpoint", str(weights.resolve())]
    assert env["PORT"] == "8123" and env["WITH_LABELS"] == "0"
    monkeypatch.chdir(tmp_path)  # no outputs/demo model here: the app serves the shipped starter, no --conf
    argv, _ = cli.serve_sample_command(cli.build_parser().parse_args(["serve-sample"]))
    assert argv[2:] == []
    with pytest.raises(cli.UsageError, match="does not exist"):
        cli.serve_sample_command(cli.build_parser().parse_args(["serve-sample", "--weights", "absent.pt"]))


def _bad_checkpoint(path: Path, kind: str) -> Path:
    if kind == "zero-byte":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("these are not weights\n")
    else:  # a state dict of the right format whose keys do not fit the architecture
        torch.save(
            {"config": {"head": "camd", "in_channels": 1, "image_size": 64}, "state_dict": {"w": torch.ones(1)}}, path
        )
    return path


@pytest.mark.parametrize("kind", ["zero-byte", "text", "wrong-keys"])
@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "--dataset", DATASET, "--checkpoint", "{ckpt}"],
        ["train", "--preset", "tiny", "--epochs", "1", "--val-max-items", "0", "--init-checkpoint", "{ckpt}"],
        ["serve-sample", "--weights", "{ckpt}"],
    ],
    ids=["evaluate", "train", "serve-sample"],
)
def test_every_subcommand_refuses_a_bad_checkpoint_in_one_line(tmp_path, capsys, monkeypatch, command, kind):
    monkeypatch.setattr("os.execve", lambda *a: pytest.fail("the server must not start"))
    checkpoint = _bad_checkpoint(tmp_path / "bad.pt", kind)
    argv = [part.replace("{ckpt}", str(checkpoint)) for part in command] + ["--output", str(tmp_path / "out")]
    if command[0] == "serve-sample":
        argv = argv[:-2] + ["--studies", str(tmp_path / "studies")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "bad.pt" in err and err.count("\n") == 1 and "Traceback" not in err


def test_evaluate_protocol_option(tmp_path, capsys):
    from monai_adaptiveclick.engines.tta import PROTOCOLS
    from monai_adaptiveclick.networks import create_model, save_model

    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny_model.pt"
    save_model(create_model("tiny", in_channels=1), checkpoint)
    out = tmp_path / "out"
    status = main(
        ["evaluate", "--dataset", DATASET, "--checkpoint", str(checkpoint), "--method", "checkpoint"]
        + ["--max-clicks", "2", "--protocol", "simpleclick", "--output", str(out), "--quiet"]
    )
    assert status == 0
    assert "protocol simpleclick" in capsys.readouterr().out
    settings = json.loads((out / "results_checkpoint_tiny_model.json").read_text())["settings"]
    assert settings["protocol"] == "simpleclick"
    with pytest.raises(SystemExit):
        main(["evaluate", "--protocol", "ritm"])
    assert set(PROTOCOLS) == {"default", "simpleclick"}


REFERENCE = REPO / "tests" / "networks" / "fixtures" / "reference"


def test_convert_an_authors_checkpoint_then_evaluate_and_fine_tune_it(tmp_path, capsys):
    converted = tmp_path / "adaptiveclick_small.pt"
    assert main(["convert", str(REFERENCE / "adaptiveclick_small.pth"), str(converted)]) == 0
    assert "adaptiveclick (custom (E=8, depth=8, patch=16)) written to" in capsys.readouterr().out
    state = torch.load(converted, map_location="cpu", weights_only=True)  # plain to open from now on
    assert state["extra"]["source_family"] and state["config"]["final_combination"] == "logit_sum"
    status = main(
        ["evaluate", "--dataset", DATASET, "--checkpoint", str(converted), "--max-clicks", "1", "--no-zoom-in"]
        + ["--no-flip", "--output", str(tmp_path / "eval"), "--quiet"]
    )
    assert status == 0
    # fine-tuning starts from the authors' file as it is (its architecture, not the preset's)
    status = main(
        ["train", "--dataset", DATASET, "--init-checkpoint", str(REFERENCE / "adaptiveclick_small.pth")]
        + ["--epochs", "1", "--max-steps", "1", "--batch-size", "2", "--max-extra-clicks", "0", "--val-max-items", "0"]
        + ["--output", str(tmp_path / "tuned"), "--quiet"]
    )
    assert status == 0, capsys.readouterr().err
    from monai_adaptiveclick.networks import load_model

    assert load_model(tmp_path / "tuned" / "model.pt").config == load_model(converted).config


def test_convert_refuses_what_is_not_an_authors_checkpoint(tmp_path, capsys):
    (tmp_path / "empty.pth").write_bytes(b"")
    assert main(["convert", str(tmp_path / "empty.pth"), str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot convert") and err.count("\n") == 1
    assert not (tmp_path / "out.pt").exists()


def test_segment_writes_a_3d_label_with_the_image_geometry(tmp_path, capsys):
    import nibabel as nib

    i, j, k = np.meshgrid(np.arange(40.0), np.arange(36.0), np.arange(12.0), indexing="ij")
    truth = ((i - 20) / 10) ** 2 + ((j - 18) / 8) ** 2 + ((k - 6) / 4) ** 2 <= 1
    volume = (np.random.default_rng(0).normal(100, 10, truth.shape) + 300 * truth).astype(np.int16)
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "scan.nii.gz"))
    out = tmp_path / "label.nii.gz"
    assert main(["segment", str(tmp_path / "scan.nii.gz"), "--click", "20,18,6", "--output", str(out), "--quiet"]) == 0
    written = nib.load(str(out))
    label = np.asarray(written.dataobj)
    assert label.shape == truth.shape and np.allclose(written.affine, affine)
    assert (label > 0).any(axis=(0, 1)).sum() > 1  # more than the clicked slice
    assert 2.0 * ((label > 0) & truth).sum() / ((label > 0).sum() + truth.sum()) > 0.8
    report = json.loads((tmp_path / "label.json").read_text())
    assert report["seeds"] == [6] and len(report["slice_confidence"]) == 12
    assert main(["segment", str(tmp_path / "scan.nii.gz"), "--click", "20,18,99", "--output", str(out)]) == 2
    assert "outside the volume" in capsys.readouterr().err
