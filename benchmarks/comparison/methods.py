# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The registry of compared methods: AdaptiveClick, its loss and head ablations, DeepGrow and classical baselines.

``METHODS`` maps the ``--methods`` key of each method to its :class:`MethodSpec`; the keys are also the stems of the
files each method writes (see :mod:`comparison.layout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["METHODS", "MethodSpec"]


@dataclass(frozen=True)
class MethodSpec:
    """One compared method.

    Attributes:
        key: short name (file names, ``--methods``).
        label: name shown in the table and plots.
        head: model head for learned methods (``"camd"``, ``"mask_fixed"``, ``"deepgrow_unet"``); ``None`` for a
            classical baseline.
        loss: mask loss name of the criterion (learned methods).
        loss_kwargs: constructor arguments of that loss (AFL ablations).
        baseline: ``engines.baselines`` name of a classical method.
    """

    key: str
    label: str
    head: str | None = None
    loss: str | None = None
    loss_kwargs: Mapping[str, Any] = field(default_factory=dict)
    baseline: str | None = None

    @property
    def learned(self) -> bool:
        """Whether the method is trained."""
        return self.baseline is None


METHODS: dict[str, MethodSpec] = {
    spec.key: spec
    for spec in (
        MethodSpec("afl", "AdaptiveClick + AFL", head="camd", loss="afl"),
        MethodSpec("fl", "AdaptiveClick + FL", head="camd", loss="fl"),
        MethodSpec("nfl", "AdaptiveClick + NFL", head="camd", loss="nfl"),
        MethodSpec("bce", "AdaptiveClick + BCE", head="camd", loss="bce"),
        MethodSpec("mask_fixed_nfl", "mask-fixed head + NFL (CAMD off)", head="mask_fixed", loss="nfl"),
        MethodSpec(
            "afl_ada_only", "AdaptiveClick + AFL, ADA only", head="camd", loss="afl", loss_kwargs={"agr": False}
        ),
        MethodSpec(
            "afl_agr_only", "AdaptiveClick + AFL, AGR only", head="camd", loss="afl", loss_kwargs={"ada": False}
        ),
        MethodSpec("deepgrow", "DeepGrow-2D-style BasicUNet (BCE + Dice)", head="deepgrow_unet", loss="bce"),
        MethodSpec("random_walker", "random walker (classical)", baseline="random_walker"),
        MethodSpec("watershed", "watershed (classical)", baseline="watershed"),
    )
}
