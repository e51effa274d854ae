# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""A DeepGrow-2D-style click model: MONAI ``BasicUNet`` on ``[image, positive, negative]`` guidance.

DeepGrow (Sakinis et al., 2019), the incumbent interactive model of MONAI Label, is a plain U-Net whose input is the
image plus one positive and one negative click map; it has no previous-mask channel and no queries. This module
builds that baseline so it plugs into this project's harness unchanged (issue 8, SPEC section 5 comparison):

- it accepts the standard AdaptiveClick input ``[B, C_img + 3, H, W]`` (image, previous mask, positive disks,
  negative disks; ARCHITECTURE "Guidance channels") and **drops the previous-mask channel**;
- ``forward`` returns ``{"pred_masks": logits [B, 1, H, W]}`` (full resolution), the output layout of the mask-fixed
  head, so :class:`~monai_adaptiveclick.losses.MaskFixedCriterion` trains it (the target is compared at the logits'
  resolution);
- ``predict``, ``config``, ``image_size``, ``in_channels``, ``head`` and ``num_queries`` follow the ``AdaptiveClick``
  API that the Predictor, ``save_model`` / ``load_model`` and ``run_training`` use.

Build it with ``networks.create_model(preset, head="deepgrow_unet")`` (the preset only supplies ``image_size``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.nets import BasicUNet

from .inputs import GUIDANCE_CHANNELS, check_network_input

__all__ = ["DEEPGROW_HEAD", "DeepGrow2D"]

DEEPGROW_HEAD = "deepgrow_unet"
_PAD_MULTIPLE = 16  # BasicUNet halves the resolution 4 times


class DeepGrow2D(nn.Module):
    """DeepGrow-2D-style U-Net: ``BasicUNet(2D, C_img + 2 -> 1)`` on image + click maps, previous mask ignored.

    Inputs of any spatial size are zero-padded (bottom / right) to a multiple of 16 and the logits cropped back.

    Args:
        in_channels: image channels ``C_img`` (the input has ``C_img + 3`` channels, the U-Net sees ``C_img + 2``).
        image_size: network input size (square) the Predictor resizes to.
        features: the six ``BasicUNet`` widths (4 encoder levels, bottleneck, last decoder level).
        dropout: ``BasicUNet`` dropout.

    Example:
        >>> model = DeepGrow2D(in_channels=1, image_size=64, features=(8, 8, 16, 32, 64, 8))
        >>> model(torch.zeros(2, 4, 64, 64))["pred_masks"].shape
        torch.Size([2, 1, 64, 64])
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 256,
        features: Sequence[int] = (32, 32, 64, 128, 256, 32),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}.")
        if image_size < _PAD_MULTIPLE:
            raise ValueError(f"image_size must be >= {_PAD_MULTIPLE}, got {image_size}.")
        if len(features) != 6 or any(int(f) < 1 for f in features):
            raise ValueError(f"features must hold 6 positive BasicUNet widths, got {list(features)}.")
        self.config = {
            "head": DEEPGROW_HEAD,
            "in_channels": int(in_channels),
            "image_size": int(image_size),
            "features": [int(f) for f in features],
            "dropout": float(dropout),
        }
        self.in_channels = int(in_channels)
        self.image_size = int(image_size)
        self.head = DEEPGROW_HEAD
        self.unet = BasicUNet(
            spatial_dims=2,
            in_channels=self.in_channels + GUIDANCE_CHANNELS - 1,
            out_channels=1,
            features=tuple(int(f) for f in features),
            dropout=float(dropout),
        )

    @property
    def num_queries(self) -> int:
        """No candidate masks (a single logit map)."""
        return 0

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` for a wrong rank / channel count, a non-float tensor or NaN values."""
        check_network_input(x, self.in_channels)

    def forward(self, x: torch.Tensor) -> dict:
        """Training forward.

        Args:
            x: ``[B, C_img + 3, H, W]`` (image, previous mask, positive disks, negative disks).

        Returns:
            ``{"pred_masks": [B, 1, H, W]}`` mask logits at the input size.
        """
        self.check_input(x)
        height, width = int(x.shape[-2]), int(x.shape[-1])
        image_and_clicks = torch.cat([x[:, : self.in_channels], x[:, self.in_channels + 1 :]], dim=1)
        pad_h, pad_w = -height % _PAD_MULTIPLE, -width % _PAD_MULTIPLE
        if pad_h or pad_w:
            image_and_clicks = F.pad(image_and_clicks, (0, pad_w, 0, pad_h))
        return {"pred_masks": self.unet(image_and_clicks)[..., :height, :width]}

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inference outputs at the input size: ``(prob [B, 1, H, W], candidates [B, 0, H, W], scores [B, 0])``."""
        prob = self(x)["pred_masks"].sigmoid()
        batch, size = x.shape[0], prob.shape[-2:]
        return prob, prob.new_zeros(batch, 0, *size), prob.new_zeros(batch, 0)
