# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Inference: the one Predictor (model + pre/post-processing), the click-by-click session, propagation of clicks
through a volume (``segment_volume``), and the Predictor as a MONAI transform for bundle configs. Everything that
turns clicks into a mask goes through here (ARCHITECTURE "Predictor" and "Volume segmentation" contracts)."""

from __future__ import annotations

from .bundle_transforms import PredictClicksd, points_to_clicks
from .predictor import INTENSITY_MODES, Prediction, Predictor
from .session import ClickSession, Plan, plan_clicks
from .volume import VolumeSegmentation, as_voxel_clicks, segment_volume

__all__ = [
    "INTENSITY_MODES",
    "ClickSession",
    "Plan",
    "PredictClicksd",
    "Prediction",
    "Predictor",
    "VolumeSegmentation",
    "as_voxel_clicks",
    "plan_clicks",
    "points_to_clicks",
    "segment_volume",
]
