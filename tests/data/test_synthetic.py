# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The synthetic data engine: item contract, determinism, objects = connected components, contrast, options."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from monai_adaptiveclick.data import SynthesisOptions, SynthesizeObjectd, SyntheticObjects, get_dataset, validate_item
from monai_adaptiveclick.data.synthetic import synthesize_object

CLEAN = {
    "deform_prob": 0.0,
    "label_spread": 0.0,
    "bias_prob": 0.0,
    "blur_prob": 0.0,
    "lowres_prob": 0.0,
    "noise_prob": 0.0,
    "gamma_prob": 0.0,
    "size_range": (48, 64),
}


def test_items_follow_the_contract_and_are_deterministic():
    objects = get_dataset("synthetic", length=6, seed=2, size_range=(48, 64))
    assert len(objects) == 6
    for index in range(6):
        item = objects[index]
        validate_item(item)
        assert item["image"].shape[0] == 3 and 48 <= item["image"].shape[1] <= 64
        assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
        assert np.array_equal(item["image"], objects[index]["image"])
        assert np.array_equal(item["label"], objects[index]["label"])
    other = SyntheticObjects(length=6, seed=3, options={"size_range": (48, 64)})
    assert not all(np.array_equal(objects[i]["label"], other[i]["label"]) for i in range(6))
    with pytest.raises(IndexError):
        objects[6]


@pytest.mark.parametrize("seed", range(8))
def test_the_object_is_one_connected_component_of_one_label(seed):
    item = synthesize_object(seed, {**CLEAN, "min_area": 20})
    mask = item["label"][0].astype(bool)
    _, count = ndi.label(mask)
    assert count == 1 and mask.sum() >= 20
    # without texture and corruptions every label is flat: the object has one value, its ring other values
    values = np.unique(item["image"][:, mask], axis=1)
    assert values.shape[1] == 1
    ring = ndi.binary_dilation(mask, iterations=1) & ~mask
    outside = item["image"][:, ring]
    step = np.abs(outside - values).max(axis=0)
    # every 4-neighbour outside the object belongs to another label, at least min_contrast away
    assert np.all(step >= SynthesisOptions().min_contrast - 1e-6)


def test_procedural_only_and_grey_options():
    item = synthesize_object(5, {**CLEAN, "procedural_share": 1.0, "channels": 1})
    assert item["image"].shape[0] == 1
    assert item["meta"]["source"] in ("noise", "voronoi", "blobs")
    grey = synthesize_object(5, {**CLEAN, "rgb_prob": 0.0})
    assert np.allclose(grey["image"][0], grey["image"][1]) and np.allclose(grey["image"][0], grey["image"][2])


def test_transform_draws_fresh_items_reproducibly():
    first = SynthesizeObjectd(CLEAN).set_random_state(seed=4)
    second = SynthesizeObjectd(CLEAN).set_random_state(seed=4)
    a, b = first({}), first({})
    assert not np.array_equal(a["image"], b["image"]) or not np.array_equal(a["label"], b["label"])
    assert np.array_equal(second({})["image"], a["image"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"channels": 2}, "channels"),
        ({"size_range": (8, 16)}, "size_range"),
        ({"window_range": (0.5, 1.5)}, "window_range"),
        ({"noise_prob": 2.0}, "noise_prob"),
        ({"sharpness": 1.0}, "unknown synthetic options"),
    ],
)
def test_bad_options_name_the_problem(options, message):
    with pytest.raises(ValueError, match=message):
        SynthesisOptions.from_dict(options)
