# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the evaluation clicker ``next_click`` (SPEC section 5) against an independent brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from monai_adaptiveclick.transforms import Click, next_click, padded_distance_transform


def _brute_force_sq_distance(region: np.ndarray) -> np.ndarray:
    """Squared distance of each region pixel to the nearest non-region pixel or to the 1-px ring outside the image.

    Plain numpy over all (pixel, zero point) pairs; integer arithmetic, so ties are exact.
    """
    h, w = region.shape
    ring = [(-1, j) for j in range(-1, w + 1)] + [(h, j) for j in range(-1, w + 1)]
    ring += [(i, -1) for i in range(h)] + [(i, w) for i in range(h)]
    zeros = np.concatenate([np.argwhere(~region), np.array(ring)], axis=0)
    pixels = np.argwhere(region)
    out = np.zeros((h, w), dtype=np.int64)
    if len(pixels):
        diff = pixels[:, None, :] - zeros[None, :, :]
        out[region] = (diff**2).sum(-1).min(axis=1)
    return out


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_padded_distance_transform_matches_brute_force(region):
    """The bounding-box-cropped transform equals the distance to every zero pixel and the outer ring."""
    np.testing.assert_allclose(padded_distance_transform(region) ** 2, _brute_force_sq_distance(region), atol=1e-9)


def test_padded_distance_transform_small_region_in_a_large_image():
    region = np.zeros((300, 200), dtype=bool)
    region[40:47, 150:160] = True
    region[44, 120] = True  # a lone pixel widening the bounding box
    np.testing.assert_allclose(padded_distance_transform(region) ** 2, _brute_force_sq_distance(region), atol=1e-9)
    assert padded_distance_transform(np.zeros((5, 5), dtype=bool)).max() == 0.0


def _expected_click(pred, gt, previous):
    fn = _brute_force_sq_distance(gt & ~pred)
    fp = _brute_force_sq_distance(~gt & pred)
    for y, x, _ in previous:
        fn[y, x] = 0
        fp[y, x] = 0
    if fn.max() == 0 and fp.max() == 0:
        return None
    positive = fn.max() > fp.max()
    winner = fn if positive else fp
    flat = int(np.flatnonzero(winner == winner.max())[0])  # first in C order
    return (flat // gt.shape[1], flat % gt.shape[1], bool(positive))


@st.composite
def _case(draw):
    h = draw(st.integers(1, 12))
    w = draw(st.integers(1, 12))
    gt = draw(hnp.arrays(np.bool_, (h, w)))
    pred = draw(hnp.arrays(np.bool_, (h, w)))
    previous = draw(st.lists(st.tuples(st.integers(0, h - 1), st.integers(0, w - 1), st.booleans()), max_size=5))
    return pred, gt, previous


@settings(max_examples=30, deadline=None)
@given(_case())
def test_next_click_matches_brute_force(case):
    pred, gt, previous = case
    assume(gt.any())
    expected = _expected_click(pred, gt, previous)
    if expected is None:
        with pytest.raises(ValueError, match="no error region left"):
            next_click(pred, gt, previous)
        return
    click = next_click(pred, gt, previous)
    assert isinstance(click, Click)
    assert click == expected
    region = (gt & ~pred) if click.is_positive else (~gt & pred)
    assert region[click.y, click.x]
    assert (click.y, click.x) not in {(y, x) for y, x, _ in previous}


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.bool_, st.tuples(st.integers(2, 10), st.integers(2, 10))))
def test_simulated_session_never_repeats_a_pixel(gt):
    assume(gt.any())
    pred = np.zeros_like(gt)
    clicks = []
    for _ in range(gt.size):
        try:
            click = next_click(pred, gt, clicks)
        except ValueError:
            break
        assert (click.y, click.x) not in {(c[0], c[1]) for c in clicks}
        assert gt[click.y, click.x] == click.is_positive
        clicks.append(click)
        pred[click.y, click.x] = click.is_positive  # a predictor that follows every click exactly
    assert np.array_equal(pred, gt)


