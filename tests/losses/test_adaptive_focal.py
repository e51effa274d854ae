# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Adaptive focal loss against an independent float64 implementation of paper eq. 8-9, 19-20 (SPEC section 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_adaptiveclick.losses import AdaptiveFocalLoss, adaptive_focal_loss, get_loss


def reference_afl(logits, target, gamma=2.0, alpha=1.0, delta=0.4, ada=True, agr=True):
    """Straightforward float64 AFL of each row of ``[N, P]`` arrays, written from the paper's equations.

    Returns ``(per_mask_loss [N], gamma_d [N], mu [N])``.
    """
    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    p = 1.0 / (1.0 + np.exp(-x))
    pt = p * t + (1.0 - p) * (1.0 - t)
    log_pt = t * np.log(p) + (1.0 - t) * np.log(1.0 - p)  # = log(p_t) for binary t; soft-target CE otherwise
    losses, gammas, mus = [], [], []
    for i in range(x.shape[0]):
        fg = t[i] > 0.5
        gamma_a = 1.0 - pt[i][fg].sum() / fg.sum() if fg.any() else 1.0
        gamma_d = gamma + gamma_a if ada else gamma
        beta = (1.0 - pt[i]) ** gamma_d
        mu = x.shape[1] / max((1.0 + delta * gamma_d) * beta.sum(), 1e-12) if agr else 1.0
        pixel = -mu * beta * log_pt[i] + alpha * (1.0 - pt[i]) ** (gamma_d + 1.0)
        losses.append(pixel.mean())
        gammas.append(gamma_d)
        mus.append(mu)
    return np.array(losses), np.array(gammas), np.array(mus)


@st.composite
def mask_batches(draw, soft=False):
    n = draw(st.integers(1, 3))
    h = draw(st.integers(1, 6))
    w = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    density = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
    rng = np.random.default_rng(seed)
    logits = rng.uniform(-8.0, 8.0, size=(n, 1, h, w))
    if soft:
        target = rng.uniform(0.0, 1.0, size=(n, 1, h, w))
    else:
        target = (rng.uniform(size=(n, 1, h, w)) < density).astype(np.float64)
    return logits, target


options = st.fixed_dictionaries(
    {
        "gamma": st.floats(0.0, 4.0),
        "alpha": st.floats(0.0, 2.0),
        "delta": st.floats(0.0, 1.0),
        "ada": st.booleans(),
        "agr": st.booleans(),
    }
)


@settings(max_examples=30, deadline=None)
@given(batch=mask_batches(), opts=options)
def test_matches_reference_binary_targets(batch, opts):
    logits, target = batch
    expected, _, _ = reference_afl(logits.reshape(len(logits), -1), target.reshape(len(target), -1), **opts)
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    per_mask = AdaptiveFocalLoss(**opts, reduction="none")(x, t)
    np.testing.assert_allclose(per_mask.numpy(), expected, rtol=1e-9, atol=1e-12)
    assert AdaptiveFocalLoss(**opts)(x, t).item() == pytest.approx(expected.mean(), rel=1e-9, abs=1e-12)
    assert AdaptiveFocalLoss(**opts, reduction="sum")(x, t).item() == pytest.approx(expected.sum(), rel=1e-9, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(batch=mask_batches(soft=True), opts=options)
def test_matches_reference_soft_targets(batch, opts):
    logits, target = batch
    expected, _, _ = reference_afl(logits.reshape(len(logits), -1), target.reshape(len(target), -1), **opts)
    per_mask = AdaptiveFocalLoss(**opts, reduction="none")(torch.from_numpy(logits), torch.from_numpy(target))
    np.testing.assert_allclose(per_mask.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_input_layouts_are_equivalent():
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(3, 1, 5, 7)))
    target = torch.from_numpy((rng.uniform(size=(3, 1, 5, 7)) > 0.6).astype(np.float64))
    loss = AdaptiveFocalLoss(reduction="none")
    a = loss(logits, target)
    b = loss(logits[:, 0], target[:, 0])
    c = loss(logits.reshape(3, 35), target.reshape(3, 35))
    assert a.shape == (3,)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    # bool targets are accepted and give the same values
    torch.testing.assert_close(loss(logits, target.bool()), a)


