# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Losses of AdaptiveClick: adaptive focal loss, the paper's comparison losses, Hungarian matching, criteria."""

from __future__ import annotations

from monai_adaptiveclick.losses.adaptive_focal import (
    AdaptiveFocalLoss,
    PerMaskLoss,
    adaptive_focal_loss,
    flatten_mask_pair,
    focal_terms,
)
from monai_adaptiveclick.losses.comparison import (
    BalancedCrossEntropyLoss,
    BinaryCrossEntropyLoss,
    MaskDiceLoss,
    NormalizedFocalLoss,
    PolyFocalLoss,
    SigmoidFocalLoss,
    SoftIoULoss,
    WeightedBCELoss,
)
from monai_adaptiveclick.losses.criterion import (
    AdaptiveClickCriterion,
    MaskFixedCriterion,
    build_criterion,
    downsample_target,
    downsample_valid,
)
from monai_adaptiveclick.losses.masking import (
    flatten_valid_mask,
    valid_pixel_count,
    valid_pixel_mean,
    valid_pixel_sum,
)
from monai_adaptiveclick.losses.matcher import HungarianMatcher
from monai_adaptiveclick.losses.registry import LOSSES, get_loss

__all__ = [
    "AdaptiveFocalLoss",
    "PerMaskLoss",
    "adaptive_focal_loss",
    "flatten_mask_pair",
    "focal_terms",
    "BalancedCrossEntropyLoss",
    "BinaryCrossEntropyLoss",
    "MaskDiceLoss",
    "NormalizedFocalLoss",
    "PolyFocalLoss",
    "SigmoidFocalLoss",
    "SoftIoULoss",
    "WeightedBCELoss",
    "AdaptiveClickCriterion",
    "MaskFixedCriterion",
    "build_criterion",
    "downsample_target",
    "downsample_valid",
    "flatten_valid_mask",
    "valid_pixel_count",
    "valid_pixel_mean",
    "valid_pixel_sum",
    "HungarianMatcher",
    "LOSSES",
    "get_loss",
]
