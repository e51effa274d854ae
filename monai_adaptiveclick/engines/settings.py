# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Training settings from the recipes in ``configs/``: the one place where training defaults are written.

``configs/train_defaults.json`` gives every setting of :class:`TrainingSettings` its default value; the other
recipes (``demo``, ``small_cpu_sample``, ``vit_b_sbd``, ``vit_h_cocolvis``, ``app_finetune``) override some of
them. The CLI (``train --recipe``), the bundle (``train.json``'s ``recipe`` and per-setting overrides), the demo,
the benchmarks and the MONAI Label app's train task all build their settings with
:meth:`TrainingSettings.from_recipe`; no training default is written in code.

A recipe file is a flat JSON object whose keys are :class:`TrainingSettings` fields (keys starting with ``_`` are
comments). The same files are valid bundle ``--args_file`` arguments.

Example:
    >>> settings = TrainingSettings.from_recipe("demo", batch_size=4)
    >>> settings.batch_size, settings.lr, settings.model_overrides
    (4, 5e-05, {'image_size': 128})
    >>> settings.milestones()
    []
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TrainingSettings", "list_recipes", "load_recipe", "recipe_dir"]

DEFAULT_RECIPE = "train_defaults"


def recipe_dir() -> Path:
    """The folder of the recipe files: ``configs/`` of the source checkout (or its copy inside an installed wheel).

    Raises:
        FileNotFoundError: neither exists.
    """
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "configs", package.parent / "configs"):
        if (candidate / f"{DEFAULT_RECIPE}.json").is_file():
            return candidate
    raise FileNotFoundError(f"no recipe folder with {DEFAULT_RECIPE}.json next to {package} (configs/ missing).")


def list_recipes() -> list[str]:
    """Names of the recipes in :func:`recipe_dir`."""
    return sorted(p.stem for p in recipe_dir().glob("*.json"))


def _recipe_path(recipe: str | os.PathLike) -> Path:
    text = str(recipe)
    if text.endswith(".json") or os.sep in text:
        path = Path(recipe)
    else:
        path = recipe_dir() / f"{text}.json"
    if not path.is_file():
        known = ", ".join(list_recipes())
        raise FileNotFoundError(f"recipe {text!r} not found ({path}); known recipes: {known}.")
    return path


def load_recipe(recipe: str | os.PathLike) -> dict[str, Any]:
    """The settings a recipe file sets (comment keys starting with ``_`` dropped), not merged with the defaults.

    Args:
        recipe: a recipe name of :func:`list_recipes` or a path to a JSON file.

    Raises:
        FileNotFoundError: an unknown recipe.
        ValueError: a file that is not a JSON object.
    """
    path = _recipe_path(recipe)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"recipe {path} is not valid JSON: {err}") from err
    if not isinstance(content, dict):
        raise ValueError(f"recipe {path} must hold a JSON object, got {type(content).__name__}.")
    return {k: v for k, v in content.items() if not k.startswith("_")}