def test_special_case_focal_loss():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(-6, 6, size=(4, 50)))
    t = torch.from_numpy((rng.uniform(size=(4, 50)) > 0.5).astype(np.float64))
    p = torch.sigmoid(x)
    pt = torch.where(t > 0.5, p, 1 - p)
    focal = (-((1 - pt) ** 2.0) * torch.log(pt)).mean(dim=1).mean()
    afl = AdaptiveFocalLoss(gamma=2.0, alpha=0.0, ada=False, agr=False)(x, t)
    torch.testing.assert_close(afl, focal)


def test_special_case_bce():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.uniform(-6, 6, size=(2, 1, 6, 6)))
    t = torch.from_numpy((rng.uniform(size=(2, 1, 6, 6)) > 0.3).astype(np.float64))
    afl = AdaptiveFocalLoss(gamma=0.0, alpha=0.0, ada=False, agr=False)(x, t)
    torch.testing.assert_close(afl, F.binary_cross_entropy(torch.sigmoid(x), t))


def test_special_case_normalized_focal_loss():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.uniform(-6, 6, size=(3, 40)))
    t = torch.from_numpy((rng.uniform(size=(3, 40)) > 0.5).astype(np.float64))
    p = torch.sigmoid(x)
    pt = torch.where(t > 0.5, p, 1 - p)
    beta = (1 - pt) ** 2
    nfl = (-(beta / beta.sum(dim=1, keepdim=True)) * torch.log(pt)).sum(dim=1).mean()
    afl = AdaptiveFocalLoss(gamma=2.0, alpha=0.0, delta=0.0, ada=False, agr=True)(x, t)
    torch.testing.assert_close(afl, nfl)


def test_special_case_poly_loss():
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.uniform(-6, 6, size=(3, 40)))
    t = torch.from_numpy((rng.uniform(size=(3, 40)) > 0.5).astype(np.float64))
    p = torch.sigmoid(x)
    pt = torch.where(t > 0.5, p, 1 - p)
    poly = (-((1 - pt) ** 2) * torch.log(pt) + 0.7 * (1 - pt) ** 3).mean()
    afl = AdaptiveFocalLoss(gamma=2.0, alpha=0.7, ada=False, agr=False)(x, t)
    torch.testing.assert_close(afl, poly)


@pytest.mark.parametrize("ada,agr", [(True, True), (True, False), (False, True)])
def test_gradient_treats_ada_and_agr_as_constants(ada, agr):
    """Autograd gradient equals the hand-derived one with gamma_d and mu held constant (both detached)."""
    rng = np.random.default_rng(5)
    x_np = rng.uniform(-5, 5, size=(2, 30))
    t_np = (rng.uniform(size=(2, 30)) > 0.5).astype(np.float64)
    gamma, alpha, delta = 2.0, 1.0, 0.4
    _, gamma_d, mu = reference_afl(x_np, t_np, gamma, alpha, delta, ada, agr)
    # Hand derivation: q = 1 - p_t, s = 2t - 1, dq/dx = -s p_t q, d(-log p_t)/dx = -s q, so
    # d/dx [-mu q^g log p_t + alpha q^(g+1)] = -s mu (g q^g p_t (-log p_t) + q^(g+1)) - s alpha (g+1) q^(g+1) p_t
    p = 1 / (1 + np.exp(-x_np))
    pt = np.where(t_np > 0.5, p, 1 - p)
    q, s = 1 - pt, 2 * t_np - 1
    g, m = gamma_d[:, None], mu[:, None]
    pixel_grad = -s * m * (g * q**g * pt * -np.log(pt) + q ** (g + 1)) - s * alpha * (g + 1) * q ** (g + 1) * pt
    expected = pixel_grad / x_np.size  # mean over 30 pixels, then over 2 masks
    x = torch.from_numpy(x_np).requires_grad_(True)
    AdaptiveFocalLoss(gamma, alpha, delta, ada=ada, agr=agr)(x, torch.from_numpy(t_np)).backward()
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-9, atol=1e-14)


