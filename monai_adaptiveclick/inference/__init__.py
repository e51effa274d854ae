# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Inference: the one Predictor (model + pre/post-processing), the click-by-click session, and the Predictor as a
MONAI transform for bundle configs. Everything that turns clicks into a mask goes through here (ARCHITECTURE
"Predictor" contract)."""

from __future__ import annotations

from .bundle_transforms import PredictClicksd, points_to_clicks
from .predictor import INTENSITY_MODES, Prediction, Predictor
from .session import ClickSession, Plan, plan_clicks

__all__ = [
    "INTENSITY_MODES",
    "ClickSession",
    "Plan",
    "PredictClicksd",
    "Prediction",
    "Predictor",
    "plan_clicks",
    "points_to_clicks",
]
