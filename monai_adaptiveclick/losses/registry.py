# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Name -> mask loss registry, so configs can name any loss of paper Table VI (``"loss": "afl"``, ``"nfl"``, ...)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from monai.utils import look_up_option

from monai_adaptiveclick.losses.adaptive_focal import AdaptiveFocalLoss, PerMaskLoss
from monai_adaptiveclick.losses.comparison import (
    BalancedCrossEntropyLoss,
    BinaryCrossEntropyLoss,
    MaskDiceLoss,
    NormalizedFocalLoss,
    PolyFocalLoss,
    SigmoidFocalLoss,
    SoftIoULoss,
    WeightedBCELoss,
)

__all__ = ["LOSSES", "get_loss"]

#: Registered loss names (paper Table VI plus Dice) and their classes; class defaults are the Table VI settings.
LOSSES: MappingProxyType[str, type[PerMaskLoss]] = MappingProxyType(
    {
        "afl": AdaptiveFocalLoss,
        "bce": BinaryCrossEntropyLoss,
        "wbce": WeightedBCELoss,
        "balanced_ce": BalancedCrossEntropyLoss,
        "soft_iou": SoftIoULoss,
        "fl": SigmoidFocalLoss,
        "nfl": NormalizedFocalLoss,
        "pl": PolyFocalLoss,
        "dice": MaskDiceLoss,
    }
)


def get_loss(name: str, **kwargs: Any) -> PerMaskLoss:
    """Build a registered mask loss by name.

    Args:
        name: one of ``LOSSES`` (case-insensitive): ``"afl"``, ``"bce"``, ``"wbce"``, ``"balanced_ce"``,
            ``"soft_iou"``, ``"fl"``, ``"nfl"``, ``"pl"``, ``"dice"``.
        kwargs: constructor arguments of that loss (e.g. ``ada=False`` for AFL, ``reduction="none"``).

    Returns:
        the loss module; called as ``loss(logits, target)`` or ``loss(logits, target, valid)`` to leave out the
        pixels where ``valid`` is False (see :class:`~monai_adaptiveclick.losses.adaptive_focal.PerMaskLoss`).

    Raises:
        ValueError: unknown name (the message lists the choices).

    Example:
        >>> import torch
        >>> loss = get_loss("afl", agr=False)
        >>> logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
        >>> value = loss(logits, target, valid=torch.rand(2, 1, 8, 8) > 0.2)
    """
    if not isinstance(name, str):
        raise ValueError(f"loss name must be a string, one of {sorted(LOSSES)}; got {name!r}.")
    loss_class = look_up_option(name.lower(), LOSSES)
    return loss_class(**kwargs)