def test_empty_foreground_sets_gamma_a_to_one():
    rng = np.random.default_rng(6)
    x = torch.from_numpy(rng.normal(size=(2, 64)))
    t = torch.zeros(2, 64, dtype=torch.float64)
    ada = AdaptiveFocalLoss(gamma=2.0, ada=True, reduction="none")(x, t)
    fixed = AdaptiveFocalLoss(gamma=3.0, ada=False, reduction="none")(x, t)
    torch.testing.assert_close(ada, fixed)


def test_hand_computed_single_pixel():
    # p_t = 0 (logit -1e4, target 1): gamma_a = 1, gamma_d = 3, beta = 1, mu = 1 / (1 + 0.4 * 3), -log p_t = 1e4
    loss = AdaptiveFocalLoss()(torch.tensor([[-1e4]]), torch.tensor([[1.0]]))
    assert loss.item() == pytest.approx(1e4 / 2.2 + 1.0, rel=1e-6)
    # p_t = 1: everything vanishes
    assert AdaptiveFocalLoss()(torch.tensor([[1e4]]), torch.tensor([[1.0]])).item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["extreme", "empty", "full", "soft", "perfect"])
@pytest.mark.parametrize("opts", [{}, {"gamma": 0.0}, {"gamma": 0.0, "ada": False}, {"agr": False, "alpha": 0.0}])
def test_finite_loss_and_gradient(dtype, kind, opts):
    gen = torch.Generator().manual_seed(7)
    shape = (3, 1, 8, 8)
    signs = torch.randint(0, 2, shape, generator=gen).to(dtype) * 2 - 1
    logits = signs * 1e4
    target = (torch.rand(shape, generator=gen) > 0.5).to(dtype)
    if kind == "empty":
        target = torch.zeros(shape, dtype=dtype)
    elif kind == "full":
        target = torch.ones(shape, dtype=dtype)
    elif kind == "soft":
        target = torch.rand(shape, generator=gen, dtype=dtype)
    elif kind == "perfect":
        logits = torch.where(target > 0.5, 1e4, -1e4).to(dtype)
    logits.requires_grad_(True)
    loss = AdaptiveFocalLoss(**opts)(logits, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()
    if kind == "perfect":
        assert loss.item() == 0.0


def test_half_precision_is_computed_in_float32():
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(8)).half()
    t = (x > 0).float()
    out = AdaptiveFocalLoss()(x, t)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, AdaptiveFocalLoss()(x.float(), t))


def test_registry_builds_afl():
    loss = get_loss("afl", ada=False, delta=0.2)
    assert isinstance(loss, AdaptiveFocalLoss) and not loss.ada and loss.delta == 0.2


