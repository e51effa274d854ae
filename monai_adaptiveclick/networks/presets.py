# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Model presets: name -> keyword arguments of ``AdaptiveClick`` (SPEC section 1, paper Table V sizes).

- ``tiny``: unit tests (64 px, a few thousand parameters per block).
- ``small_cpu``: ViT-Tiny backbone (192 wide, 12 blocks, 3 heads: timm ``vit_tiny_patch16`` / DeiT-Tiny weights fit
  it) at 256 px with a slim decoder (d = 64, one PMMD layer) for interactive use on a 2-core CPU.
- ``vit_b_448``: the paper's ViT-B/16 at 448 px (14x14-token windows, global attention at blocks 6 and 12).
- ``vit_h_448``: the paper's ViT-H/14 at 448 px (32x32 tokens, 16x16-token windows so that 2x2 windows tile the
  grid, global attention at blocks 8, 16, 24, 32 as in ViTDet).
"""

from __future__ import annotations

__all__ = ["PRESETS"]

_PAPER_DECODER = {
    "pyramid_channels": 256,
    "decoder_dim": 256,
    "pmmd_layers": 6,
    "pmmd_heads": 8,
    "pmmd_points": 4,
    "pmmd_ffn_dim": 1024,
    "num_queries": 10,
    "num_rounds": 3,
    "camd_heads": 8,
    "camd_ffn_dim": 2048,
    "mask_fixed_dim": 256,
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
        **_PAPER_DECODER,
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
        **_PAPER_DECODER,
    },
}
