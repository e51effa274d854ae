# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""AdaptiveClick for MONAI: click-aware transformer with adaptive focal loss for interactive segmentation."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
