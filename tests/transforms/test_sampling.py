# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the training click samplers (SPEC section 4) and the torch exact distance transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.ndimage import distance_transform_edt

from monai_adaptiveclick.transforms import (
    Click,
    euclidean_distance_transform,
    sample_error_click,
    sample_error_clicks_batch,
    sample_initial_clicks,
)


def _padded_edt(mask: np.ndarray) -> np.ndarray:
    return distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


def _error_maps(pred: np.ndarray, gt: np.ndarray):
    """Reference for the error-click rule: (positive?, candidate mask) or None, with scipy."""
    fn = _padded_edt(gt & ~pred)
    fp = _padded_edt(~gt & pred)
    peak = max(fn.max(), fp.max())
    if peak == 0:
        return None
    positive = fn.max() > fp.max()
    return positive, (fn if positive else fp) > peak / 2


# ---------------------------------------------------------------- torch EDT


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(np.bool_, st.tuples(st.integers(1, 3), st.integers(1, 20), st.integers(1, 20))),
    st.booleans(),
)
def test_torch_edt_matches_scipy(masks, border):
    out = euclidean_distance_transform(torch.from_numpy(masks), border_is_background=border)
    assert out.dtype == torch.float32 and out.shape == masks.shape
    for index, mask in enumerate(masks):
        if border:
            expected = _padded_edt(mask)
        elif (~mask).any():
            expected = distance_transform_edt(mask)
        else:
            expected = np.full(mask.shape, np.inf)
        np.testing.assert_allclose(out[index].numpy(), expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("density", [0.5, 0.97])
def test_torch_edt_on_larger_random_masks(density):
    rng = np.random.default_rng(3)
    masks = rng.random((2, 70, 90)) < density
    masks[1, 10:60, 5:85] = True  # a large blob: far from any zero
    out = euclidean_distance_transform(torch.from_numpy(masks)[:, None])
    assert out.shape == (2, 1, 70, 90)
    for index in range(2):
        np.testing.assert_allclose(out[index, 0].numpy(), _padded_edt(masks[index]), rtol=1e-6, atol=1e-5)


def test_torch_edt_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\[\.\.\., H, W\]"):
        euclidean_distance_transform(torch.zeros(5, dtype=torch.bool))


# ---------------------------------------------------------------- error-click rule


@st.composite
def _pred_gt(draw, max_batch=1):
    b = draw(st.integers(1, max_batch))
    h = draw(st.integers(1, 16))
    w = draw(st.integers(1, 16))
    gt = draw(hnp.arrays(np.bool_, (b, h, w)))
    pred = draw(hnp.arrays(np.bool_, (b, h, w)))
    return pred, gt


@settings(max_examples=30, deadline=None)
@given(_pred_gt(), st.integers(0, 2**16))
def test_sample_error_click_in_error_region_above_half_max(case, seed):
    pred, gt = case[0][0], case[1][0]
    reference = _error_maps(pred, gt)
    click = sample_error_click(pred, gt, np.random.default_rng(seed))
    if reference is None:
        assert click is None
        return
    positive, candidates = reference
    assert isinstance(click, Click)
    assert click.is_positive == positive
    assert candidates[click.y, click.x]
    assert gt[click.y, click.x] == positive and pred[click.y, click.x] != positive


def test_sample_error_click_is_random_over_the_candidates_and_respects_ignore():
    gt = np.zeros((20, 20), dtype=bool)
    gt[2:18, 2:18] = True
    pred = np.zeros_like(gt)
    positive, candidates = _error_maps(pred, gt)
    rng = np.random.default_rng(0)
    seen = {tuple(sample_error_click(pred, gt, rng))[:2] for _ in range(200)}
    assert len(seen) > 10 and all(candidates[y, x] for y, x in seen)
    ignore = np.zeros_like(gt)
    ignore[:, :12] = True
    click = sample_error_click(pred, gt, 1, ignore=ignore)
    assert click.x >= 12 and click.is_positive
    with pytest.raises(ValueError, match="same shape"):
        sample_error_click(pred, gt[:5], 0)


@settings(max_examples=30, deadline=None)
@given(_pred_gt(max_batch=4), st.integers(0, 2**16))
def test_batched_error_clicks(case, seed):
    pred, gt = case
    coords, signs = sample_error_clicks_batch(
        torch.from_numpy(pred), torch.from_numpy(gt), generator=torch.Generator().manual_seed(seed)
    )
    assert coords.shape == (pred.shape[0], 2) and coords.dtype == torch.int64
    assert signs.shape == (pred.shape[0],) and signs.dtype == torch.int64
    for index in range(pred.shape[0]):
        reference = _error_maps(pred[index], gt[index])
        y, x = coords[index].tolist()
        if reference is None:
            assert signs[index] == 0 and (y, x) == (0, 0)
            continue
        positive, candidates = reference
        assert signs[index] == (1 if positive else -1)
        assert candidates[y, x]


def test_batched_error_clicks_no_error_items_and_determinism():
    gt = torch.zeros(3, 1, 16, 16, dtype=torch.bool)
    gt[0, 0, 4:12, 4:12] = True
    gt[2, 0, 0:8, 0:16] = True
    pred = gt.clone()
    pred[2, 0, 0:8, 0:16] = False
    pred[0, 0, 0, 0] = True  # item 0: a single FP pixel; item 1: perfect; item 2: FN band
    first = sample_error_clicks_batch(pred, gt, generator=torch.Generator().manual_seed(5))
    second = sample_error_clicks_batch(pred.float(), gt.float(), generator=torch.Generator().manual_seed(5))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[1].tolist() == [-1, 0, 1]
    assert first[0][0].tolist() == [0, 0]
    assert 0 <= first[0][2, 0] < 8
    with pytest.raises(ValueError, match="same shape"):
        sample_error_clicks_batch(pred[:, 0, :8], gt[:, 0])


# ---------------------------------------------------------------- initial multi-point sampler


@st.composite
def _object_case(draw):
    h = draw(st.integers(4, 24))
    w = draw(st.integers(4, 24))
    gt = draw(hnp.arrays(np.bool_, (h, w)))
    other = draw(hnp.arrays(np.bool_, (h, w)))
    ignore = draw(hnp.arrays(np.bool_, (h, w), elements=st.sampled_from([False, False, False, True])))
    return gt, other, ignore


@settings(max_examples=30, deadline=None)
@given(_object_case(), st.integers(0, 2**16), st.integers(1, 24))
def test_initial_clicks_properties(case, seed, max_points):
    gt, other, ignore = case
    assume((gt & ~ignore).any())
    clicks = sample_initial_clicks(gt, np.random.default_rng(seed), other, ignore, max_points=max_points)
    assert 1 <= len(clicks) <= max_points
    assert clicks[0].is_positive
    positives = [c for c in clicks if c.is_positive]
    assert clicks[: len(positives)] == positives  # positives first
    assert len({(c.y, c.x) for c in clicks}) == len(clicks)  # never a pixel twice
    for click in clicks:
        assert not ignore[click.y, click.x]
        assert gt[click.y, click.x] == click.is_positive
    again = sample_initial_clicks(gt, np.random.default_rng(seed), other, ignore, max_points=max_points)
    assert again == clicks


def test_first_click_in_object_core_and_count_distribution():
    gt = np.zeros((40, 40), dtype=bool)
    gt[5:35, 5:35] = True
    dist = _padded_edt(gt)
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(300):
        clicks = sample_initial_clicks(gt, rng, max_points=24)
        assert dist[clicks[0].y, clicks[0].x] >= 0.5 * dist.max()
        counts.append(sum(c.is_positive for c in clicks))
    counts = np.bincount(counts, minlength=25)[1:]
    # P(k) ∝ 0.8^k: P(1) / P(2) = 1.25 and P(1) ~ 0.2; loose bounds for 300 draws.
    assert 0.12 < counts[0] / 300 < 0.3
    assert counts[0] > counts[3] > counts[10]


def test_negative_strategies_follow_the_masks():
    gt = np.zeros((64, 64), dtype=bool)
    gt[20:40, 20:40] = True
    other = np.zeros_like(gt)
    other[50:60, 2:12] = True
    rng = np.random.default_rng(1)
    on_other, in_band, elsewhere = 0, 0, 0
    outer = distance_transform_edt(~gt)
    for _ in range(200):
        for click in sample_initial_clicks(gt, rng, other_objects=other, border_width=4):
            if click.is_positive:
                continue
            if other[click.y, click.x]:
                on_other += 1
            elif outer[click.y, click.x] <= 4:
                in_band += 1
            else:
                elsewhere += 1
    total = on_other + in_band + elsewhere
    assert total > 100
    # probabilities 0.4 (other objects, 100 px of 3696 background px) / 0.5 (band) / 0.1 (anywhere in background)
    assert 0.3 < on_other / total < 0.5
    assert 0.4 < in_band / total < 0.62
    assert elsewhere / total < 0.15


def test_initial_sampler_rejects_bad_input():
    gt = np.zeros((8, 8), dtype=bool)
    with pytest.raises(ValueError, match="no object pixel"):
        sample_initial_clicks(gt, 0)
    gt[2:5, 2:5] = True
    with pytest.raises(ValueError, match="shape of gt"):
        sample_initial_clicks(gt, 0, other_objects=np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="negative_strategy_probs"):
        sample_initial_clicks(gt, 0, negative_strategy_probs=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="rng"):
        sample_initial_clicks(gt, "seed")
    assert sample_initial_clicks(gt[None].astype(np.uint8), 3) == sample_initial_clicks(gt, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batched_error_clicks_on_cuda_match_cpu():
    rng = np.random.default_rng(11)
    gt = torch.from_numpy(rng.random((4, 48, 40)) < 0.4)
    pred = torch.from_numpy(rng.random((4, 48, 40)) < 0.4)
    np.testing.assert_allclose(
        euclidean_distance_transform(gt.cuda()).cpu().numpy(), euclidean_distance_transform(gt).numpy(), atol=1e-5
    )
    coords, signs = sample_error_clicks_batch(pred.cuda(), gt.cuda(), generator=torch.Generator().manual_seed(2))
    assert coords.device.type == "cuda" and signs.device.type == "cuda"
    expected = sample_error_clicks_batch(pred, gt, generator=torch.Generator().manual_seed(2))
    assert torch.equal(coords.cpu(), expected[0]) and torch.equal(signs.cpu(), expected[1])
