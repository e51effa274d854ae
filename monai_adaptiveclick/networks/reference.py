# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Loading the authors' checkpoints as they are (SPEC section 10): AdaptiveClick (lab206/AdaptiveClick) and
SimpleClick v1.0 (uncbiag/SimpleClick ``PlainVitModel``) files written by their trainers.

Detection (:func:`detect_family`): a mapping ``{"state_dict", "config"}`` whose ``config["class"]`` ends with
``AdaptiveClickModel`` or ``PlainVitModel``; without a config, the keys decide (``click_aware_decoder.*`` ->
AdaptiveClick; ``neck.down_4.*`` and ``head.conv_seg.*`` -> SimpleClick). Any other family is a ``ValueError``.

Size (:func:`derive_config`): every width and count comes from the tensor shapes (ViT width, depth, patch, grid,
pyramid widths, decoder width, queries, encoder / decoder layers, FFN widths, sampling points); the head counts, which
shapes do not show, from the stored config (``MODEL.BACKBONE.NUM_HEADS``, ``MODEL.MASK_FORMER.NHEADS``,
``backbone_params.num_heads``; without a config: ViT width / 64 and 8). The window size is ``224 // patch`` tokens
and the global blocks follow their rule (:func:`~.backbone.released_global_blocks`). The name (ViT-B / L / H) is
reported when the width and depth are a released size, but any size loads.

