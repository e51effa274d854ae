# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The embedded sample pack: index vs files, NIfTI geometry, split rule, AAL fix, and the load_sample contract."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from itertools import product
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from monai_adaptiveclick.data.intensity import normalize_intensity
from monai_adaptiveclick.data.sample import (
    SAMPLE_PACK_DIR,
    load_index,
    load_sample,
    sample_volume_pairs,
    sample_volume_paths,
)

PACK = SAMPLE_PACK_DIR
INDEX = json.loads((PACK / "index.json").read_text())
REPO = Path(__file__).resolve().parents[2]


def _volume(name: str) -> np.ndarray:
    return np.asanyarray(nib.load(str(PACK / name)).dataobj)


def _png(name: str) -> np.ndarray:
    with Image.open(PACK / name) as img:
        return np.asarray(img)


def _plane(row: dict) -> np.ndarray:
    """The label plane of an index row, read directly with nibabel / PIL."""
    if row["k"] is not None:
        return _volume(row["label"])[:, :, row["k"]]
    y0, y1, x0, x1 = row["region"]
    return _png(row["label"])[y0:y1, x0:x1]


def test_index_files_exist_and_pack_is_small():
    names = {row["image"] for row in INDEX["slices"]} | {row["label"] for row in INDEX["slices"]}
    for record in INDEX["volumes"] + INDEX["images_2d"]:
        names |= {record["image"], record["label"]}
    for name in names:
        assert (PACK / name).is_file(), name
    on_disk = {p.name for p in PACK.iterdir()}
    assert on_disk == names | {"index.json", "README.md"}  # nothing unlisted ships
    total = sum(p.stat().st_size for p in PACK.iterdir())
    assert total <= 15 * 1024 * 1024
    assert load_index() == INDEX


def test_object_areas_ids_and_regions_match_files():
    ids = []
    for row in INDEX["slices"]:
        plane = _plane(row)
        full = _volume(row["label"])[:, :, row["k"]] if row["k"] is not None else _png(row["label"])
        assert row["objects"], row["slice_id"]
        for obj in row["objects"]:
            area = int(np.count_nonzero(plane == obj["label_value"]))
            assert area == obj["area"], obj["object_id"]
            assert area >= INDEX["min_area"]
            # the whole object lies on the item (a region never cuts an object)
            assert area == int(np.count_nonzero(full == obj["label_value"]))
            ids.append(obj["object_id"])
    assert len(ids) == len(set(ids))


def test_label_names_match_declared_tables():
    tables = {r["label"]: r["labels"] for r in INDEX["volumes"]}
    tables.update({r["label"]: r.get("instance_classes") for r in INDEX["images_2d"]})
    for row in INDEX["slices"]:
        table = tables[row["label"]]
        for obj in row["objects"]:
            if table is not None:
                assert table[str(obj["label_value"])] == obj["name"]


def test_nifti_geometry_is_sane():
    for record in INDEX["volumes"]:
        image = nib.load(str(PACK / record["image"]))
        label = nib.load(str(PACK / record["label"]))
        assert image.shape == label.shape and len(image.shape) == 3
        for img in (image, label):
            header = img.header
            assert int(header["qform_code"]) > 0 and int(header["sform_code"]) > 0
            assert np.allclose(img.get_qform(), img.get_sform(), atol=1e-4)
            assert np.allclose(img.affine, image.affine, atol=1e-4)
            assert abs(np.linalg.det(img.affine[:3, :3])) > 1e-3
            assert all(z > 0 for z in header.get_zooms())
        values = np.unique(np.asanyarray(label.dataobj))
        assert label.get_data_dtype() == np.uint8
        assert set(values.tolist()) <= {0} | {int(v) for v in record["labels"]}


def test_split_rule_keeps_heldout_away_from_training():
    by_image: dict[str, dict[str, list[dict]]] = {}
    for row in INDEX["slices"]:
        by_image.setdefault(row["image"], {"train": [], "heldout": []})[row["split"]].append(row)
    assert {row["split"] for row in INDEX["slices"]} == {"train", "heldout"}
    for image, split in by_image.items():
        for a, b in product(split["train"], split["heldout"]):
            if a["k"] is not None:
                assert a["axis"] == b["axis"] == 2
                assert abs(a["k"] - b["k"]) >= 10, (image, a["k"], b["k"])
            else:
                ay0, ay1, ax0, ax1 = a["region"]
                by0, by1, bx0, bx1 = b["region"]
                overlap = ay0 < by1 and by0 < ay1 and ax0 < bx1 and bx0 < ax1
                assert not overlap, (image, a["region"], b["region"])
    heldout = sum(len(r["objects"]) for r in INDEX["slices"] if r["split"] == "heldout")
    assert 25 <= heldout <= 40
    assert 40 <= len(INDEX["slices"]) <= 80


def _edge_contrast(image: np.ndarray, labels: np.ndarray) -> float:
    total, count = 0.0, 0
    for axis in range(3):
        changed = np.diff(labels.astype(np.int16), axis=axis) != 0
        total += np.abs(np.diff(image.astype(np.float64), axis=axis))[changed].sum()
        count += changed.sum()
    return total / count


