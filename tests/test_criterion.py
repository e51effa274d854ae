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
