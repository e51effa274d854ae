# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tasks and helpers of the AdaptiveClick MONAI Label app (``apps/adaptiveclick``).

The modules hold no model or protocol logic of their own: the model, its pre/post-processing and the training loop
come from the ``monai_adaptiveclick`` package (``inference.Predictor``, ``engines.run_training``); this
package adapts them to MONAI Label requests (ARCHITECTURE "Data flows one way").
"""

from __future__ import annotations

__all__: list[str] = []
