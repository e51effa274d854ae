# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Criteria on a constructed batch against a hand computation of paper eq. 21-22 / SPEC section 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_adaptiveclick.losses import (
    AdaptiveClickCriterion,
    MaskFixedCriterion,
    build_criterion,
    downsample_target,
)


def ref_afl(x, t, gamma=2.0, alpha=1.0, delta=0.4, ada=True, agr=True):
    """AFL of one mask (1-D float64 arrays), paper eq. 8-9, 19-20."""
    p = 1 / (1 + np.exp(-x))
    pt = np.where(t > 0.5, p, 1 - p)
    fg = t > 0.5
    gamma_d = gamma + (1 - pt[fg].mean() if fg.any() else 1.0) if ada else gamma
    beta = (1 - pt) ** gamma_d
    mu = x.size / ((1 + delta * gamma_d) * beta.sum()) if agr else 1.0
    return np.mean(-mu * beta * np.log(pt) + alpha * (1 - pt) ** (gamma_d + 1))


def ref_nfl(x, t, gamma=2.0, balance=0.5):
    p = 1 / (1 + np.exp(-x))
    pt = np.where(t > 0.5, p, 1 - p)
    beta = (1 - pt) ** gamma
    weight = np.where(t > 0.5, balance, 1 - balance)
    return np.mean(-weight * x.size / beta.sum() * beta * np.log(pt))


def ref_dice(x, t):
    p = 1 / (1 + np.exp(-x))
    return 1 - (2 * (p * t).sum() + 1e-5) / (p.sum() + t.sum() + 1e-5)


def ref_click_ce(logits, matched, no_object_weight=0.1):
    """Weighted-mean CE over all queries: class 0 for matched (b, q), class 1 (weight 0.1) otherwise."""
    num, den = 0.0, 0.0
    for b in range(logits.shape[0]):
        for q in range(logits.shape[1]):
            cls = 0 if (b, q) in matched else 1
            w = 1.0 if cls == 0 else no_object_weight
            log_softmax = logits[b, q] - np.log(np.exp(logits[b, q]).sum())
            num += -w * log_softmax[cls]
            den += w
    return num / den


def make_batch():
    """Targets at 16x16 (masks at 4x4) and their hand-downsampled 4x4 versions."""
    target = np.zeros((2, 1, 16, 16))
    target[0, 0, 0:8, 0:8] = 1  # cells (0..1, 0..1) fully covered
    target[0, 0, 8:10, 0:4] = 1  # cell (2, 0) half covered -> kept (>= 0.5)
    target[0, 0, 12:13, 12:16] = 1  # cell (3, 3) a quarter covered -> dropped
    target[1, 0, 4:16, 8:16] = 1  # cells (1..3, 2..3)
    small = np.zeros((2, 4, 4))
    small[0, 0:2, 0:2] = 1
    small[0, 2, 0] = 1
    small[1, 1:4, 2:4] = 1
    return target, small


def layer_output(small, good, rng):
    """Query good[b] of image b is a confident copy of the target, the others are its inverse plus noise."""
    masks = np.empty((2, 3, 4, 4))
    for b in range(2):
        copy = np.where(small[b] > 0.5, 3.0, -3.0)
        for q in range(3):
            masks[b, q] = copy + 0.3 * rng.normal(size=(4, 4)) if q == good[b] else -copy + rng.normal(size=(4, 4))
    return rng.normal(size=(2, 3, 2)), masks


def test_downsample_target_area_then_threshold():
    target, small = make_batch()
    out = downsample_target(torch.from_numpy(target), (4, 4))
    np.testing.assert_array_equal(out[:, 0].numpy(), small)