@settings(max_examples=30, deadline=None)
@given(_case())
def test_stubborn_predictor_gets_every_error_pixel_once(case):
    pred, gt, _ = case
    assume(gt.any())
    errors = int((gt != pred).sum())
    clicks = []
    while True:
        try:
            clicks.append(next_click(pred, gt, clicks))
        except ValueError as err:
            assert "no error region left" in str(err)
            break
    assert len(clicks) == errors
    assert len({(c.y, c.x) for c in clicks}) == errors
    assert all(gt[c.y, c.x] == c.is_positive for c in clicks)


def test_first_click_at_object_centre_and_border_counts_as_outside():
    gt = np.zeros((9, 9), dtype=bool)
    gt[2:7, 2:7] = True
    assert next_click(np.zeros_like(gt), gt) == (4, 4, True)
    full = np.ones((5, 5), dtype=bool)  # the whole image is the object: the border is outside
    assert next_click(np.zeros_like(full), full) == (2, 2, True)
    wide = np.ones((5, 7), dtype=bool)  # row 2, columns 2..4 all at distance 3: the first in C order wins
    assert next_click(np.zeros_like(wide), wide) == (2, 2, True)


def test_ties_go_negative():
    gt = np.zeros((5, 11), dtype=bool)
    gt[1:4, 1:4] = True  # FN: 3x3 block at (1..3, 1..3) -> peak 2
    pred = gt.copy()
    pred[1:4, 1:4] = False
    pred[1:4, 6:9] = True  # FP: a 3x3 block too -> same peak
    assert next_click(pred, gt) == (2, 7, False)


def test_larger_fn_region_gives_positive_click():
    gt = np.zeros((12, 12), dtype=bool)
    gt[1:10, 1:10] = True
    pred = np.zeros_like(gt)
    pred[11, 11] = True
    assert next_click(pred, gt) == (5, 5, True)


def test_numeric_inputs_are_binarised():
    gt = np.zeros((6, 6), dtype=np.uint8)
    gt[1:5, 1:5] = 1
    prob = np.full((6, 6), 0.2, dtype=np.float32)
    assert next_click(prob, gt) == next_click(np.zeros((6, 6), bool), gt.astype(bool))


def test_ignore_pixels_are_not_errors():
    gt = np.zeros((10, 10), dtype=bool)
    gt[1:9, 1:9] = True
    ignore = np.zeros_like(gt)
    ignore[:, :5] = True
    pred = np.zeros_like(gt)
    click = next_click(pred, gt, ignore=ignore)
    assert click.is_positive and click.x >= 5
    expected = _expected_click(pred, gt & ~ignore, [])  # ignoring = removing those pixels from the FN region
    assert click == expected
    with pytest.raises(ValueError, match="no error region left"):
        next_click(pred, gt, ignore=np.ones_like(gt))
    with pytest.raises(ValueError, match="ignore must have the shape"):
        next_click(pred, gt, ignore=ignore[:5])


@pytest.mark.parametrize(
    "pred, gt, previous, message",
    [
        (np.zeros((3, 3), bool), np.ones((3, 4), bool), (), r"pred \(3, 3\) and gt \(3, 4\)"),
        (np.zeros((3,), bool), np.ones((3,), bool), (), "2-D"),
        (np.zeros((2, 3, 3), bool), np.ones((2, 3, 3), bool), (), "2-D"),
        (np.zeros((3, 3), bool), np.zeros((3, 3), bool), (), "gt is empty"),
        (np.zeros((3, 3), bool), np.ones((3, 3), bool), [(3, 0, True)], "outside the image"),
        (np.ones((3, 3), bool), np.ones((3, 3), bool), (), "no error region left"),
    ],
)
def test_bad_input_raises(pred, gt, previous, message):
    with pytest.raises(ValueError, match=message):
        next_click(pred, gt, previous)
