# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Volume dataset loaders: orientation (marker voxel) for NIfTI / NRRD / MetaImage / DICOM, BraTS 2021 folders, OAI-ZIB,
ssTEM stacks, slice selection, intensity normalisation and bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import tifffile

from monai_adaptiveclick.data import get_dataset
from monai_adaptiveclick.data.items import BadInputError

SHAPE = (16, 20, 9)  # (i, j, k)
MARK = (3, 14, 6)


def _marker_volumes():
    """Image: zeros with one bright voxel at MARK; label: a 3x3 square around MARK on slice k only."""
    image = np.zeros(SHAPE, np.int16)
    image[MARK] = 1000
    label = np.zeros(SHAPE, np.uint8)
    i, j, k = MARK
    label[i - 1 : i + 2, j - 1 : j + 2, k] = 1
    return image, label


def _write_itk(arr, path):
    """Write ``arr`` so that ITK voxel index (i, j, k) holds ``arr[i, j, k]`` (ITK arrays are indexed [k, j, i])."""
    sitk.WriteImage(sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0))), str(path))


def _check_marker(ds):
    assert len(ds) == 1
    item = ds[0]
    assert item["meta"]["slice_index"] == MARK[2]
    assert item["image"].shape == (1, SHAPE[0], SHAPE[1])
    assert np.unravel_index(np.argmax(item["image"][0]), item["image"][0].shape) == MARK[:2]
    assert item["image"][0][MARK[:2]] == 1.0
    assert item["label"][0][MARK[:2]] == 1 and item["label"].sum() == 9


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"])
def test_marker_voxel_orientation(tmp_path, ext):
    image, label = _marker_volumes()
    if ext.startswith(".nii"):
        nib.save(nib.Nifti1Image(image, np.eye(4)), tmp_path / f"img{ext}")
        nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / f"lbl{ext}")
    else:
        _write_itk(image, tmp_path / f"img{ext}")
        _write_itk(label, tmp_path / f"lbl{ext}")
    # lower/upper = 0/100: min-max scaling, so the marker is the unique maximum (1.0) of its slice
    _check_marker(get_dataset("volume", tmp_path, image=f"img{ext}", label=f"lbl{ext}", lower=0.0, upper=100.0))


def test_marker_voxel_orientation_dicom_series(tmp_path):
    image, label = _marker_volumes()
    series = tmp_path / "series"
    series.mkdir()
    vol = sitk.GetImageFromArray(np.ascontiguousarray(image.transpose(2, 1, 0)))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(SHAPE[2]):
        sl = vol[:, :, k]
        for tag, value in {
            "0008|0060": "MR",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": "1.2.826.0.1.3680043.2.1125.2",
            "0020|0032": f"0\\0\\{k}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0013": str(k + 1),
            "0018|0050": "1",
        }.items():
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(series / f"IM{k:04d}.dcm"))
        writer.Execute(sl)
    _write_itk(label, tmp_path / "label.mha")
    _check_marker(get_dataset("dicom", series, label=tmp_path / "label.mha", lower=0.0, upper=100.0))
    wrong = np.zeros((SHAPE[0], SHAPE[1], SHAPE[2] + 1), np.uint8)
    wrong[0, 0, 0] = 1
    _write_itk(wrong, tmp_path / "wrong.mha")
    with pytest.raises(BadInputError, match="does not match"):
        get_dataset("dicom", series, label=tmp_path / "wrong.mha")


def _brats_case(root, case, rng, seg):
    folder = root / case
    folder.mkdir(parents=True)
    for i, seq in enumerate(("flair", "t1", "t1ce", "t2")):
        vol = rng.normal(100.0 * (i + 1), 10.0, seg.shape).astype(np.float32)
        nib.save(nib.Nifti1Image(vol, np.eye(4)), folder / f"{case}_{seq}.nii.gz")
    nib.save(nib.Nifti1Image(seg, np.eye(4)), folder / f"{case}_seg.nii.gz")


def _brats_root(tmp_path):
    rng = np.random.default_rng(0)
    seg = np.zeros((24, 24, 8), np.uint8)
    seg[5:15, 5:15, 2] = 2  # oedema only: whole tumour 100 px
    seg[4:16, 4:16, 4] = 2  # whole tumour 144 px (largest)
    seg[8:11, 8:11, 4] = 1  # core 9 px on slice 4
    seg[6:12, 6:12, 5] = 4  # enhancing 36 px on slice 5 (largest core / enhancing)
    seg[0:2, 0:2, 7] = 1  # 4 px
    root = tmp_path / "BraTS2021"
    _brats_case(root, "BraTS2021_00001", rng, seg)
    return root, seg


