# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Click-guided plain ViT backbone and the simple feature pyramid (SPEC section 1, paper section III-B "data embedding"
and "feature encoding").

The image patches and the three guidance channels (previous mask, positive clicks, negative clicks) are embedded by two
separate patch embeddings (kernel = stride = patch); the guidance tokens are **added** to the image tokens, then the
absolute position embedding is added. The transformer blocks are timm's windowed-attention blocks
(``timm.models.vision_transformer_sam.Block``, ViTDet / SAM style) with global attention at a few blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import PatchEmbed, resample_abs_pos_embed_nhwc
from timm.layers.format import Format
from timm.models.vision_transformer_sam import Block

__all__ = ["ClickGuidedViT", "ReleasedSimpleFPN", "SimpleFeaturePyramid", "group_norm", "released_global_blocks"]


def group_norm(channels: int, max_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= ``max_groups`` that divides ``channels``."""
    return nn.GroupNorm(math.gcd(max_groups, channels), channels)


class ClickGuidedViT(nn.Module):
    """Plain ViT with windowed attention whose patch tokens are fused with a guidance patch embedding.

    Key names follow timm / MAE (``patch_embed.proj``, ``pos_embed``, ``blocks.{i}``, ``norm``) so that MAE and timm
    ``VisionTransformer`` checkpoints map onto it directly (see ``checkpoint.load_pretrained_backbone``).

    Args:
        in_channels: number of image channels (the guidance embedding always takes 3 channels).
        img_size: image size the position embedding is defined for (it is resampled bicubically for other sizes).
        patch_size: patch size (kernel = stride of both patch embeddings).
        embed_dim: token width.
        depth: number of transformer blocks.
        num_heads: attention heads per block.
        mlp_ratio: MLP hidden width / ``embed_dim``.
        window_size: window side in tokens for windowed blocks (0 = all blocks global).
        global_attn_indexes: 0-based indexes of the blocks using global attention.
        drop_path_rate: stochastic depth rate (linear over the blocks).
        guidance_channels: number of guidance channels (3: prev mask, positive clicks, negative clicks).
        final_norm: apply a LayerNorm after the last block (the project's default). The authors' released models
            have none (SPEC section 10, item 2): ``False`` gives ``norm = Identity`` and no ``norm.*`` weights.

    Example:
        >>> vit = ClickGuidedViT(1, 64, embed_dim=64, depth=2, num_heads=2, window_size=2, global_attn_indexes=(1,))
        >>> vit(torch.zeros(1, 1, 64, 64), torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 64, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        img_size: int = 448,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        window_size: int = 14,
        global_attn_indexes: Sequence[int] = (5, 11),
        drop_path_rate: float = 0.0,
        guidance_channels: int = 3,
        final_norm: bool = True,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}.")
        if img_size % patch_size != 0:
            raise ValueError(f"img_size ({img_size}) must be a multiple of patch_size ({patch_size}).")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads}).")
        bad = [i for i in global_attn_indexes if not 0 <= i < depth]
        if bad:
            raise ValueError(f"global_attn_indexes {bad} are outside the {depth} blocks.")
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        grid = img_size // patch_size
        embed = partial(PatchEmbed, img_size=img_size, patch_size=patch_size, embed_dim=embed_dim)
        self.patch_embed = embed(in_chans=in_channels, output_fmt=Format.NHWC, strict_img_size=False)
        self.guidance_embed = embed(in_chans=guidance_channels, output_fmt=Format.NHWC, strict_img_size=False)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(
            *[
                Block(
                    dim=embed_dim,
                    num_heads=num_heads,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=True,
                    drop_path=rates[i],
                    norm_layer=norm_layer,
                    window_size=0 if i in global_attn_indexes else window_size,
                    input_size=(grid, grid),
                )
                for i in range(depth)
            ]
        )
        self.norm = norm_layer(embed_dim) if final_norm else nn.Identity()

    def forward(self, image: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """Embed and encode.

        Args:
            image: ``[B, in_channels, H, W]``, H and W multiples of ``patch_size``.
            guidance: ``[B, 3, H, W]`` (prev mask, positive clicks, negative clicks).

        Returns:
            the last token map ``[B, embed_dim, H / patch, W / patch]``.
        """
        x = self.patch_embed(image) + self.guidance_embed(guidance)  # [B, h, w, D], guidance added before pos embed
        x = x + resample_abs_pos_embed_nhwc(self.pos_embed, [x.shape[1], x.shape[2]])
        x = self.blocks(x)
        return self.norm(x).permute(0, 3, 1, 2)


class SimpleFeaturePyramid(nn.Module):
    """ViTDet simple feature pyramid: the last ViT map -> strides 4, 8, 16, 32 (deconvolutions / max-pool, then
    1x1 and 3x3 convolutions with GroupNorm).

    The ViT map is first resampled (bilinear) to the stride-16 grid when the patch size is not 16 (ViT-H/14), so
    that every preset produces exact 1/4, 1/8, 1/16, 1/32 maps.

    Args:
        embed_dim: channels of the ViT map.
        out_channels: channels of every pyramid level.

    Example:
        >>> sfp = SimpleFeaturePyramid(64, 32)
        >>> [f.shape[-1] for f in sfp(torch.zeros(1, 64, 4, 4), (4, 4))]
        [16, 8, 4, 2]
    """

    def __init__(self, embed_dim: int, out_channels: int) -> None:
        super().__init__()
        if embed_dim % 4 != 0:
            raise ValueError(f"embed_dim must be divisible by 4 for the stride-4 level, got {embed_dim}.")
        half, quarter = embed_dim // 2, embed_dim // 4
        self.scales = nn.ModuleList(
            [
                nn.Sequential(
                    nn.ConvTranspose2d(embed_dim, half, 2, stride=2),
                    group_norm(half),
                    nn.GELU(),
                    nn.ConvTranspose2d(half, quarter, 2, stride=2),
                ),
                nn.ConvTranspose2d(embed_dim, half, 2, stride=2),
                nn.Identity(),
                nn.MaxPool2d(2),
            ]
        )
        self.outputs = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(ch, out_channels, 1, bias=False),
                    group_norm(out_channels),
                    nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                    group_norm(out_channels),
                )
                for ch in (quarter, half, embed_dim, embed_dim)
            ]
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor, stride16_size: tuple[int, int]) -> list[torch.Tensor]:
        """Build the pyramid.

        Args:
            x: ViT map ``[B, D, h, w]``.
            stride16_size: ``(H / 16, W / 16)`` of the (padded) input.

        Returns:
            ``[f4, f8, f16, f32]``, each ``[B, out_channels, H / s, W / s]``.
        """
        if tuple(x.shape[-2:]) != tuple(stride16_size):
            x = F.interpolate(x, size=stride16_size, mode="bilinear", align_corners=False)
        return [out(scale(x)) for scale, out in zip(self.scales, self.outputs, strict=True)]


