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


class DiskPredictor:
    """A predictor with a known answer: the previous mask, plus a disk of radius 4 around each positive click, minus
    one around each negative click (later clicks win); records the clicks and previous masks it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, bool]] = []

    def __call__(self, image, clicks, prev_mask=None):
        from monai_adaptiveclick.inference import Prediction

        height, width = np.asarray(image).shape[-2:]
        prob = np.zeros((height, width), np.float32) if prev_mask is None else (np.asarray(prev_mask) > 0.5) * 1.0
        yy, xx = np.mgrid[:height, :width]
        for y, x, positive in clicks:
            prob[(yy - y) ** 2 + (xx - x) ** 2 <= 16] = 1.0 if positive else 0.0
        self.calls.append(([tuple(c) for c in clicks], prev_mask is not None))
        return Prediction(prob=prob.astype(np.float32))


def test_previous_result_is_refined_on_a_clicked_slice():
    from monai_adaptiveclick.inference import VolumeSegmentation

    volume, truth = ellipsoid()
    # the last result: the structure exactly, reached by propagation on slice 9 (no clicks there)
    last = VolumeSegmentation(truth.astype(np.uint8), np.ones(SHAPE[2], np.float32), truth.astype(np.float32))
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    # a negative click inside its mask on slice 9: the mask there loses exactly that disk, no interior click
    predictor = DiskPredictor()
    result = segment_volume(predictor, volume, [(24, 22, 9, False)], previous=last)
    assert np.array_equal(result.label[..., 9] > 0, truth[..., 9] & ((yy - 24) ** 2 + (xx - 22) ** 2 > 16))
    assert predictor.calls[0] == ([(24, 22, False)], True) and result.clicks == [(24, 22, 9, False)]
    # a positive click outside it: the disk is added, after the interior click of the previous mask
    predictor = DiskPredictor()
    result = segment_volume(predictor, volume, [(24, 40, 9, True)], previous=last)
    assert np.array_equal(result.label[..., 9] > 0, truth[..., 9] | ((yy - 24) ** 2 + (xx - 40) ** 2 <= 16))
    clicks, had_previous = predictor.calls[0]
    assert had_previous and len(clicks) == 2 and clicks[1] == (24, 40, True) and truth[clicks[0][0], clicks[0][1], 9]
    # the same clicks again: slice 9 is not predicted again (its map is reused), only the propagation runs
    predictor = DiskPredictor()
    again = segment_volume(predictor, volume, [(24, 40, 9, True)], previous=result)
    assert np.array_equal(again.prob[..., 9], result.prob[..., 9])
    assert all(clicks != [(24, 40, True)] for clicks, _ in predictor.calls)
    # an added click on that slice refines it: all its clicks in order, with the stored map as the previous mask
    predictor = DiskPredictor()
    segment_volume(predictor, volume, [(24, 40, 9, True), (10, 10, 9, False)], previous=result)
    assert predictor.calls[0] == ([(24, 40, True), (10, 10, False)], True)
    # without a previous result, the click segments the slice from nothing
    predictor = DiskPredictor()
    result = segment_volume(predictor, volume, [(24, 40, 9, True)])
    assert predictor.calls[0] == ([(24, 40, True)], False) and int(result.label[..., 9].sum()) == 49
    with pytest.raises(ValueError, match="previous.prob must be"):
        last.prob = last.prob[..., :5]
        segment_volume(predictor, volume, [(24, 22, 9, True)], previous=last)
