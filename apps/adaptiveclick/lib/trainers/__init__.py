# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""MONAI Label train tasks of the AdaptiveClick app."""

from __future__ import annotations

from .adaptiveclick import AdaptiveClickTrain, build_training_items

__all__ = ["AdaptiveClickTrain", "build_training_items"]
