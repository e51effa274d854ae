# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Hungarian matcher: cost against a float64 reference (SPEC section 3) and optimality against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_adaptiveclick.losses import HungarianMatcher


def ref_afl(x, t, gamma=2.0, alpha=1.0, delta=0.4):
    """AFL of one mask (1-D arrays), paper eq. 8-9, 19-20, ADA and AGR on."""
    p = 1 / (1 + np.exp(-x))
    pt = np.where(t > 0.5, p, 1 - p)
    fg = t > 0.5
    gamma_d = gamma + (1 - pt[fg].mean() if fg.any() else 1.0)
    beta = (1 - pt) ** gamma_d
    mu = x.size / ((1 + delta * gamma_d) * beta.sum())
    return np.mean(-mu * beta * np.log(pt) + alpha * (1 - pt) ** (gamma_d + 1))


def ref_dice(x, t):
    p = 1 / (1 + np.exp(-x))
    return 1 - (2 * (p * t).sum() + 1e-5) / (p.sum() + t.sum() + 1e-5)


def ref_cost(logits, masks, targets, w_afl=5.0, w_click=2.0, w_dice=5.0):
    """[Q, T] cost = w_afl * AFL + w_click * (-p_object) + w_dice * Dice."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p_obj = e[:, 0] / e.sum(axis=1)
    cost = np.zeros((masks.shape[0], targets.shape[0]))
    for q in range(masks.shape[0]):
        for j in range(targets.shape[0]):
            x, t = masks[q].ravel(), targets[j].ravel()
            cost[q, j] = w_afl * ref_afl(x, t) - w_click * p_obj[q] + w_dice * ref_dice(x, t)
    return cost


def brute_force_min(cost):
    q, t = cost.shape
    if q >= t:
        return min(sum(cost[perm[j], j] for j in range(t)) for perm in itertools.permutations(range(q), t))
    return min(sum(cost[i, perm[i]] for i in range(q)) for perm in itertools.permutations(range(t), q))


def test_cost_matrix_matches_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 2))
    masks = rng.normal(scale=3, size=(4, 6, 6))
    targets = (rng.uniform(size=(3, 6, 6)) > 0.5).astype(np.float64)
    targets[2] = 0.0  # an empty target: gamma_a = 1
    cost = HungarianMatcher().cost_matrix(torch.from_numpy(logits), torch.from_numpy(masks), torch.from_numpy(targets))
    np.testing.assert_allclose(cost.numpy(), ref_cost(logits, masks, targets), rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(q=st.integers(1, 5), t=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_assignment_is_optimal(q, t, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(1, q, 2))
    masks = rng.normal(scale=3, size=(1, q, 5, 5))
    targets = (rng.uniform(size=(t, 5, 5)) > rng.uniform()).astype(np.float64)
    ((rows, cols),) = HungarianMatcher()(torch.from_numpy(logits), torch.from_numpy(masks), [torch.from_numpy(targets)])
    assert rows.dtype == torch.int64 and cols.dtype == torch.int64
    assert len(rows) == len(cols) == min(q, t)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    cost = ref_cost(logits[0], masks[0], targets)
    assert cost[rows.numpy(), cols.numpy()].sum() == pytest.approx(brute_force_min(cost), rel=1e-9, abs=1e-9)


def test_recovers_constructed_assignment():
    # Three disjoint squares; queries 4, 1, 5 are confident copies of targets 0, 1, 2, the others are background.
    targets = torch.zeros(3, 12, 12)
    targets[0, 0:4, 0:4] = 1
    targets[1, 4:8, 4:8] = 1
    targets[2, 8:12, 8:12] = 1
    masks = torch.full((1, 6, 12, 12), -6.0)
    truth = {4: 0, 1: 1, 5: 2}
    for query, target in truth.items():
        masks[0, query] = torch.where(targets[target] > 0, 6.0, -6.0)
    logits = torch.zeros(1, 6, 2)
    ((rows, cols),) = HungarianMatcher()(logits, masks, [targets])
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == truth


def test_click_cost_alone_picks_most_confident_query():
    logits = torch.tensor([[[0.0, 1.0], [2.0, -1.0], [1.0, 0.0]], [[3.0, 0.0], [0.0, 0.0], [0.0, 3.0]]])
    masks = torch.zeros(2, 3, 4, 4)
    targets = torch.ones(2, 1, 4, 4)
    matches = HungarianMatcher(cost_afl=0.0, cost_dice=0.0)(logits, masks, targets)
    assert [(r.tolist(), c.tolist()) for r, c in matches] == [([1], [0]), ([0], [0])]


def test_batch_with_tensor_and_empty_targets():
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(2, 3, 2)))
    masks = torch.from_numpy(rng.normal(size=(2, 3, 4, 4)))
    matches = HungarianMatcher()(logits, masks, [torch.ones(1, 4, 4), torch.zeros(0, 4, 4)])
    assert len(matches[0][0]) == 1 and len(matches[1][0]) == 0 and matches[1][1].dtype == torch.int64
    matches = HungarianMatcher()(logits, masks, (torch.from_numpy(rng.uniform(size=(2, 1, 4, 4))) > 0.5).double())
    assert [len(r) for r, _ in matches] == [1, 1]


def test_mask_loss_option_changes_the_cost():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4, 4))
    t = (rng.uniform(size=(1, 4, 4)) > 0.5).astype(np.float64)
    matcher = HungarianMatcher(cost_click=0.0, cost_dice=0.0, mask_loss="bce")
    cost = matcher.cost_matrix(torch.zeros(3, 2), torch.from_numpy(x), torch.from_numpy(t))
    p = 1 / (1 + np.exp(-x.reshape(3, -1)))
    bce = -(t.reshape(1, -1) * np.log(p) + (1 - t.reshape(1, -1)) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(cost.numpy()[:, 0], 5 * bce, rtol=1e-9)


def test_bad_inputs_raise():
    matcher = HungarianMatcher()
    with pytest.raises(ValueError, match="mask resolution"):
        matcher(torch.zeros(1, 3, 2), torch.zeros(1, 3, 4, 4), [torch.zeros(1, 8, 8)])
    with pytest.raises(ValueError, match="pred_logits"):
        matcher(torch.zeros(1, 3, 3), torch.zeros(1, 3, 4, 4), [torch.zeros(1, 4, 4)])
    with pytest.raises(ValueError, match="batch"):
        matcher(torch.zeros(2, 3, 2), torch.zeros(2, 3, 4, 4), [torch.zeros(1, 4, 4)])
    with pytest.raises(ValueError, match="not finite"):
        matcher(torch.zeros(1, 3, 2), torch.full((1, 3, 4, 4), float("nan")), [torch.zeros(1, 4, 4)])
    with pytest.raises(ValueError):
        HungarianMatcher(cost_afl=0.0, cost_click=0.0, cost_dice=0.0)


def ref_cost_valid(logits, masks, targets, valid, w_afl=5.0, w_click=2.0, w_dice=5.0):
    """[Q, T] cost with the mask costs of pair (q, j) on the valid pixels of target j only (0 when there are none)."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p_obj = e[:, 0] / e.sum(axis=1)
    cost = np.zeros((masks.shape[0], targets.shape[0]))
    for q in range(masks.shape[0]):
        for j in range(targets.shape[0]):
            keep = valid[j].ravel()
            x, t = masks[q].ravel()[keep], targets[j].ravel()[keep]
            mask_cost = w_afl * ref_afl(x, t) + w_dice * ref_dice(x, t) if keep.any() else 0.0
            cost[q, j] = mask_cost - w_click * p_obj[q]
    return cost


