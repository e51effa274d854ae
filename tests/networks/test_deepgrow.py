# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the DeepGrow-2D-style baseline model (networks/deepgrow.py) and its place in the harness (issue 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_adaptiveclick.engines import TrainingSettings, create_train_dataset, create_train_loader, create_trainer
from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.losses import MaskFixedCriterion, build_criterion
from monai_adaptiveclick.networks import (
    DEEPGROW_HEAD,
    AdaptiveClickExportWrapper,
    DeepGrow2D,
    create_model,
    load_model,
    save_model,
)
from monai_adaptiveclick.networks.presets import PRESETS

FEATURES = (4, 4, 8, 8, 16, 4)


def small_model(in_channels: int = 1, image_size: int = 32) -> DeepGrow2D:
    torch.manual_seed(0)
    return DeepGrow2D(in_channels=in_channels, image_size=image_size, features=FEATURES).eval()


def test_forward_shape_and_odd_sizes():
    model = small_model(in_channels=2)
    for height, width in ((32, 32), (37, 50), (17, 16)):
        out = model(torch.rand(3, 5, height, width))
        assert set(out) == {"pred_masks"}
        assert out["pred_masks"].shape == (3, 1, height, width)


def test_previous_mask_channel_is_ignored_and_clicks_are_used():
    model = small_model(in_channels=1)
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        reference = model(x)["pred_masks"]
        other_prev = x.clone()
        other_prev[:, 1] = torch.rand(2, 32, 32)
        assert torch.equal(model(other_prev)["pred_masks"], reference)
        other_clicks = x.clone()
        other_clicks[:, 2] = 0.0
        other_clicks[:, 2, 10:15, 10:15] = 1.0
        assert not torch.allclose(model(other_clicks)["pred_masks"], reference)
        # independent computation: the U-Net sees [image, positive, negative] only
        direct = model.unet(torch.cat([x[:, :1], x[:, 2:]], dim=1))
    torch.testing.assert_close(reference, direct)


def test_predict_is_sigmoid_of_logits_without_candidates():
    model = small_model()
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        prob, candidates, scores = model.predict(x)
        logits = model(x)["pred_masks"]
    torch.testing.assert_close(prob, 1.0 / (1.0 + torch.exp(-logits)))
    assert candidates.shape == (2, 0, 32, 32) and scores.shape == (2, 0)
    assert model.num_queries == 0


@pytest.mark.parametrize(
    "bad",
    [torch.rand(1, 3, 32, 32), torch.rand(4, 32, 32), torch.ones(1, 4, 32, 32, dtype=torch.int64)],
)
def test_bad_inputs_raise(bad):
    with pytest.raises(ValueError):
        small_model()(bad)


def test_nan_input_raises():
    x = torch.rand(1, 4, 32, 32)
    x[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        small_model()(x)


@pytest.mark.parametrize("kwargs", [{"features": (4, 4, 8)}, {"image_size": 8}, {"in_channels": 0}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        DeepGrow2D(**kwargs)


def test_create_model_builds_deepgrow_from_a_preset():
    model = create_model("tiny", in_channels=1, head=DEEPGROW_HEAD, features=FEATURES)
    assert isinstance(model, DeepGrow2D)
    assert model.image_size == PRESETS["tiny"]["image_size"]
    assert model.in_channels == 1 and model.head == "deepgrow_unet"
    assert create_model("tiny", head=DEEPGROW_HEAD, image_size=48, features=FEATURES).image_size == 48
    with pytest.raises(ValueError, match="unknown model option"):
        create_model("tiny", head=DEEPGROW_HEAD, embed_dim=32)


def test_save_load_round_trip_and_predictor(tmp_path):
    model = small_model(in_channels=1)
    path = save_model(model, tmp_path / "deepgrow.pt", note="test")
    loaded = load_model(path)
    assert isinstance(loaded, DeepGrow2D) and loaded.config == model.config
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["pred_masks"], model(x)["pred_masks"])
    predictor = Predictor.from_checkpoint(path)
    out = predictor(np.random.default_rng(0).random((1, 40, 25)).astype(np.float32), [(20, 12, True)])
    assert out.prob.shape == (40, 25) and out.candidates == []
    assert 0.0 <= float(out.prob.min()) and float(out.prob.max()) <= 1.0


def test_export_wrapper_returns_logits():
    model = small_model()
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(AdaptiveClickExportWrapper(model)(x), model(x)["pred_masks"])


def test_criterion_and_one_training_step():
    criterion = build_criterion(DEEPGROW_HEAD, mask_loss="bce")
    assert isinstance(criterion, MaskFixedCriterion)
    yy, xx = np.mgrid[:32, :32]
    items = []
    for i in range(2):
        label = (((yy - 16) / (6 + i)) ** 2 + ((xx - 14) / 8) ** 2 <= 1).astype(np.uint8)[None]
        image = (0.2 + 0.6 * label).astype(np.float32)
        items.append({"image": image, "label": label, "object_id": f"o{i}", "meta": {}})
    model = DeepGrow2D(in_channels=1, image_size=32, features=FEATURES)
    settings = TrainingSettings.from_recipe(epochs=1, head=DEEPGROW_HEAD, loss="bce", in_channels=1)
    loader = create_train_loader(create_train_dataset(items, 32, 1, settings), batch_size=2)
    trainer = create_trainer(model, loader, settings, progress=False)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.run()
    assert trainer.state.iteration == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
