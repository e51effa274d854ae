# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The bundle's ``evaluate.json`` and ``inference.json`` default to the starter model shipped inside the package
(issue 14); ``--checkpoint`` still picks any model file. A seeded ``tiny`` model shipped as ``starter`` into a
temporary folder (``ship_model``) stands in for the package's own file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.networks import create_model, load_pretrained, save_model

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"


def _tiny(seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model("tiny", in_channels=1)


@pytest.fixture()
def shipped(ship_model):
    ship_model(_tiny(0))


def _predictor(config: str, **overrides) -> Predictor:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / config))
    parser["device"] = "cpu"
    for key, value in overrides.items():
        parser[key] = value
    return parser.get_parsed_content("predictor")


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("config", ["evaluate.json", "inference.json"])
def test_the_default_checkpoint_is_the_shipped_starter(shipped, tmp_path, config):
    assert json.loads((CONFIGS / config).read_text())["checkpoint"] == "pretrained:starter"
    assert _same_weights(_predictor(config).model, load_pretrained("starter"))
    own = save_model(_tiny(5), tmp_path / "own.pt")
    assert _same_weights(_predictor(config, checkpoint=str(own)).model, _tiny(5))


def test_inference_run_without_a_checkpoint_writes_the_starter_mask(shipped, tmp_path, write_png_dataset):
    from monai.bundle import ConfigWorkflow
    from monai.transforms import LoadImage

    image_path = write_png_dataset(tmp_path / "data", count=1) / "image" / "case0.png"
    workflow = ConfigWorkflow(
        config_file=str(CONFIGS / "inference.json"),
        workflow_type="infer",
        bundle_root=str(tmp_path / "bundle"),
        output_dir=str(tmp_path / "out"),
        device="$torch.device('cpu')",
        dataset=[{"image": str(image_path), "foreground": [[10, 12]], "background": [[2, 2]]}],
    )
    workflow.initialize()
    workflow.run()
    (written,) = list((tmp_path / "out").glob("case0_seg.*"))
    saved = np.asarray(LoadImage(image_only=True)(str(written)))
    image = np.asarray(LoadImage(image_only=True)(str(image_path)))
    expected = Predictor.from_pretrained("starter")(image[None], [(10, 12, True), (2, 2, False)])
    np.testing.assert_array_equal(saved.reshape(image.shape) > 0, expected.mask())
