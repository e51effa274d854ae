# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Item helpers, 2-D readers, intensity normalisation and the dataset registry."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from monai_adaptiveclick.data import get_dataset, list_datasets, register_dataset
from monai_adaptiveclick.data.intensity import normalize_image, normalize_intensity
from monai_adaptiveclick.data.items import (
    BadInputError,
    BadInputLog,
    make_item,
    object_mask,
    read_image_2d,
    read_label_2d,
    validate_item,
)
from monai_adaptiveclick.data.volumes import select_slices

EXPECTED_NAMES = {
    "sample",
    "brats_png",
    "oaizib_png",
    "sstem_png",
    "brats",
    "oaizib",
    "sstem",
    "volume",
    "dicom",
    "sbd",
    "cocolvis",
    "grabcut",
    "berkeley",
    "davis",
    "pascalvoc",
}


def test_make_item_contract():
    image = np.arange(12, dtype=np.int16).reshape(1, 3, 4)
    mask = np.array([[0, 3, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
    item = make_item(image, mask, "obj", {"k": 1}, ignore=mask == 1)
    assert item["image"].dtype == np.float32 and item["image"].shape == (1, 3, 4)
    assert item["label"].dtype == np.uint8 and item["label"].shape == (1, 3, 4)
    assert item["label"].sum() == 2 and set(np.unique(item["label"])) == {0, 1}
    assert item["ignore"].dtype == bool and item["ignore"][0, 2, 0]
    assert item["object_id"] == "obj" and item["meta"] == {"k": 1}


def test_validate_item_rejects_bad_items():
    good = make_item(np.zeros((1, 4, 4)), np.ones((4, 4)), "a")
    with pytest.raises(ValueError, match="sizes differ"):
        validate_item({**good, "label": np.ones((1, 4, 5), np.uint8)})
    with pytest.raises(ValueError, match="in \\{0, 1\\}"):
        validate_item({**good, "label": np.full((1, 4, 4), 2, np.uint8)})
    with pytest.raises(ValueError, match="NaN"):
        validate_item({**good, "image": np.full((1, 4, 4), np.nan, np.float32)})
    with pytest.raises(ValueError, match="no 'object_id'"):
        validate_item({k: v for k, v in good.items() if k != "object_id"})


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


def test_select_slices_modes():
    areas = np.array([0, 5, 20, 20, 3, 0])
    assert select_slices(areas, "largest") == [2]
    assert select_slices(areas, "all") == [1, 2, 3, 4]
    assert select_slices(areas, "all", min_area=5) == [1, 2, 3]
    assert select_slices(areas, [0, 3, 4]) == [3, 4]
    assert select_slices(np.zeros(4), "largest") == []
    with pytest.raises(ValueError, match="outside"):
        select_slices(areas, [6])
    with pytest.raises(ValueError, match="unknown slice selection"):
        select_slices(areas, "middle")


def test_object_mask_specs():
    label = np.array([[1, 1, 0, 2], [0, 0, 0, 2], [3, 0, 0, 0]])
    assert object_mask(label, ("value", 2)).sum() == 2
    assert object_mask(label, ("values", (1, 3))).sum() == 3
    assert object_mask(label, ("nonzero",)).sum() == 5
    assert object_mask(label, ("greater", 1)).sum() == 3
    # 4-connected components of label > 0 in raster order: {(0,0),(0,1)}, {(0,3),(1,3)}, {(2,0)}
    assert np.argwhere(object_mask(label, ("component", 2, 1))).tolist() == [[0, 3], [1, 3]]
    assert np.argwhere(object_mask(label, ("component", 3, 1))).tolist() == [[2, 0]]
    # 8-connectivity joins nothing more here; a diagonal pair is one component only with connectivity 2
    diag = np.array([[1, 0], [0, 1]])
    assert object_mask(diag, ("component", 1, 1)).sum() == 1 and object_mask(diag, ("component", 1, 2)).sum() == 2
    with pytest.raises(ValueError, match="unknown object spec"):
        object_mask(label, ("circle", 1))


def test_read_2d_files(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[1, 2] = (10, 20, 30)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    arr = read_image_2d(tmp_path / "rgb.png")
    assert arr.shape == (3, 6, 8) and arr[:, 1, 2].tolist() == [10, 20, 30]
    pal = Image.fromarray(np.array([[0, 1], [255, 2]], np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253)
    pal.save(tmp_path / "pal.png")
    assert read_label_2d(tmp_path / "pal.png").tolist() == [[0, 1], [255, 2]]
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(BadInputError, match="colour label"):
        read_label_2d(tmp_path / "colour.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(BadInputError, match="broken.png"):
        read_image_2d(tmp_path / "broken.png")
    with pytest.raises(BadInputError, match="not found"):
        read_image_2d(tmp_path / "missing.png")


def test_bad_input_log():
    log = BadInputLog(skip_bad=False)
    with pytest.raises(BadInputError, match="x.png"):
        log.report(BadInputError("x.png: broken"))
    log = BadInputLog(skip_bad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log.report(BadInputError("y.png: broken"))
    assert log.count == 1 and "y.png" in str(caught[0].message)


def test_registry_names_and_errors(tmp_path):
    assert set(list_datasets()) == EXPECTED_NAMES
    with pytest.raises(ValueError, match="known datasets: .*brats_png"):
        get_dataset("imagenet")
    with pytest.raises(BadInputError, match="needs root"):
        get_dataset("brats_png")
    with pytest.raises(BadInputError, match="not found"):
        get_dataset("pascalvoc", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("sbd", lambda root=None: [])


def test_registry_sample_passes_options_through():
    from monai_adaptiveclick.data.sample import load_sample

    items = get_dataset("sample", split="heldout", modality="mri", max_size=64)
    expected = load_sample("heldout", modality="mri", max_size=64)
    assert [x["object_id"] for x in items] == [x["object_id"] for x in expected] and len(items) > 0
    for item in items:
        validate_item(item)  # the embedded pack follows the dataset item contract
        assert max(item["image"].shape[1:]) <= 64