Keys (:func:`map_state_dict`): every authors' key is loaded or on :data:`IGNORED_KEYS`: ``backbone.cls_token``,
``backbone.fc_norm.*``, ``backbone.head.*`` (the unused MAE classifier parts), ``criterion.empty_weight`` (a loss
buffer), the AdaptiveClick duplicates ``pixel_decoder.lateral_convs.0.*`` / ``pixel_decoder.output_convs.0.*`` (the same
tensors as ``adapter_1.*`` / ``layer_1.*``; checked equal), SimpleClick's ``head.up_conv1.*`` / ``head.up_conv2.*``
(unused with ``upsample='x1'``) and row 0 (the class token's) of ``backbone.pos_embed``. The click head's two rows are
swapped (their index 1 = object -> the project's index 0), which gives the same outputs (the CAAM object test is the
strict comparison of the two logits either way). Anything else, and any missing key, is a ``ValueError`` naming keys.

Example:
    >>> sorted(IGNORED_KEYS)[:2]
    ['backbone.cls_token', 'backbone.fc_norm.bias']
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch

from .adaptiveclick import AdaptiveClick
from .backbone import released_global_blocks
from .factory import build_model
from .safe_load import to_plain

__all__ = ["FAMILIES", "IGNORED_KEYS", "detect_family", "derive_config", "map_state_dict", "build_reference_model"]

FAMILIES = ("adaptiveclick", "simpleclick")
IGNORED_KEYS = frozenset(
    {
        "backbone.cls_token",
        "backbone.fc_norm.weight",
        "backbone.fc_norm.bias",
        "backbone.head.weight",
        "backbone.head.bias",
        "criterion.empty_weight",
    }
)
"""Exact keys that are never loaded; plus the patterns of :data:`IGNORED_PATTERNS`."""
IGNORED_PATTERNS = (
    re.compile(r"^pixel_decoder\.(lateral_convs|output_convs)\.0\.[01]\.(weight|bias)$"),  # duplicates, checked
    re.compile(r"^head\.up_conv[12]\."),  # SimpleClick, unused with upsample='x1'
)
_SIZES = {(768, 12): "ViT-B", (1024, 24): "ViT-L", (1280, 32): "ViT-H"}
_DUPLICATES = {"lateral_convs.0": "adapter_1", "output_convs.0": "layer_1"}

# (their pattern, our template) for every loaded key; \1 / \2 are regex groups
_COMMON_RULES = [
    (r"^patch_embed_coords\.proj\.(weight|bias)$", r"backbone.guidance_embed.proj.\1"),
    (r"^backbone\.patch_embed\.proj\.(weight|bias)$", r"backbone.patch_embed.proj.\1"),
    (r"^backbone\.blocks\.(\d+)\.(.+)$", r"backbone.blocks.\1.\2"),
]
_AC_RULES = [
    (r"^pixel_decoder\.neck\.(.+)$", r"pyramid.\1"),
    (r"^pixel_decoder\.input_proj\.(\d)\.([01])\.(weight|bias)$", r"pixel_decoder.input_proj.\1.\2.\3"),
    (r"^pixel_decoder\.transformer\.level_embed$", r"pixel_decoder.level_embed"),
    (r"^pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.self_attn\.(.+)$", r"pixel_decoder.layers.\1.self_attn.\2"),
    (r"^pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.(norm[12])\.(.+)$", r"pixel_decoder.layers.\1.\2.\3"),
    (r"^pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.linear1\.(.+)$", r"pixel_decoder.layers.\1.ffn.0.\2"),
    (r"^pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.linear2\.(.+)$", r"pixel_decoder.layers.\1.ffn.3.\2"),
    (r"^pixel_decoder\.mask_features\.(weight|bias)$", r"pixel_decoder.mask_features.\1"),
    (r"^pixel_decoder\.adapter_1\.([01])\.(.+)$", r"pixel_decoder.lateral.\1.\2"),
    (r"^pixel_decoder\.layer_1\.([01])\.(.+)$", r"pixel_decoder.output.\1.\2"),
    (
        r"^click_aware_decoder\.transformer_self_attention_layers\.(\d+)\.self_attn\.(.+)$",
        r"decoder.self_attention.\1.attn.\2",
    ),
    (
        r"^click_aware_decoder\.transformer_self_attention_layers\.(\d+)\.norm\.(.+)$",
        r"decoder.self_attention.\1.norm.\2",
    ),
    (
        r"^click_aware_decoder\.transformer_cross_attention_layers\.(\d+)\.multihead_attn\.(.+)$",
        r"decoder.cross_attention.\1.attn.\2",
    ),
    (
        r"^click_aware_decoder\.transformer_cross_attention_layers\.(\d+)\.norm\.(.+)$",
        r"decoder.cross_attention.\1.norm.\2",
    ),
    (r"^click_aware_decoder\.transformer_ffn_layers\.(\d+)\.linear1\.(.+)$", r"decoder.ffn.\1.ffn.0.\2"),
    (r"^click_aware_decoder\.transformer_ffn_layers\.(\d+)\.linear2\.(.+)$", r"decoder.ffn.\1.ffn.2.\2"),
    (r"^click_aware_decoder\.transformer_ffn_layers\.(\d+)\.norm\.(.+)$", r"decoder.ffn.\1.norm.\2"),
    (
        r"^click_aware_decoder\.(decoder_norm|query_feat|query_embed|level_embed|class_embed|mask_embed)\.(.+)$",
        r"decoder.\1.\2",
    ),
]
_SC_RULES = [
    (r"^neck\.(.+)$", r"pyramid.\1"),
    (r"^head\.convs\.(\d)\.conv\.(weight|bias)$", r"mask_head.convs.\1.0.\2"),
    (r"^head\.fusion_conv\.conv\.(weight|bias)$", r"mask_head.fusion.0.\1"),
    (r"^head\.conv_seg\.(weight|bias)$", r"mask_head.conv_seg.\1"),
]
_RULES = {
    "adaptiveclick": [(re.compile(a), b) for a, b in _COMMON_RULES + _AC_RULES],
    "simpleclick": [(re.compile(a), b) for a, b in _COMMON_RULES + _SC_RULES],
}


def detect_family(checkpoint: Any) -> str:
    """``"adaptiveclick"`` or ``"simpleclick"`` for an authors' checkpoint (see the module docstring).

    Raises:
        ValueError: not an authors' checkpoint, or a model class of another family (named).
    """
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise ValueError("not an AdaptiveClick / SimpleClick checkpoint: no 'state_dict' mapping in the file.")
    config = checkpoint.get("config")
    name = config.get("class") if isinstance(config, Mapping) else None
    if isinstance(name, str):
        if name.endswith(".AdaptiveClickModel"):
            return "adaptiveclick"
        if name.endswith(".PlainVitModel"):
            return "simpleclick"
        raise ValueError(
            f"the checkpoint holds a model of class {name!r}; only the authors' AdaptiveClickModel and SimpleClick "
            "v1.0 PlainVitModel files are supported."
        )
    keys = set(checkpoint["state_dict"])
    if any(k.startswith("click_aware_decoder.") for k in keys):
        return "adaptiveclick"
    if "head.conv_seg.weight" in keys and any(k.startswith("neck.down_4.") for k in keys):
        return "simpleclick"
    raise ValueError("unknown model family: the keys are neither AdaptiveClick's nor SimpleClick v1.0's.")


def _count(keys: Any, pattern: str) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
    if found != set(range(len(found))):
        raise ValueError(f"non-contiguous layer indexes for {pattern}: {sorted(found)}")
    return len(found)


def _shape(state: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise ValueError(f"missing key {key!r} in the authors' checkpoint (truncated state dict or another model).")
    return tuple(state[key].shape)


def derive_config(family: str, checkpoint: Mapping[str, Any]) -> tuple[dict, str]:
    """The ``AdaptiveClick`` config that fits an authors' checkpoint, and the size name (``"ViT-B"`` ... or
    ``"custom (E=.., depth=..)"``).

    Raises:
        ValueError: a missing key, an inconsistent shape, or a size this architecture cannot represent.
    """
    state = checkpoint["state_dict"]
    params = to_plain(checkpoint.get("config", {}) or {}).get("params", {})
    embed, _, patch, _ = _shape(state, "backbone.patch_embed.proj.weight")
    tokens = _shape(state, "backbone.pos_embed")[1] - 1
    grid = math.isqrt(tokens)
    depth = _count(state, r"^backbone\.blocks\.(\d+)\.norm1\.weight$")
    if grid * grid != tokens or depth == 0:
        raise ValueError(f"unsupported ViT: pos_embed of {tokens + 1} tokens, {depth} blocks.")
    if family == "adaptiveclick":
        model_cfg = (params.get("cfg", {}).get("value") or {}).get("MODEL", {})
        vit_heads = model_cfg.get("BACKBONE", {}).get("NUM_HEADS", max(embed // 64, 1))
        dec_heads = model_cfg.get("MASK_FORMER", {}).get("NHEADS", 8)
        fpn = "pixel_decoder.neck."
    else:
        vit_heads = (params.get("backbone_params", {}).get("value") or {}).get("num_heads", max(embed // 64, 1))
        dec_heads = 8
        fpn = "neck."
    widths = [
        _shape(state, fpn + "down_4.5.weight")[0],
        _shape(state, fpn + "down_8.2.weight")[0],
        _shape(state, fpn + "down_16.0.weight")[0],
        _shape(state, fpn + "down_32.2.weight")[0],
    ]
    if 224 % patch:
        raise ValueError(f"patch size {patch} does not divide the authors' 224-pixel window.")
    config = {
        "in_channels": 3,
        "image_size": grid * patch,
        "patch_size": patch,
        "embed_dim": embed,
        "depth": depth,
        "num_heads": int(vit_heads),
        "mlp_ratio": _shape(state, "backbone.blocks.0.mlp.fc1.weight")[0] / embed,
        "window_size": 224 // patch,
        "global_attn_indexes": list(released_global_blocks(depth)),
        "pyramid_channels": widths,
        "final_norm": False,
        "image_normalization": "imagenet",
        "pyramid": "released",
    }
    if family == "simpleclick":
        config.update(head="simpleclick", mask_fixed_dim=_shape(state, "head.conv_seg.weight")[1])
    else:
        dim = _shape(state, "pixel_decoder.input_proj.0.0.weight")[0]
        mask_dim = _shape(state, "pixel_decoder.mask_features.weight")[0]
        hidden = _shape(state, "click_aware_decoder.query_feat.weight")[1]
        if not dim == mask_dim == hidden:
            raise ValueError(f"unsupported widths: conv_dim {dim}, mask_dim {mask_dim}, hidden {hidden} must be equal.")
        layers = _count(state, r"^click_aware_decoder\.transformer_ffn_layers\.(\d+)\.norm\.weight$")
        if layers % 3:
            raise ValueError(f"{layers} decoder layers is not a whole number of rounds over the 3 levels.")
        enc = r"^pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.norm1\.weight$"
        offsets = _shape(state, "pixel_decoder.transformer.encoder.layers.0.self_attn.sampling_offsets.weight")[0]
        config.update(
            head="camd",
            decoder_dim=dim,
            pmmd_layers=_count(state, enc),
            pmmd_heads=int(dec_heads),
            pmmd_points=offsets // (int(dec_heads) * 3 * 2),
            pmmd_ffn_dim=_shape(state, "pixel_decoder.transformer.encoder.layers.0.linear1.weight")[0],
            num_queries=_shape(state, "click_aware_decoder.query_feat.weight")[0],
            num_rounds=layers // 3,
            camd_heads=int(dec_heads),
            camd_ffn_dim=_shape(state, "click_aware_decoder.transformer_ffn_layers.0.linear1.weight")[0],
            pmmd_fpn="released",
            caam_pooling="maxpool3",
            final_combination="logit_sum",
            object_index=0,
        )
    size = _SIZES.get((embed, depth), f"custom (E={embed}, depth={depth}, patch={patch})")
    return config, size


def map_state_dict(family: str, state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an authors' state dict to this project's keys.

    Returns:
        ``(mapped, ignored)``: the mapped tensors and the authors' keys that were not loaded (all on the ignore list).

    Raises:
        ValueError: keys that no rule maps and that are not ignored (listed), or duplicates that differ.
    """
    rules = _RULES[family]
    mapped: dict[str, torch.Tensor] = {}
    ignored, unknown = [], []
    for key, value in state.items():
        if key in IGNORED_KEYS or any(p.match(key) for p in IGNORED_PATTERNS):
            ignored.append(key)
            continue
        for pattern, template in rules:
            if pattern.match(key):
                mapped[pattern.sub(template, key)] = value
                break
        else:
            if key == "backbone.pos_embed":
                grid = math.isqrt(value.shape[1] - 1)
                mapped["backbone.pos_embed"] = value[:, 1:].reshape(1, grid, grid, value.shape[-1])
                ignored.append("backbone.pos_embed[:, 0] (class-token row)")
            else:
                unknown.append(key)
    if unknown:
        raise ValueError(f"unexpected keys in the {family} checkpoint ({len(unknown)}): {sorted(unknown)}")
    for dup, main in _DUPLICATES.items():
        for suffix in ("0.weight", "0.bias", "1.weight", "1.bias"):
            a, b = f"pixel_decoder.{dup}.{suffix}", f"pixel_decoder.{main}.{suffix}"
            if a in state and (b not in state or not torch.equal(state[a], state[b])):
                raise ValueError(f"duplicate key {a} differs from {b} (or {b} is missing).")
    for key in ("decoder.class_embed.weight", "decoder.class_embed.bias"):
        if key in mapped:  # their index 1 = object -> the project's index 0
            mapped[key] = mapped[key].flip(0).contiguous()
    return mapped, ignored


def build_reference_model(checkpoint: Mapping[str, Any]) -> tuple[AdaptiveClick, dict]:
    """Build the model an authors' checkpoint describes and load every weight.

    Returns:
        ``(model in eval mode, report)`` with ``report = {"family", "size", "config", "ignored"}``.

    Raises:
        ValueError: another family, an unsupported size, unexpected / missing keys or shapes that differ (listed).
    """
    from .checkpoint import check_state_dict

    family = detect_family(checkpoint)
    config, size = derive_config(family, checkpoint)
    mapped, ignored = map_state_dict(family, checkpoint["state_dict"])
    model = build_model(config)
    try:
        check_state_dict(model, mapped)
    except ValueError as err:
        raise ValueError(f"the {family} {size} checkpoint does not fit the derived architecture: {err}") from err
    report = {"family": family, "size": size, "config": dict(model.config), "ignored": ignored}
    return model.eval(), report
