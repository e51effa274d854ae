# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The Predictor's ``focus``: the network looks at the object's region once a previous prediction exists.

Checked against an independent computation: the same network run without focus on a crop cut by hand (box computed
here from the rule's definition: bbox of ``prev > 0.5`` and positive clicks, x1.4 about the centre, sides at least
``image_size / focus``, shifted into the image), pasted into zeros.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_adaptiveclick.data.intensity import normalize_image
from monai_adaptiveclick.engines import wrap_predictor
from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.protocol import FOCUS_MAGNIFICATION


def _hand_box(prev: np.ndarray, positives: list[tuple[int, int]], min_side: int) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(prev > 0.5)
    ys, xs = list(rows) + [p[0] for p in positives], list(cols) + [p[1] for p in positives]
    box = []
    for lo, hi, limit in ((min(ys), max(ys) + 1, prev.shape[0]), (min(xs), max(xs) + 1, prev.shape[1])):
        side = min(limit, max(min_side, math.ceil((hi - lo) * 1.4)))
        start = min(max(int(round((lo + hi) / 2 - side / 2)), 0), limit - side)
        box += [start, start + side]
    return tuple(box)


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 20.0, (1, 150, 180)).astype(np.float32)
    image[0, 60:72, 100:115] += 120.0
    prev = np.zeros((150, 180), np.float32)
    prev[62:70, 102:112] = 0.9
    return image, prev


def test_default_is_the_protocol_magnification():
    assert Predictor.from_preset("tiny", in_channels=1).focus == pytest.approx(448 / 200) == FOCUS_MAGNIFICATION


def test_focused_prediction_equals_the_network_on_the_hand_cut_region(scene):
    image, prev = scene
    focused = Predictor.from_preset("tiny", in_channels=1, seed=1, focus=2.0)  # 64 px network: region >= 32 px
    plain = focused.with_options(focus=None, intensity="none")
    clicks = [(66, 107, True), (64, 150, False), (20, 20, False)]
    y0, y1, x0, x1 = _hand_box(prev, [(66, 107)], math.ceil(64 / 2.0))
    assert (y1 - y0, x1 - x0) == (32, 32)
    assert focused.focus_region(prev, clicks) == (y0, y1, x0, x1)

    normalized = normalize_image(image, "percentile")  # on the whole image, before the crop
    inside = [(y - y0, x - x0, s) for y, x, s in clicks if y0 <= y < y1 and x0 <= x < x1]
    expected = plain(normalized[:, y0:y1, x0:x1], inside, prev[y0:y1, x0:x1])
    out = focused(image, clicks, prev)

    np.testing.assert_allclose(out.prob[y0:y1, x0:x1], expected.prob, atol=1e-6)
    outside = np.ones_like(out.prob, dtype=bool)
    outside[y0:y1, x0:x1] = False
    assert (out.prob[outside] == 0).all()
    assert len(out.candidates) == len(expected.candidates) > 0
    assert out.candidates[0][0].shape == image.shape[1:] and (out.candidates[0][0][outside] == 0).all()


def test_first_click_and_whole_image_regions_use_the_whole_image(scene):
    image, prev = scene
    focused = Predictor.from_preset("tiny", in_channels=1, seed=1, focus=2.0)
    plain = focused.with_options(focus=None)
    np.testing.assert_array_equal(focused(image, [(66, 107, True)]).prob, plain(image, [(66, 107, True)]).prob)
    large = np.zeros_like(prev)
    large[5:145, 5:175] = 1.0  # x1.4 covers the whole image
    assert focused.focus_region(large, [(66, 107, True)]) is None
    np.testing.assert_array_equal(
        focused(image, [(66, 107, True)], large).prob, plain(image, [(66, 107, True)], large).prob
    )


def test_region_never_magnifies_more_than_focus(scene):
    image, prev = scene
    for focus, network in ((1.0, 64), (2.0, 64), (FOCUS_MAGNIFICATION, 64), (4.0, 64)):
        predictor = Predictor.from_preset("tiny", in_channels=1, focus=focus)
        y0, y1, x0, x1 = predictor.focus_region(prev, [(66, 107, True)])
        assert min(y1 - y0, x1 - x0) >= network / focus - 1e-9


def test_bad_focus_and_clicks_outside_the_image_are_rejected(scene):
    image, prev = scene
    with pytest.raises(ValueError, match="focus must be None or a magnification >= 1"):
        Predictor.from_preset("tiny", in_channels=1, focus=0.5)
    predictor = Predictor.from_preset("tiny", in_channels=1, focus=2.0)
    with pytest.raises(ValueError, match="outside the image"):
        predictor(image, [(66, 107, True), (150, 3, False)], prev)


def test_paper_protocol_turns_focus_off():
    wrapped = wrap_predictor(Predictor.from_preset("tiny", in_channels=1), protocol="simpleclick")
    assert wrapped.predictor.focus is None
