# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Engines: click-simulation training (SPEC section 4), NoC evaluation (SPEC section 5), test-time augmentation,
classical baselines, reports and the demo. Training settings come from the recipes in ``configs/``."""

from __future__ import annotations

from monai_adaptiveclick.engines.baselines import (
    BASELINES,
    ClickSeededPredictor,
    RandomWalkerPredictor,
    WatershedPredictor,
    get_baseline,
)
from monai_adaptiveclick.engines.checkpoints import CHECKPOINT_PREFIX, find_last_checkpoint, prune_checkpoints
from monai_adaptiveclick.engines.evaluation import evaluate_noc
from monai_adaptiveclick.engines.interaction import ClickSimulation, TrainingLoss
from monai_adaptiveclick.engines.noc_results import NoCResult, ObjectRecord, compute_iou, noc_from_ious
from monai_adaptiveclick.engines.reporting import display_image, format_table, plot_miou_curves, save_overlay
from monai_adaptiveclick.engines.settings import TrainingSettings, list_recipes, load_recipe
from monai_adaptiveclick.engines.trainer import (
    create_trainer,
    run_training,
    save_deployable_model,
    train_from_settings,
)
from monai_adaptiveclick.engines.training_data import (
    create_train_dataset,
    create_train_loader,
    load_training_items,
    usable_items,
)
from monai_adaptiveclick.engines.tta import FlipTTA, ZoomIn, wrap_predictor
from monai_adaptiveclick.engines.volume_evaluation import VolumeCase, VolumeResult, evaluate_volumes, volume_cases
from monai_adaptiveclick.transforms.zoom_boxes import box_iou, expand_box, object_roi

__all__ = [
    "BASELINES",
    "CHECKPOINT_PREFIX",
    "ClickSeededPredictor",
    "ClickSimulation",
    "FlipTTA",
    "NoCResult",
    "ObjectRecord",
    "RandomWalkerPredictor",
    "TrainingLoss",
    "TrainingSettings",
    "WatershedPredictor",
    "ZoomIn",
    "box_iou",
    "compute_iou",
    "create_train_dataset",
    "create_train_loader",
    "create_trainer",
    "display_image",
    "evaluate_noc",
    "expand_box",
    "find_last_checkpoint",
    "format_table",
    "get_baseline",
    "list_recipes",
    "load_recipe",
    "load_training_items",
    "noc_from_ious",
    "object_roi",
    "plot_miou_curves",
    "prune_checkpoints",
    "run_training",
    "save_deployable_model",
    "save_overlay",
    "train_from_settings",
    "usable_items",
    "VolumeCase",
    "VolumeResult",
    "evaluate_volumes",
    "volume_cases",
    "wrap_predictor",
]