def test_adaptiveclick_criterion_hand_computed():
    rng = np.random.default_rng(0)
    target, small = make_batch()
    goods = [(2, 0), (1, 2)]  # final layer, aux layer
    layers = [layer_output(small, good, rng) for good in goods]
    outputs = {
        "pred_logits": torch.from_numpy(layers[0][0]).requires_grad_(True),
        "pred_masks": torch.from_numpy(layers[0][1]).requires_grad_(True),
        "aux_outputs": [{"pred_logits": torch.from_numpy(layers[1][0]), "pred_masks": torch.from_numpy(layers[1][1])}],
    }
    total, parts = AdaptiveClickCriterion()(outputs, torch.from_numpy(target))

    expected = {"loss_click": 0.0, "loss_mask": 0.0, "loss_dice": 0.0}
    expected_total = 0.0
    for (logits, masks), good in zip(layers, goods, strict=True):
        click = ref_click_ce(logits, {(0, good[0]), (1, good[1])})
        afl = np.mean([ref_afl(masks[b, good[b]].ravel(), small[b].ravel()) for b in range(2)])
        dice = np.mean([ref_dice(masks[b, good[b]].ravel(), small[b].ravel()) for b in range(2)])
        expected["loss_click"] += click
        expected["loss_mask"] += afl
        expected["loss_dice"] += dice
        expected_total += 2.0 * click + 1.0 * (5.0 * afl + 5.0 * dice)
    assert set(parts) == set(expected)
    for key, value in expected.items():
        assert isinstance(parts[key], float)
        assert parts[key] == pytest.approx(value, rel=1e-9)
    assert total.item() == pytest.approx(expected_total, rel=1e-9)
    total.backward()
    assert torch.isfinite(outputs["pred_masks"].grad).all() and torch.isfinite(outputs["pred_logits"].grad).all()


def test_weights_and_mask_loss_options():
    rng = np.random.default_rng(1)
    target, small = make_batch()
    logits, masks = layer_output(small, (1, 1), rng)
    outputs = {"pred_logits": torch.from_numpy(logits), "pred_masks": torch.from_numpy(masks)}
    criterion = AdaptiveClickCriterion(
        mask_loss_kwargs={"ada": False}, lambda_cli=0.5, lambda_mask=2.0, lambda_afl=3.0, lambda_dice=0.0
    )
    total, parts = criterion(outputs, torch.from_numpy(target))
    afl = np.mean([ref_afl(masks[b, 1].ravel(), small[b].ravel(), ada=False) for b in range(2)])
    click = ref_click_ce(logits, {(0, 1), (1, 1)})
    assert parts["loss_mask"] == pytest.approx(afl, rel=1e-9)
    assert total.item() == pytest.approx(0.5 * click + 2.0 * 3.0 * afl, rel=1e-9)
    _, parts_bce = AdaptiveClickCriterion(mask_loss="bce")(outputs, torch.from_numpy(target))
    x, t = masks[:, 1].reshape(2, -1), small.reshape(2, -1)
    p = 1 / (1 + np.exp(-x))
    assert parts_bce["loss_mask"] == pytest.approx(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))), rel=1e-9)


def test_mask_fixed_criterion_hand_computed():
    rng = np.random.default_rng(2)
    target, small = make_batch()
    masks = rng.normal(scale=2, size=(2, 1, 4, 4))
    pred = torch.from_numpy(masks).requires_grad_(True)
    total, parts = MaskFixedCriterion()({"pred_masks": pred}, torch.from_numpy(target))
    nfl = np.mean([ref_nfl(masks[b, 0].ravel(), small[b].ravel()) for b in range(2)])
    dice = np.mean([ref_dice(masks[b, 0].ravel(), small[b].ravel()) for b in range(2)])
    assert parts == pytest.approx({"loss_mask": nfl, "loss_dice": dice}, rel=1e-9)
    assert total.item() == pytest.approx(5.0 * nfl + 5.0 * dice, rel=1e-9)
    total.backward()
    assert torch.isfinite(pred.grad).all()


def test_build_criterion():
    assert isinstance(build_criterion("camd"), AdaptiveClickCriterion)
    criterion = build_criterion("mask_fixed", mask_loss="afl", mask_loss_kwargs={"agr": False})
    assert isinstance(criterion, MaskFixedCriterion) and not criterion.mask_loss.agr
    with pytest.raises(ValueError, match="mask_fixed"):
        build_criterion("unet")