def test_cost_matrix_with_valid_matches_reference():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 2))
    masks = rng.normal(scale=3, size=(4, 6, 6))
    targets = (rng.uniform(size=(3, 6, 6)) > 0.5).astype(np.float64)
    valid = rng.uniform(size=(3, 6, 6)) > 0.3
    valid[1] = False  # a target without valid pixels: mask costs 0
    matcher = HungarianMatcher()
    args = (torch.from_numpy(logits), torch.from_numpy(masks), torch.from_numpy(targets))
    cost = matcher.cost_matrix(*args, valid=torch.from_numpy(valid))
    np.testing.assert_allclose(cost.numpy(), ref_cost_valid(logits, masks, targets, valid), rtol=1e-9, atol=1e-12)
    # one mask shared by all targets: [1, h, w], [h, w] and a {0, 1} float mask are the same
    shared = np.broadcast_to(valid[0], valid.shape)
    expected = ref_cost_valid(logits, masks, targets, shared)
    for form in (torch.from_numpy(valid[:1]), torch.from_numpy(valid[0]), torch.from_numpy(valid[:1]).double()):
        np.testing.assert_allclose(matcher.cost_matrix(*args, valid=form).numpy(), expected, rtol=1e-9, atol=1e-12)


def test_valid_mask_decides_the_assignment():
    """Query 0 copies the target on the valid half and is wrong on the ignored half; query 1 the other way round."""
    target = torch.zeros(1, 8, 8)
    target[0, 2:6, 1:7] = 1
    valid = torch.zeros(1, 8, 8, dtype=torch.bool)
    valid[0, :, :3] = True  # the left 3 columns (3 / 8 of the pixels) are valid
    copy = torch.where(target[0] > 0, 6.0, -6.0)
    masks = torch.stack([torch.where(valid[0], copy, -copy), torch.where(valid[0], -copy, copy)])[None]
    logits = torch.zeros(1, 2, 2)
    matcher = HungarianMatcher()
    ((rows, _),) = matcher(logits, masks, [target])
    assert rows.tolist() == [1]  # right on most pixels
    ((rows, _),) = matcher(logits, masks, [target], valid=[valid])
    assert rows.tolist() == [0]  # right on every valid pixel
    # any change of the logits on ignored pixels leaves the cost unchanged
    noise = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(0)) * 10
    base = matcher.cost_matrix(logits[0], masks[0], target, valid)
    changed = matcher.cost_matrix(logits[0], torch.where(valid, masks, noise)[0], target, valid)
    torch.testing.assert_close(changed, base, rtol=1e-12, atol=1e-12)


