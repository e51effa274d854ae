# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Click-aware mask-adaptive transformer decoder (CAMD) with the click-aware attention module (CAAM), paper section
III-B2, eq. 4-6, SPEC section 1.

Q learned queries pass through L rounds over the three PMMD levels (1/32, 1/16, 1/8: coarse to fine), one decoder
layer per level and round (masked cross-attention -> self-attention -> FFN, Mask2Former). After the query
initialisation and after every layer, a click head (``Linear(d, 2)``, index 0 = object, 1 = no-object) and a mask head
(3-layer MLP -> mask embedding dotted with the per-pixel features F3) predict per-query outputs.

CAAM (eq. 5 is garbled in the paper's text; this is the reference behaviour, SPEC section 1): the cross-attention of a
layer is restricted to the keys where the previous layer's mask of that query, resized to the level, is >= 0.5
(eq. 6), **or** where the positive-click map (max-pooled to the level) is set; the click part applies only to queries
whose click head says "object" (softmax object probability > 0.5). Negative clicks do not enter. A query whose row
would be fully masked attends everywhere (Mask2Former rule, avoids an all ``-inf`` softmax).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .pixel_decoder import PositionEmbeddingSine

__all__ = ["CAAM_POOLINGS", "ClickAwareMaskDecoder", "build_caam_attention_mask", "MLP"]

CAAM_POOLINGS = ("cells", "maxpool3")


def build_caam_attention_mask(
    mask_logits: torch.Tensor,
    class_logits: torch.Tensor,
    pos_clicks: torch.Tensor,
    size: tuple[int, int],
    mask_threshold: float = 0.5,
    object_threshold: float = 0.5,
    object_index: int = 0,
    pooling: str = "cells",
) -> torch.Tensor:
    """Click-aware attention mask (CAAM, paper eq. 5-6).

    Two pooling rules for the positive-click map (``pooling``):

    - ``"cells"`` (the project's default): adaptive max-pool over the exact cells of the level, a cell is a click
      cell when any click pixel lies in it; the click part applies to queries whose softmax object probability is
      > ``object_threshold``;
    - ``"maxpool3"`` (the authors' released rule, SPEC section 10 item 8): for queries whose class argmax is the
      object (object logit strictly larger), the positive-disk map is reduced by ``n = int(log2(W_in / w_level))``
      successive ``MaxPool2d(3, stride 2, padding 1)``, resized bilinearly (align_corners=False) to the level and a
      key is a click key where it is >= 0.5 (queries classed "no object" get an all-zero map).

    Either way a key is blocked only where the resized mask probability is < ``mask_threshold`` and it is not a
    click key of that query.

    Args:
        mask_logits: previous-layer mask logits ``[B, Q, h, w]``.
        class_logits: previous-layer click-head logits ``[B, Q, 2]`` (``object_index`` = object).
        pos_clicks: positive-click map ``[B, 1, H, W]`` (input channel ``C_img + 1``), any resolution.
        size: ``(h_l, w_l)`` of the attended level.
        mask_threshold: a key is attendable where the resized mask probability is >= this.
        object_threshold: the click unmasking applies to queries with softmax object probability > this
            (``"cells"`` only; ``"maxpool3"`` uses the argmax, i.e. 0.5).
        object_index: index of the object class in ``class_logits`` (0 in the project, 1 in the authors' code).
        pooling: ``"cells"`` or ``"maxpool3"``, see above.

    Returns:
        bool ``[B, Q, h_l * w_l]``, True = the query may NOT attend to that key (``nn.MultiheadAttention``
        convention). No row is all True.
    """
    if mask_logits.ndim != 4 or class_logits.shape[:2] != mask_logits.shape[:2]:
        raise ValueError(
            f"mask_logits [B, Q, h, w] and class_logits [B, Q, 2] disagree: {tuple(mask_logits.shape)} vs "
            f"{tuple(class_logits.shape)}."
        )
    prob = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False).sigmoid()
    blocked = (prob < mask_threshold).flatten(2)  # [B, Q, S]
    if pooling == "maxpool3":
        is_object = class_logits[..., object_index] > class_logits[..., 1 - object_index]  # their argmax == object
        pooled = is_object[:, :, None, None].to(pos_clicks.dtype) * pos_clicks  # [B, Q, H, W]
        for _ in range(int(math.log2(pos_clicks.shape[-1] / size[1]))):
            pooled = F.max_pool2d(pooled, 3, stride=2, padding=1)
        pooled = F.interpolate(pooled, size=size, mode="bilinear", align_corners=False)
        blocked = blocked & (pooled < 0.5).flatten(2)
    elif pooling == "cells":
        clicks = (F.adaptive_max_pool2d(pos_clicks, size) > 0).flatten(2)  # [B, 1, S]
        is_object = class_logits.softmax(-1)[..., object_index] > object_threshold  # [B, Q]
        blocked = blocked & ~(clicks & is_object[:, :, None])
    else:
        raise ValueError(f"pooling must be one of {CAAM_POOLINGS}, got {pooling!r}.")
    return (blocked & ~blocked.all(-1, keepdim=True)).detach()