def test_bad_inputs_raise():
    outputs = {"pred_logits": torch.zeros(2, 3, 2), "pred_masks": torch.zeros(2, 3, 4, 4)}
    criterion = AdaptiveClickCriterion()
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        criterion(outputs, torch.zeros(2, 16, 16))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        criterion(outputs, torch.full((2, 1, 16, 16), 2.0))
    with pytest.raises(ValueError, match="batch size"):
        criterion(outputs, torch.zeros(3, 1, 16, 16))
    with pytest.raises(ValueError, match="pred_logits"):
        criterion({"pred_masks": torch.zeros(2, 1, 4, 4)}, torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\[B, 1, h, w\]"):
        MaskFixedCriterion()({"pred_masks": torch.zeros(2, 3, 4, 4)}, torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="lambda_cli"):
        AdaptiveClickCriterion(lambda_cli=-1.0)
    with pytest.raises(ValueError):
        AdaptiveClickCriterion(mask_loss="hinge")


@pytest.mark.parametrize("head", ["camd", "mask_fixed"])
def test_criterion_on_tiny_model_output(head):
    from monai_adaptiveclick.networks import create_model

    torch.manual_seed(0)
    model = create_model("tiny", in_channels=3, head=head)
    size = model.image_size
    target = torch.zeros(2, 1, size, size)
    target[0, :, 8 : size // 2, 10 : size // 2] = 1
    target[1, :, size // 4 :, size // 3 :] = 1
    total, parts = build_criterion(head)(model(torch.randn(2, 6, size, size)), target)
    total.backward()
    assert torch.isfinite(total) and all(np.isfinite(v) for v in parts.values())
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def make_ignore():
    """Ignore masks at 16x16 for make_batch() and the 4x4 valid masks they give by hand (area fraction >= 0.5)."""
    ignore = np.zeros((2, 1, 16, 16), dtype=bool)
    ignore[0, 0, 12:16, :] = True  # row 3 of cells fully ignored
    ignore[0, 0, 0:4, 12:14] = True  # cell (0, 3) half ignored -> ignored
    ignore[0, 0, 4:6, 12:14] = True  # cell (1, 3) a quarter ignored -> valid
    ignore[1, 0, 4:8, 8:12] = True  # cell (1, 2), a target cell, fully ignored
    valid = np.ones((2, 4, 4), dtype=bool)
    valid[0, 3, :] = False
    valid[0, 0, 3] = False
    valid[1, 1, 2] = False
    return ignore, valid


def camd_outputs(layers, requires_grad=False):
    def tensors(logits, masks):
        return {
            "pred_logits": torch.from_numpy(logits.copy()).requires_grad_(requires_grad),
            "pred_masks": torch.from_numpy(masks.copy()).requires_grad_(requires_grad),
        }

    return {**tensors(*layers[0]), "aux_outputs": [tensors(*layer) for layer in layers[1:]]}


def test_downsample_valid_rule():
    from monai_adaptiveclick.losses import downsample_valid

    ignore, valid = make_ignore()
    np.testing.assert_array_equal(downsample_valid(torch.from_numpy(ignore), (4, 4))[:, 0].numpy(), valid)
    np.testing.assert_array_equal(downsample_valid(torch.from_numpy(ignore).double(), (16, 16)).numpy(), ~ignore)


def test_adaptiveclick_criterion_with_ignore_hand_computed():
    rng = np.random.default_rng(3)
    target, small = make_batch()
    ignore, valid = make_ignore()
    goods = [(2, 0), (1, 2)]
    layers = [layer_output(small, good, rng) for good in goods]
    total, parts = AdaptiveClickCriterion()(camd_outputs(layers), torch.from_numpy(target), torch.from_numpy(ignore))
    expected = {"loss_click": 0.0, "loss_mask": 0.0, "loss_dice": 0.0}
    expected_total = 0.0
    for (logits, masks), good in zip(layers, goods, strict=True):
        click = ref_click_ce(logits, {(0, good[0]), (1, good[1])})
        pairs = [(masks[b, good[b]][valid[b]], small[b][valid[b]]) for b in range(2)]
        afl = np.mean([ref_afl(x, t) for x, t in pairs])
        dice = np.mean([ref_dice(x, t) for x, t in pairs])
        expected["loss_click"] += click
        expected["loss_mask"] += afl
        expected["loss_dice"] += dice
        expected_total += 2.0 * click + 5.0 * afl + 5.0 * dice
    # loss_click: rel 1e-7, the no-object weight 0.1 is a float32 buffer (0.10000000149 once cast to float64)
    assert parts["loss_click"] == pytest.approx(expected["loss_click"], rel=1e-7)
    assert parts["loss_mask"] == pytest.approx(expected["loss_mask"], rel=1e-9)
    assert parts["loss_dice"] == pytest.approx(expected["loss_dice"], rel=1e-9)
    assert total.item() == pytest.approx(expected_total, rel=1e-7)


@pytest.mark.parametrize("ignore_dtype", [torch.bool, torch.float32])
def test_adaptiveclick_logits_on_ignored_pixels_do_not_matter(ignore_dtype):
    rng = np.random.default_rng(4)
    target, small = make_batch()
    ignore, valid = make_ignore()
    layers = [layer_output(small, good, rng) for good in [(2, 0), (1, 2)]]
    criterion = AdaptiveClickCriterion()
    target_t, ignore_t = torch.from_numpy(target), torch.from_numpy(ignore).to(ignore_dtype)

    outputs = camd_outputs(layers, requires_grad=True)
    total, parts = criterion(outputs, target_t, ignore_t)
    total.backward()
    invalid = torch.from_numpy(~valid)[:, None].expand(2, 3, 4, 4)
    for layer in [outputs, *outputs["aux_outputs"]]:
        grad = layer["pred_masks"].grad
        assert torch.isfinite(grad).all() and bool((grad[invalid] == 0).all())
        assert bool((grad[~invalid] != 0).any())

    # large changes on every ignored pixel of every query and layer (enough to flip the matching without ignore)
    noise_rng = np.random.default_rng(5)
    changed = [
        (logits, np.where(valid[:, None], masks, 30 * noise_rng.normal(size=masks.shape))) for logits, masks in layers
    ]
    total_changed, parts_changed = criterion(camd_outputs(changed), target_t, ignore_t)
    assert total_changed.item() == pytest.approx(total.item(), rel=1e-12, abs=1e-12)
    assert parts_changed == pytest.approx(parts, rel=1e-12, abs=1e-12)
    assert criterion(camd_outputs(changed), target_t)[0].item() != pytest.approx(
        criterion(camd_outputs(layers), target_t)[0].item()
    )

    # a change on a valid pixel, here the quarter-ignored cell (1, 3) of image 0, does change the loss
    bumped = [(logits, masks.copy()) for logits, masks in layers]
    bumped[0][1][0, :, 1, 3] += 2.0
    assert criterion(camd_outputs(bumped), target_t, ignore_t)[0].item() != pytest.approx(total.item(), rel=1e-9)
    # while one on the half-ignored cell (0, 3) does not
    bumped = [(logits, masks.copy()) for logits, masks in layers]
    bumped[0][1][0, :, 0, 3] += 2.0
    assert criterion(camd_outputs(bumped), target_t, ignore_t)[0].item() == pytest.approx(total.item(), rel=1e-12)


def test_no_ignore_equals_all_false_ignore():
    rng = np.random.default_rng(6)
    target, small = make_batch()
    layers = [layer_output(small, (0, 1), rng)]
    criterion = AdaptiveClickCriterion()
    total, parts = criterion(camd_outputs(layers), torch.from_numpy(target))
    total_ignore, parts_ignore = criterion(camd_outputs(layers), torch.from_numpy(target), torch.zeros(2, 1, 16, 16))
    assert total_ignore.item() == pytest.approx(total.item(), rel=1e-12)
    assert parts_ignore == pytest.approx(parts, rel=1e-12)


def test_fully_ignored_image():
    rng = np.random.default_rng(7)
    target, small = make_batch()
    layers = [layer_output(small, (2, 1), rng)]
    ignore = np.zeros((2, 1, 16, 16), dtype=bool)
    ignore[1] = True
    outputs = camd_outputs(layers, requires_grad=True)
    total, parts = AdaptiveClickCriterion()(outputs, torch.from_numpy(target), torch.from_numpy(ignore))
    masks = layers[0][1]
    # image 0 as usual; image 1 contributes 0 but still counts in the mean over matched masks
    assert parts["loss_mask"] == pytest.approx(ref_afl(masks[0, 2].ravel(), small[0].ravel()) / 2, rel=1e-9)
    assert parts["loss_dice"] == pytest.approx(ref_dice(masks[0, 2].ravel(), small[0].ravel()) / 2, rel=1e-9)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(outputs["pred_masks"].grad).all()
    assert bool((outputs["pred_masks"].grad[1] == 0).all())


def test_mask_fixed_criterion_with_ignore():
    rng = np.random.default_rng(8)
    target, small = make_batch()
    ignore, valid = make_ignore()
    masks = rng.normal(scale=2, size=(2, 1, 4, 4))
    pred = torch.from_numpy(masks).requires_grad_(True)
    criterion = MaskFixedCriterion()
    total, parts = criterion({"pred_masks": pred}, torch.from_numpy(target), torch.from_numpy(ignore))
    nfl = np.mean([ref_nfl(masks[b, 0][valid[b]], small[b][valid[b]]) for b in range(2)])
    dice = np.mean([ref_dice(masks[b, 0][valid[b]], small[b][valid[b]]) for b in range(2)])
    assert parts == pytest.approx({"loss_mask": nfl, "loss_dice": dice}, rel=1e-9)
    assert total.item() == pytest.approx(5.0 * nfl + 5.0 * dice, rel=1e-9)
    total.backward()
    assert bool((pred.grad[:, 0][torch.from_numpy(~valid)] == 0).all())
    assert bool((pred.grad[:, 0][torch.from_numpy(valid)] != 0).all())
    changed = torch.from_numpy(np.where(valid[:, None], masks, 50 * rng.normal(size=masks.shape)))
    total_changed, _ = criterion({"pred_masks": changed}, torch.from_numpy(target), torch.from_numpy(ignore))
    assert total_changed.item() == pytest.approx(total.item(), rel=1e-12, abs=1e-12)
    bumped = masks.copy()
    bumped[0, 0, 1, 3] += 1.0  # the quarter-ignored cell is valid
    total_bumped, _ = criterion(
        {"pred_masks": torch.from_numpy(bumped)}, torch.from_numpy(target), torch.from_numpy(ignore)
    )
    assert total_bumped.item() != pytest.approx(total.item(), rel=1e-9)


@pytest.mark.parametrize("head", ["camd", "mask_fixed"])
def test_bad_ignore_raises(head):
    outputs = {"pred_logits": torch.zeros(2, 3, 2), "pred_masks": torch.zeros(2, 3 if head == "camd" else 1, 4, 4)}
    criterion = build_criterion(head)
    target = torch.zeros(2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"ignore must be None or a \[B, 1, H, W\].*\(2, 1, 16, 16\).*\(2, 16, 16\)"):
        criterion(outputs, target, torch.zeros(2, 16, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"ignore must be .*\(2, 1, 4, 4\)"):
        criterion(outputs, target, torch.zeros(2, 1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"ignore must be .*list"):
        criterion(outputs, target, [[0.0]])
    with pytest.raises(ValueError, match=r"ignore values .*\[0, 1\]"):
        criterion(outputs, target, torch.full((2, 1, 16, 16), 2.0))


@pytest.mark.parametrize("head", ["camd", "mask_fixed"])
def test_ignore_on_tiny_model_output(head):
    from monai_adaptiveclick.networks import create_model

    torch.manual_seed(1)
    model = create_model("tiny", in_channels=3, head=head)
    size = model.image_size
    target = torch.zeros(2, 1, size, size)
    target[:, :, size // 4 : size // 2, size // 4 :] = 1
    ignore = torch.zeros(2, 1, size, size, dtype=torch.bool)
    ignore[:, :, : size // 3] = True
    total, parts = build_criterion(head)(model(torch.randn(2, 6, size, size)), target, ignore)
    total.backward()
    assert torch.isfinite(total) and all(np.isfinite(v) for v in parts.values())
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
