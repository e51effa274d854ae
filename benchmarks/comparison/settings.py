# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""What every method is compared on (the budgets and the NoC protocol constants) and how the methods run.

``BUDGETS`` holds the ``--budget`` presets (``quick`` for a 2-core CPU, ``full`` for a GPU); the command-line
overrides are applied by :func:`comparison.cli.resolve_budget`. :class:`RunOptions` are the settings that do not
change the numbers (device, progress bars, resuming, checkpoints kept).
"""

from __future__ import annotations

from dataclasses import dataclass

from monai_adaptiveclick.protocol import IOU_THRESHOLDS as THRESHOLDS
from monai_adaptiveclick.protocol import PROB_THRESHOLD

__all__ = ["BUDGETS", "PROB_THRESHOLD", "THRESHOLDS", "Budget", "RunOptions"]


@dataclass(frozen=True)
class Budget:
    """Training and evaluation settings shared by every method.

    Attributes:
        preset: AdaptiveClick preset (its architecture, at ``image_size``).
        image_size: network input size of every learned model (DeepGrow included).
        steps: training iterations of every learned method.
        batch_size: training batch size.
        lr: Adam learning rate.
        decay_at: fraction of the steps after which the learning rate is multiplied by 0.1 (``None``: constant).
        deepgrow_features: ``BasicUNet`` widths of the DeepGrow model.
        max_clicks: NoC click budget per object.
        zoom_in: zoom-in TTA during evaluation.
        flip: flip TTA during evaluation.
        seeds: training seeds.
        max_eval_objects: evaluate at most this many held-out objects (evenly spaced; ``None``: all).
        num_hard_cases: number of hard-case overlay figures.
    """

    preset: str
    image_size: int
    steps: int
    batch_size: int
    lr: float
    decay_at: float | None
    deepgrow_features: tuple[int, ...]
    max_clicks: int
    zoom_in: bool
    flip: bool
    seeds: tuple[int, ...]
    max_eval_objects: int | None
    num_hard_cases: int


BUDGETS: dict[str, Budget] = {
    "quick": Budget(
        preset="small_cpu",
        image_size=128,
        steps=250,
        batch_size=8,
        lr=1e-4,
        decay_at=None,
        deepgrow_features=(32, 32, 64, 128, 256, 32),
        max_clicks=20,
        zoom_in=False,
        flip=False,
        seeds=(0,),
        max_eval_objects=None,
        num_hard_cases=4,
    ),
    "full": Budget(
        preset="vit_b_448",
        image_size=448,
        steps=20_000,
        batch_size=16,
        lr=5e-5,
        decay_at=2 / 3,
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
