# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Model presets: name -> keyword arguments of ``AdaptiveClick`` (SPEC section 1, paper Table V sizes).

- ``tiny``: unit tests (64 px, a few thousand parameters per block).
- ``small_cpu``: ViT-Tiny backbone (192 wide, 12 blocks, 3 heads: timm ``vit_tiny_patch16`` / DeiT-Tiny weights fit
  it) at 256 px with a slim decoder (d = 64, one PMMD layer) for interactive use on a 2-core CPU.
- ``vit_b_448``: the authors' released ViT-B/16 448 model exactly (SPEC section 10): 14x14-token windows with global
  attention at blocks 6 and 12, no final ViT norm, ImageNet normalisation inside, the released SimpleFPN with widths
  256/512/1024/2048, 4 deformable encoder layers (FFN 1024), the released FPN step, 10 queries, 9 decoder layers
  (3 rounds x 3 levels, FFN 2048), the released CAAM pooling and the ``logit_sum`` final combination.
- ``vit_h_448``: the released ViT-H/14 448 model (1280 wide, 32 blocks, 16 heads; 32x32 tokens in 16x16-token windows,
  global attention at blocks 8, 16, 24, 32; SimpleFPN widths 512/1024/2048/4096), the same decoder.

The object class stays at click-head index 0 in every preset (see ``adaptiveclick`` module docstring).
"""

from __future__ import annotations

__all__ = ["PRESETS"]

_RELEASED = {
    "decoder_dim": 256,
    "pmmd_layers": 4,
    "pmmd_heads": 8,
    "pmmd_points": 4,
    "pmmd_ffn_dim": 1024,
    "num_queries": 10,
    "num_rounds": 3,
    "camd_heads": 8,
    "camd_ffn_dim": 2048,
    "mask_fixed_dim": 256,
    "final_norm": False,
    "image_normalization": "imagenet",
    "pyramid": "released",
    "pmmd_fpn": "released",
    "caam_pooling": "maxpool3",
    "final_combination": "logit_sum",
}

PRESETS: dict[str, dict] = {
    "tiny": {
        "image_size": 64,
        "patch_size": 16,
        "embed_dim": 64,
        "depth": 2,
        "num_heads": 2,
        "mlp_ratio": 4.0,
        "window_size": 2,
        "global_attn_indexes": (1,),
        "pyramid_channels": 32,
        "decoder_dim": 32,
        "pmmd_layers": 1,
        "pmmd_heads": 4,
        "pmmd_points": 2,
        "pmmd_ffn_dim": 64,
        "num_queries": 4,
        "num_rounds": 3,
        "camd_heads": 4,
        "camd_ffn_dim": 64,
        "mask_fixed_dim": 32,
    },
    "small_cpu": {
        "image_size": 256,
        "patch_size": 16,
        "embed_dim": 192,
        "depth": 12,
        "num_heads": 3,
        "mlp_ratio": 4.0,
        "window_size": 8,
        "global_attn_indexes": (5, 11),
        "pyramid_channels": 64,
        "decoder_dim": 64,
        "pmmd_layers": 1,
        "pmmd_heads": 4,
        "pmmd_points": 4,
        "pmmd_ffn_dim": 256,
        "num_queries": 10,
        "num_rounds": 3,
        "camd_heads": 4,
        "camd_ffn_dim": 256,
        "mask_fixed_dim": 64,
    },
    "vit_b_448": {
        "image_size": 448,
        "patch_size": 16,
        "embed_dim": 768,
        "depth": 12,
        "num_heads": 12,
        "mlp_ratio": 4.0,
        "window_size": 14,
        "global_attn_indexes": (5, 11),
        "pyramid_channels": [256, 512, 1024, 2048],
        **_RELEASED,
    },
    "vit_h_448": {
        "image_size": 448,
        "patch_size": 14,
        "embed_dim": 1280,
        "depth": 32,
        "num_heads": 16,
        "mlp_ratio": 4.0,
        "window_size": 16,
        "global_attn_indexes": (7, 15, 23, 31),
        "pyramid_channels": [512, 1024, 2048, 4096],
        **_RELEASED,
    },
}
