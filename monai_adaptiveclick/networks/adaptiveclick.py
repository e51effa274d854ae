# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The AdaptiveClick network (paper Fig. 2, section III-B; SPEC section 1) and ``create_model``.

Input ``[B, C_img + 3, H, W]``: image channels, then previous-mask probability, positive-click disks, negative-click
disks (ARCHITECTURE "Guidance channels"). Pipeline: click-guided ViT -> simple feature pyramid -> either
PMMD + CAMD (``head="camd"``) or the mask-fixed all-MLP head (``head="mask_fixed"``, the CAMD-off ablation).

Final probability (SPEC section 1, a click-confidence-weighted combination of the query masks), with
``w_q = softmax(click_q)[object]``:

- ``final_combination="weighted_mean"`` (default): ``P = sum_q w_q * sigmoid(mask_q) / sum_q w_q``, a convex
  mixture of the per-query probabilities (one confident query gives its own mask);
- ``final_combination="sum"`` (SPEC's formula, Mask2Former's semantic inference):
  ``P = clamp(sum_q w_q * sigmoid(mask_q), 0, 1)``.

Both are computed at 1/4 resolution and upsampled bilinearly to the input size; both keep P on the scale of the
ranked per-query "candidate masks" (paper Fig. 1), which is why the reference code's sigmoid(class)-weighted sum of
mask *logits* was not used. With one object and Q = 10 queries the plain sum exceeds 1 wherever several queries
claim the object and saturates into a blob that later clicks cannot shrink. ``benchmarks/bench_final_probability.py``
compared the two on three demo-trained models (BENCHMARKS.md): the weighted mean won twice by a wide margin (mIoU@5
0.458 vs 0.216 and 0.473 vs 0.293, where the sum's mIoU stopped improving after the first clicks) and lost once by a
small one (0.438 vs 0.481), so it is the default; ``"sum"`` keeps SPEC's formula available;
- ``final_combination="logit_sum"`` (the authors' released model, SPEC section 10 item 9): the query mask logits are
  upsampled bilinearly (align_corners=True) straight to the input size, ``instances = sum_q sigmoid(c_q) * up(m_q)``
  with ``c_q`` the object logit of the click head, ``P = sigmoid(instances)``.

The released architecture (SPEC section 10; ``vit_b_448`` / ``vit_h_448`` presets) is a set of options, each
defaulting to the project's first design so that ``tiny`` / ``small_cpu`` and saved models are unchanged:
``final_norm=False``, ``image_normalization="imagenet"`` (inside the model: a fixed non-persistent buffer, applied
to the RGB channels before the patch embedding, not folded into its weights), ``pyramid="released"`` with
per-level ``pyramid_channels``, ``pmmd_fpn="released"``, ``caam_pooling="maxpool3"``, ``final_combination=
"logit_sum"`` and the window rule of :func:`~.backbone.released_global_blocks`. The object class stays at click-head
index 0 in the presets (the project's criterion uses 0); the loader of the authors' files swaps their class rows
(index 1 = object), which gives the same outputs; ``object_index=1`` is available for models that keep their order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.utils import look_up_option

from .backbone import ClickGuidedViT, ReleasedSimpleFPN, SimpleFeaturePyramid
from .click_decoder import ClickAwareMaskDecoder
from .heads import HEADS, adaptiveclick_heads
from .inputs import GUIDANCE_CHANNELS, check_network_input
from .mask_fixed_head import MaskFixedHead
from .pixel_decoder import MSDeformAttnPixelDecoder
from .simpleclick_head import SimpleClickHead

__all__ = [
    "AdaptiveClick",
    "HEADS",
    "FINAL_COMBINATIONS",
    "GUIDANCE_CHANNELS",
    "IMAGE_NORMALIZATIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PYRAMIDS",
]

FINAL_COMBINATIONS = ("weighted_mean", "sum", "logit_sum")
PYRAMIDS = ("vitdet", "released")
IMAGE_NORMALIZATIONS = ("none", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_SINGLE_MASK_HEADS = ("mask_fixed", "simpleclick")


class AdaptiveClick(nn.Module):
    """AdaptiveClick: click-guided ViT + simple pyramid + PMMD + CAMD (or the mask-fixed head).

    Inputs of any spatial size are zero-padded internally (bottom / right) to a multiple of ``lcm(patch_size, 32)``
    (and to at least 64 px, so that the 1/32 level has more than one pixel) and the outputs are cropped back, so
    ``pred_masks`` is ``[B, *, ceil(H/4), ceil(W/4)]`` and ``predict`` returns maps at exactly ``H x W``. Windowed
    attention pads its token grid to whole windows itself (timm).

    Args:
        in_channels: image channels ``C_img`` (the input has ``C_img + 3`` channels).
        head: ``"camd"`` (AdaptiveClick), ``"mask_fixed"`` (SimpleClick-style head, CAMD ablation) or
            ``"simpleclick"`` (the SimpleClick v1.0 head as released, :class:`~.simpleclick_head.SimpleClickHead`).
        image_size: network input size (square) the position embedding is defined for; the Predictor resizes to it.
        patch_size, embed_dim, depth, num_heads, mlp_ratio, window_size, global_attn_indexes, drop_path_rate:
            ViT backbone (see ``ClickGuidedViT``).
        pyramid_channels: channels of the 4 pyramid levels: one int (``"vitdet"``) or 4 widths (``"released"``; an
            int means 4 equal widths).
        decoder_dim: PMMD / CAMD width ``d`` (and mask-feature width).
        pmmd_layers, pmmd_heads, pmmd_points, pmmd_ffn_dim: PMMD deformable encoder.
        num_queries, num_rounds, camd_heads, camd_ffn_dim: CAMD (Q, L, heads, FFN width).
        mask_fixed_dim: width of the mask-fixed head (and of the ``"simpleclick"`` head).
        final_combination: how the CAMD queries make the final probability: ``"weighted_mean"`` (default),
            ``"sum"`` (SPEC's clamped sum) or ``"logit_sum"`` (released); see the module docstring.
        final_norm: LayerNorm after the last ViT block (``False`` as released).
        image_normalization: ``"none"`` (the image enters as given) or ``"imagenet"``: ``(x - mean) / std`` with the
            ImageNet constants on the 3 RGB channels in [0, 1], inside the model (a non-persistent buffer).
        pyramid: ``"vitdet"`` (:class:`~.backbone.SimpleFeaturePyramid`) or ``"released"``
            (:class:`~.backbone.ReleasedSimpleFPN`; levels at 4x ... 1/2x the token grid, no resampling).
        pmmd_fpn: the PMMD 1/4 FPN step, ``"plain"`` or ``"released"`` (biases, lateral ReLU).
        object_index: click-head index of the object class (0; the authors' code uses 1).
        caam_pooling: ``"cells"`` or ``"maxpool3"`` (released), see :func:`~.click_decoder.build_caam_attention_mask`.

    Example:
        >>> from monai_adaptiveclick.networks import create_model
        >>> model = create_model("tiny", in_channels=1)
        >>> out = model(torch.zeros(1, 4, 64, 64))
        >>> out["pred_logits"].shape, out["pred_masks"].shape
        (torch.Size([1, 4, 2]), torch.Size([1, 4, 16, 16]))
    """

    def __init__(
        self,
        in_channels: int = 3,
        head: str = "camd",
        image_size: int = 448,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        window_size: int = 14,
        global_attn_indexes: Sequence[int] = (5, 11),
        drop_path_rate: float = 0.0,
        pyramid_channels: int | Sequence[int] = 256,
        decoder_dim: int = 256,
        pmmd_layers: int = 6,
        pmmd_heads: int = 8,
        pmmd_points: int = 4,
        pmmd_ffn_dim: int = 1024,
        num_queries: int = 10,
        num_rounds: int = 3,
        camd_heads: int = 8,
        camd_ffn_dim: int = 2048,
        mask_fixed_dim: int = 256,
        final_combination: str = "weighted_mean",
        final_norm: bool = True,
        image_normalization: str = "none",
        pyramid: str = "vitdet",
        pmmd_fpn: str = "plain",
        object_index: int = 0,
        caam_pooling: str = "cells",
    ) -> None:
        super().__init__()
        head = look_up_option(head, adaptiveclick_heads())
        pyramid = look_up_option(pyramid, PYRAMIDS)
        image_normalization = look_up_option(image_normalization, IMAGE_NORMALIZATIONS)
        if image_normalization == "imagenet" and in_channels != 3:
            raise ValueError(f"image_normalization='imagenet' needs 3 (RGB) image channels, got {in_channels}.")
        if isinstance(pyramid_channels, Sequence):
            widths = [int(c) for c in pyramid_channels]
            if pyramid == "vitdet" or len(widths) != 4:
                raise ValueError(f"pyramid {pyramid!r} does not take pyramid_channels={widths}.")
            stored_widths: int | list[int] = widths
        else:
            widths, stored_widths = [int(pyramid_channels)] * 4, int(pyramid_channels)
        self.config = {
            "in_channels": int(in_channels),
            "head": head,
            "image_size": int(image_size),
            "patch_size": int(patch_size),
            "embed_dim": int(embed_dim),
            "depth": int(depth),
            "num_heads": int(num_heads),
            "mlp_ratio": float(mlp_ratio),
            "window_size": int(window_size),
            "global_attn_indexes": [int(i) for i in global_attn_indexes],
            "drop_path_rate": float(drop_path_rate),
            "pyramid_channels": stored_widths,
            "decoder_dim": int(decoder_dim),
            "pmmd_layers": int(pmmd_layers),
            "pmmd_heads": int(pmmd_heads),
            "pmmd_points": int(pmmd_points),
            "pmmd_ffn_dim": int(pmmd_ffn_dim),
            "num_queries": int(num_queries),
            "num_rounds": int(num_rounds),
            "camd_heads": int(camd_heads),
            "camd_ffn_dim": int(camd_ffn_dim),
            "mask_fixed_dim": int(mask_fixed_dim),
            "final_norm": bool(final_norm),
            "image_normalization": image_normalization,
            "pyramid": pyramid,
            "pmmd_fpn": pmmd_fpn,
            "object_index": int(object_index),
            "caam_pooling": caam_pooling,
        }
        self.set_final_combination(final_combination)
        self.in_channels = int(in_channels)
        self.image_size = int(image_size)
        self.head = head
        self.pad_multiple = math.lcm(int(patch_size), 32)
        self.min_padded_size = 64  # the 1/32 level must have more than one pixel for its GroupNorm
        self.backbone = ClickGuidedViT(
            in_channels,
            img_size=image_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            window_size=window_size,
            global_attn_indexes=tuple(global_attn_indexes),
            drop_path_rate=drop_path_rate,
            guidance_channels=GUIDANCE_CHANNELS,
            final_norm=final_norm,
        )
        if image_normalization == "imagenet":
            self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if pyramid == "vitdet":
            self.pyramid: nn.Module = SimpleFeaturePyramid(embed_dim, widths[0])
        else:
            self.pyramid = ReleasedSimpleFPN(embed_dim, widths)
        if head == "camd":
            self.pixel_decoder = MSDeformAttnPixelDecoder(
                widths,
                d_model=decoder_dim,
                num_layers=pmmd_layers,
                heads=pmmd_heads,
                points=pmmd_points,
                ffn_dim=pmmd_ffn_dim,
                mask_dim=decoder_dim,
                fpn_style=pmmd_fpn,
            )
            self.decoder = ClickAwareMaskDecoder(
                decoder_dim,
                num_queries=num_queries,
                num_rounds=num_rounds,
                heads=camd_heads,
                ffn_dim=camd_ffn_dim,
                object_index=object_index,
                caam_pooling=caam_pooling,
            )
        elif head == "simpleclick":
            self.mask_head: nn.Module = SimpleClickHead(widths, channels=mask_fixed_dim)
        else:
            self.mask_head = MaskFixedHead(widths, embed_dim=mask_fixed_dim)

    @property
    def num_queries(self) -> int:
        """Number of candidate masks ``predict`` returns (0 for the mask-fixed head)."""
        return self.config["num_queries"] if self.head == "camd" else 0

    @property
    def object_index(self) -> int:
        """Click-head index of the object class (``pred_logits[..., object_index]``)."""
        return self.config["object_index"]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` for a wrong rank / channel count, a non-float tensor or NaN values."""
        check_network_input(x, self.in_channels)

    def forward(self, x: torch.Tensor) -> dict:
        """Training forward.

        Args:
            x: ``[B, C_img + 3, H, W]``.

        Returns:
            CAMD: ``{"pred_logits": [B, Q, 2], "pred_masks": [B, Q, h, w], "aux_outputs": [3L dicts]}``;
            mask-fixed: ``{"pred_masks": [B, 1, h, w]}``; ``h, w = ceil(H / 4), ceil(W / 4)``, logits.
        """
        self.check_input(x)
        height, width = int(x.shape[-2]), int(x.shape[-1])
        m = self.pad_multiple
        pad_h = max(-(-height // m) * m, self.min_padded_size) - height
        pad_w = max(-(-width // m) * m, self.min_padded_size) - width
        if self.config["image_normalization"] == "imagenet":  # before padding: the padding is 0 once normalised
            rgb = (x[:, :3] - self.image_mean.to(x.dtype)) / self.image_std.to(x.dtype)
            x = torch.cat([rgb, x[:, 3:]], 1)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        image, guidance = x[:, : self.in_channels], x[:, self.in_channels :]
        tokens = self.backbone(image, guidance)
        if self.config["pyramid"] == "vitdet":
            features = self.pyramid(tokens, (x.shape[-2] // 16, x.shape[-1] // 16))
            h4, w4 = -(-height // 4), -(-width // 4)
        else:  # levels relative to the token grid, as released: crop the 4x level to the unpadded extent
            features = self.pyramid(tokens)
            patch = self.config["patch_size"]
            h4, w4 = -(-height * 4 // patch), -(-width * 4 // patch)
        if self.head in _SINGLE_MASK_HEADS:
            return {"pred_masks": self.mask_head(features)[..., :h4, :w4]}
        mask_features, multi_scale = self.pixel_decoder(features)
        out = self.decoder(multi_scale, mask_features, guidance[:, 1:2])
        out["pred_masks"] = out["pred_masks"][..., :h4, :w4]
        for aux in out["aux_outputs"]:
            aux["pred_masks"] = aux["pred_masks"][..., :h4, :w4]
        return out

    @staticmethod
    def upsample_to_input(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Bilinearly upsample stride-4 maps ``[B, K, ceil(H/4), ceil(W/4)]`` by 4 and crop to ``size = (H, W)``."""
        up = F.interpolate(maps, scale_factor=4.0, mode="bilinear", align_corners=False)
        return up[..., : size[0], : size[1]]

    def set_final_combination(self, final_combination: str) -> None:
        """Choose how the query masks combine into the final probability (``FINAL_COMBINATIONS``)."""
        self.final_combination = look_up_option(final_combination, FINAL_COMBINATIONS)
        self.config["final_combination"] = self.final_combination

    def resize_logits(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Per-query / head logit maps at 1/4 to the input ``size``: bilinear align_corners=True straight to ``size``
        for the released choices (``final_combination="logit_sum"``, the ``"simpleclick"`` head, the released
        pyramid), else :meth:`upsample_to_input`."""
        released = (
            self.head == "simpleclick"
            or self.config["pyramid"] == "released"
            or (self.head == "camd" and self.final_combination == "logit_sum")
        )
        if released:
            return F.interpolate(maps, size=size, mode="bilinear", align_corners=True)
        return self.upsample_to_input(maps, size)

    def final_logits(self, outputs: dict, size: tuple[int, int]) -> torch.Tensor | None:
        """Logits ``[B, 1, H, W]`` whose sigmoid is the final probability, for the heads and combinations that
        have them (single-mask heads, ``"logit_sum"``); ``None`` for the probability-space combinations."""
        if self.head in _SINGLE_MASK_HEADS:
            return self.resize_logits(outputs["pred_masks"], size)
        if self.final_combination != "logit_sum":
            return None
        weights = outputs["pred_logits"][..., self.config["object_index"]].sigmoid()  # [B, Q]
        return torch.einsum("bq,bqhw->bhw", weights, self.resize_logits(outputs["pred_masks"], size)).unsqueeze(1)

    def final_probability(self, outputs: dict, size: tuple[int, int]) -> torch.Tensor:
        """Final probability map ``[B, 1, H, W]`` from ``forward``'s outputs (SPEC section 1; see module docstring)."""
        logits = self.final_logits(outputs, size)
        if logits is not None:
            return logits.sigmoid()
        weights = outputs["pred_logits"].softmax(-1)[..., self.config["object_index"], None, None]  # [B, Q, 1, 1]
        prob = (weights * outputs["pred_masks"].sigmoid()).sum(1, keepdim=True)
        if self.final_combination == "sum":
            prob = prob.clamp(0.0, 1.0)
        else:  # all weights underflowing to 0 gives P = 0, not NaN
            prob = prob / weights.sum(1, keepdim=True).clamp_min(1e-12)
        return self.upsample_to_input(prob, size)

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inference outputs at the input size.

        Args:
            x: ``[B, C_img + 3, H, W]``.

        Returns:
            ``(prob [B, 1, H, W], candidates [B, Q, H, W], scores [B, Q])``: the final probability, the per-query
            sigmoid masks ranked by click-head object probability (best first) and those probabilities. The
            mask-fixed head returns ``Q = 0`` candidates.
        """
        size = (int(x.shape[-2]), int(x.shape[-1]))
        outputs = self(x)
        prob = self.final_probability(outputs, size)
        batch = x.shape[0]
        if self.head in _SINGLE_MASK_HEADS:
            return prob, prob.new_zeros(batch, 0, *size), prob.new_zeros(batch, 0)
        obj = self.config["object_index"]
        scores, order = outputs["pred_logits"].softmax(-1)[..., obj].sort(dim=1, descending=True)
        masks = outputs["pred_masks"].gather(1, order[:, :, None, None].expand_as(outputs["pred_masks"]))
        if self.final_combination == "logit_sum" or self.config["pyramid"] == "released":
            return prob, self.resize_logits(masks, size).sigmoid(), scores
        return prob, self.upsample_to_input(masks.sigmoid(), size), scores
