# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Pixel-level multi-scale mask transformer decoder (PMMD, paper section III-B1, SPEC section 1).

The 1/8, 1/16 and 1/32 pyramid maps (paper F0, F1, F2) are projected to ``d_model``, refined jointly by a stack of
multi-scale deformable attention encoder layers (F0', F1', F2'), and the refined 1/8 map is upsampled and added to the
lateral 1/4 pyramid map (FPN step); a 1x1 convolution gives the per-pixel mask embedding F3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbone import group_norm
from .ms_deform_attn import MSDeformAttn

__all__ = ["FPN_STYLES", "PositionEmbeddingSine", "DeformableEncoderLayer", "MSDeformAttnPixelDecoder"]

FPN_STYLES = ("plain", "released")


class PositionEmbeddingSine(nn.Module):
    """2-D sine / cosine position embedding over normalised coordinates (DETR), ``[B, C, H, W] -> [B, C, H, W]``.

    Args:
        channels: output channels (even; half encode y, half encode x).
        temperature: frequency base.
    """

    def __init__(self, channels: int, temperature: float = 10000.0) -> None:
        super().__init__()
        if channels % 2 != 0:
            raise ValueError(f"channels must be even, got {channels}.")
        self.half = channels // 2
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the embedding for the spatial grid of ``x`` (its values are not used)."""
        batch, _, height, width = x.shape
        eps, scale = 1e-6, 2.0 * math.pi
        y = torch.arange(1, height + 1, dtype=torch.float32, device=x.device) / (height + eps) * scale
        xs = torch.arange(1, width + 1, dtype=torch.float32, device=x.device) / (width + eps) * scale
        dim_t = torch.arange(self.half, dtype=torch.float32, device=x.device)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.half)
        pos_y = y[:, None] / dim_t  # [H, half]
        pos_x = xs[:, None] / dim_t  # [W, half]
        pos_y = torch.stack([pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()], dim=2).flatten(1)
        pos_x = torch.stack([pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()], dim=2).flatten(1)
        pos = torch.cat(
            [pos_y[:, None, :].expand(height, width, self.half), pos_x[None, :, :].expand(height, width, self.half)],
            dim=-1,
        )
        return pos.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1).to(x.dtype)


class DeformableEncoderLayer(nn.Module):
    """Post-norm encoder layer: multi-scale deformable self-attention, then FFN (Deformable DETR).

    Args:
        d_model: feature width.
        ffn_dim: FFN hidden width.
        levels: number of levels.
        heads: attention heads.
        points: sampling points per head and level.
        dropout: dropout rate.
    """

    def __init__(
        self, d_model: int, ffn_dim: int, levels: int = 3, heads: int = 8, points: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, levels, heads, points)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, src: torch.Tensor, pos: torch.Tensor, reference_points: torch.Tensor, shapes: Sequence[tuple[int, int]]
    ) -> torch.Tensor:
        """``src``, ``pos``: ``[B, S, d]``; ``reference_points``: ``[B, S, levels, 2]``. Returns ``[B, S, d]``."""
        src = self.norm1(src + self.dropout(self.self_attn(src + pos, reference_points, src, shapes)))
        return self.norm2(src + self.dropout(self.ffn(src)))


def _reference_points(shapes: Sequence[tuple[int, int]], batch: int, levels: int, device: torch.device) -> torch.Tensor:
    """Pixel centres of every level, normalised ``(x, y)`` in ``[0, 1]``: ``[B, S, levels, 2]`` (no padding, so the
    same normalised point is used on every level)."""
    refs = []
    for h, w in shapes:
        ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        refs.append(torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], -1))
    ref = torch.cat(refs, 0)  # [S, 2]
    return ref[None, :, None, :].expand(batch, -1, levels, -1)


class MSDeformAttnPixelDecoder(nn.Module):
    """PMMD: deformable-attention encoder over strides 8/16/32 + FPN step to stride 4 + mask-feature projection.

    Args:
        in_channels: channels of the pyramid levels (strides 4, 8, 16, 32).
        d_model: encoder width (256 in the paper).
        num_layers: encoder layers (6 in the paper).
        heads: deformable attention heads.
        points: sampling points per head and level.
        ffn_dim: FFN hidden width (4 * d_model in the paper presets).
        mask_dim: channels of the per-pixel mask features F3.
        fpn_style: the 1/4 FPN step. ``"plain"`` (the project's default): lateral 1x1 conv without bias -> GN, output
            3x3 conv without bias -> GN -> ReLU. ``"released"`` (the authors' models, SPEC section 10 item 6): lateral
            1x1 conv with bias -> GN -> ReLU, output 3x3 conv with bias -> GN -> ReLU.

    Example:
        >>> dec = MSDeformAttnPixelDecoder([16] * 4, 32, num_layers=1, heads=4, points=2, ffn_dim=64, mask_dim=32)
        >>> feats = [torch.randn(1, 16, 16 // s, 16 // s) for s in (1, 2, 4, 8)]
        >>> mask_features, multi_scale = dec(feats)
        >>> mask_features.shape, [m.shape[-1] for m in multi_scale]
        (torch.Size([1, 32, 16, 16]), [2, 4, 8])
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        d_model: int = 256,
        num_layers: int = 6,
        heads: int = 8,
        points: int = 4,
        ffn_dim: int = 1024,
        mask_dim: int = 256,
        fpn_style: str = "plain",
    ) -> None:
        super().__init__()
        if fpn_style not in FPN_STYLES:
            raise ValueError(f"fpn_style must be one of {FPN_STYLES}, got {fpn_style!r}.")
        if len(in_channels) != 4:
            raise ValueError(f"in_channels must list the 4 pyramid levels (strides 4..32), got {list(in_channels)}.")
        self.levels = 3
        # projections of strides 32, 16, 8 (coarse to fine, the order the decoder consumes them)
        self.input_proj = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(ch, d_model, 1), group_norm(d_model)) for ch in in_channels[:0:-1]]
        )
        self.level_embed = nn.Parameter(torch.zeros(self.levels, d_model))
        nn.init.normal_(self.level_embed)
        self.pos_embed = PositionEmbeddingSine(d_model)
        self.layers = nn.ModuleList(
            [DeformableEncoderLayer(d_model, ffn_dim, self.levels, heads, points) for _ in range(num_layers)]
        )
        released = fpn_style == "released"
        lateral = [nn.Conv2d(in_channels[0], d_model, 1, bias=released), group_norm(d_model)]
        self.lateral = nn.Sequential(*lateral, *([nn.ReLU(inplace=True)] if released else []))
        self.output = nn.Sequential(
            nn.Conv2d(d_model, d_model, 3, padding=1, bias=released), group_norm(d_model), nn.ReLU(inplace=True)
        )
        self.mask_features = nn.Conv2d(d_model, mask_dim, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Decode.

        Args:
            features: pyramid ``[f4, f8, f16, f32]``.

        Returns:
            ``(mask_features [B, mask_dim, H/4, W/4], [F2' (1/32), F1' (1/16), F0' (1/8)])``, each refined level
            ``[B, d_model, h, w]``, coarse to fine.
        """
        coarse_to_fine = list(features[:0:-1])
        srcs, pos, shapes = [], [], []
        for level, (x, proj) in enumerate(zip(coarse_to_fine, self.input_proj, strict=True)):
            y = proj(x)
            shapes.append((int(y.shape[-2]), int(y.shape[-1])))
            srcs.append(y.flatten(2).transpose(1, 2))
            pos.append((self.pos_embed(y) + self.level_embed[level].view(1, -1, 1, 1)).flatten(2).transpose(1, 2))
        src, pos_all = torch.cat(srcs, 1), torch.cat(pos, 1)
        ref = _reference_points(shapes, src.shape[0], self.levels, src.device).to(src.dtype)
        for layer in self.layers:
            src = layer(src, pos_all, ref, shapes)
        outs = [
            s.transpose(1, 2).reshape(src.shape[0], -1, h, w)
            for s, (h, w) in zip(src.split([h * w for h, w in shapes], 1), shapes, strict=True)
        ]
        fine = self.lateral(features[0])
        fine = self.output(fine + F.interpolate(outs[-1], size=fine.shape[-2:], mode="bilinear", align_corners=False))
        return self.mask_features(fine), outs