class MLP(nn.Module):
    """Plain MLP with ReLU between layers (the 3-layer mask head)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 3) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [out_dim], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., in_dim] -> [..., out_dim]``."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class _CrossAttentionLayer(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.heads = heads

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        attn_mask: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
    ) -> torch.Tensor:
        mask = attn_mask.repeat_interleave(self.heads, dim=0)  # [B*heads, Q, S], batch-major as MHA expects
        out = self.attn(tgt + query_pos, memory + pos, memory, attn_mask=mask, need_weights=False)[0]
        return self.norm(tgt + out)


class _SelfAttentionLayer(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        q = tgt + query_pos
        return self.norm(tgt + self.attn(q, q, tgt, need_weights=False)[0])


class _FFNLayer(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int) -> None:
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn_dim), nn.ReLU(inplace=True), nn.Linear(ffn_dim, d_model))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        return self.norm(tgt + self.ffn(tgt))


class ClickAwareMaskDecoder(nn.Module):
    """CAMD: Q queries, ``num_rounds`` rounds over the 3 levels, CAAM-masked cross-attention, deep supervision.

    Args:
        d_model: query / feature width (PMMD ``d_model``; the mask features must have this width too).
        num_queries: Q (10 in the paper).
        num_rounds: L (3 in the paper): ``3 * L`` decoder layers.
        heads: attention heads.
        ffn_dim: FFN hidden width.
        num_levels: feature levels per round (3).
        mask_threshold: CAAM mask threshold (0.5, eq. 6).
        object_threshold: click-head object probability above which positive clicks unmask a query (0.5).
        object_index: index of the "object" class in the click head's 2 logits (0; the authors' code uses 1).
        caam_pooling: ``"cells"`` or ``"maxpool3"`` (the released rule), see :func:`build_caam_attention_mask`.

    Example:
        >>> dec = ClickAwareMaskDecoder(32, num_queries=4, num_rounds=1, heads=4, ffn_dim=64)
        >>> feats = [torch.randn(1, 32, s, s) for s in (2, 4, 8)]
        >>> out = dec(feats, torch.randn(1, 32, 16, 16), torch.zeros(1, 1, 64, 64))
        >>> out["pred_logits"].shape, out["pred_masks"].shape, len(out["aux_outputs"])
        (torch.Size([1, 4, 2]), torch.Size([1, 4, 16, 16]), 3)
    """

    def __init__(
        self,
        d_model: int = 256,
        num_queries: int = 10,
        num_rounds: int = 3,
        heads: int = 8,
        ffn_dim: int = 2048,
        num_levels: int = 3,
        mask_threshold: float = 0.5,
        object_threshold: float = 0.5,
        object_index: int = 0,
        caam_pooling: str = "cells",
    ) -> None:
        super().__init__()
        if object_index not in (0, 1):
            raise ValueError(f"object_index must be 0 or 1, got {object_index}.")
        if caam_pooling not in CAAM_POOLINGS:
            raise ValueError(f"caam_pooling must be one of {CAAM_POOLINGS}, got {caam_pooling!r}.")
        self.object_index, self.caam_pooling = int(object_index), caam_pooling
        if num_queries < 1 or num_rounds < 1:
            raise ValueError(f"num_queries and num_rounds must be >= 1, got {num_queries} and {num_rounds}.")
        self.num_levels = num_levels
        self.num_layers = num_rounds * num_levels
        self.mask_threshold, self.object_threshold = mask_threshold, object_threshold
        self.pos_embed = PositionEmbeddingSine(d_model)
        self.level_embed = nn.Embedding(num_levels, d_model)
        self.query_feat = nn.Embedding(num_queries, d_model)
        self.query_embed = nn.Embedding(num_queries, d_model)
        self.cross_attention = nn.ModuleList(_CrossAttentionLayer(d_model, heads) for _ in range(self.num_layers))
        self.self_attention = nn.ModuleList(_SelfAttentionLayer(d_model, heads) for _ in range(self.num_layers))
        self.ffn = nn.ModuleList(_FFNLayer(d_model, ffn_dim) for _ in range(self.num_layers))
        self.decoder_norm = nn.LayerNorm(d_model)
        self.class_embed = nn.Linear(d_model, 2)
        self.mask_embed = MLP(d_model, d_model, d_model, 3)

    def heads(self, queries: torch.Tensor, mask_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Click and mask heads: ``[B, Q, d]`` -> (click logits ``[B, Q, 2]``, mask logits ``[B, Q, h4, w4]``)."""
        x = self.decoder_norm(queries)
        return self.class_embed(x), torch.einsum("bqc,bchw->bqhw", self.mask_embed(x), mask_features)

    def forward(
        self, multi_scale: Sequence[torch.Tensor], mask_features: torch.Tensor, pos_clicks: torch.Tensor
    ) -> dict:
        """Decode.

        Args:
            multi_scale: PMMD levels coarse to fine (1/32, 1/16, 1/8), each ``[B, d, h, w]``.
            mask_features: F3 ``[B, d, H/4, W/4]``.
            pos_clicks: positive-click map ``[B, 1, H, W]``.

        Returns:
            ``{"pred_logits": [B, Q, 2], "pred_masks": [B, Q, H/4, W/4], "aux_outputs": [...]}``: the final layer's
            outputs; ``aux_outputs`` holds the query-initialisation prediction and the first ``3L - 1`` layers
            (``3L`` entries, Mask2Former deep supervision).
        """
        if len(multi_scale) != self.num_levels:
            raise ValueError(f"expected {self.num_levels} feature levels, got {len(multi_scale)}.")
        batch = mask_features.shape[0]
        sizes, memories, positions = [], [], []
        for level, feat in enumerate(multi_scale):
            sizes.append((int(feat.shape[-2]), int(feat.shape[-1])))
            positions.append(self.pos_embed(feat).flatten(2).transpose(1, 2))
            memories.append((feat + self.level_embed.weight[level].view(1, -1, 1, 1)).flatten(2).transpose(1, 2))
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        output = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        class_logits, mask_logits = self.heads(output, mask_features)
        predictions = [(class_logits, mask_logits)]
        for i in range(self.num_layers):
            level = i % self.num_levels
            attn_mask = build_caam_attention_mask(
                mask_logits,
                class_logits,
                pos_clicks,
                sizes[level],
                self.mask_threshold,
                self.object_threshold,
                self.object_index,
                self.caam_pooling,
            )
            output = self.cross_attention[i](output, memories[level], attn_mask, positions[level], query_pos)
            output = self.self_attention[i](output, query_pos)
            output = self.ffn[i](output)
            class_logits, mask_logits = self.heads(output, mask_features)
            predictions.append((class_logits, mask_logits))
        aux = [{"pred_logits": c, "pred_masks": m} for c, m in predictions[:-1]]
        return {"pred_logits": predictions[-1][0], "pred_masks": predictions[-1][1], "aux_outputs": aux}
