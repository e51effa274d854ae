# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""One-tensor-in / one-tensor-out wrapper for deployment (MONAI ``verify_net_in_out``, ``ckpt_export``,
``convert_to_torchscript``; SPEC section 7).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .adaptiveclick import AdaptiveClick
from .deepgrow import DeepGrow2D

__all__ = ["AdaptiveClickExportWrapper"]


class AdaptiveClickExportWrapper(nn.Module):
    """``[B, C_img + 3, H, W]`` -> mask logits ``[B, 1, H, W]``.

    CAMD: ``logit(P)`` of the clamped final probability P (SPEC section 1; clamped to ``[1e-6, 1 - 1e-6]`` before the
    logit, so ``sigmoid`` of the output reproduces P up to that clamp); with ``final_combination="logit_sum"`` the
    summed logits themselves. Mask-fixed / SimpleClick heads: their upsampled logits.
    ``DeepGrow2D``: its logits (already at the input size).

    The traced path has no data-dependent Python control flow (the model's NaN check is skipped while tracing), so
    ``torch.jit.trace`` gives a graph for the traced input size; trace at the size you deploy (``model.image_size``).

    Args:
        model: an ``AdaptiveClick`` (or ``DeepGrow2D``) model.

    Example:
        >>> from monai_adaptiveclick.networks import create_model
        >>> net = AdaptiveClickExportWrapper(create_model("tiny", in_channels=1)).eval()
        >>> net(torch.zeros(1, 4, 64, 64)).shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(self, model: AdaptiveClick | DeepGrow2D, eps: float = 1e-6) -> None:
        super().__init__()
        if not isinstance(model, (AdaptiveClick, DeepGrow2D)):
            raise ValueError(f"expected an AdaptiveClick or DeepGrow2D model, got {type(model).__name__}.")
        self.model = model
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return mask logits at the input size."""
        size = (int(x.shape[-2]), int(x.shape[-1]))
        outputs = self.model(x)
        if isinstance(self.model, DeepGrow2D):
            return outputs["pred_masks"]
        logits = self.model.final_logits(outputs, size)  # single-mask heads and "logit_sum": exact logits
        if logits is not None:
            return logits
        return torch.logit(self.model.final_probability(outputs, size), eps=self.eps)
