# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""File checks (``data.validation``): each kind of bad file is refused with a message naming the file and the problem.

The bad files are made here from a good one by known damage (cut in half, zero bytes, random bytes, a NaN voxel, a
wrong shape), so what each check must say is an independent fact of how the file was built.
"""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from monai_adaptiveclick.data.items import BadInputError
from monai_adaptiveclick.data.validation import (
    check_finite,
    check_image_file,
    check_label_array,
    check_label_file,
    check_pair,
)

SHAPE = (12, 10, 4)


def _save(path, array):
    nib.save(nib.Nifti1Image(np.asarray(array), np.eye(4)), str(path))
    return path


@pytest.fixture()
def image(tmp_path):
    return _save(tmp_path / "scan.nii.gz", np.random.default_rng(0).normal(size=SHAPE).astype(np.float32))


def _raises(call, *words):
    with pytest.raises(BadInputError) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def test_good_image_and_label_pass(image, tmp_path):
    label = np.zeros(SHAPE, np.uint8)
    label[2:5, 3:6, 1] = 1
    label[7:9, 1:3, 3] = 3
    checked_image, checked_label = check_pair(image, _save(tmp_path / "label.nii.gz", label))
    assert checked_image.spatial_shape == SHAPE and checked_image.channels == 1
    assert checked_image.dtype == "float32"
    assert checked_label.values == (0, 1, 3)
    # a float label of whole numbers and a trailing size-1 axis is accepted
    float_label = _save(tmp_path / "float_label.nii", label[..., None].astype(np.float32))
    assert check_label_file(float_label, SHAPE).values == (0, 1, 3)


def test_documented_4d_layout_channels_last(tmp_path):
    four = _save(tmp_path / "brats.nii.gz", np.zeros((*SHAPE, 4), np.float32))
    checked = check_image_file(four)
    assert checked.spatial_shape == SHAPE and checked.channels == 4
    many = _save(tmp_path / "fmri.nii.gz", np.zeros((*SHAPE, 30), np.float32))
    _raises(lambda: check_image_file(many), "fmri.nii.gz", "4-D", "at most 4", "(12, 10, 4, 30)")
    assert check_image_file(many, max_channels=30).channels == 30
    flat = _save(tmp_path / "flat.nii.gz", np.zeros((12, 10), np.float32))
    _raises(lambda: check_image_file(flat), "flat.nii.gz", "3-D", "(12, 10)")
    five = _save(tmp_path / "five.nii.gz", np.zeros((*SHAPE, 1, 2), np.float32))
    _raises(lambda: check_image_file(five), "five.nii.gz", "(12, 10, 4, 1, 2)")


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda raw: b"", ["empty file (0 bytes)"]),
        (lambda raw: raw[: len(raw) // 2], ["truncated or corrupt"]),
        (lambda raw: b"\x00" + np.random.default_rng(1).bytes(len(raw)), ["not a readable image"]),
        (lambda raw: b"not an image at all\n", ["not a readable image"]),
    ],
    ids=["zero-byte", "truncated", "random-bytes", "text"],
)
def test_damaged_files_are_refused_naming_the_file(image, damage, words):
    raw = image.read_bytes()
    image.write_bytes(damage(raw))
    message = _raises(lambda: check_image_file(image, name="upload 'case_7'"), "upload 'case_7'", *words)
    assert str(image) not in message  # the display name replaces the server path
    _raises(lambda: check_label_file(image, SHAPE, name="label 'case_7'"), "label 'case_7'", *words)


def test_truncated_uncompressed_file_is_refused(image, tmp_path):
    raw = gzip.decompress(image.read_bytes())
    cut = tmp_path / "cut.nii"
    cut.write_bytes(raw[: len(raw) - 100])
    _raises(lambda: check_image_file(cut), "cut.nii", "truncated or corrupt")
    assert check_image_file(cut, read_voxels=False).spatial_shape == SHAPE  # the header alone is intact


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_are_refused(tmp_path, bad):
    volume = np.ones(SHAPE, np.float32)
    volume[3, 4, 2] = bad
    volume[0, 0, 0] = bad
    path = _save(tmp_path / "nan.nii.gz", volume)
    _raises(lambda: check_image_file(path), "nan.nii.gz", "2 voxel values are not finite")
    _raises(lambda: check_label_file(path, SHAPE), "nan.nii.gz", "not finite")


def test_size_limit_is_checked_on_the_header(image):
    _raises(lambda: check_image_file(image, max_voxels=100), "scan.nii.gz", "480 values", "limit of 100")


@pytest.mark.parametrize(
    "label, words",
    [
        (np.zeros((12, 10, 5), np.uint8), ["label shape (12, 10, 5) differs from the image shape (12, 10, 4)"]),
        (np.zeros((10, 12, 4), np.uint8), ["label shape (10, 12, 4)"]),
        (np.full(SHAPE, 0.5, np.float32), ["must be integers, found 0.5"]),
        (np.full(SHAPE, -1, np.int16), ["must be >= 0, found -1"]),
        (np.full(SHAPE, 1000, np.int16), ["must be <= 255, found 1000"]),
    ],
    ids=["depth", "transposed", "fraction", "negative", "too-large"],
)
def test_bad_labels_are_refused(image, tmp_path, label, words):
    path = _save(tmp_path / "label.nii.gz", label)
    _raises(lambda: check_pair(image, path), "label.nii.gz", *words)


def test_pair_reports_the_image_first(image, tmp_path):
    image.write_bytes(b"")
    label = _save(tmp_path / "label.nii.gz", np.zeros((3, 3, 3), np.uint8))
    _raises(lambda: check_pair(image, label), "scan.nii.gz", "empty file")


def test_array_checks_and_argument_errors(tmp_path):
    check_finite(np.arange(5), "ints")  # integers are always finite
    assert check_label_array(np.zeros((2, 2, 2)), "label") == (0,)
    _raises(lambda: check_label_array(np.zeros((2, 2)), "label"), "label", "3-D label")
    _raises(lambda: check_image_file(tmp_path / "missing.nii.gz"), "missing.nii.gz", "not a file")
    with pytest.raises(ValueError, match="max_label"):
        check_label_array(np.zeros((2, 2, 2)), "label", max_label=0)
    with pytest.raises(ValueError, match="max_channels"):
        check_image_file(tmp_path / "x.nii.gz", max_channels=0)
