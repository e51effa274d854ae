# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""AdaptiveClick networks: click-guided ViT, PMMD, CAMD / CAAM, mask-fixed head, presets, checkpoints, export, and
the DeepGrow-2D-style U-Net baseline."""

from __future__ import annotations

from .adaptiveclick import FINAL_COMBINATIONS, GUIDANCE_CHANNELS, HEADS, AdaptiveClick, create_model, list_presets
from .backbone import ClickGuidedViT, SimpleFeaturePyramid
from .checkpoint import (
    atomic_save,
    check_state_dict,
    load_model,
    load_pretrained_backbone,
    read_checkpoint_extra,
    save_model,
)
from .click_decoder import ClickAwareMaskDecoder, build_caam_attention_mask
from .deepgrow import DEEPGROW_HEAD, DeepGrow2D
from .export import AdaptiveClickExportWrapper
from .heads import HeadSpec, get_head, list_heads
from .mask_fixed_head import MaskFixedHead
from .ms_deform_attn import MSDeformAttn, ms_deform_attn_core
from .pixel_decoder import MSDeformAttnPixelDecoder, PositionEmbeddingSine
from .presets import PRESETS

__all__ = [
    "AdaptiveClick",
    "atomic_save",
    "AdaptiveClickExportWrapper",
    "ClickAwareMaskDecoder",
    "ClickGuidedViT",
    "DEEPGROW_HEAD",
    "DeepGrow2D",
    "GUIDANCE_CHANNELS",
    "FINAL_COMBINATIONS",
    "HEADS",
    "HeadSpec",
    "MSDeformAttn",
    "MSDeformAttnPixelDecoder",
    "MaskFixedHead",
    "PRESETS",
    "PositionEmbeddingSine",
    "SimpleFeaturePyramid",
    "build_caam_attention_mask",
    "check_state_dict",
    "create_model",
    "get_head",
    "list_heads",
    "list_presets",
    "load_model",
    "load_pretrained_backbone",
    "ms_deform_attn_core",
    "read_checkpoint_extra",
    "save_model",
]