def released_global_blocks(depth: int) -> tuple[int, ...]:
    """0-based global-attention blocks of the authors' ViT (SPEC section 10; their ``forward_backbone``): groups of 6
    blocks at depth 12, else of ``depth // 4``; the last block of every group is global, the others windowed.

    Example:
        >>> released_global_blocks(12), released_global_blocks(8), released_global_blocks(32)
        ((5, 11), (1, 3, 5, 7), (7, 15, 23, 31))
    """
    if depth < 4 or depth % 4:
        raise ValueError(f"the released window rule needs a depth that is a multiple of 4, got {depth}.")
    group = 6 if depth == 12 else depth // 4
    return tuple(i - 1 for i in range(1, depth + 1) if i % group == 0)


class ReleasedSimpleFPN(nn.Module):
    """The simple feature pyramid of the authors' released AdaptiveClick / SimpleClick models (SPEC section 10, item 3).

    GroupNorm(1, C) (eps 1e-5) everywhere, exact GELU, every convolution with a bias. With ``c4 = max(2 * w0, D // 2)``,
    ``c8 = max(w1, D // 2)``, ``c32 = max(w3, 2 * D)`` (``D`` = ViT width, ``w`` = the four output widths):

    - ``down_4``: ConvT(D, c4, 2, s2) -> GN -> GELU -> ConvT(c4, c4 // 2, 2, s2) -> GN -> Conv1x1(c4 // 2, w0) -> GN
      -> GELU;
    - ``down_8``: ConvT(D, c8, 2, s2) -> GN -> Conv1x1(c8, w1) -> GN -> GELU;
    - ``down_16``: Conv1x1(D, w2) -> GN -> GELU;
    - ``down_32``: Conv(D, c32, 2, s2) -> GN -> Conv1x1(c32, w3) -> GN -> GELU.

    The levels are 4x, 2x, 1x and 1/2x the token grid (strides 4, 8, 16, 32 at patch 16; 3.5 ... 28 at patch 14, as
    released: the ViT map is not resampled).

    Args:
        embed_dim: channels ``D`` of the ViT map.
        out_channels: the four output widths (ViT-B AdaptiveClick ``[256, 512, 1024, 2048]``, SimpleClick
            ``[128, 256, 512, 1024]``).

    Example:
        >>> fpn = ReleasedSimpleFPN(8, [4, 8, 16, 32])
        >>> [tuple(f.shape[1:]) for f in fpn(torch.zeros(1, 8, 4, 4))]
        [(4, 16, 16), (8, 8, 8), (16, 4, 4), (32, 2, 2)]
    """

    def __init__(self, embed_dim: int, out_channels: Sequence[int]) -> None:
        super().__init__()
        if len(out_channels) != 4:
            raise ValueError(f"out_channels must give the 4 level widths, got {list(out_channels)}.")
        w0, w1, w2, w3 = (int(c) for c in out_channels)
        d = int(embed_dim)
        c4, c8, c32 = max(2 * w0, d // 2), max(w1, d // 2), max(w3, 2 * d)

        def gn(channels: int) -> nn.GroupNorm:
            return nn.GroupNorm(1, channels)

        self.down_4 = nn.Sequential(
            nn.ConvTranspose2d(d, c4, 2, stride=2),
            gn(c4),
            nn.GELU(),
            nn.ConvTranspose2d(c4, c4 // 2, 2, stride=2),
            gn(c4 // 2),
            nn.Conv2d(c4 // 2, w0, 1),
            gn(w0),
            nn.GELU(),
        )
        self.down_8 = nn.Sequential(
            nn.ConvTranspose2d(d, c8, 2, stride=2), gn(c8), nn.Conv2d(c8, w1, 1), gn(w1), nn.GELU()
        )
        self.down_16 = nn.Sequential(nn.Conv2d(d, w2, 1), gn(w2), nn.GELU())
        self.down_32 = nn.Sequential(nn.Conv2d(d, c32, 2, stride=2), gn(c32), nn.Conv2d(c32, w3, 1), gn(w3), nn.GELU())
        self.out_channels = [w0, w1, w2, w3]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ViT map ``[B, D, h, w]`` -> ``[f4, f8, f16, f32]`` (``4h``, ``2h``, ``h``, ``h / 2``)."""
        return [self.down_4(x), self.down_8(x), self.down_16(x), self.down_32(x)]
