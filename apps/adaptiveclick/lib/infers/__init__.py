# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""MONAI Label infer tasks of the AdaptiveClick app."""

from __future__ import annotations

from .adaptiveclick import AdaptiveClickInfer

__all__ = ["AdaptiveClickInfer"]
