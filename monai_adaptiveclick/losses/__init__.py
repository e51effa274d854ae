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
    "HungarianMatcher",
    "LOSSES",
    "get_loss",
]