def test_brats_case_folders_objects_and_slice_selection(tmp_path):
    root, seg = _brats_root(tmp_path)
    ds = get_dataset("brats", root)
    assert len(ds) == 1 and ds[0]["meta"]["slice_index"] == 4
    item = ds[0]
    assert item["image"].shape == (1, 24, 24) and item["label"].sum() == 144
    assert item["object_id"] == "brats/BraTS2021_00001/whole_tumor/k4"
    ds = get_dataset("brats", root, objects=("tumor_core", "enhancing_tumor"), sequences=("t1ce", "flair", "t2"))
    assert [(e["object_id"].split("/")[2], e["k"]) for e in ds.entries] == [("tumor_core", 5), ("enhancing_tumor", 5)]
    assert ds[0]["image"].shape == (3, 24, 24) and ds[0]["label"].sum() == 36
    areas_all = [int(x["label"].sum()) for x in get_dataset("brats", root, slices="all")]
    assert areas_all == [100, 144, 36, 4]
    ds = get_dataset("brats", root, slices="all", min_area=10)
    assert [e["k"] for e in ds.entries] == [2, 4, 5] and ds.filtered == 1
    assert [e["k"] for e in get_dataset("brats", root, slices=[0, 4, 7]).entries] == [4, 7]
    with pytest.raises(ValueError, match="unknown BraTS sequences"):
        get_dataset("brats", root, sequences=("dwi",))
    with pytest.raises(ValueError, match="unknown BraTS objects"):
        get_dataset("brats", root, objects="edema")


def test_brats_intensity_normalisation_per_slice_and_volume(tmp_path):
    root, _ = _brats_root(tmp_path)
    flair = nib.load(root / "BraTS2021_00001" / "BraTS2021_00001_flair.nii.gz").get_fdata().astype(np.float32)
    for per, ref in (("slice", flair[:, :, 4]), ("volume", flair)):
        lo, hi = np.percentile(ref, [0.5, 99.5])
        expected = (np.clip(flair[:, :, 4], lo, hi) - lo) / (hi - lo)
        item = get_dataset("brats", root, per=per)[0]
        np.testing.assert_allclose(item["image"][0], expected, atol=1e-5)
    case = root / "BraTS2021_00001"
    nib.save(nib.Nifti1Image(np.full((24, 24, 8), 5.0, np.float32), np.eye(4)), case / "BraTS2021_00001_t2.nii.gz")
    item = get_dataset("brats", root, sequences=("t2",))[0]
    assert np.all(item["image"] == 0.0)  # constant volume -> zeros, no NaN


def _bad_brats_cases(root, seg):
    """Add four bad cases to ``root``: empty seg, 4-D FLAIR, missing FLAIR, FLAIR affine mismatch."""
    rng = np.random.default_rng(1)
    _brats_case(root, "BraTS2021_00002", rng, np.zeros_like(seg))
    _brats_case(root, "BraTS2021_00003", rng, seg)
    four_d = nib.Nifti1Image(np.zeros((*seg.shape, 2), np.float32), np.eye(4))
    nib.save(four_d, root / "BraTS2021_00003" / "BraTS2021_00003_flair.nii.gz")
    _brats_case(root, "BraTS2021_00004", rng, seg)
    (root / "BraTS2021_00004" / "BraTS2021_00004_flair.nii.gz").unlink()
    _brats_case(root, "BraTS2021_00005", rng, seg)
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    moved = nib.Nifti1Image(np.zeros(seg.shape, np.float32), shifted)
    nib.save(moved, root / "BraTS2021_00005" / "BraTS2021_00005_flair.nii.gz")
    return {"00002": "empty label", "00003": "4-D", "00004": "no flair", "00005": "affine differs"}


