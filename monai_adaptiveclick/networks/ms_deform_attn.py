# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Multi-scale deformable attention (Zhu et al., Deformable DETR, ICLR 2021), pure PyTorch with ``grid_sample``.

Used by the pixel-level multi-scale mask transformer decoder (PMMD, paper section III-B1, SPEC section 1). No compiled
extension: the sampling is done level by level with bilinear ``grid_sample`` (zeros outside the map).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MSDeformAttn", "ms_deform_attn_core"]


def ms_deform_attn_core(
    value: torch.Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Sample every level at the given locations and sum the samples with the attention weights.

    Args:
        value: ``[B, S, heads, head_dim]`` with ``S = sum(h * w)`` over the levels (row-major per level).
        spatial_shapes: ``(h, w)`` of each level, in the order the levels are concatenated in ``value``.
        sampling_locations: ``[B, Lq, heads, levels, points, 2]`` normalised ``(x, y)`` in ``[0, 1]``
            (0 and 1 are the outer edges of the map; pixel ``j`` has its centre at ``(j + 0.5) / w``).
        attention_weights: ``[B, Lq, heads, levels, points]`` (already normalised over levels * points).

    Returns:
        ``[B, Lq, heads * head_dim]``.
    """
    batch, _, heads, head_dim = value.shape
    _, num_queries, _, levels, points, _ = sampling_locations.shape
    if len(spatial_shapes) != levels:
        raise ValueError(f"{len(spatial_shapes)} spatial shapes for {levels} levels in sampling_locations.")
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2.0 * sampling_locations - 1.0  # grid_sample convention, align_corners=False
    sampled = []
    for level, (h, w) in enumerate(spatial_shapes):
        v = values[level].permute(0, 2, 3, 1).reshape(batch * heads, head_dim, h, w)
        g = grids[:, :, :, level].transpose(1, 2).reshape(batch * heads, num_queries, points, 2)
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    stacked = torch.stack(sampled, dim=-2).flatten(-2)  # [B*heads, head_dim, Lq, levels*points]
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, num_queries, levels * points)
    out = (stacked * weights).sum(-1)  # [B*heads, head_dim, Lq]
    return out.view(batch, heads * head_dim, num_queries).transpose(1, 2)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention module.

    Each query predicts ``points`` sampling offsets per head and level around its reference point and a softmax
    weight per sample; the output is the weighted sum of the bilinearly sampled value projections.

    Args:
        d_model: feature width.
        levels: number of feature levels.
        heads: attention heads (``d_model`` divisible by it).
        points: sampling points per head and level.

    Example:
        >>> attn = MSDeformAttn(32, levels=2, heads=4, points=2)
        >>> shapes = [(4, 4), (2, 2)]
        >>> src = torch.randn(1, 20, 32)
        >>> ref = torch.rand(1, 20, 2, 2)
        >>> attn(src, ref, src, shapes).shape
        torch.Size([1, 20, 32])
    """

    def __init__(self, d_model: int = 256, levels: int = 3, heads: int = 8, points: int = 4) -> None:
        super().__init__()
        if d_model % heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads}).")
        self.d_model, self.levels, self.heads, self.points = d_model, levels, heads, points
        self.sampling_offsets = nn.Linear(d_model, heads * levels * points * 2)
        self.attention_weights = nn.Linear(d_model, heads * levels * points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR initialisation: offsets start on a ring of directions (one per head), growing with the
        point index; uniform attention weights; Xavier projections."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.heads, dtype=torch.float32) * (2.0 * math.pi / self.heads)
        directions = torch.stack([angles.cos(), angles.sin()], -1)
        directions = directions / directions.abs().max(-1, keepdim=True).values
        scale = torch.arange(1, self.points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        bias = directions.view(self.heads, 1, 1, 2).repeat(1, self.levels, self.points, 1) * scale
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for layer in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> torch.Tensor:
        """Attend.

        Args:
            query: ``[B, Lq, d_model]`` (with position embedding added).
            reference_points: ``[B, Lq, levels, 2]`` normalised ``(x, y)`` in ``[0, 1]``.
            value: ``[B, S, d_model]``, the flattened levels.
            spatial_shapes: ``(h, w)`` per level.

        Returns:
            ``[B, Lq, d_model]``.
        """
        batch, num_queries, _ = query.shape
        total = sum(h * w for h, w in spatial_shapes)
        if value.shape[1] != total:
            raise ValueError(f"value has {value.shape[1]} tokens but the spatial shapes give {total}.")
        v = self.value_proj(value).view(batch, total, self.heads, self.d_model // self.heads)
        offsets = self.sampling_offsets(query).view(batch, num_queries, self.heads, self.levels, self.points, 2)
        weights = self.attention_weights(query).view(batch, num_queries, self.heads, self.levels * self.points)
        weights = weights.softmax(-1).view(batch, num_queries, self.heads, self.levels, self.points)
        normaliser = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=query.dtype, device=query.device)
        locations = reference_points[:, :, None, :, None, :] + offsets / normaliser[None, None, None, :, None, :]
        return self.output_proj(ms_deform_attn_core(v, spatial_shapes, locations, weights))
