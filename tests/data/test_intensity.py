# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Intensity normalisation: image modes and the percentile range property."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_adaptiveclick.data.intensity import normalize_image, normalize_intensity


def test_normalize_image_modes():
    img = np.array([[[0, 51, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(normalize_image(img), [[[0.0, 0.2, 1.0]]], atol=1e-6)
    const = np.full((2, 5, 5), 7.0)
    out = normalize_image(const, "percentile")
    assert np.all(out == 0) and not np.any(np.isnan(out))
    ramp = np.linspace(0, 1000, 201).reshape(1, 1, 201)
    out = normalize_image(ramp, "percentile", 0.0, 100.0)
    np.testing.assert_allclose(out[0, 0, [0, 100, 200]], [0.0, 0.5, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="unknown intensity mode"):
        normalize_image(img, "zscore")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=4, max_size=64),
    st.floats(0.0, 10.0),
    st.floats(90.0, 100.0),
)
def test_normalize_intensity_range_property(values, lower, upper):
    arr = np.asarray(values, dtype=np.float32)
    out = normalize_intensity(arr, lower, upper)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    assert out.min() >= 0.0 and out.max() <= 1.0
    lo, hi = np.percentile(arr, [lower, upper])
    if hi > lo:
        # values at or above the upper percentile map to 1, at or below the lower one to 0
        assert np.all(out[arr >= hi] == 1.0) and np.all(out[arr <= lo] == 0.0)
    else:
        assert np.all(out == 0.0)