@pytest.mark.parametrize(
    "logits,target,match",
    [
        (torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5), r"\(2, 1, 4, 4\).*\(2, 1, 4, 5\)"),
        (torch.zeros(2, 4), torch.full((2, 4), 1.5), r"\[0, 1\]"),
        (torch.zeros(2, 4), torch.full((2, 4), -0.1), r"\[0, 1\]"),
        (torch.zeros(2, 4), torch.full((2, 4), float("nan")), r"\[0, 1\]"),
        (torch.zeros(2, 4, dtype=torch.int64), torch.zeros(2, 4), "floating point"),
        (torch.zeros(4), torch.zeros(4), r"one mask per item"),
    ],
)
def test_bad_input_raises(logits, target, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveFocalLoss()(logits, target)


@pytest.mark.parametrize("kwargs", [{"gamma": -1.0}, {"delta": -0.1}, {"reduction": "avg"}, {"eps": 0.0}])
def test_bad_options_raise(kwargs):
    with pytest.raises(ValueError):
        AdaptiveFocalLoss(**kwargs)


@settings(max_examples=30, deadline=None)
@given(batch=mask_batches(), opts=options, valid_seed=st.integers(0, 2**31 - 1), soft=st.booleans())
def test_valid_mask_matches_reference_on_valid_pixels(batch, opts, valid_seed, soft):
    """AFL with a valid mask = the float64 reference of the paper's equations run on each mask's valid pixels only."""
    logits, target = batch
    rng = np.random.default_rng(valid_seed)
    if soft:
        target = rng.uniform(size=target.shape)
    valid = rng.uniform(size=target.shape) < rng.uniform(0.0, 1.0)
    x, t = logits.reshape(len(logits), -1), target.reshape(len(target), -1)
    v = valid.reshape(len(valid), -1)
    expected = np.array(
        [reference_afl(x[i][v[i]][None], t[i][v[i]][None], **opts)[0][0] if v[i].any() else 0.0 for i in range(len(x))]
    )
    per_mask = AdaptiveFocalLoss(**opts, reduction="none")(
        torch.from_numpy(logits), torch.from_numpy(target), torch.from_numpy(valid)
    )
    np.testing.assert_allclose(per_mask.numpy(), expected, rtol=1e-9, atol=1e-12)
    # the functional form on [N, P] rows, where the ignored pixels keep their logits and targets
    functional = adaptive_focal_loss(
        torch.from_numpy(x), torch.from_numpy(t), **opts, valid=torch.from_numpy(v).double()
    )
    has_valid = v.any(axis=1)
    np.testing.assert_allclose(functional.numpy()[has_valid], expected[has_valid], rtol=1e-9, atol=1e-12)


def test_ada_and_agr_statistics_use_valid_pixels_only():
    """Hand case: the ignored pixels would change gamma_a (ADA) and mu (AGR) if they were counted."""
    x = torch.tensor([[2.0, -1.0, -3.0, 0.5]], dtype=torch.float64)
    t = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    valid = torch.tensor([[True, False, False, True]])
    # valid pixels: (x=2, t=1) and (x=0.5, t=0); one valid foreground pixel with p_t = sigmoid(2)
    p_fg, p_bg = 1 / (1 + np.exp(-2.0)), 1 - 1 / (1 + np.exp(-0.5))
    gamma_d = 2.0 + (1.0 - p_fg)
    beta = np.array([(1 - p_fg) ** gamma_d, (1 - p_bg) ** gamma_d])
    mu = 2 / ((1 + 0.4 * gamma_d) * beta.sum())
    pixel = -mu * beta * np.log([p_fg, p_bg]) + np.array([1 - p_fg, 1 - p_bg]) ** (gamma_d + 1)
    assert AdaptiveFocalLoss()(x, t, valid).item() == pytest.approx(pixel.mean(), rel=1e-12)
    # ignoring the only foreground pixel leaves a mask without foreground: gamma_a = 1 as for an empty target
    no_fg = torch.tensor([[False, False, False, True]])
    expected = AdaptiveFocalLoss(gamma=3.0, ada=False)(x[:, 3:], t[:, 3:])
    torch.testing.assert_close(AdaptiveFocalLoss()(x, t, no_fg), expected)


def test_valid_mask_gradient_is_zero_on_ignored_pixels():
    gen = torch.Generator().manual_seed(9)
    x = (torch.randn(3, 1, 8, 8, generator=gen) * 4).requires_grad_(True)
    t = (torch.rand(3, 1, 8, 8, generator=gen) > 0.5).float()
    valid = torch.rand(3, 1, 8, 8, generator=gen) > 0.4
    AdaptiveFocalLoss()(x, t, valid).backward()
    assert bool((x.grad[~valid] == 0).all()) and bool((x.grad[valid] != 0).all())


def test_valid_mask_with_half_precision_logits():
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(10))
    t, valid = (x > 0.3).float(), x.abs() > 0.2
    out = AdaptiveFocalLoss()(x.half(), t, valid)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, AdaptiveFocalLoss()(x.half().float(), t, valid))