def test_shipped_aal_labels_are_edge_aligned():
    colin = next(r for r in INDEX["volumes"] if r["name"] == "colin27")
    image, labels = _volume(colin["image"]), _volume(colin["label"])
    nz = np.nonzero(labels)
    box = tuple(slice(max(int(i.min()) - 4, 0), int(i.max()) + 5) for i in nz)
    image, labels = image[box], labels[box]
    scores = {s: _edge_contrast(image, np.roll(labels, s, axis=(0, 1, 2))) for s in product((-1, 0, 1), repeat=3)}
    assert max(scores, key=scores.get) == (0, 0, 0)  # the fix is applied: no neighbouring shift does better
    alignment = INDEX["aal_alignment"]
    key = ",".join(str(v) for v in alignment["best_shift"])
    assert alignment["edge_contrast"][key] == max(alignment["edge_contrast"].values())
    assert alignment["edge_contrast"][key] > alignment["edge_contrast"]["0,0,0"]
    readme = (PACK / "README.md").read_text()
    assert f"**({key})**" in readme


@pytest.mark.parametrize("split", ["heldout", "train"])
def test_load_sample_contract(split):
    items = load_sample(split)
    rows = [r for r in INDEX["slices"] if r["split"] == split]
    assert [i["object_id"] for i in items] == [o["object_id"] for r in rows for o in r["objects"]]
    for item in items:
        image, label, meta = item["image"], item["label"], item["meta"]
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[0] in (1, 3)
        assert label.dtype == np.uint8 and label.shape == (1, *image.shape[1:])
        assert max(label.shape[1:]) <= 256
        assert 0.0 <= image.min() and image.max() <= 1.0 and np.isfinite(image).all()
        assert set(np.unique(label).tolist()) == {0, 1}
        assert isinstance(item["object_id"], str) and meta["split"] == split
        assert meta["modality"] in ("mri", "microscopy", "photo")
        assert (image.shape[0] == 3) == (meta["modality"] == "photo")
        assert np.asarray(meta["affine"]).shape == (4, 4)
        assert Path(meta["source_file"]).is_file()


def test_items_are_the_exact_slices_at_stored_resolution():
    items = {i["object_id"]: i for i in load_sample("all", max_size=None)}
    for row in INDEX["slices"]:
        plane = _plane(row)
        if row["k"] is not None:
            raw = _volume(row["image"])[:, :, row["k"]].astype(np.float64)
        else:
            y0, y1, x0, x1 = row["region"]
            raw = _png(row["image"])[y0:y1, x0:x1].astype(np.float64)
        if raw.ndim == 3:
            expected = np.moveaxis(raw, -1, 0) / 255.0
        else:
            lo, hi = np.percentile(raw, [0.5, 99.5])
            expected = np.clip((raw - lo) / (hi - lo), 0, 1)[None]
        for obj in row["objects"]:
            item = items[obj["object_id"]]
            np.testing.assert_array_equal(item["label"][0], (plane == obj["label_value"]).astype(np.uint8))
            np.testing.assert_allclose(item["image"], expected, atol=1e-5)
            assert item["meta"]["slice_index"] == row["k"] and item["meta"]["scale"] == 1.0


def test_max_size_downscales_image_and_label_together():
    items = load_sample("heldout", modality="photo", max_size=64)
    assert items and all(i["meta"]["modality"] == "photo" for i in items)
    for item in items:
        h, w = item["label"].shape[1:]
        oh, ow = item["meta"]["original_size"]
        assert max(h, w) == 64 and item["image"].shape == (3, h, w)
        assert item["meta"]["scale"] == pytest.approx(64 / max(oh, ow))
        assert item["label"].any()
        assert item["meta"]["spacing"][0] == pytest.approx(1.0 / item["meta"]["scale"])


def test_split_and_modality_filters_partition_the_pack():
    every = load_sample("all")
    parts = load_sample("train") + load_sample("heldout")
    assert sorted(i["object_id"] for i in every) == sorted(i["object_id"] for i in parts)
    mri = load_sample("all", modality="mri")
    rest = load_sample("all", modality=("microscopy", "photo"))
    assert len(mri) + len(rest) == len(every)
    assert all(i["meta"]["modality"] == "mri" for i in mri)


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_sample("test")
    with pytest.raises(ValueError, match="modality"):
        load_sample("heldout", modality="ct")
    with pytest.raises(ValueError, match="max_size"):
        load_sample("heldout", max_size=4)
    missing = tmp_path / "no_pack"
    with pytest.raises(FileNotFoundError, match="no_pack"):
        load_sample(root=missing)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.json").write_text(json.dumps(INDEX))
    with pytest.raises(FileNotFoundError, match="not found"):
        load_sample("heldout", root=broken)
    with pytest.raises(ValueError, match="NaN"):
        normalize_intensity(np.array([0.0, np.nan]))
    np.testing.assert_array_equal(normalize_intensity(np.full((4, 4), 7.0)), np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="empty"):
        normalize_intensity(np.zeros((0, 4)))


def test_sample_volume_paths_are_3d_niftis_with_labels():
    paths = sample_volume_paths()
    assert paths == [PACK / r["image"] for r in INDEX["volumes"]]
    for image, label in sample_volume_pairs():
        assert image.name.endswith(".nii.gz") and label.name.endswith(".nii.gz")
        assert len(nib.load(str(image)).shape) == 3


@pytest.mark.skipif(
    not os.environ.get("MONAI_ADAPTIVECLICK_SAMPLE_SOURCES"),
    reason="set MONAI_ADAPTIVECLICK_SAMPLE_SOURCES to the unpacked sources to check the pack rebuilds bit for bit",
)
def test_build_script_reproduces_the_pack(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("build_sample_pack", REPO / "scripts" / "build_sample_pack.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    out = tmp_path / "pack"
    assert module.main(["--sources", os.environ["MONAI_ADAPTIVECLICK_SAMPLE_SOURCES"], "--out", str(out)]) == 0
    for path in PACK.iterdir():
        rebuilt = out / path.name
        assert hashlib.sha256(rebuilt.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest(), path.name
