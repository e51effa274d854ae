# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Natural-image loaders (SBD, COCO+LVIS RITM layout, GrabCut, Berkeley, DAVIS, PascalVOC) on tiny files."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from monai_adaptiveclick.data import get_dataset
from monai_adaptiveclick.data.items import BadInputError

H, W = 20, 24


def _photo(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=95)
    return arr


def _instances():
    seg = np.zeros((H, W), np.uint8)
    seg[1:5, 1:6] = 1  # 20 px
    seg[8:16, 10:20] = 2  # 80 px
    seg[17:19, 0:2] = 3  # 4 px
    return seg


def test_sbd_mat_instances_and_split(tmp_path):
    seg = _instances()
    for name in ("2008_000001", "2008_000002"):
        _photo(tmp_path / "img" / f"{name}.jpg")
        (tmp_path / "inst").mkdir(exist_ok=True)
        savemat(
            tmp_path / "inst" / f"{name}.mat",
            {"GTinst": {"Segmentation": seg, "Categories": np.array([[15], [7], [1]]), "Boundaries": np.zeros(3)}},
        )
    (tmp_path / "val.txt").write_text("2008_000002\n")
    (tmp_path / "train.txt").write_text("2008_000001\n2008_000002\n")
    ds = get_dataset("sbd", tmp_path, split="val")
    assert [e["object_id"] for e in ds.entries] == [
        "sbd/2008_000002/label1",
        "sbd/2008_000002/label2",
        "sbd/2008_000002/label3",
    ]
    item = ds[1]
    assert item["image"].shape == (3, H, W) and 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    np.testing.assert_array_equal(item["label"][0], (seg == 2).astype(np.uint8))
    assert len(get_dataset("sbd", tmp_path, split="train")) == 6
    ds = get_dataset("sbd", tmp_path, split="train", min_area=10)
    assert len(ds) == 4 and ds.filtered == 2
    (tmp_path / "val.txt").write_text("2008_000002\n2008_000003\n")
    with pytest.raises(BadInputError, match="2008_000003.jpg"):
        get_dataset("sbd", tmp_path, split="val")
    (tmp_path / "inst" / "2008_000001.mat").write_bytes(b"garbage")
    with pytest.raises(BadInputError, match="2008_000001.mat"):
        get_dataset("sbd", tmp_path, split="train")


def _png_bytes(layer):
    buf = io.BytesIO()
    Image.fromarray(layer).save(buf, format="PNG")
    return np.frombuffer(buf.getvalue(), np.uint8).reshape(-1, 1)  # cv2.imencode returns an (N, 1) uint8 array


def test_cocolvis_ritm_layout(tmp_path):
    split = tmp_path / "train"
    _photo(split / "images" / "000000000036.jpg")
    layer0 = np.zeros((H, W), np.uint8)
    layer0[0:10, 0:10] = 1  # instance 0 (parent, 100 px)
    layer0[15:20, 15:20] = 2  # stuff region (not an instance)
    layer1 = np.zeros((H, W), np.uint8)
    layer1[2:4, 2:5] = 1  # instance 1 overlaps instance 0 (6 px)
    (split / "masks").mkdir(parents=True)
    with open(split / "masks" / "000000000036.pickle", "wb") as f:
        pickle.dump(([_png_bytes(layer0), _png_bytes(layer1)], [(0, 1), (1, 1), (0, 2)]), f)
    hierarchy = {
        0: {"children": [1], "parent": None, "node_level": 0},
        1: {"children": [], "parent": 0, "node_level": 1},
    }
    with open(split / "hannotation.pickle", "wb") as f:
        pickle.dump({"000000000036": {"num_instance_masks": 2, "hierarchy": hierarchy}}, f)
    ds = get_dataset("cocolvis", tmp_path)
    assert [e["object_id"] for e in ds.entries] == [
        "cocolvis/000000000036/instance0",
        "cocolvis/000000000036/instance1",
    ]
    np.testing.assert_array_equal(ds[0]["label"][0], layer0 == 1)
    np.testing.assert_array_equal(ds[1]["label"][0], layer1 == 1)
    assert int(ds[0]["label"].sum()) == 100 and int(ds[1]["label"].sum()) == 6
    assert len(get_dataset("cocolvis", tmp_path, min_area=10)) == 1
    (tmp_path / "val").mkdir()
    with pytest.raises(BadInputError, match="hannotation.pickle"):
        get_dataset("cocolvis", tmp_path, split="val")


@pytest.mark.parametrize("name,dirs", [("grabcut", ("data_GT", "boundary_GT")), ("berkeley", ("images", "masks"))])
def test_grabcut_berkeley_ignore_128(tmp_path, name, dirs):
    mask = np.zeros((H, W), np.uint8)
    mask[5:15, 5:15] = 255
    mask[4, 4:16] = 128  # boundary band = ignore
    _photo(tmp_path / dirs[0] / "flower.jpg")
    (tmp_path / dirs[1]).mkdir()
    Image.fromarray(mask).save(tmp_path / dirs[1] / "flower.bmp")
    ds = get_dataset(name, tmp_path)
    assert len(ds) == 1
    item = ds[0]
    assert item["label"].sum() == 100 and item["ignore"].sum() == 12
    assert not np.any(item["ignore"] & (item["label"] > 0))


def test_davis_single_object(tmp_path):
    gt = np.zeros((H, W, 3), np.uint8)
    gt[3:9, 3:9] = 255
    _photo(tmp_path / "img" / "bear.jpg")
    (tmp_path / "gt").mkdir()
    Image.fromarray(gt).save(tmp_path / "gt" / "bear.png")
    ds = get_dataset("davis", tmp_path)
    assert len(ds) == 1 and ds[0]["label"].sum() == 36 and "ignore" not in ds[0]


def test_pascalvoc_palette_instances_ignore_255(tmp_path):
    seg = _instances()
    seg[0, :] = 255
    _photo(tmp_path / "JPEGImages" / "2007_000032.jpg")
    _photo(tmp_path / "JPEGImages" / "2007_000033.jpg", seed=1)
    (tmp_path / "SegmentationObject").mkdir()
    pal = Image.fromarray(seg, mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0, 0, 0] * 251 + [224, 224, 192])
    pal.save(tmp_path / "SegmentationObject" / "2007_000032.png")
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000032\n")
    ds = get_dataset("pascalvoc", tmp_path)
    assert [e["object_id"].split("/")[-1] for e in ds.entries] == ["label1", "label2", "label3"]
    item = ds[0]
    assert item["label"].sum() == 20
    assert item["ignore"].sum() == W and np.all(item["ignore"][0, 0])
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000032\n2007_000033\n")
    with pytest.raises(BadInputError, match="2007_000033"):
        get_dataset("pascalvoc", tmp_path)
    with pytest.warns(UserWarning, match="2007_000033"):
        ds = get_dataset("pascalvoc", tmp_path, skip_bad=True)
    assert len(ds) == 3 and ds.skipped == 1
