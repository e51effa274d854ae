# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""AdaptiveClick networks: click-guided ViT, PMMD, CAMD / CAAM, mask-fixed head, presets, checkpoints, export, the
DeepGrow-2D-style U-Net baseline, the loader of the authors' AdaptiveClick / SimpleClick v1.0 checkpoints, and the
models shipped inside the package (``load_pretrained``)."""

from __future__ import annotations

from .adaptiveclick import (
    FINAL_COMBINATIONS,
    GUIDANCE_CHANNELS,
    HEADS,
    IMAGE_NORMALIZATIONS,
    PYRAMIDS,
    AdaptiveClick,
)
from .backbone import ClickGuidedViT, ReleasedSimpleFPN, SimpleFeaturePyramid, released_global_blocks
from .checkpoint import (
    atomic_save,
    check_state_dict,
    convert_checkpoint,
    load_model,
    load_pretrained_backbone,
    model_architecture,
    read_checkpoint_extra,
    save_model,
)
from .click_decoder import ClickAwareMaskDecoder, build_caam_attention_mask
from .deepgrow import DEEPGROW_HEAD, DeepGrow2D
from .export import AdaptiveClickExportWrapper
from .factory import build_model, create_model, list_presets
from .heads import HeadSpec, get_head, list_heads
from .mask_fixed_head import MaskFixedHead
from .ms_deform_attn import MSDeformAttn, ms_deform_attn_core
from .pixel_decoder import MSDeformAttnPixelDecoder, PositionEmbeddingSine
from .presets import PRESETS
from .pretrained import (
    CARD_FIELDS,
    PRETRAINED_DIR,
    PRETRAINED_PREFIX,
    export_pretrained,
    list_pretrained,
    load_pretrained,
    pretrained_name,
    read_model_card,
)
from .reference import IGNORED_KEYS, build_reference_model, detect_family
from .safe_load import safe_torch_load
from .simpleclick_head import SimpleClickHead

__all__ = [
    "AdaptiveClick",
    "CARD_FIELDS",
    "PRETRAINED_DIR",
    "PRETRAINED_PREFIX",
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
    "IGNORED_KEYS",
    "IMAGE_NORMALIZATIONS",
    "PYRAMIDS",
    "ReleasedSimpleFPN",
    "SimpleClickHead",
    "build_reference_model",
    "convert_checkpoint",
    "detect_family",
    "export_pretrained",
    "list_pretrained",
    "load_pretrained",
    "model_architecture",
    "pretrained_name",
    "read_model_card",
    "released_global_blocks",
    "safe_torch_load",
    "MSDeformAttn",
    "MSDeformAttnPixelDecoder",
    "MaskFixedHead",
    "PRESETS",
    "PositionEmbeddingSine",
    "SimpleFeaturePyramid",
    "build_caam_attention_mask",
    "check_state_dict",
    "build_model",
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
