# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The one training augmentation: the whole-image view is exactly the Predictor's network input, windows scale with
the object, masks follow the image, the object never vanishes, ignore masks travel along, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.transforms import RandObjectWindowd, prepare_image, training_augmentation

STILL = {"flip_prob": 0.0, "gamma_range": (1.0, 1.0), "intensity_prob": 0.0}


def _item(h=60, w=40, box=(20, 30, 10, 25), seed=0):
    rng = np.random.default_rng(seed)
    label = np.zeros((1, h, w), np.uint8)
    y0, y1, x0, x1 = box
    label[0, y0:y1, x0:x1] = 1
    image = rng.random((1, h, w)).astype(np.float32)
    return {"image": image, "label": label, "object_id": "box"}


def test_whole_image_view_is_what_the_predictor_feeds_the_model():
    item = _item()
    out = training_augmentation(32, p_full=1.0, **STILL).set_random_state(0)(item)
    predictor = Predictor.from_preset("tiny", in_channels=1, intensity="none")
    predictor.model.image_size = 32
    seen = []
    predictor.model.register_forward_pre_hook(lambda _m, args: seen.append(args[0][0, :1].clone()))
    predictor(item["image"], [(25, 15, True)])
    torch.testing.assert_close(out["image"], seen[0], atol=1e-6, rtol=0)
    # the label is in the same frame: 60 x 40 -> 32 x 21 (rounded), padded with zeros at the right
    assert out["label"][0, :, 22:].sum() == 0 and out["label"].sum() > 0


def test_window_side_follows_the_object_and_contains_it():
    for seed in range(5):
        out = training_augmentation(64, p_full=0.0, scale_range=(2.0, 2.0), **STILL).set_random_state(seed)(_item())
        ys, xs = np.nonzero(out["label"][0].numpy())
        side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
        assert abs(side - 32) <= 2  # bbox side 15 in a 30 px window -> half of the 64 px output
        assert out["image"].shape == (1, 64, 64)


def test_masks_follow_the_image_and_small_objects_survive():
    item = _item(h=100, w=100, box=(20, 60, 30, 80))
    item["ignore"] = item["label"].astype(bool)
    aug = training_augmentation(32).set_random_state(0)
    for _ in range(10):
        out = aug(item)
        assert set(np.unique(out["label"].numpy())) <= {0.0, 1.0}
        assert torch.equal(out["ignore"], out["label"])  # same geometry, same flips
        assert 0.0 <= float(out["image"].min()) and float(out["image"].max()) <= 1.0
    tiny = training_augmentation(32, p_full=1.0).set_random_state(0)
    for _ in range(5):  # one pixel of a 200 px image shrunk 6x keeps the pixels it touches
        assert tiny(_item(h=200, w=200, box=(100, 101, 50, 51)))["label"].sum() >= 1


def test_items_without_ignore_get_an_empty_one_and_runs_are_reproducible():
    a = training_augmentation(48).set_random_state(7)(_item())
    b = training_augmentation(48).set_random_state(7)(_item())
    c = training_augmentation(48).set_random_state(8)(_item())
    assert a["ignore"].sum() == 0
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["image"], c["image"])


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="image_size"):
        training_augmentation(4)
    with pytest.raises(ValueError, match="p_full"):
        training_augmentation(32, p_full=1.5)
    with pytest.raises(ValueError, match="empty label"):
        RandObjectWindowd(["image", "label"], 32, ("bilinear", "area"))({**_item(), "label": np.zeros((1, 60, 40))})
    with pytest.raises(ValueError, match="channel mismatch"):
        prepare_image(np.zeros((2, 8, 8)), 3)
