# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Slice-wise volume datasets: slice selection, case checks, per-volume intensity ranges, files changing on disk."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest

from monai_adaptiveclick.data.items import BadInputError
from monai_adaptiveclick.data.volume_slices import check_volume_case, select_slices, volume_slice_dataset


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


def _case(tmp_path, image: np.ndarray, label: np.ndarray) -> dict:
    nib.save(nib.Nifti1Image(image, np.eye(4)), str(tmp_path / "image.nii.gz"))
    nib.save(nib.Nifti1Image(label, np.eye(4)), str(tmp_path / "label.nii.gz"))
    return {"key": "c", "images": [tmp_path / "image.nii.gz"], "label": tmp_path / "label.nii.gz"}


def _label() -> np.ndarray:
    label = np.zeros((10, 12, 4), np.uint8)
    label[2:6, 3:8, 1] = 3
    label[1:3, 1:3, 2] = 1
    return label


def test_per_volume_and_per_slice_statistics(tmp_path):
    image = np.random.default_rng(0).gamma(2.0, 50.0, (10, 12, 4)).astype(np.float32)
    image[:, :, 3] *= 10.0  # a bright slice moves the volume percentiles away from the slice ones
    case = _case(tmp_path, image, _label())
    for per, reference in (("volume", image), ("slice", image[:, :, 1])):
        ds = volume_slice_dataset("t", [case], {"obj": ("value", 3)}, per=per, lower=2.0, upper=98.0)
        lo, hi = np.percentile(reference, [2.0, 98.0])
        expected = np.clip((image[:, :, 1] - lo) / (hi - lo), 0.0, 1.0)
        item = ds[0]
        assert item["meta"]["slice_index"] == 1 and item["label"].sum() == 20
        np.testing.assert_allclose(item["image"][0], expected, atol=1e-5)
    with pytest.raises(ValueError, match="per must be"):
        volume_slice_dataset("t", [case], "values", per="case")
    with pytest.raises(ValueError, match="objects must be"):
        volume_slice_dataset("t", [case], "instances")


def test_items_follow_files_rewritten_after_indexing(tmp_path):
    case = _case(tmp_path, np.zeros((10, 12, 4), np.float32), _label())
    ds = volume_slice_dataset("t", [case], "values", lower=0.0, upper=100.0)
    assert [e["object_id"] for e in ds.entries] == ["t/c/label1/k2", "t/c/label3/k1"]
    assert np.all(ds[1]["image"] == 0.0)
    ramp = np.broadcast_to(np.arange(12, dtype=np.float32), (10, 4, 12)).transpose(0, 2, 1).copy()
    nib.save(nib.Nifti1Image(ramp, np.eye(4)), str(case["images"][0]))
    st = os.stat(case["images"][0])
    os.utime(case["images"][0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**10))
    np.testing.assert_allclose(ds[1]["image"][0, 0], np.arange(12) / 11.0, atol=1e-6)  # the cache reloaded it
    nib.save(nib.Nifti1Image(np.zeros((10, 12, 5), np.float32), np.eye(4)), str(case["images"][0]))
    os.utime(case["images"][0], ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**10))
    with pytest.raises(BadInputError, match="image.nii.gz: shape .* does not match"):
        ds[1]


def test_check_volume_case_problems(tmp_path):
    case = _case(tmp_path, np.zeros((10, 12, 4), np.float32), _label())
    assert check_volume_case(case).dtype == np.uint8
    nib.save(nib.Nifti1Image(np.zeros((10, 12, 4), np.float32), np.eye(4)), str(tmp_path / "empty.nii.gz"))
    with pytest.raises(BadInputError, match="empty.nii.gz: empty label"):
        check_volume_case({**case, "label": tmp_path / "empty.nii.gz"})
    nib.save(nib.Nifti1Image(_label() * 0.5, np.eye(4)), str(tmp_path / "half.nii.gz"))
    with pytest.raises(BadInputError, match="non-integer"):
        check_volume_case({**case, "label": tmp_path / "half.nii.gz"})
    nib.save(nib.Nifti1Image(np.zeros((10, 12, 5), np.float32), np.eye(4)), str(tmp_path / "long.nii.gz"))
    with pytest.raises(BadInputError, match="long.nii.gz: shape"):
        check_volume_case({**case, "images": [tmp_path / "long.nii.gz"]})