def test_batch_valid_forms():
    rng = np.random.default_rng(4)
    logits = torch.from_numpy(rng.normal(size=(2, 3, 2)))
    masks = torch.from_numpy(rng.normal(scale=3, size=(2, 3, 5, 5)))
    targets = torch.from_numpy((rng.uniform(size=(2, 1, 5, 5)) > 0.5).astype(np.float64))
    valid = torch.from_numpy(rng.uniform(size=(2, 1, 5, 5)) > 0.4)
    matcher = HungarianMatcher()
    as_tensor = matcher(logits, masks, targets, valid=valid)
    as_list = matcher(logits, masks, list(targets), valid=[valid[0], valid[1]])
    assert [(r.tolist(), c.tolist()) for r, c in as_tensor] == [(r.tolist(), c.tolist()) for r, c in as_list]
    for b, (rows, cols) in enumerate(as_tensor):
        cost = ref_cost_valid(logits[b].numpy(), masks[b].numpy(), targets[b].numpy(), valid[b].numpy())
        assert cost[rows.numpy(), cols.numpy()].sum() == pytest.approx(brute_force_min(cost), rel=1e-9, abs=1e-9)
    # None entries mean "all valid"
    mixed = matcher(logits, masks, targets, valid=[None, valid[1]])
    assert mixed[0][0].tolist() == matcher(logits[:1], masks[:1], targets[:1])[0][0].tolist()
    # an image without valid pixels is matched by the click cost alone
    ((rows, _),) = matcher(logits[:1], masks[:1], targets[:1], valid=torch.zeros(1, 1, 5, 5, dtype=torch.bool))
    assert rows.tolist() == [int(logits[0].softmax(-1)[:, 0].argmax())]


def test_bad_valid_raises():
    matcher = HungarianMatcher()
    logits, masks, targets = torch.zeros(1, 3, 2), torch.zeros(1, 3, 4, 4), [torch.zeros(2, 4, 4)]
    with pytest.raises(ValueError, match=r"valid must be \[h, w\], \[1, h, w\] or \[T, h, w\]"):
        matcher(logits, masks, targets, valid=[torch.ones(3, 4, 4)])
    with pytest.raises(ValueError, match=r"valid must be \[h, w\]"):
        matcher(logits, masks, targets, valid=[torch.ones(1, 4, 5)])
    with pytest.raises(ValueError, match=r"\[B, 1, h, w\]"):
        matcher(logits, masks, targets, valid=torch.ones(4, 4))
    with pytest.raises(ValueError, match="valid entries"):
        matcher(logits, masks, targets, valid=[torch.ones(1, 4, 4)] * 2)
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        matcher(logits, masks, targets, valid=[torch.full((1, 4, 4), 0.5)])
