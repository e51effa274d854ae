# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the AdaptiveClick network: shapes per stage, deformable attention, CAAM unmasking, deep supervision,
gradients, predict, presets (SPEC section 1, issue 3)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from monai_adaptiveclick.networks import (
    PRESETS,
    ClickAwareMaskDecoder,
    MSDeformAttn,
    build_caam_attention_mask,
    create_model,
    list_presets,
    ms_deform_attn_core,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _input(channels: int, height: int, width: int, batch: int = 2) -> torch.Tensor:
    x = torch.rand(batch, channels + 3, height, width)
    x[:, channels:] = 0.0
    x[:, channels + 1, height // 3 : height // 3 + 5, width // 2 : width // 2 + 5] = 1.0  # a positive click disk
    return x


@pytest.mark.parametrize("preset", ["tiny", "small_cpu"])
@pytest.mark.parametrize("in_channels", [1, 4])
def test_stage_shapes(preset, in_channels):
    model = create_model(preset, in_channels=in_channels).eval()
    cfg = model.config
    x = _input(in_channels, 64, 64)
    with torch.no_grad():
        tokens = model.backbone(x[:, :in_channels], x[:, in_channels:])
        assert tokens.shape == (2, cfg["embed_dim"], 64 // cfg["patch_size"], 64 // cfg["patch_size"])
        feats = model.pyramid(tokens, (4, 4))
        assert [tuple(f.shape) for f in feats] == [
            (2, cfg["pyramid_channels"], 64 // s, 64 // s) for s in (4, 8, 16, 32)
        ]
        mask_features, multi_scale = model.pixel_decoder(feats)
        assert mask_features.shape == (2, cfg["decoder_dim"], 16, 16)
        assert [tuple(m.shape) for m in multi_scale] == [(2, cfg["decoder_dim"], s, s) for s in (2, 4, 8)]
        out = model(x)
    q = cfg["num_queries"]
    assert out["pred_logits"].shape == (2, q, 2)
    assert out["pred_masks"].shape == (2, q, 16, 16)
    assert len(out["aux_outputs"]) == 3 * cfg["num_rounds"]
    for aux in out["aux_outputs"]:
        assert aux["pred_logits"].shape == (2, q, 2) and aux["pred_masks"].shape == (2, q, 16, 16)


@pytest.mark.parametrize("head", ["camd", "mask_fixed"])
def test_odd_size_is_padded_and_cropped(head):
    """A 50x70 input gives ceil(H/4) x ceil(W/4) masks equal to those of the explicitly zero-padded 64x96 input."""
    model = create_model("tiny", in_channels=1, head=head).eval()
    x = _input(1, 50, 70, batch=1)
    with torch.no_grad():
        out = model(x)["pred_masks"]
        padded = model(F.pad(x, (0, 96 - 70, 0, 64 - 50)))["pred_masks"]
    assert out.shape[-2:] == (13, 18)
    torch.testing.assert_close(out, padded[..., :13, :18], atol=1e-5, rtol=1e-5)


def test_mask_fixed_head_output():
    model = create_model("tiny", in_channels=3, head="mask_fixed").eval()
    out = model(_input(3, 64, 64))
    assert set(out) == {"pred_masks"} and out["pred_masks"].shape == (2, 1, 16, 16)
    prob, candidates, scores = model.predict(_input(3, 64, 64))
    assert prob.shape == (2, 1, 64, 64) and candidates.shape == (2, 0, 64, 64) and scores.shape == (2, 0)
    assert model.num_queries == 0


def test_deep_supervision_layer_count():
    for rounds in (1, 2):
        model = create_model("tiny", in_channels=1, num_rounds=rounds).eval()
        with torch.no_grad():
            out = model(_input(1, 64, 64))
        assert len(out["aux_outputs"]) == 3 * rounds
        assert len(model.decoder.cross_attention) == 3 * rounds


def test_gradients_reach_guidance_embedding():
    model = create_model("tiny", in_channels=1).train()
    x = _input(1, 64, 64).requires_grad_(True)
    out = model(x)
    loss = out["pred_masks"].sigmoid().mean() + out["pred_logits"].softmax(-1)[..., 0].mean()
    loss = loss + sum(a["pred_masks"].mean() for a in out["aux_outputs"])
    loss.backward()
    grad = model.backbone.guidance_embed.proj.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert x.grad[:, 1:].abs().sum() > 0  # the guidance channels influence the output


def test_input_errors():
    model = create_model("tiny", in_channels=1)
    with pytest.raises(ValueError, match=r"expected 4 input channels .* got 3"):
        model(torch.zeros(1, 3, 64, 64))
    x = _input(1, 64, 64, batch=1)
    x[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(x)
    with pytest.raises(ValueError, match="4-D"):
        model(torch.zeros(4, 64, 64))


def test_create_model_errors_and_presets():
    assert set(list_presets()) == {"tiny", "small_cpu", "vit_b_448", "vit_h_448"}
    with pytest.raises(ValueError, match="unknown model option"):
        create_model("tiny", embed_dims=3)
    with pytest.raises(ValueError):
        create_model("vit_z")
    with pytest.raises(ValueError):
        create_model("tiny", head="fcn")
    model = create_model("tiny", in_channels=2, image_size=128)
    assert model.image_size == 128 and model.in_channels == 2 and model.config["image_size"] == 128


def test_paper_presets_build_and_count():
    """ViT-B 448 (paper: 116.4 M params) and ViT-H 448 are built on the meta device and only counted."""
    with torch.device("meta"):
        vit_b = create_model("vit_b_448")
        vit_h = create_model("vit_h_448")
    count_b = sum(p.numel() for p in vit_b.parameters())
    count_h = sum(p.numel() for p in vit_h.parameters())
    assert 100e6 < count_b < 125e6
    assert count_b == 121_114_242  # the released ViT-B 448 without its unused parts (SPEC section 10)
    assert 700e6 < count_h < 720e6  # released ViT-H 448: SimpleFPN widths 512 ... 4096
    assert vit_b.config["global_attn_indexes"] == [5, 11] and vit_b.config["window_size"] == 14
    assert vit_h.config["patch_size"] == 14 and vit_h.pad_multiple == math.lcm(14, 32)
    # ViT-B windowed vs global blocks
    windows = [blk.window_size for blk in vit_b.backbone.blocks]
    assert windows == [0 if i in (5, 11) else 14 for i in range(12)]
    assert PRESETS["vit_b_448"]["decoder_dim"] == 256 and PRESETS["vit_b_448"]["pmmd_layers"] == 4


def test_patch14_gives_stride4_masks():
    model = create_model("tiny", in_channels=1, patch_size=14, image_size=56, window_size=0).eval()
    with torch.no_grad():
        out = model(_input(1, 56, 56, batch=1))
    assert out["pred_masks"].shape == (1, 4, 14, 14)


def test_ms_deform_attn_core_at_pixel_centres():
    """Sampling exactly at pixel centres returns the attention-weighted sum of those pixels' values."""
    shapes = [(3, 4), (2, 2)]
    batch, heads, head_dim, points, queries = 2, 2, 3, 2, 5
    value = torch.randn(batch, 3 * 4 + 2 * 2, heads, head_dim)
    rows = [torch.randint(0, h, (batch, queries, heads, points)) for h, _ in shapes]
    cols = [torch.randint(0, w, (batch, queries, heads, points)) for _, w in shapes]
    loc = torch.stack(
        [torch.stack([(c + 0.5) / w, (r + 0.5) / h], -1) for (h, w), r, c in zip(shapes, rows, cols, strict=True)], 3
    )
    weights = torch.rand(batch, queries, heads, len(shapes), points)
    out = ms_deform_attn_core(value, shapes, loc.float(), weights)
    expected = torch.zeros(batch, queries, heads, head_dim)
    offsets = [0, 12]
    for b in range(batch):
        for q in range(queries):
            for h in range(heads):
                for lvl, (_, w) in enumerate(shapes):
                    for p in range(points):
                        idx = offsets[lvl] + rows[lvl][b, q, h, p] * w + cols[lvl][b, q, h, p]
                        expected[b, q, h] += weights[b, q, h, lvl, p] * value[b, idx, h]
    torch.testing.assert_close(out, expected.view(batch, queries, heads * head_dim), atol=1e-5, rtol=1e-5)


def test_ms_deform_attn_outside_is_zero_and_module_shapes():
    value = torch.randn(1, 4, 1, 2)
    loc = torch.full((1, 1, 1, 1, 1, 2), 3.0)  # far outside the map
    assert ms_deform_attn_core(value, [(2, 2)], loc, torch.ones(1, 1, 1, 1, 1)).abs().max() == 0
    attn = MSDeformAttn(16, levels=2, heads=4, points=3)
    src = torch.randn(2, 20, 16)
    assert attn(src, torch.rand(2, 20, 2, 2), src, [(4, 4), (2, 2)]).shape == (2, 20, 16)
    with pytest.raises(ValueError, match="tokens"):
        attn(src, torch.rand(2, 20, 2, 2), src, [(4, 4), (3, 3)])


def test_caam_attention_mask_constructed_case():
    """Query 0: empty previous mask, says "object": attends only at the positive click's cell.
    Query 1: mask on the top-left quadrant, says "no object": the click does not unmask it.
    Query 2: empty mask and "no object": its row is fully masked, so it attends everywhere (Mask2Former rule)."""
    mask_logits = torch.full((1, 3, 8, 8), -10.0)
    mask_logits[0, 1, :4, :4] = 10.0
    class_logits = torch.tensor([[[5.0, -5.0], [-5.0, 5.0], [-5.0, 5.0]]])
    clicks = torch.zeros(1, 1, 16, 16)
    clicks[0, 0, 12:15, 12:15] = 1.0  # inside level cell (3, 3) of a 4x4 level
    blocked = build_caam_attention_mask(mask_logits, class_logits, clicks, (4, 4))
    assert blocked.shape == (1, 3, 16) and blocked.dtype == torch.bool
    allowed = ~blocked[0].view(3, 4, 4)
    expected0 = torch.zeros(4, 4, dtype=torch.bool)
    expected0[3, 3] = True
    expected1 = torch.zeros(4, 4, dtype=torch.bool)
    expected1[:2, :2] = True
    assert torch.equal(allowed[0], expected0)
    assert torch.equal(allowed[1], expected1)
    assert allowed[2].all()
    # negative clicks do not enter: with no positive click query 0 is fully masked -> attends everywhere
    assert (~build_caam_attention_mask(mask_logits, class_logits, torch.zeros(1, 1, 16, 16), (4, 4))[0, 0]).all()


def test_caam_click_lets_query_attend_where_mask_is_empty():
    """With every previous mask empty and every query saying "object", a positive click is the only key a query can
    attend to: changing the value at the click's key changes the output, changing another key does not."""
    d = 16
    dec = ClickAwareMaskDecoder(d, num_queries=2, num_rounds=1, heads=2, ffn_dim=32).eval()
    with torch.no_grad():
        last = dec.mask_embed.layers[-1]
        last.weight.zero_()
        last.bias.zero_()
        last.bias[0] = -100.0  # mask logits = -100 * F3[:, 0] = -100 everywhere: empty masks
        dec.class_embed.weight.zero_()
        dec.class_embed.bias.copy_(torch.tensor([10.0, -10.0]))  # every query: object
    mask_features = torch.zeros(1, d, 16, 16)
    mask_features[:, 0] = 1.0
    feats = [torch.randn(1, d, s, s) for s in (2, 4, 8)]
    clicks = torch.zeros(1, 1, 64, 64)
    clicks[0, 0, 40:44, 40:44] = 1.0  # level 0 (2x2) cell (1, 1); level 1 cell (2, 2); level 2 cell (5, 5)

    def final_queries(levels):
        captured = {}
        handle = dec.ffn[-1].register_forward_hook(lambda m, i, o: captured.setdefault("q", o))
        with torch.no_grad():
            dec(levels, mask_features, clicks)
        handle.remove()
        return captured["q"]

    base = final_queries(feats)
    at_click = [f.clone() for f in feats]
    at_click[0][0, :, 1, 1] += 5.0
    elsewhere = [f.clone() for f in feats]
    elsewhere[0][0, :, 0, 0] += 5.0
    elsewhere[1][0, :, 0, 3] += 5.0
    elsewhere[2][0, :, 7, 0] += 5.0
    assert (final_queries(at_click) - base).abs().max() > 1e-3
    torch.testing.assert_close(final_queries(elsewhere), base)


def test_default_weighted_mean_combination_matches_independent_computation():
    model = create_model("tiny", in_channels=1).eval()
    x = _input(1, 60, 44, batch=1)
    with torch.no_grad():
        prob, candidates, scores = model.predict(x)
        out = model(x)
    obj = out["pred_logits"].softmax(-1)[0, :, 0]
    masks = out["pred_masks"][0].sigmoid()  # [Q, 15, 11]
    low = sum(obj[q] * masks[q] for q in range(len(obj))) / obj.sum()  # confidence-weighted mean of the queries
    up = F.interpolate(low[None, None], size=(60, 44), mode="bilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(prob[0, 0], up, atol=1e-5, rtol=1e-5)
    assert prob.shape == (1, 1, 60, 44) and 0 <= prob.min() and prob.max() <= 1
    order = torch.argsort(obj, descending=True)
    torch.testing.assert_close(scores[0], obj[order])
    best = F.interpolate(masks[order[0]][None, None], size=(60, 44), mode="bilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(candidates[0, 0], best, atol=1e-5, rtol=1e-5)


def test_sum_combination_is_the_clamped_weighted_sum():
    model = create_model("tiny", in_channels=1, final_combination="sum").eval()
    x = _input(1, 64, 64, batch=1)
    with torch.no_grad():
        prob = model.predict(x)[0]
        out = model(x)
    obj = out["pred_logits"].softmax(-1)[0, :, 0]
    low = sum(obj[q] * out["pred_masks"][0, q].sigmoid() for q in range(len(obj))).clamp(0, 1)
    up = F.interpolate(low[None, None], size=(64, 64), mode="bilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(prob[0, 0], up, atol=1e-5, rtol=1e-5)
    assert model.config["final_combination"] == "sum"
    with pytest.raises(ValueError):
        create_model("tiny", final_combination="max")
