# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The head registry: every head builds a model whose output the matching criterion accepts, and the registry's
flags tell the truth about the model (queries, ViT backbone)."""

from __future__ import annotations

import pytest
import torch

from monai_adaptiveclick.losses import AdaptiveClickCriterion, MaskFixedCriterion, build_criterion
from monai_adaptiveclick.networks import HEADS, create_model, get_head, list_heads


@pytest.mark.parametrize("name", list_heads())
def test_each_head_builds_a_model_its_criterion_trains(name):
    spec = get_head(name)
    torch.manual_seed(0)
    model = create_model("tiny", in_channels=1, head=name)
    criterion = build_criterion(name, mask_loss="bce")
    expected = {"matched": AdaptiveClickCriterion, "single_mask": MaskFixedCriterion}[spec.criterion]
    assert isinstance(criterion, expected)
    outputs = model(torch.rand(2, 4, 64, 64))
    total, _ = criterion(outputs, (torch.rand(2, 1, 64, 64) > 0.5).float())
    total.backward()
    assert ("pred_logits" in outputs) == spec.has_queries
    assert hasattr(model, "backbone") == spec.vit_backbone
    _, candidates, _ = model.predict(torch.rand(1, 4, 64, 64))
    assert (candidates.shape[1] > 0) == spec.has_queries


def test_unknown_head_is_refused_everywhere():
    assert set(HEADS) == {"camd", "mask_fixed", "simpleclick", "deepgrow_unet"}
    for build in (lambda: create_model("tiny", head="unet3d"), lambda: build_criterion("unet3d")):
        with pytest.raises(ValueError, match="unet3d"):
            build()
