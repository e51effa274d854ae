# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Comparison losses of paper Table VI and the loss registry, against float64 formulas written here (SPEC 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_adaptiveclick.losses import LOSSES, AdaptiveFocalLoss, PerMaskLoss, get_loss


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _log_pt(x, t):
    p = _sigmoid(x)
    return t * np.log(p) + (1 - t) * np.log(1 - p)


def _one_minus_pt(x, t):
    p = _sigmoid(x)
    return t * (1 - p) + (1 - t) * p


def ref_bce(x, t):
    return (-_log_pt(x, t)).mean(axis=1)


def ref_wbce(x, t, w=3.0):
    p = _sigmoid(x)
    return (-(w * t * np.log(p) + (1 - t) * np.log(1 - p))).mean(axis=1)


def ref_balanced(x, t, wp=3.0, wn=1.0):
    weight = wp * t + wn * (1 - t)
    return (weight * -_log_pt(x, t)).sum(axis=1) / weight.sum(axis=1)


def ref_soft_iou(x, t, smooth=1e-5):
    p = _sigmoid(x)
    return 1 - ((p * t).sum(axis=1) + smooth) / ((p + t - p * t).sum(axis=1) + smooth)


def ref_fl(x, t, gamma=2.0, balance=0.5):
    weight = balance * t + (1 - balance) * (1 - t)
    return (weight * _one_minus_pt(x, t) ** gamma * -_log_pt(x, t)).mean(axis=1)


def ref_nfl(x, t, gamma=2.0, balance=0.5):
    weight = balance * t + (1 - balance) * (1 - t)
    beta = _one_minus_pt(x, t) ** gamma
    mu = x.shape[1] / beta.sum(axis=1, keepdims=True)
    return (weight * mu * beta * -_log_pt(x, t)).mean(axis=1)


def ref_pl(x, t, gamma=2.0, balance=0.5, alpha=1.0):
    q = _one_minus_pt(x, t)
    weight = balance * t + (1 - balance) * (1 - t)
    return (weight * q**gamma * -_log_pt(x, t) + alpha * q ** (gamma + 1)).mean(axis=1)


def ref_dice(x, t, smooth=1e-5):
    p = _sigmoid(x)
    return 1 - (2 * (p * t).sum(axis=1) + smooth) / (p.sum(axis=1) + t.sum(axis=1) + smooth)


REFERENCES = {
    "bce": ref_bce,
    "wbce": ref_wbce,
    "balanced_ce": ref_balanced,
    "soft_iou": ref_soft_iou,
    "fl": ref_fl,
    "nfl": ref_nfl,
    "pl": ref_pl,
    "dice": ref_dice,
}


def test_registry_names():
    assert set(LOSSES) == {"afl", "bce", "wbce", "balanced_ce", "soft_iou", "fl", "nfl", "pl", "dice"}
    for name in LOSSES:
        assert isinstance(get_loss(name), PerMaskLoss)
    assert isinstance(get_loss("NFL"), type(get_loss("nfl")))


def test_unknown_loss_lists_choices():
    with pytest.raises(ValueError, match="balanced_ce"):
        get_loss("focal_tversky")


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(REFERENCES)),
    n=st.integers(1, 3),
    pixels=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
    soft=st.booleans(),
)
def test_losses_match_reference(name, n, pixels, seed, soft):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-8, 8, size=(n, pixels))
    t = rng.uniform(size=(n, pixels)) if soft else (rng.uniform(size=(n, pixels)) > 0.5).astype(np.float64)
    expected = REFERENCES[name](x, t)
    per_mask = get_loss(name, reduction="none")(torch.from_numpy(x), torch.from_numpy(t))
    np.testing.assert_allclose(per_mask.numpy(), expected, rtol=1e-7, atol=1e-10)
    mean = get_loss(name)(torch.from_numpy(x).reshape(n, 1, 1, pixels), torch.from_numpy(t).reshape(n, 1, 1, pixels))
    assert mean.item() == pytest.approx(expected.mean(), rel=1e-7, abs=1e-10)


