# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""What every method is compared on (the budgets and the NoC protocol constants) and how the methods run.

``BUDGETS`` holds the ``--budget`` presets (``quick`` for a 2-core CPU, ``full`` for a GPU); the command-line
overrides are applied by :func:`comparison.cli.resolve_budget`. :class:`RunOptions` are the settings that do not
change the numbers (device, progress bars, resuming, checkpoints kept).
"""

from __future__ import annotations

from dataclasses import dataclass

from monai_adaptiveclick.engines import TrainingSettings
from monai_adaptiveclick.protocol import IOU_THRESHOLDS as THRESHOLDS
from monai_adaptiveclick.protocol import PROB_THRESHOLD

__all__ = ["BUDGETS", "PROB_THRESHOLD", "THRESHOLDS", "Budget", "RunOptions", "budget_from_recipe"]


@dataclass(frozen=True)
class Budget:
    """Training and evaluation settings shared by every method.

    The training fields come from a recipe of ``configs/`` (``compare_quick``, ``compare_full``:
    :func:`budget_from_recipe`); the remaining training settings (clicks, augmentation, clipping) are that recipe's too.

    Attributes:
        recipe: the training recipe.
        preset: AdaptiveClick preset (its architecture, at ``image_size``).
        image_size: network input size of every learned model (DeepGrow included).
        steps: training iterations of every learned method.
        batch_size: training batch size.
        lr: Adam learning rate.
        decay_at: fraction of the steps after which the learning rate is multiplied by 0.1 (``None``: constant).
        synthetic_share: share of every training epoch drawn from the synthetic engine (``data.SynthesizeObjectd``).
        deepgrow_features: ``BasicUNet`` widths of the DeepGrow model.
        max_clicks: NoC click budget per object.
        zoom_in: zoom-in TTA during evaluation.
        flip: flip TTA during evaluation.
        seeds: training seeds.
        max_eval_objects: evaluate at most this many held-out objects (evenly spaced; ``None``: all).
        num_hard_cases: number of hard-case overlay figures.
    """

    recipe: str
    preset: str
    image_size: int
    steps: int
    batch_size: int
    lr: float
    decay_at: float | None
    synthetic_share: float
    deepgrow_features: tuple[int, ...]
    max_clicks: int
    zoom_in: bool
    flip: bool
    seeds: tuple[int, ...]
    max_eval_objects: int | None
    num_hard_cases: int


def budget_from_recipe(recipe: str, **evaluation: object) -> Budget:
    """A :class:`Budget` whose training fields are the recipe's (``max_steps`` -> ``steps``; ``lr_milestones``:
    ``[]`` = constant lr, ``null`` = x0.1 after 2/3 of the steps) and whose other fields are ``evaluation``."""
    settings = TrainingSettings.from_recipe(recipe)
    if settings.max_steps is None:
        raise ValueError(f"recipe {recipe!r} must set max_steps: every method trains for the same number of steps.")
    if settings.lr_milestones not in (None, []):
        raise ValueError(f"recipe {recipe!r}: lr_milestones must be [] or null for the comparison.")
    return Budget(
        recipe=recipe,
        preset=settings.preset,
        image_size=int(settings.model_overrides["image_size"]),
        steps=int(settings.max_steps),
        batch_size=settings.batch_size,
        lr=settings.lr,
        decay_at=None if settings.lr_milestones == [] else 2 / 3,
        synthetic_share=settings.synthetic_share,
        **evaluation,
    )


BUDGETS: dict[str, Budget] = {
    "quick": budget_from_recipe(
        "compare_quick",
        deepgrow_features=(32, 32, 64, 128, 256, 32),
        max_clicks=20,
        zoom_in=False,
        flip=False,
        seeds=(0,),
        max_eval_objects=None,
        num_hard_cases=4,
    ),
    "full": budget_from_recipe(
        "compare_full",
        deepgrow_features=(32, 64, 128, 256, 512, 32),
        max_clicks=20,
        zoom_in=True,
        flip=True,
        seeds=(0, 1, 2),
        max_eval_objects=None,
        num_hard_cases=6,
    ),
}


@dataclass(frozen=True)
class RunOptions:
    """How the methods run (not what they are compared on).

    Attributes:
        device: torch device for training and evaluation.
        progress: show progress bars.
        resume: reuse stored results and finished models of an earlier run in the same output folder.
        pretrained_backbone: local MAE / timm ViT state dict for the AdaptiveClick variants' backbone.
        keep_checkpoints: keep the full-state training checkpoints (otherwise only ``model.pt`` stays).
    """

    device: str = "cpu"
    progress: bool = True
    resume: bool = True
    pretrained_backbone: str | None = None
    keep_checkpoints: bool = False
