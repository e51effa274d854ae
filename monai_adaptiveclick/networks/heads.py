# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The registry of decoder heads / architectures: the one list the CLI, the MONAI Label app and the criterion ask.

Each entry says which model class builds the head, whether its output carries per-query candidates, whether it has
a ViT backbone (so that MAE / timm weights apply), and which training criterion matches its output
(``"matched"``: Hungarian matching over queries, paper eq. 21-22; ``"single_mask"``: one logit map).

Example:
    >>> list_heads()
    ['camd', 'deepgrow_unet', 'mask_fixed', 'simpleclick']
    >>> get_head("mask_fixed").criterion
    'single_mask'
"""

from __future__ import annotations

from dataclasses import dataclass

from monai.utils import look_up_option

__all__ = ["HEADS", "HeadSpec", "adaptiveclick_heads", "get_head", "list_heads"]


@dataclass(frozen=True)
class HeadSpec:
    """What the rest of the package needs to know about a head.

    Attributes:
        name: the registry name (``create_model(head=...)``).
        model: ``"adaptiveclick"`` (:class:`~.adaptiveclick.AdaptiveClick`) or ``"deepgrow"``
            (:class:`~.deepgrow.DeepGrow2D`).
        criterion: ``"matched"`` or ``"single_mask"`` (see the module docstring).
        has_queries: the model returns ranked per-query candidate masks.
        vit_backbone: the model has a ViT backbone that pretrained MAE / timm weights fit.
        description: one line for ``--help`` texts and the app's info.
    """

    name: str
    model: str
    criterion: str
    has_queries: bool
    vit_backbone: bool
    description: str


HEADS: dict[str, HeadSpec] = {
    spec.name: spec
    for spec in (
        HeadSpec("camd", "adaptiveclick", "matched", True, True, "AdaptiveClick: PMMD + click-aware mask decoder"),
        HeadSpec("mask_fixed", "adaptiveclick", "single_mask", False, True, "SimpleClick-style mask-fixed head"),
        HeadSpec("simpleclick", "adaptiveclick", "single_mask", False, True, "SimpleClick v1.0 head, as released"),
        HeadSpec("deepgrow_unet", "deepgrow", "single_mask", False, False, "DeepGrow-2D-style U-Net baseline"),
    )
}


def get_head(name: str) -> HeadSpec:
    """The :class:`HeadSpec` of ``name``.

    Raises:
        ValueError: an unknown head (the message lists the registered ones).
    """
    return look_up_option(name, HEADS)


def list_heads() -> list[str]:
    """Names of the registered heads, sorted."""
    return sorted(HEADS)


def adaptiveclick_heads() -> tuple[str, ...]:
    """Names of the heads the :class:`~.adaptiveclick.AdaptiveClick` class builds."""
    return tuple(name for name, spec in HEADS.items() if spec.model == "adaptiveclick")