@dataclass(frozen=True)
class TrainingSettings:
    """Every setting of a training run; the values come from the recipes (module docstring).

    Model: ``preset``, ``in_channels``, ``head`` (``networks.list_heads()``), ``loss`` (mask loss name),
    ``loss_kwargs`` (its constructor arguments, e.g. ``{"agr": false}``), ``model_overrides`` (``create_model``
    keywords, e.g. ``{"image_size": 128}``).
    Optimisation (SPEC section 4): ``epochs``, ``batch_size``, ``lr`` (Adam), ``lr_milestones`` (epochs where the lr
    is multiplied by ``lr_gamma``; ``null`` = 2/3 of the epochs, ``[]`` = constant), ``max_extra_clicks`` (N of the
    ``U{0..N}`` simulated clicks), ``max_initial_clicks``, ``grad_clip`` (``null`` = off), ``amp`` (CUDA autocast).
    Augmentation (``transforms.training_augmentation``): ``p_full``, ``scale_range``, ``flip_prob``,
    ``gamma_range``, ``intensity_prob``, ``intensity_scale``, ``intensity_shift``; ``min_object_area`` (smaller
    objects are not trained on).
    Run: ``num_workers``, ``seed``, ``max_steps`` / ``max_seconds`` (stop early; ``null`` = no limit),
    ``checkpoint_interval`` (epochs), ``checkpoints_kept``.
    Data (bundle and CLI): ``dataset``, ``dataset_dir``, ``split``, ``max_train_items``; ``synthetic_share`` (the
    share of each epoch's samples drawn fresh from the synthetic engine, ``data.SynthesizeObjectd``; 0 = none) and
    ``synthetic_options`` (``data.SynthesisOptions`` fields); validation ``val_dataset``
    (``null`` = none), ``val_dataset_dir``, ``val_split``, ``val_max_items`` (0 = none), ``val_interval``,
    ``val_max_clicks``; ``init_checkpoint`` (fine-tune from a model file), ``pretrained_backbone`` (MAE / timm ViT).
    """

    preset: str
    in_channels: int
    head: str
    loss: str
    loss_kwargs: dict
    model_overrides: dict
    epochs: int
    batch_size: int
    lr: float
    lr_milestones: list | None
    lr_gamma: float
    max_extra_clicks: int
    max_initial_clicks: int
    grad_clip: float | None
    amp: bool
    p_full: float
    scale_range: list
    flip_prob: float
    gamma_range: list
    intensity_prob: float
    intensity_scale: float
    intensity_shift: float
    min_object_area: int
    num_workers: int
    seed: int
    max_steps: int | None
    max_seconds: float | None
    checkpoint_interval: int
    checkpoints_kept: int
    dataset: str
    dataset_dir: str | None
    split: str | None
    max_train_items: int | None
    synthetic_share: float
    synthetic_options: dict
    val_dataset: str | None
    val_dataset_dir: str | None
    val_split: str | None
    val_max_items: int
    val_interval: int
    val_max_clicks: int
    init_checkpoint: str | None
    pretrained_backbone: str | None

    def __post_init__(self) -> None:
        positive = ("in_channels", "epochs", "batch_size", "max_initial_clicks", "checkpoint_interval")
        positive += ("checkpoints_kept", "val_interval", "val_max_clicks", "min_object_area")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("max_extra_clicks", "num_workers", "val_max_items"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        for name in ("max_steps", "max_seconds", "max_train_items"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or null, got {value}.")
        if not 0 <= self.synthetic_share < 1:
            raise ValueError(f"synthetic_share must lie in [0, 1), got {self.synthetic_share}.")
        if self.init_checkpoint and self.pretrained_backbone:
            raise ValueError("give init_checkpoint or pretrained_backbone, not both (the checkpoint holds a backbone).")
        for name in ("scale_range", "gamma_range"):
            value = getattr(self, name)
            if len(value) != 2 or not 0 < value[0] <= value[1]:
                raise ValueError(f"{name} must be [low, high] with 0 < low <= high, got {value}.")

    @classmethod
    def field_names(cls) -> list[str]:
        """The setting names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_recipe(cls, recipe: str | os.PathLike = DEFAULT_RECIPE, **overrides: Any) -> TrainingSettings:
        """``train_defaults`` <- the recipe <- ``overrides`` (``None`` values are skipped: "the recipe's value").

        Raises:
            ValueError: an unknown setting name (all are listed) or an invalid value.
            FileNotFoundError: an unknown recipe.
        """
        values = load_recipe(DEFAULT_RECIPE)
        names = cls.field_names()
        missing = sorted(set(names) - set(values))
        if missing:
            raise ValueError(f"{_recipe_path(DEFAULT_RECIPE)} misses settings {missing}.")
        for source, layer in ((str(recipe), load_recipe(recipe)), ("overrides", overrides)):
            unknown = sorted(set(layer) - set(names))
            if unknown:
                raise ValueError(f"unknown training setting(s) {unknown} in {source}; valid settings: {names}.")
            values.update({k: v for k, v in layer.items() if v is not None})
        return cls(**{name: values[name] for name in names})

    def replace(self, **changes: Any) -> TrainingSettings:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def milestones(self) -> list[int]:
        """The lr milestones in epochs (``lr_milestones`` or 2/3 of the epochs, the paper's epoch 40 of 60)."""
        if self.lr_milestones is None:
            return [max(1, round(self.epochs * 2 / 3))]
        return [int(m) for m in self.lr_milestones]

    def augmentation_options(self) -> dict[str, Any]:
        """Keyword arguments of ``transforms.training_augmentation`` (besides the image size)."""
        return {
            "p_full": self.p_full,
            "scale_range": tuple(self.scale_range),
            "flip_prob": self.flip_prob,
            "gamma_range": tuple(self.gamma_range),
            "intensity_prob": self.intensity_prob,
            "intensity_scale": self.intensity_scale,
            "intensity_shift": self.intensity_shift,
        }
