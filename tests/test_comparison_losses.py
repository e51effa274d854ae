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
