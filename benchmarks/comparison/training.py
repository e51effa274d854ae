# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Training one learned method / seed with the project's harness (:func:`monai_adaptiveclick.engines.run_training`).

Every learned method gets the same click-simulation training (SPEC section 4): the same number of steps, batch size,
learning rate schedule and seed, on the same training objects; only the head, the loss and (DeepGrow) the network
widths differ.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from comparison.methods import MethodSpec
from comparison.settings import Budget, RunOptions
from monai_adaptiveclick.engines import CHECKPOINT_PREFIX, TrainingSettings, run_training

__all__ = ["train_method"]


def train_method(
    spec: MethodSpec,
    budget: Budget,
    train_items: Sequence[Mapping[str, Any]],
    model_dir: Path,
    seed: int,
    options: RunOptions,
) -> dict[str, Any]:
    """Train one learned method for exactly ``budget.steps`` iterations; returns the training record.

    ``options.pretrained_backbone`` initialises the ViT of the AdaptiveClick variants (not DeepGrow's U-Net). Unless
    ``options.keep_checkpoints``, the full-state checkpoints (model + optimizer, for resuming) are deleted after
    training: the evaluation needs only ``model.pt``.

    Args:
        spec: the learned method.
        budget: steps, batch size, learning rate schedule and model size shared by every method.
        train_items: the training objects.
        model_dir: training output folder (``model.pt``, checkpoints).
        seed: training seed.
        options: device, progress bars, pretrained backbone, checkpoints kept.

    Returns:
        The training record: checkpoint path, steps done, wall seconds and the training settings.
    """
    per_epoch = math.ceil(len(train_items) / budget.batch_size)
    epochs = math.ceil(budget.steps / per_epoch)
    milestone = epochs + 1 if budget.decay_at is None else max(1, round(budget.decay_at * budget.steps / per_epoch))
    overrides: dict[str, Any] = {"image_size": budget.image_size}
    backbone = options.pretrained_backbone
    architecture = budget.preset
    if spec.head == "deepgrow_unet":  # a U-Net: its own widths, and no ViT for a pretrained backbone
        overrides["features"] = budget.deepgrow_features
        backbone = None
        architecture = "BasicUNet"
    start = time.perf_counter()
    settings = TrainingSettings.from_recipe(
        budget.recipe,
        preset=budget.preset,
        head=spec.head,
        loss=spec.loss,
        loss_kwargs=dict(spec.loss_kwargs),
        epochs=epochs,
        batch_size=budget.batch_size,
        lr=budget.lr,
        lr_milestones=[milestone],
        seed=seed,
        max_steps=budget.steps,
        model_overrides=overrides,
        pretrained_backbone=backbone,
        synthetic_share=budget.synthetic_share,
    )
    trained = run_training(train_items, model_dir, settings, device=options.device, progress=options.progress)
    if not options.keep_checkpoints:
        for state in model_dir.glob(f"{CHECKPOINT_PREFIX}_*.pt"):
            state.unlink()
    return {
        "checkpoint": trained["checkpoint"],
        "steps": int(trained["iterations"]),
        "seconds": time.perf_counter() - start,
        "seed": seed,
        "preset": architecture,
        "image_size": budget.image_size,
        "head": spec.head,
        "loss": spec.loss,
        "loss_kwargs": dict(spec.loss_kwargs),
        "batch_size": budget.batch_size,
        "lr": budget.lr,
        "synthetic_share": budget.synthetic_share,
        "lr_milestone_epoch": milestone,
        "epochs": epochs,
        "pretrained_backbone": backbone,
    }
