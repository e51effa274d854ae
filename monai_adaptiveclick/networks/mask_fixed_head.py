# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Mask-fixed head: the SimpleClick-style all-MLP head (CAMD off; paper Table X ablation, SPEC section 1).

Every pyramid level is mapped by a per-pixel linear layer (1x1 convolution) to a common width, upsampled to stride 4,
concatenated, fused (1x1 convolution + GroupNorm + ReLU) and classified into one mask logit map. No queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbone import group_norm

__all__ = ["MaskFixedHead"]


class MaskFixedHead(nn.Module):
    """All-MLP head over the 4 pyramid levels -> one logit map at stride 4.

    Args:
        in_channels: channels of the pyramid levels (strides 4, 8, 16, 32).
        embed_dim: common width of the per-level projections.
        dropout: dropout before the classifier.

    Example:
        >>> head = MaskFixedHead([16] * 4, embed_dim=32)
        >>> head([torch.randn(1, 16, 16 // s, 16 // s) for s in (1, 2, 4, 8)]).shape
        torch.Size([1, 1, 16, 16])
    """

    def __init__(self, in_channels: Sequence[int], embed_dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError(f"in_channels must list the 4 pyramid levels (strides 4..32), got {list(in_channels)}.")
        self.proj = nn.ModuleList(nn.Conv2d(ch, embed_dim, 1) for ch in in_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(4 * embed_dim, embed_dim, 1, bias=False), group_norm(embed_dim), nn.ReLU(inplace=True)
        )
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(embed_dim, 1, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """``[f4, f8, f16, f32]`` -> mask logits ``[B, 1, H/4, W/4]``."""
        size = features[0].shape[-2:]
        ups = [
            F.interpolate(proj(f), size=size, mode="bilinear", align_corners=False) if i else proj(f)
            for i, (proj, f) in enumerate(zip(self.proj, features, strict=True))
        ]
        return self.classifier(self.dropout(self.fuse(torch.cat(ups, 1))))
