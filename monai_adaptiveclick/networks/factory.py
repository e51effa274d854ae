# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Building models: ``create_model`` from a preset name (timm's ``create_model`` pattern) and ``build_model`` from a
saved model's complete ``config``; the head registry (:mod:`~.heads`) picks the class."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch  # noqa: F401 - used by the doctest
from monai.utils import look_up_option

from .adaptiveclick import AdaptiveClick
from .deepgrow import DeepGrow2D
from .heads import get_head
from .presets import PRESETS

__all__ = ["build_model", "create_model", "list_presets"]


def list_presets() -> list[str]:
    """Names of the registered presets."""
    return sorted(PRESETS)


def create_model(preset: str, in_channels: int = 3, head: str = "camd", **overrides) -> AdaptiveClick | DeepGrow2D:
    """Build an AdaptiveClick model from a preset (``networks.presets.PRESETS``).

    ``head="deepgrow_unet"`` builds the DeepGrow-2D-style baseline (:class:`~.deepgrow.DeepGrow2D`) instead; the
    preset then only supplies ``image_size`` and ``overrides`` are ``DeepGrow2D`` keywords (``features`` ...).

    Args:
        preset: ``"tiny"``, ``"small_cpu"``, ``"vit_b_448"`` or ``"vit_h_448"``.
        in_channels: number of IMAGE channels (the model input has ``in_channels + 3``).
        head: ``"camd"``, ``"mask_fixed"`` or ``"deepgrow_unet"``.
        overrides: any ``AdaptiveClick`` (or ``DeepGrow2D``) keyword replacing the preset's value (e.g.
            ``image_size=128``).

    The released presets (``vit_b_448``, ``vit_h_448``) normalise RGB with the ImageNet statistics inside the model;
    with ``in_channels != 3`` that step is dropped (``image_normalization="none"``) unless given explicitly.

    Returns:
        the model (randomly initialised; no weights are ever downloaded).

    Raises:
        ValueError: unknown preset, head or override name.

    Example:
        >>> model = create_model("tiny", in_channels=1, head="mask_fixed")
        >>> model(torch.zeros(2, 4, 64, 64))["pred_masks"].shape
        torch.Size([2, 1, 16, 16])
    """
    config = dict(look_up_option(preset, PRESETS))
    model_class = DeepGrow2D if get_head(head).model == "deepgrow" else AdaptiveClick
    if model_class is DeepGrow2D:
        config = {"image_size": config["image_size"]}
    allowed = set(inspect.signature(model_class).parameters) - {"in_channels", "head"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; valid: {sorted(allowed)}.")
    if in_channels != 3 and config.get("image_normalization") == "imagenet" and "image_normalization" not in overrides:
        config["image_normalization"] = "none"  # ImageNet statistics only describe RGB images
    config.update(overrides)
    return build_model({**config, "in_channels": in_channels, "head": head})


def build_model(config: Mapping[str, Any]) -> AdaptiveClick | DeepGrow2D:
    """Build the model a complete ``config`` (a model's ``.config``) describes; ``head`` picks the class.

    Raises:
        ValueError / TypeError: from the model class for invalid or unknown options.
    """
    config = dict(config)
    if get_head(config.get("head", "camd")).model == "deepgrow":
        config.pop("head")
        return DeepGrow2D(**config)
    return AdaptiveClick(**config)
