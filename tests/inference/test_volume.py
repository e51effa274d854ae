# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Propagation of clicks through a volume (``segment_volume``): the structure is followed slice to slice and
propagation stops where it ends, clicks on several slices are all honoured, bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from monai_adaptiveclick.engines import get_baseline
from monai_adaptiveclick.inference import Predictor, segment_volume

SHAPE = (48, 48, 20)


def ellipsoid(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy volume with a bright ellipsoid on slices 4..15, and its ground truth."""
    i, j, k = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in SHAPE), indexing="ij")
    truth = ((i - 24) / 14) ** 2 + ((j - 22) / 11) ** 2 + ((k - 9.5) / 6.2) ** 2 <= 1
    volume = np.random.default_rng(seed).normal(0.2, 0.05, SHAPE) + 0.6 * truth
    return volume.astype(np.float32), truth


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_one_click_follows_the_structure_and_stops_where_it_ends():
    volume, truth = ellipsoid()
    result = segment_volume(get_baseline("watershed"), volume, [(24, 22, 9, True)])
    label = result.label.astype(bool)
    assert result.label.shape == SHAPE and result.label.dtype == np.uint8
    assert dice(label, truth) > 0.85
    present = np.flatnonzero(truth.any(axis=(0, 1)))
    found = np.flatnonzero(label.any(axis=(0, 1)))
    assert found.min() >= present.min() - 1 and found.max() <= present.max() + 1  # no runaway past the ends
    assert len(found) >= len(present) - 2  # and it got (almost) all of it
    assert result.slice_confidence.shape == (SHAPE[2],)
    assert np.all(result.slice_confidence[~label.any(axis=(0, 1))] == 0)
    assert result.seeds == [9] and 9 not in result.review_order and set(result.review_order) <= set(found)


def test_clicks_on_several_slices_are_all_honoured():
    volume, truth = ellipsoid(1)
    clicks = [(24, 22, 9, True), (24, 22, 13, False), (24, 28, 13, True)]
    result = segment_volume(get_baseline("watershed"), volume, clicks)
    assert result.seeds == [9, 13]
    assert result.label[24, 22, 13] == 0 and result.label[24, 28, 13] == 1 and result.label[24, 22, 9] == 1


def test_any_predictor_works_and_bad_input_is_refused():
    volume, _ = ellipsoid()
    result = segment_volume(Predictor.from_preset("tiny", in_channels=1), volume[None], [(24, 22, 9, True)])
    assert result.label.shape == SHAPE and result.prob.dtype == np.float32
    with pytest.raises(ValueError, match="outside the volume"):
        segment_volume(get_baseline("watershed"), volume, [(24, 22, 20, True)])
    with pytest.raises(ValueError, match="no clicks"):
        segment_volume(get_baseline("watershed"), volume, [])
    with pytest.raises(ValueError, match=r"\[C, H, W, D\]"):
        segment_volume(get_baseline("watershed"), volume[..., 0], [(1, 1, 0, True)])