def test_brats_bad_cases(tmp_path):
    root, seg = _brats_root(tmp_path)
    problems = _bad_brats_cases(root, seg)
    for case, pattern in problems.items():
        alone = tmp_path / f"only_{case}"
        alone.mkdir()
        (root / f"BraTS2021_{case}").rename(alone / f"BraTS2021_{case}")
        with pytest.raises(BadInputError, match=f"(?s)(BraTS2021_{case}.*{pattern}|{pattern}.*BraTS2021_{case})"):
            get_dataset("brats", alone)
        (alone / f"BraTS2021_{case}").rename(root / f"BraTS2021_{case}")
    with pytest.warns(UserWarning, match="skipped bad input"):
        ds = get_dataset("brats", root, skip_bad=True)
    assert len(ds) == 1 and ds.skipped == 4 and ds.entries[0]["key"] == "BraTS2021_00001"
    with pytest.raises(BadInputError, match="no BraTS case folder"):
        get_dataset("brats", tmp_path / "only_00002")  # now empty


def test_oaizib_metaimage_volumes(tmp_path):
    label = np.zeros((12, 12, 5), np.uint8)
    label[1:4, 1:4, 1] = 1
    label[1:5, 1:5, 3] = 1
    label[6:8, 6:10, 2] = 2
    label[9:11, 0:3, 2] = 4
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    _write_itk(
        np.random.default_rng(0).integers(0, 500, label.shape).astype(np.int16),
        tmp_path / "images" / "9001104.image.mhd",
    )
    _write_itk(label, tmp_path / "labels" / "9001104.segmentation_masks.mhd")
    ds = get_dataset("oaizib", tmp_path)
    got = [(e["object_id"], e["k"], e["area"]) for e in ds.entries]
    assert got == [
        ("oaizib/9001104/femur/k3", 3, 16),
        ("oaizib/9001104/femoral_cartilage/k2", 2, 8),
        ("oaizib/9001104/tibial_cartilage/k2", 2, 6),
    ]
    assert ds[1]["label"].sum() == 8 and ds[1]["image"].shape == (1, 12, 12)
    _write_itk(label, tmp_path / "images" / "9001105.image.mhd")
    with pytest.raises(BadInputError, match="9001105.image.mhd"):
        get_dataset("oaizib", tmp_path)


def test_volume_components_and_sstem_stack(tmp_path):
    label = np.zeros((10, 10, 3), np.uint8)
    label[0:2, 0:2, 1] = 1
    label[5:9, 5:9, 1] = 3
    label[4, 4, 2] = 1
    img = np.random.default_rng(0).normal(size=label.shape).astype(np.float32)
    nib.save(nib.Nifti1Image(img, np.eye(4)), tmp_path / "img.nii.gz")
    nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / "lbl.nii.gz")
    ds = get_dataset("volume", tmp_path, image="img.nii.gz", label="lbl.nii.gz", components=True, slices="all")
    assert [(e["k"], e["area"]) for e in ds.entries] == [(1, 4), (1, 16), (2, 1)]
    ds = get_dataset("volume", tmp_path, image="img.nii.gz", label="lbl.nii.gz", labels=[3])
    assert len(ds) == 1 and ds[0]["label"].sum() == 16
    stack = np.zeros((3, 16, 16), np.uint8)
    stack[0, 1:4, 1:4] = 255
    stack[0, 10:12, 10:15] = 255
    stack[2, 5:7, 5:7] = 255
    raw = np.arange(3 * 16 * 16, dtype=np.uint16).reshape(3, 16, 16) % 256
    tifffile.imwrite(tmp_path / "raw.tif", raw.astype(np.uint8), photometric="minisblack")  # 3 pages
    tifffile.imwrite(tmp_path / "mitochondria.tif", stack, photometric="minisblack")
    ds = get_dataset("sstem", tmp_path)
    assert [(e["k"], e["area"]) for e in ds.entries] == [(0, 9), (0, 10), (2, 4)]
    item = ds[2]
    np.testing.assert_allclose(item["image"][0], np.arange(512, 768).reshape(16, 16) % 256 / 255.0, atol=1e-6)
    tifffile.imwrite(tmp_path / "mitochondria.tif", stack[:, :8], photometric="minisblack")
    with pytest.raises(BadInputError, match="does not match"):
        get_dataset("sstem", tmp_path)


def test_volume_dataset_pickles_with_loaded_cache(tmp_path):
    import pickle

    root, _ = _brats_root(tmp_path)
    ds = get_dataset("brats", root, slices="all")
    first = ds[0]
    payload = pickle.dumps(ds)
    assert len(payload) < 100_000  # the cached volumes are not pickled
    clone = pickle.loads(payload)
    np.testing.assert_array_equal(clone[0]["image"], first["image"])
    assert len(clone) == len(ds) and clone.entries[0]["object_id"] == first["object_id"]
