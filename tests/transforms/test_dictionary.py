# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the MONAI dictionary transforms AddGuidanceChannelsd and SampleInitialClicksd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor, list_data_collate
from monai.transforms import Compose

from monai_adaptiveclick.transforms import AddGuidanceChannelsd, SampleInitialClicksd, rasterize_click_batch


def _disks(clicks, size, radius):
    out = np.zeros((2, *size), dtype=np.float32)
    yy, xx = np.mgrid[: size[0], : size[1]]
    for y, x, positive in clicks:
        out[0 if positive else 1][(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = 1
    return out


def test_add_guidance_numpy_in_compose():
    rng = np.random.default_rng(0)
    image = rng.random((3, 24, 32)).astype(np.float32)
    prev = rng.random((24, 32)).astype(np.float32)
    clicks = [(5, 6, True), (20, 30, False)]
    transform = Compose([AddGuidanceChannelsd(keys="image", radius=3)])
    out = transform({"image": image, "clicks": clicks, "prev_mask": prev, "label": np.zeros((1, 24, 32))})
    assert isinstance(out["image"], np.ndarray) and out["image"].dtype == np.float32
    assert out["image"].shape == (6, 24, 32)
    np.testing.assert_array_equal(out["image"][:3], image)
    np.testing.assert_array_equal(out["image"][3], prev)
    np.testing.assert_array_equal(out["image"][4:], _disks(clicks, (24, 32), 3))
    assert out["clicks"] == clicks and "label" in out


def test_add_guidance_tensor_defaults_and_meta():
    image = MetaTensor(torch.rand(1, 16, 16), meta={"filename_or_obj": "slice.nii.gz"})
    out = AddGuidanceChannelsd(keys="image")({"image": image})
    assert isinstance(out["image"], MetaTensor)
    assert out["image"].meta["filename_or_obj"] == "slice.nii.gz"
    assert out["image"].shape == (4, 16, 16)
    assert out["image"][1:].abs().sum() == 0  # no prev mask, no clicks -> zeros
    out = AddGuidanceChannelsd(keys="image")({"image": torch.zeros(2, 8, 8), "prev_mask": torch.ones(1, 8, 8)})
    assert out["image"][2].sum() == 64


def test_add_guidance_scales_clicks_from_source_size():
    transform = AddGuidanceChannelsd(keys="image", radius=1, source_size_key="original_size")
    out = transform({"image": np.zeros((1, 32, 32)), "clicks": [(63, 0, True)], "original_size": (64, 64)})
    np.testing.assert_array_equal(out["image"][2], _disks([(31, 0, True)], (32, 32), 1)[0])


@pytest.mark.parametrize(
    "item, message",
    [
        ({"image": np.zeros((8, 8))}, r"\[C, H, W\]"),
        ({"image": np.zeros((1, 8, 8)), "prev_mask": np.zeros((7, 8))}, "prev_mask"),
        ({"image": np.zeros((1, 8, 8)), "prev_mask": np.full((8, 8), 2.0)}, r"\[0, 1\]"),
        ({"image": np.zeros((1, 8, 8)), "clicks": [(8, 0, True)]}, "outside the image"),
    ],
)
def test_add_guidance_bad_input(item, message):
    with pytest.raises(ValueError, match=message):
        AddGuidanceChannelsd(keys="image")(item)


def test_sample_initial_clicksd_reproducible_and_collatable():
    label = np.zeros((1, 32, 32), dtype=np.uint8)
    label[0, 8:24, 10:26] = 1
    ignore = np.zeros((1, 32, 32), dtype=bool)
    ignore[0, 8:12] = True
    items = [{"image": np.zeros((1, 32, 32), np.float32), "label": label, "ignore": ignore} for _ in range(3)]
    transform = Compose(
        [
            SampleInitialClicksd(keys="label", coords_key="click_coords", signs_key="click_signs", max_points=6),
            AddGuidanceChannelsd(keys="image", radius=2),
        ]
    )
    transform.set_random_state(seed=7)
    first = [transform(dict(item)) for item in items]
    transform.set_random_state(seed=7)
    second = [transform(dict(item)) for item in items]
    assert [d["clicks"] for d in first] == [d["clicks"] for d in second]
    assert len({tuple(d["clicks"]) for d in first}) > 1  # different draws for different items
    for d in first:
        assert 1 <= len(d["clicks"]) <= 6
        for y, x, positive in d["clicks"]:
            assert bool(label[0, y, x]) == positive and not ignore[0, y, x]
        assert d["image"].shape == (4, 32, 32)
    batch = list_data_collate([{k: v for k, v in d.items() if k != "clicks"} for d in first])
    assert batch["click_coords"].shape == (3, 6, 2) and batch["click_signs"].shape == (3, 6)
    maps = rasterize_click_batch(batch["click_coords"], batch["click_signs"], (32, 32), radius=2)
    torch.testing.assert_close(maps, torch.as_tensor(batch["image"][:, 2:]))


def test_sample_initial_clicksd_empty_label():
    item = {"label": np.zeros((1, 16, 16), np.uint8)}
    with pytest.raises(ValueError, match="no object pixel"):
        SampleInitialClicksd(keys="label")(dict(item))
    out = SampleInitialClicksd(keys="label", coords_key="c", signs_key="s", max_points=4, allow_empty=True)(item)
    assert out["clicks"] == [] and out["s"].tolist() == [0, 0, 0, 0]
    ignored = {"label": np.ones((1, 4, 4), np.uint8), "ignore": np.ones((1, 4, 4), bool)}
    assert SampleInitialClicksd(keys="label", allow_empty=True)(ignored)["clicks"] == []


def test_sample_initial_clicksd_argument_checks():
    with pytest.raises(ValueError, match="together"):
        SampleInitialClicksd(keys="label", coords_key="c")
    with pytest.raises(ValueError, match="exactly one label key"):
        SampleInitialClicksd(keys=["a", "b"])
