# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Classical click-seeded baselines (random walker, watershed) as predictors."""

from __future__ import annotations

import numpy as np
import pytest

from monai_adaptiveclick.engines import (
    BASELINES,
    RandomWalkerPredictor,
    WatershedPredictor,
    evaluate_noc,
    get_baseline,
)
from monai_adaptiveclick.inference import Prediction

SIZE = 64


def disk_image(channels: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright disk (radius 14, centre (30, 34)) on a dark noisy background, and its mask."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    mask = (yy - 30) ** 2 + (xx - 34) ** 2 <= 14**2
    rng = np.random.default_rng(seed)
    image = mask[None].astype(np.float32) * 100.0 + rng.normal(0.0, 10.0, size=(channels, SIZE, SIZE))
    return image.astype(np.float32), mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("name", ["random_walker", "watershed"])
def test_one_click_segments_the_disk(name):
    image, mask = disk_image()
    out = get_baseline(name)(image, [(30, 34, True)])
    assert isinstance(out, Prediction) and out.candidates == []
    assert out.prob.shape == mask.shape and out.prob.dtype == np.float32
    assert 0.0 <= out.prob.min() and out.prob.max() <= 1.0
    assert iou(out.prob > 0.49, mask) > 0.8


@pytest.mark.parametrize("name", ["random_walker", "watershed"])
def test_noc_protocol_on_disks(name):
    items = []
    for seed in range(2):
        image, mask = disk_image(seed=seed)
        items.append({"image": image, "label": mask[None].astype(np.uint8), "object_id": f"disk{seed}", "meta": {}})
    result = evaluate_noc(get_baseline(name), items, max_clicks=4, zoom_in=False, flip=False, progress=False)
    assert all(r.ious[-1] > 0.85 for r in result.records)
    assert result.noc[0.85] <= 2


def test_rgb_image_and_negative_clicks():
    image, mask = disk_image(channels=3, seed=4)
    out = RandomWalkerPredictor()(image, [(30, 34, True), (5, 5, False), (60, 60, False)])
    assert iou(out.prob > 0.49, mask) > 0.8


def test_no_positive_click_gives_empty_prediction():
    image, _ = disk_image()
    for predictor in (RandomWalkerPredictor(), WatershedPredictor()):
        assert not predictor(image, []).prob.any()
        assert not predictor(image, [(3, 3, False)]).prob.any()


def test_seeds_disks_overlap_and_border():
    predictor = RandomWalkerPredictor(seed_radius=2)
    labels = predictor.seeds([(10, 10, True), (10, 13, False)], (20, 20))
    yy, xx = np.mgrid[:20, :20]
    pos = (yy - 10) ** 2 + (xx - 10) ** 2 <= 4
    neg = (yy - 10) ** 2 + (xx - 13) ** 2 <= 4
    ring = np.ones((20, 20), bool)
    ring[1:-1, 1:-1] = False
    expected = np.zeros((20, 20), np.int32)
    expected[ring] = 2
    expected[pos & ~neg] = 1
    expected[neg & ~pos] = 2
    expected[10, 10], expected[10, 13] = 1, 2
    np.testing.assert_array_equal(labels, expected)
    # the border ring never overrides a positive disk and can be switched off
    labels = RandomWalkerPredictor(seed_radius=1, border_background=False).seeds([(0, 5, True)], (8, 8))
    assert labels[0, 5] == 1 and labels[0, 4] == 1 and (labels[labels != 1] == 0).all()


def test_constant_image_is_defined():
    image = np.full((1, 32, 32), 3.0, np.float32)
    for predictor in (RandomWalkerPredictor(), WatershedPredictor()):
        prob = predictor(image, [(16, 16, True)]).prob
        assert np.isfinite(prob).all() and prob[16, 16] > 0.5 and prob[0, 0] < 0.5


def test_bad_inputs():
    image, _ = disk_image()
    predictor = RandomWalkerPredictor()
    with pytest.raises(ValueError, match="outside the image"):
        predictor(image, [(SIZE, 3, True)])
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        predictor(image[0], [(3, 3, True)])
    nan_image = image.copy()
    nan_image[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        predictor(nan_image, [(3, 3, True)])
    with pytest.raises(ValueError, match="beta"):
        RandomWalkerPredictor(beta=0)
    with pytest.raises(ValueError, match="seed_radius"):
        WatershedPredictor(seed_radius=-1)


def test_registry():
    assert set(BASELINES) >= {"random_walker", "watershed"}
    assert isinstance(get_baseline("watershed", compactness=0.1), WatershedPredictor)
    assert get_baseline("random_walker", beta=200).beta == 200
    with pytest.raises(ValueError):
        get_baseline("grabcut_unknown")