def test_table_vi_settings_and_options():
    rng = np.random.default_rng(0)
    x = rng.uniform(-4, 4, size=(2, 30))
    t = (rng.uniform(size=(2, 30)) > 0.4).astype(np.float64)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    assert get_loss("wbce", pos_weight=5.0)(xt, tt).item() == pytest.approx(ref_wbce(x, t, 5.0).mean())
    assert get_loss("balanced_ce", pos_weight=2.0, neg_weight=0.5)(xt, tt).item() == pytest.approx(
        ref_balanced(x, t, 2.0, 0.5).mean()
    )
    assert get_loss("fl", gamma=1.0, balance=0.25)(xt, tt).item() == pytest.approx(ref_fl(x, t, 1.0, 0.25).mean())
    assert get_loss("pl", alpha=2.0)(xt, tt).item() == pytest.approx(ref_pl(x, t, alpha=2.0).mean())


def test_focal_family_are_special_cases_of_afl():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(-5, 5, size=(3, 64)))
    t = torch.from_numpy((rng.uniform(size=(3, 64)) > 0.5).astype(np.float64))
    afl = AdaptiveFocalLoss(gamma=2.0, alpha=0.0, delta=0.0, ada=False, agr=True)(x, t)
    torch.testing.assert_close(get_loss("nfl", balance=0.5)(x, t), 0.5 * afl)
    torch.testing.assert_close(get_loss("nfl", balance=None)(x, t), afl)
    pl = AdaptiveFocalLoss(gamma=2.0, alpha=1.0, ada=False, agr=False)(x, t)
    torch.testing.assert_close(get_loss("pl", balance=None)(x, t), pl)
    fl = AdaptiveFocalLoss(gamma=2.0, alpha=0.0, ada=False, agr=False)(x, t)
    torch.testing.assert_close(get_loss("fl", balance=None)(x, t), fl)


def test_nfl_normaliser_is_detached():
    # With mu constant, d/dx of -mu beta log p_t for t = 1 is -mu (g q^g p_t (-log p_t) + q^(g+1)), q = 1 - p_t.
    x_np = np.array([[-2.0, 0.5, 3.0, -0.3]])
    p = _sigmoid(x_np)
    q = 1 - p
    mu = x_np.size / (q**2).sum()
    expected = 0.5 * -mu * (2 * q**2 * p * -np.log(p) + q**3) / x_np.size
    x = torch.from_numpy(x_np).requires_grad_(True)
    get_loss("nfl")(x, torch.ones(1, 4, dtype=torch.float64)).backward()
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("kind", ["extreme", "empty", "full", "soft"])
def test_finite_for_extreme_inputs(name, kind):
    gen = torch.Generator().manual_seed(2)
    logits = (torch.randint(0, 2, (2, 1, 8, 8), generator=gen).float() * 2 - 1) * 1e4
    target = {
        "extreme": (torch.rand(2, 1, 8, 8, generator=gen) > 0.5).float(),
        "empty": torch.zeros(2, 1, 8, 8),
        "full": torch.ones(2, 1, 8, 8),
        "soft": torch.rand(2, 1, 8, 8, generator=gen),
    }[kind]
    logits.requires_grad_(True)
    loss = get_loss(name)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_bad_input_raises(name):
    loss = get_loss(name)
    with pytest.raises(ValueError, match=r"\(2, 16\)"):
        loss(torch.zeros(2, 16), torch.zeros(2, 15))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loss(torch.zeros(2, 16), torch.full((2, 16), 2.0))


