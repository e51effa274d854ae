# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of model save / load and MAE / timm backbone loading (issue 3: checkpoint round trip, wrong checkpoint)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from monai_adaptiveclick.networks import (
    check_state_dict,
    create_model,
    load_model,
    load_pretrained_backbone,
    save_model,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _vit(depth: int = 2, embed_dim: int = 64, class_token: bool = True, img_size: int = 32) -> VisionTransformer:
    """A small timm ViT (never pretrained) standing in for an MAE / timm checkpoint."""
    return VisionTransformer(
        img_size=img_size,
        patch_size=16,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=2,
        num_classes=5,
        class_token=class_token,
        global_pool="token" if class_token else "avg",
        fc_norm=False,
    ).eval()


def _mae_file(tmp_path, vit: VisionTransformer, name: str = "mae.pth"):
    """MAE-style file: {"model": ...} with a DataParallel prefix, the MAE decoder, a mask token and a head."""
    state = {f"module.{k}": v for k, v in vit.state_dict().items()}
    state["module.mask_token"] = torch.zeros(1, 1, 64)
    state["module.decoder_embed.weight"] = torch.zeros(32, 64)
    state["module.decoder_pos_embed"] = torch.zeros(1, 5, 32)
    path = tmp_path / name
    torch.save({"model": state}, path)
    return path


@pytest.mark.parametrize("head", ["camd", "mask_fixed"])
def test_save_load_round_trip(tmp_path, head):
    model = create_model("tiny", in_channels=2, head=head, image_size=32).eval()
    path = save_model(model, tmp_path / "sub" / "model.pt", epoch=3, note="unit")
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.in_channels == 2 and loaded.image_size == 32
    x = torch.rand(1, 5, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["pred_masks"], model(x)["pred_masks"])
    raw = torch.load(path, weights_only=True)
    assert raw["extra"] == {"epoch": 3, "note": "unit"}


def test_load_state_dict_only_file_needs_preset(tmp_path):
    model = create_model("tiny", in_channels=1).eval()
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(ValueError, match="preset"):
        load_model(path)
    loaded = load_model(path, preset="tiny", in_channels=1)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_wrong_checkpoint_lists_keys_and_shapes(tmp_path):
    small = create_model("tiny", in_channels=1)
    other = create_model("tiny", in_channels=1, embed_dim=32)
    with pytest.raises(ValueError) as err:
        check_state_dict(small, other.state_dict())
    text = str(err.value)
    assert "shape mismatches" in text and "backbone.pos_embed: checkpoint (1, 4, 4, 32) vs model (1, 4, 4, 64)" in text
    mask_fixed = create_model("tiny", in_channels=1, head="mask_fixed")
    with pytest.raises(ValueError) as err:
        check_state_dict(small, mask_fixed.state_dict())
    assert "missing keys" in str(err.value) and "unexpected keys" in str(err.value)
    assert "decoder.query_feat.weight" in str(err.value) and "mask_head.classifier.weight" in str(err.value)
    with pytest.raises(ValueError, match="not found"):
        load_model(tmp_path / "nope.pt")


def test_mae_checkpoint_round_trip_with_pos_embed_interpolation(tmp_path):
    vit = _vit()
    path = _mae_file(tmp_path, vit)
    source = vit.state_dict()
    model = create_model("tiny", in_channels=1)  # 64 px: 4x4 grid vs the checkpoint's 2x2
    report = load_pretrained_backbone(model, path)
    own = model.backbone.state_dict()
    for k in ("blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.bias", "norm.weight", "patch_embed.proj.bias"):
        assert torch.equal(own[k], source[k]), k
    grid = source["pos_embed"][:, 1:].reshape(1, 2, 2, 64).permute(0, 3, 1, 2)
    expected_pos = F.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(own["pos_embed"], expected_pos)
    # 1 image channel: the mean of the RGB kernels times 3 = their sum
    torch.testing.assert_close(own["patch_embed.proj.weight"], source["patch_embed.proj.weight"].sum(1, keepdim=True))
    assert report["pos_embed"] == ((1, 5, 64), (1, 4, 4, 64))
    for k in ("cls_token", "head.weight", "mask_token", "decoder_embed.weight", "decoder_pos_embed"):
        assert k in report["ignored"]
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 4, 64, 64))["pred_masks"]).all()


def test_timm_vit_features_are_reproduced(tmp_path):
    """Same grid, global attention everywhere, guidance embedding zeroed: the backbone equals timm's ViT."""
    vit = _vit(class_token=False)
    path = tmp_path / "timm.pth"
    torch.save(vit.state_dict(), path)
    model = create_model("tiny", in_channels=3, image_size=32, window_size=0).eval()
    load_pretrained_backbone(model, path)
    with torch.no_grad():
        model.backbone.guidance_embed.proj.weight.zero_()
        model.backbone.guidance_embed.proj.bias.zero_()
        image = torch.randn(2, 3, 32, 32)
        ours = model.backbone(image, torch.rand(2, 3, 32, 32))
        theirs = vit.forward_features(image)  # [B, 4, 64]
    torch.testing.assert_close(ours.flatten(2).transpose(1, 2), theirs, atol=1e-5, rtol=1e-5)


def test_safetensors_backbone_file(tmp_path):
    from safetensors.torch import save_file

    vit = _vit()
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    model = create_model("tiny", in_channels=3)
    load_pretrained_backbone(model, path)
    assert torch.equal(model.backbone.patch_embed.proj.weight, vit.patch_embed.proj.weight)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"depth": 3}, "unexpected keys (12)"),
        ({"depth": 1}, "missing keys (12)"),
        ({"embed_dim": 32}, "blocks.0.attn.qkv.weight: checkpoint (96, 32) vs model (192, 64)"),
    ],
)
def test_unfitting_backbone_checkpoint(tmp_path, kwargs, needle):
    path = _mae_file(tmp_path, _vit(**kwargs))
    model = create_model("tiny", in_channels=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as err:
        load_pretrained_backbone(model, path)
    assert needle in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing was half-loaded
