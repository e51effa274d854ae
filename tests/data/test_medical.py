# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Benchmark export loaders (BraTS / OAI-ZIB PNG, ssTEM TIF + PNG) on tiny files in the original layouts."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from monai_adaptiveclick.data import get_dataset
from monai_adaptiveclick.data.items import BadInputError


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _brats_export(root, n=3):
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 256, (24, 32), dtype=np.uint8)
        ann = np.zeros((24, 32), np.uint8)
        ann[4 + i : 10 + i, 5:12] = 1  # label 1
        ann[12:14, 20:22] = 4  # label 4, separate blob: still the same (merged) object
        _png(root / "image" / f"slice_{i:03d}.png", img)
        _png(root / "annotation" / f"slice_{i:03d}.png", ann)
    return root


def test_brats_png_one_merged_object_per_slice(tmp_path):
    root = _brats_export(tmp_path / "BraTS")
    ds = get_dataset("brats_png", root)
    assert len(ds) == 3 and ds.skipped == 0
    item = ds[1]
    img = np.asarray(Image.open(root / "image" / "slice_001.png"), dtype=np.float32) / 255.0
    np.testing.assert_allclose(item["image"][0], img, atol=1e-6)
    expected = np.asarray(Image.open(root / "annotation" / "slice_001.png")) > 0
    assert item["image"].shape == (1, 24, 32)
    np.testing.assert_array_equal(item["label"][0], expected.astype(np.uint8))
    assert item["label"].sum() == 6 * 7 + 4
    assert item["object_id"] == "brats_png/slice_001/object"
    assert item["meta"]["image_file"].endswith("slice_001.png")


def test_brats_png_image_without_mask_and_rgb(tmp_path):
    root = _brats_export(tmp_path / "BraTS")
    _png(root / "image" / "orphan.png", np.zeros((24, 32), np.uint8))
    with pytest.raises(BadInputError, match="orphan.png"):
        get_dataset("brats_png", root)
    with pytest.warns(UserWarning, match="orphan.png"):
        ds = get_dataset("brats_png", root, skip_bad=True)
    assert len(ds) == 3 and ds.skipped == 1 and "orphan.png" in ds.skipped_messages[0]
    # an RGB export image gives 3 channels
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 1] = 200
    _png(root / "image" / "slice_000.png", rgb)
    with pytest.warns(UserWarning, match="orphan.png"):
        item = get_dataset("brats_png", root, skip_bad=True)[0]
    assert item["image"].shape == (3, 24, 32) and np.allclose(item["image"][1], 200 / 255)


def test_brats_png_size_mismatch_and_missing_folder(tmp_path):
    root = _brats_export(tmp_path / "BraTS")
    _png(root / "annotation" / "slice_002.png", np.ones((10, 10), np.uint8))
    with pytest.raises(BadInputError, match="slice_002.png.*differs"):
        get_dataset("brats_png", root)
    with pytest.warns(UserWarning):
        assert get_dataset("brats_png", root, skip_bad=True).skipped == 1
    (tmp_path / "only_images" / "image").mkdir(parents=True)
    with pytest.raises(BadInputError, match="mask folder not found: .*annotation"):
        get_dataset("brats_png", tmp_path / "only_images")
    with pytest.raises(BadInputError, match="BraTS export folder not found"):
        get_dataset("brats_png", tmp_path / "nowhere")


def test_oaizib_png_each_label_an_object(tmp_path):
    root = tmp_path / "OAIZIB"
    ann = np.zeros((20, 20), np.uint8)
    ann[2:6, 2:10] = 2  # 32 px
    ann[10:12, 3:5] = 4  # 4 px
    ann[15:19, 15:19] = 1  # 16 px
    _png(root / "test" / "image" / "a.png", np.full((20, 20), 90, np.uint8))
    _png(root / "test" / "annotations" / "a.png", ann)
    ds = get_dataset("oaizib_png", root)
    ids = [e["object_id"] for e in ds.entries]
    assert ids == ["oaizib_png/a/label1", "oaizib_png/a/label2", "oaizib_png/a/label4"]
    areas = {e["object_id"]: int(ds[i]["label"].sum()) for i, e in enumerate(ds.entries)}
    assert areas == {"oaizib_png/a/label1": 16, "oaizib_png/a/label2": 32, "oaizib_png/a/label4": 4}
    ds = get_dataset("oaizib_png", root, min_area=10)
    assert len(ds) == 2 and ds.filtered == 1


def test_sstem_png_four_connected_components(tmp_path):
    root = tmp_path / "ssTEM"
    raw = np.arange(30 * 30, dtype=np.uint16).reshape(30, 30)
    mito = np.zeros((30, 30), np.uint8)
    mito[2:5, 2:5] = 255
    mito[5, 5] = 255  # diagonal neighbour of (4, 4): separate 4-connected component
    mito[10:20, 10:12] = 255
    mito[25:28, 1:29] = 255
    (root / "raw").mkdir(parents=True)
    tifffile.imwrite(root / "raw" / "00.tif", raw)
    _png(root / "mitochondria" / "00.png", mito)
    ds = get_dataset("sstem_png", root)
    assert sorted(int(ds[i]["label"].sum()) for i in range(len(ds))) == [1, 9, 20, 84]
    union = np.zeros((30, 30), bool)
    for i in range(len(ds)):
        assert not np.any(union & (ds[i]["label"][0] > 0))  # disjoint objects
        union |= ds[i]["label"][0] > 0
    np.testing.assert_array_equal(union, mito > 0)
    img = ds[0]["image"]  # uint16 raw -> percentile normalised to [0, 1]
    assert img.shape == (1, 30, 30) and img.min() == 0.0 and img.max() == 1.0
    assert len(get_dataset("sstem_png", root, min_area=5)) == 3