@pytest.mark.parametrize(
    "name,kwargs",
    [("wbce", {"pos_weight": 0.0}), ("fl", {"balance": 1.5}), ("nfl", {"gamma": -1.0}), ("soft_iou", {"smooth": 0.0})],
)
def test_bad_options_raise(name, kwargs):
    with pytest.raises(ValueError):
        get_loss(name, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Ignored pixels: loss(logits, target, valid) must equal the loss of each mask computed on its valid pixels only.
# ---------------------------------------------------------------------------------------------------------------

#: every registered loss with its defaults, plus option variants whose statistics the valid mask must follow
LOSS_VARIANTS = [(name, {}) for name in sorted(LOSSES)] + [
    ("afl", {"ada": False}),
    ("afl", {"agr": False}),
    ("afl", {"ada": False, "agr": False}),
    ("afl", {"gamma": 1.0, "alpha": 0.5, "delta": 0.8}),
    ("nfl", {"balance": None, "gamma": 3.0}),
    ("fl", {"balance": 0.25}),
    ("pl", {"alpha": 2.0, "balance": None}),
    ("wbce", {"pos_weight": 5.0}),
    ("balanced_ce", {"pos_weight": 2.0, "neg_weight": 0.5}),
    ("soft_iou", {"smooth": 1.0}),
    ("dice", {"smooth_nr": 0.0, "smooth_dr": 1e-3}),
]
VARIANT_IDS = [name + "".join(f"-{k}={v}" for k, v in kwargs.items()) for name, kwargs in LOSS_VARIANTS]


def make_ignore_batch(seed, dtype, soft=False):
    """``[7, 1, 6, 5]`` logits / targets / valid masks covering the corner cases of the valid-pixel definition."""
    gen = torch.Generator().manual_seed(seed)
    shape = (7, 1, 6, 5)
    logits = (torch.rand(shape, generator=gen, dtype=torch.float64) * 12 - 6).to(dtype)
    if soft:
        target = torch.rand(shape, generator=gen, dtype=torch.float64).to(dtype)
    else:
        target = (torch.rand(shape, generator=gen) > 0.5).to(dtype)
    valid = torch.rand(shape, generator=gen) > torch.rand(7, 1, 1, 1, generator=gen).clamp(0.2, 0.8)
    valid[0] = False  # no valid pixel at all
    valid[1] = False
    valid[1, 0, 2, 3] = True  # a single valid pixel
    valid[2] = True  # every pixel valid
    # mask 3: all foreground is ignored (ADA's gamma_a must fall back to 1 as for an empty target)
    target[3] = 0.0
    target[3, 0, :2] = 1.0
    valid[3] = True
    valid[3, 0, :2] = False
    # mask 4: the ignored pixels are confidently wrong (they would dominate AGR / NFL normalisers and Dice)
    logits[4] = torch.where(valid[4], logits[4], torch.where(target[4] > 0.5, -9.0, 9.0).to(dtype))
    return logits, target, valid


def brute_force_per_mask(loss_name, kwargs, logits, target, valid):
    """Reference: for each mask, keep its valid pixels (ragged boolean indexing) and call the loss with valid=None.

    A mask without valid pixels contributes 0. ``logits`` may require grad; the graph goes through the indexing.
    """
    loss = get_loss(loss_name, reduction="none", **kwargs)
    values = []
    for i in range(logits.shape[0]):
        keep = valid[i].bool()
        if not bool(keep.any()):
            values.append(torch.zeros((), dtype=torch.promote_types(logits.dtype, torch.float32)))
            continue
        values.append(loss(logits[i][keep][None], target[i][keep][None])[0])
    return torch.stack(values)


@pytest.mark.parametrize("soft", [False, True], ids=["binary", "soft"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name,kwargs", LOSS_VARIANTS, ids=VARIANT_IDS)
def test_valid_mask_equals_loss_on_valid_pixels_only(name, kwargs, dtype, soft):
    logits, target, valid = make_ignore_batch(seed=11, dtype=dtype, soft=soft)
    x_ref = logits.clone().requires_grad_(True)
    expected = brute_force_per_mask(name, kwargs, x_ref, target, valid)
    x = logits.clone().requires_grad_(True)
    per_mask = get_loss(name, reduction="none", **kwargs)(x, target, valid)
    assert per_mask.shape == (logits.shape[0],)
    torch.testing.assert_close(per_mask, expected, rtol=1e-5, atol=1e-5)
    assert per_mask[0].item() == 0.0  # no valid pixel
    # reductions over masks: a mask without valid pixels counts as 0 in the mean over all N masks
    mean = get_loss(name, **kwargs)(logits, target, valid)
    total = get_loss(name, reduction="sum", **kwargs)(logits, target, valid)
    torch.testing.assert_close(mean, expected.mean(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(total, expected.sum(), rtol=1e-5, atol=1e-5)
    # gradients: those of the ragged reference on valid pixels, exactly 0 on ignored pixels
    expected.sum().backward()
    per_mask.sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    assert bool((x.grad[~valid] == 0).all())
    # per_mask alone honours the valid mask too (masks with at least one valid pixel; the ignored pixels keep their
    # original logits / targets here, forward() would replace them by 0 first)
    flat_valid = valid.flatten(1).to(dtype)
    some = flat_valid.sum(dim=1) > 0
    direct = get_loss(name, **kwargs).per_mask(logits.flatten(1), target.flatten(1), flat_valid)
    torch.testing.assert_close(direct[some], expected.detach()[some], rtol=1e-5, atol=1e-5)
    # a {0, 1} float valid mask is the same as a bool one
    torch.testing.assert_close(get_loss(name, reduction="none", **kwargs)(logits, target, valid.to(dtype)), per_mask)


@pytest.mark.parametrize("name,kwargs", LOSS_VARIANTS, ids=VARIANT_IDS)
def test_ignored_logits_do_not_change_the_loss(name, kwargs):
    logits, target, valid = make_ignore_batch(seed=12, dtype=torch.float64)
    loss = get_loss(name, reduction="none", **kwargs)
    before = loss(logits, target, valid)
    noise = torch.randn(logits.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 20
    after = loss(torch.where(valid, logits, noise), target, valid)
    torch.testing.assert_close(after, before, rtol=1e-12, atol=1e-12)
    # ... whereas the same change without the valid mask does change it (the masks are not trivially equal)
    assert not torch.allclose(loss(torch.where(valid, logits, noise), target), loss(logits, target))
    # even infinite / NaN logits on ignored pixels change nothing and get an exactly zero gradient
    special = torch.tensor([float("inf"), -float("inf"), float("nan")], dtype=torch.float64)
    x = torch.where(valid, logits, special[torch.arange(logits.numel()).reshape(logits.shape) % 3])
    x.requires_grad_(True)
    value = loss(x, target, valid)
    torch.testing.assert_close(value, before, rtol=1e-12, atol=1e-12)
    value.sum().backward()
    assert torch.isfinite(x.grad).all() and bool((x.grad[~valid] == 0).all())


@pytest.mark.parametrize("name,kwargs", LOSS_VARIANTS, ids=VARIANT_IDS)
def test_all_valid_mask_equals_no_mask(name, kwargs):
    logits, target, _ = make_ignore_batch(seed=13, dtype=torch.float64)
    loss = get_loss(name, reduction="none", **kwargs)
    torch.testing.assert_close(loss(logits, target, torch.ones_like(target, dtype=torch.bool)), loss(logits, target))


@pytest.mark.parametrize("name,kwargs", LOSS_VARIANTS + [("dice", {"smooth_nr": 0.0, "smooth_dr": 0.0})])
@pytest.mark.parametrize("kind", ["extreme", "random"])
def test_fully_ignored_mask_is_zero_with_finite_gradient(name, kwargs, kind):
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 1, 8, 8, generator=gen) * 3
    if kind == "extreme":
        logits = logits.sign() * 1e4
    target = (torch.rand(3, 1, 8, 8, generator=gen) > 0.5).float()
    valid = torch.ones(3, 1, 8, 8, dtype=torch.bool)
    valid[1] = False
    x = logits.clone().requires_grad_(True)
    per_mask = get_loss(name, reduction="none", **kwargs)(x, target, valid)
    assert per_mask[1].item() == 0.0
    per_mask.sum().backward()
    assert torch.isfinite(per_mask).all() and torch.isfinite(x.grad).all()
    assert bool((x.grad[1] == 0).all())
    # an entirely ignored batch: 0 for every reduction, no NaN
    for reduction in ("mean", "sum"):
        y = logits.clone().requires_grad_(True)
        value = get_loss(name, reduction=reduction, **kwargs)(y, target, torch.zeros_like(valid))
        value.backward()
        assert value.item() == 0.0 and bool((y.grad == 0).all())


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_bad_valid_mask_raises(name):
    loss = get_loss(name)
    logits, target = torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"valid must have the shape .*\(2, 1, 4, 4\).*\(2, 4, 4\)"):
        loss(logits, target, torch.ones(2, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        loss(logits, target, torch.full((2, 1, 4, 4), 0.5))
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        loss(logits, target, torch.full((2, 1, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="torch.Tensor"):
        loss(logits, target, [[True] * 16] * 2)
