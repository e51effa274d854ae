# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Volume reading: marker voxels per format, headers agreeing with the decoded volumes, extensions, bad files."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from monai_adaptiveclick.data.items import BadInputError
from monai_adaptiveclick.data.volume_io import (
    affine_spacing,
    load_volume,
    read_volume_header,
    split_ext,
    strip_volume_ext,
)

SHAPE = (6, 8, 5)
MARK = (4, 1, 3)
SPACING = (0.5, 2.0, 3.0)
ORIGIN = (10.0, -20.0, 5.0)
#: RAS affine of the files below: ITK's LPS (diag(spacing), origin) with the first two rows negated.
RAS = np.array([[-0.5, 0, 0, -10.0], [0, -2.0, 0, 20.0], [0, 0, 3.0, 5.0], [0, 0, 0, 1]])


def _write(path, array):
    if path.name.endswith((".nii", ".nii.gz")):
        nib.save(nib.Nifti1Image(array, RAS), str(path))
        return
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))  # ITK arrays are [k, j, i]
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    sitk.WriteImage(image, str(path))


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"])
def test_marker_voxel_and_header_per_format(tmp_path, ext):
    array = np.zeros(SHAPE, np.int16)
    array[MARK] = 300
    path = tmp_path / f"scan{ext}"
    _write(path, array)
    loaded, meta = load_volume(path)
    assert loaded.shape == SHAPE and loaded[MARK] == 300 and np.count_nonzero(loaded) == 1
    assert loaded.dtype == (np.float32 if ext == ".nrrd" else np.int16)  # native dtype; MONAI's NrrdReader: float32
    np.testing.assert_allclose(meta["affine"], RAS, atol=1e-6)
    np.testing.assert_allclose(meta["spacing"], SPACING)
    shape, affine = read_volume_header(path)
    assert tuple(shape) == SHAPE
    np.testing.assert_allclose(affine, RAS, atol=1e-6)  # formats compare: header affine = decoded affine


def test_multi_component_header_and_four_d_volume(tmp_path):
    image = sitk.GetImageFromArray(np.zeros((5, 8, 6, 2), np.float32), isVector=True)
    sitk.WriteImage(image, str(tmp_path / "vector.mha"))
    assert read_volume_header(tmp_path / "vector.mha")[0] == (6, 8, 5, 2)
    nib.save(nib.Nifti1Image(np.zeros((*SHAPE, 2), np.float32), np.eye(4)), str(tmp_path / "four.nii.gz"))
    with pytest.raises(BadInputError, match="four.nii.gz: expected a 3-D volume"):
        load_volume(tmp_path / "four.nii.gz")


def test_missing_and_unreadable_volumes(tmp_path):
    with pytest.raises(BadInputError, match="volume not found: .*nothing.nii.gz"):
        load_volume(tmp_path / "nothing.nii.gz")
    with pytest.raises(BadInputError, match="volume not found"):
        read_volume_header(tmp_path / "nothing.mha")
    (tmp_path / "junk.nii.gz").write_bytes(b"junk")
    (tmp_path / "junk.mha").write_bytes(b"junk")
    for name in ("junk.nii.gz", "junk.mha"):
        with pytest.raises(BadInputError, match=f"unreadable volume .*{name}"):
            load_volume(tmp_path / name)
        with pytest.raises(BadInputError, match=f"unreadable volume .*{name}"):
            read_volume_header(tmp_path / name)


def test_extension_helpers():
    assert split_ext("a/b/case_flair.NII.GZ") == ("a/b/case_flair", ".NII.GZ")
    assert split_ext("knee.seg.nrrd") == ("knee", ".seg.nrrd")
    assert split_ext("img.mhd") == ("img", ".mhd") and split_ext("noext") == ("noext", "")
    assert strip_volume_ext("9001104.image.mhd") == "9001104.image"
    assert strip_volume_ext("photo.png") == "photo.png"
    np.testing.assert_allclose(affine_spacing(RAS), SPACING)
    with pytest.raises(ValueError, match="4, 4"):
        affine_spacing(np.eye(3))
