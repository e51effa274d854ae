# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Engines: click-simulation training (SPEC section 4), NoC evaluation (SPEC section 5), test-time augmentation,
classical baselines, reports and the demo."""

from __future__ import annotations

from monai_adaptiveclick.engines.baselines import (
    BASELINES,
    ClickSeededPredictor,
    RandomWalkerPredictor,
    WatershedPredictor,
    get_baseline,
)
from monai_adaptiveclick.engines.evaluation import (
    PROB_THRESHOLD,
    NoCResult,
    ObjectRecord,
    compute_iou,
    evaluate_noc,
    noc_from_ious,
)
from monai_adaptiveclick.engines.reporting import display_image, format_table, plot_miou_curves, save_overlay
from monai_adaptiveclick.engines.training import (
    ClickSimulationIteration,
    create_trainer,
    load_training_items,
    run_training,
    save_deployable_model,
)
from monai_adaptiveclick.engines.tta import FlipTTA, ZoomIn, box_iou, expand_box, object_roi, wrap_predictor

__all__ = [
    "BASELINES",
    "PROB_THRESHOLD",
    "ClickSeededPredictor",
    "ClickSimulationIteration",
    "FlipTTA",
    "NoCResult",
    "ObjectRecord",
    "RandomWalkerPredictor",
    "WatershedPredictor",
    "ZoomIn",
    "box_iou",
    "compute_iou",
    "create_trainer",
    "display_image",
    "evaluate_noc",
    "expand_box",
    "format_table",
    "get_baseline",
    "load_training_items",
    "noc_from_ious",
    "object_roi",
    "plot_miou_curves",
    "run_training",
    "save_deployable_model",
    "save_overlay",
    "wrap_predictor",
]
