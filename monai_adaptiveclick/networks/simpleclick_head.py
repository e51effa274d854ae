# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The SimpleClick v1.0 segmentation head (SPEC section 10; Liu et al., SimpleClick, ICCV 2023), as released.

The head of the authors' ``PlainVitModel`` (their ``SwinTransfomerSegHead`` built from mmcv ``ConvModule``s with
``upsample='x1'``): every pyramid level goes through a 1x1 convolution with bias and a ReLU, is resized bilinearly
(align_corners=False) to the 1/4 level, the four maps are concatenated, fused by a 1x1 convolution with bias and a
ReLU, and ``conv_seg`` (1x1, bias) gives one logit map (dropout 0.1 before it, identity at inference). The model
then upsamples the logits to the input with align_corners=True. It differs from :class:`~.mask_fixed_head.MaskFixedHead`
(no ReLU after the projections, fusion without bias but with GroupNorm), hence a separate head (``head="simpleclick"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SimpleClickHead"]


class SimpleClickHead(nn.Module):
    """SimpleClick v1.0 head: per-level 1x1 conv + ReLU, resize to 1/4, fuse (1x1 conv + ReLU), ``conv_seg``.

    Args:
        in_channels: channels of the 4 pyramid levels (fine to coarse).
        channels: the common width (256 in the released models).
        dropout: dropout (``Dropout2d``) before ``conv_seg``, 0.1 as released.

    Example:
        >>> head = SimpleClickHead([1, 2, 4, 8], channels=16)
        >>> head([torch.randn(1, c, 16 // s, 16 // s) for c, s in zip([1, 2, 4, 8], (1, 2, 4, 8))]).shape
        torch.Size([1, 1, 16, 16])
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError(f"in_channels must list the 4 pyramid levels, got {list(in_channels)}.")
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(int(c), channels, 1), nn.ReLU(inplace=True)) for c in in_channels
        )
        self.fusion = nn.Sequential(nn.Conv2d(4 * channels, channels, 1), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(channels, 1, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """``[f4, f8, f16, f32]`` -> logits ``[B, 1, h4, w4]`` at the size of ``f4``."""
        size = features[0].shape[-2:]
        maps = [
            F.interpolate(conv(f), size=size, mode="bilinear", align_corners=False)
            for conv, f in zip(self.convs, features, strict=True)
        ]
        return self.conv_seg(self.dropout(self.fusion(torch.cat(maps, 1))))
