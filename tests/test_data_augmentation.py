# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Training augmentation: output shapes, binary labels, object kept, determinism, min-area flag."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_adaptiveclick.data import MinAreaFilterd, make_item, training_augmentation
from monai_adaptiveclick.data.augmentation import RandObjectCropd, RandSaturationd


def _item(h=90, w=120, box=(60, 70, 95, 112), channels=1, ignore=False, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((channels, h, w)).astype(np.float32)
    mask = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = 1
    ign = np.zeros((h, w), bool) if ignore else None
    if ignore:
        ign[0:5] = True
    return make_item(image, mask, "obj", {"source": "test"}, ignore=ign)


@pytest.mark.parametrize("modality,channels", [("mri", 1), ("rgb", 3)])
def test_shapes_binary_label_object_kept(modality, channels):
    aug = training_augmentation((64, 48), modality=modality, min_area=5)
    aug.set_random_state(3)
    for seed in range(4):
        out = aug(_item(channels=channels, ignore=True, seed=seed))
        assert out["image"].shape == (channels, 64, 48) and out["image"].dtype == torch.float32
        assert out["label"].shape == (1, 64, 48) and out["ignore"].shape == (1, 64, 48)
        assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0}
        assert out["label"].sum() >= 5 and float(out["valid"]) == 1.0
        assert 0.0 <= float(out["image"].min()) and float(out["image"].max()) <= 1.0
        assert out["object_id"] == "obj" and out["meta"] == {"source": "test"}


def test_small_image_is_padded():
    out = training_augmentation(64, scale_range=(1.0, 1.0)).set_random_state(0)(_item(h=30, w=20, box=(5, 10, 5, 10)))
    assert out["image"].shape == (1, 64, 64) and out["label"].sum() == 25


def test_deterministic_with_set_random_state():
    item = _item(channels=3)
    a = training_augmentation(56, modality="rgb").set_random_state(11)(item)
    b = training_augmentation(56, modality="rgb").set_random_state(11)(item)
    c = training_augmentation(56, modality="rgb").set_random_state(12)(item)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["image"], c["image"])


@settings(max_examples=30, deadline=None)
@given(
    y=st.integers(0, 79),
    x=st.integers(0, 99),
    size=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_object_crop_always_contains_object(y, x, size, seed):
    item = _item(h=80, w=100, box=(y, min(y + size, 80), x, min(x + size, 100)))
    crop = RandObjectCropd(keys=["image", "label"], spatial_size=(32, 40), min_area=1)
    crop.set_random_state(seed)
    out = crop({"image": torch.as_tensor(item["image"]), "label": torch.as_tensor(item["label"])})
    assert out["label"].shape == (1, 32, 40) and out["label"].sum() >= 1


def test_min_area_flag_and_saturation():
    d = {"label": torch.zeros(1, 8, 8)}
    d["label"][0, 0, 0] = 1
    assert float(MinAreaFilterd(min_area=2)(d)["valid"]) == 0.0
    assert float(MinAreaFilterd(min_area=1)(d)["valid"]) == 1.0
    gray = torch.full((3, 4, 4), 0.4)  # a gray image has no saturation to change
    sat = RandSaturationd(keys="image", delta=0.5, prob=1.0)
    sat.set_random_state(0)
    assert torch.allclose(sat({"image": gray})["image"], gray)
    colour = torch.zeros(3, 2, 2)
    colour[0] = 1.0
    out = sat({"image": colour})["image"]
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    new_luma = 0.299 * out[0] + 0.587 * out[1] + 0.114 * out[2]
    assert torch.allclose(luma, new_luma, atol=1e-6) and not torch.allclose(out, colour)
    with pytest.raises(ValueError, match="modality"):
        training_augmentation(64, modality="ct")
    with pytest.raises(ValueError, match="spatial_size"):
        training_augmentation((64, 0))


def test_dataset_with_augmentation_batches_through_dataloader(tmp_path):
    import pickle

    from monai.data import DataLoader
    from PIL import Image

    from monai_adaptiveclick.data import get_dataset

    for i in range(4):
        (tmp_path / "image").mkdir(exist_ok=True)
        (tmp_path / "annotation").mkdir(exist_ok=True)
        Image.fromarray(np.full((50, 60), 40 * i, np.uint8)).save(tmp_path / "image" / f"{i}.png")
        mask = np.zeros((50, 60), np.uint8)
        mask[10 + i : 30, 20:40] = 1
        Image.fromarray(mask).save(tmp_path / "annotation" / f"{i}.png")
    aug = training_augmentation(32, modality="mri").set_random_state(0)
    ds = get_dataset("brats_png", tmp_path, transform=aug)
    ds = pickle.loads(pickle.dumps(ds))  # picklable for DataLoader worker processes
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=0)))
    assert batch["image"].shape == (4, 1, 32, 32) and batch["label"].shape == (4, 1, 32, 32)
    assert batch["valid"].shape == (4,) and batch["object_id"][0] == "brats_png/0/object"
