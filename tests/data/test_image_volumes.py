# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Image volumes and their cache: marker voxels per format, channel layouts, multi-sequence siblings, errors.

Expected values come from the files as written (nibabel / SimpleITK / PIL index order), never from the loader.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from monai_adaptiveclick.data import volume_cache
from monai_adaptiveclick.data.image_volumes import (
    BRATS_SEQUENCES,
    Volume,
    find_sequence_siblings,
    load_image_volume,
    model_sequences,
    volume_source_files,
)
from monai_adaptiveclick.data.items import BadInputError
from monai_adaptiveclick.data.volume_cache import VolumeCache

SHAPE = (7, 9, 5)  # (i, j, k), all different so a transpose cannot pass
MARK = (2, 6, 3)
AFFINE = np.array([[0.5, 0, 0, 10.0], [0, 2.0, 0, -20.0], [0, 0, 3.0, 5.0], [0, 0, 0, 1]])


def _save_nifti(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def _marker(value: float = 42.0, shape: tuple[int, ...] = SHAPE, mark: tuple[int, ...] = MARK) -> np.ndarray:
    array = np.zeros(shape, np.float32)
    array[mark] = value
    return array


def _bump_mtime(path: Path, seconds: float = 10.0) -> None:
    """Force a modification time different from the one the cache saw (file systems with coarse mtimes)."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + int(seconds * 1e9)))


def test_nifti_marker_voxel_comes_back_at_data_c_i_j_k(tmp_path):
    path = _save_nifti(tmp_path / "scan.nii.gz", _marker(42.0).astype(np.int16))
    volume = load_image_volume(path)
    assert volume.data.dtype == np.float32 and volume.data.shape == (1, *SHAPE)
    assert volume.data[(0, *MARK)] == 42.0 and np.count_nonzero(volume.data) == 1
    assert volume.spatial_shape == SHAPE and volume.depth == SHAPE[2]
    np.testing.assert_allclose(volume.affine, AFFINE)
    np.testing.assert_allclose(volume.spacing, [0.5, 2.0, 3.0])
    assert volume.channels == ("scan.nii.gz",)
    assert load_image_volume(str(path)).data[(0, *MARK)] == 42.0  # str paths too


def test_metaimage_marker_voxel_written_with_simpleitk(tmp_path):
    # ITK arrays are indexed [k, j, i]: writing the transpose puts the marker at ITK voxel index (i, j, k)
    image = sitk.GetImageFromArray(np.ascontiguousarray(_marker(7.0).transpose(2, 1, 0)))
    image.SetSpacing((0.5, 2.0, 3.0))
    sitk.WriteImage(image, str(tmp_path / "scan.mha"))
    volume = load_image_volume(tmp_path / "scan.mha")
    assert volume.data.shape == (1, *SHAPE)
    assert volume.data[(0, *MARK)] == 7.0 and np.count_nonzero(volume.data) == 1
    np.testing.assert_allclose(volume.spacing, [0.5, 2.0, 3.0])


def test_four_d_channels_last_file_becomes_channels_first(tmp_path):
    array = np.zeros((*SHAPE, 3), np.float32)
    for c in range(3):
        array[(*MARK, c)] = 10.0 * (c + 1)
    array[0, 0, 0, 2] = -1.0
    volume = load_image_volume(_save_nifti(tmp_path / "multi.nii.gz", array))
    assert volume.data.shape == (3, *SHAPE) and volume.spatial_shape == SHAPE
    assert volume.data[(slice(None), *MARK)].tolist() == [10.0, 20.0, 30.0]
    assert volume.data[2, 0, 0, 0] == -1.0 and volume.data[:2, 0, 0, 0].tolist() == [0.0, 0.0]
    assert volume.channels == ("multi.nii.gz[0]", "multi.nii.gz[1]", "multi.nii.gz[2]")
    # sequences do not touch a multi-channel file
    assert load_image_volume(tmp_path / "multi.nii.gz", sequences=BRATS_SEQUENCES).data.shape == (3, *SHAPE)


def test_two_d_images_have_one_slice(tmp_path):
    grey = _marker(5.0, shape=(6, 4), mark=(4, 1))
    volume = load_image_volume(_save_nifti(tmp_path / "plane.nii.gz", grey))
    assert volume.data.shape == (1, 6, 4, 1) and volume.spatial_shape == (6, 4) and volume.depth == 1
    assert volume.data[0, 4, 1, 0] == 5.0 and np.count_nonzero(volume.data) == 1
    # an RGB PNG: MONAI's PIL reader puts x first (array[x, y]) and the colour axis becomes the channels
    rgb = np.zeros((6, 4, 3), np.uint8)
    rgb[4, 1] = (10, 20, 30)  # row y=4, column x=1
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    photo = load_image_volume(tmp_path / "photo.png")
    assert photo.data.shape == (3, 4, 6, 1) and photo.spatial_shape == (4, 6)
    assert photo.data[:, 1, 4, 0].tolist() == [10.0, 20.0, 30.0] and np.count_nonzero(photo.data) == 3


def _brats_set(folder: Path, case: str = "BraTS2021_00042", shape: tuple[int, ...] = SHAPE) -> dict[str, float]:
    """Four sequence files, each a constant, written in an order unlike the channel order."""
    values = {"t2": 4.0, "flair": 1.0, "t1ce": 3.0, "t1": 2.0}
    for sequence, value in values.items():
        _save_nifti(folder / f"{case}_{sequence}.nii.gz", np.full(shape, value, np.float32))
    return values


@pytest.mark.parametrize("opened", ["flair", "t1", "t1ce", "t2"])
def test_sibling_sequences_stacked_in_the_asked_order(tmp_path, opened):
    values = _brats_set(tmp_path)
    volume = load_image_volume(tmp_path / f"BraTS2021_00042_{opened}.nii.gz", sequences=BRATS_SEQUENCES)
    assert volume.data.shape == (4, *SHAPE)
    for c, sequence in enumerate(BRATS_SEQUENCES):
        assert np.all(volume.data[c] == values[sequence]), sequence
    assert volume.channels == tuple(f"BraTS2021_00042_{s}.nii.gz" for s in BRATS_SEQUENCES)
    np.testing.assert_allclose(volume.affine, AFFINE)
    reordered = load_image_volume(
        tmp_path / f"BraTS2021_00042_{opened}.nii.gz", sequences=("T2", "t1", "FLAIR", "t1ce")
    )
    assert reordered.data[:, 0, 0, 0].tolist() == [4.0, 2.0, 1.0, 3.0]


def test_sibling_lookup_falls_back_to_the_opened_file(tmp_path):
    _brats_set(tmp_path)
    opened = tmp_path / "BraTS2021_00042_t1.nii.gz"
    # no sequences: the file's own channel only
    assert load_image_volume(opened).data.shape == (1, *SHAPE)
    # the opened sequence is not among the asked ones: no lookup
    assert load_image_volume(opened, sequences=("flair", "t2")).channels == ("BraTS2021_00042_t1.nii.gz",)
    # a missing sibling: the opened volume with its single channel (no repetition to 4 channels)
    (tmp_path / "BraTS2021_00042_t1ce.nii.gz").unlink()
    assert find_sequence_siblings(opened, BRATS_SEQUENCES) is None
    volume = load_image_volume(opened, sequences=BRATS_SEQUENCES)
    assert volume.data.shape == (1, *SHAPE) and np.all(volume.data == 2.0)
    # a name that is not <case>_<sequence>
    _save_nifti(tmp_path / "scan.nii.gz", np.zeros(SHAPE, np.float32))
    assert find_sequence_siblings(tmp_path / "scan.nii.gz", BRATS_SEQUENCES) is None
    assert load_image_volume(tmp_path / "scan.nii.gz", sequences=BRATS_SEQUENCES).data.shape == (1, *SHAPE)


def test_find_sequence_siblings_case_insensitive_and_same_extension(tmp_path):
    for sequence in ("FLAIR", "t1"):
        _save_nifti(tmp_path / f"Case7_{sequence}.nii.gz", np.zeros(SHAPE, np.float32))
    _save_nifti(tmp_path / "Case7_t2.nii", np.zeros(SHAPE, np.float32))  # other extension: not a sibling
    found = find_sequence_siblings(str(tmp_path / "Case7_t1.nii.gz"), ("flair", "t1"))
    assert [Path(p).name for p in found] == ["Case7_FLAIR.nii.gz", "Case7_t1.nii.gz"]
    assert find_sequence_siblings(tmp_path / "Case7_t1.nii.gz", ("t1", "t2")) is None


def test_sibling_of_another_shape_is_an_error_naming_it(tmp_path):
    _brats_set(tmp_path)
    _save_nifti(tmp_path / "BraTS2021_00042_t1ce.nii.gz", np.zeros((7, 9, 6), np.float32))
    with pytest.raises(ValueError, match="BraTS2021_00042_t1ce.nii.gz"):
        load_image_volume(tmp_path / "BraTS2021_00042_flair.nii.gz", sequences=BRATS_SEQUENCES)
    _save_nifti(tmp_path / "BraTS2021_00042_t1ce.nii.gz", np.zeros((*SHAPE, 2), np.float32))  # 2 channels
    with pytest.raises(BadInputError, match="t1ce.*single-channel"):
        load_image_volume(tmp_path / "BraTS2021_00042_flair.nii.gz", sequences=BRATS_SEQUENCES)


def test_model_sequences():
    assert model_sequences({"sequences": ["T2", "FLAIR"]}, 2) == ("t2", "flair")
    assert model_sequences({}, 4) == BRATS_SEQUENCES == ("flair", "t1", "t1ce", "t2")
    assert model_sequences({}, 3) is None and model_sequences({}, 1) is None
    with pytest.raises(ValueError, match="sequences"):
        model_sequences({"sequences": ["t1"]}, 2)
    with pytest.raises(ValueError, match="in_channels"):
        model_sequences({}, 0)


def test_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        load_image_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti file")
    with pytest.raises(ValueError, match="unreadable image .*broken.nii.gz"):
        load_image_volume(tmp_path / "broken.nii.gz")
    _save_nifti(tmp_path / "five.nii.gz", np.zeros((3, 4, 5, 2, 2), np.float32))
    with pytest.raises(BadInputError, match="five.nii.gz.*2-D or 3-D"):
        load_image_volume(tmp_path / "five.nii.gz")
    path = _save_nifti(tmp_path / "ok.nii.gz", np.zeros(SHAPE, np.float32))
    for bad in ("flair", (), ("t1", "T1"), ("t1", "")):
        with pytest.raises(ValueError, match="sequences"):
            load_image_volume(path, sequences=bad)
    with pytest.raises(ValueError, match="max_items"):
        VolumeCache(0)
    with pytest.raises(FileNotFoundError, match="gone.nii.gz"):
        VolumeCache().get(tmp_path / "gone.nii.gz")


def test_volume_fields_are_checked():
    data = np.zeros((2, 3, 4, 5), np.float32)
    assert Volume(data, np.eye(4), (3, 4, 5), ("a", "b")).depth == 5
    assert Volume(np.zeros((1, 3, 4, 1), np.float32), np.eye(4), (3, 4), ("a",)).depth == 1
    for args, match in (
        ((data.astype(np.float64), np.eye(4), (3, 4, 5), ("a", "b")), "float32"),
        ((data, np.eye(3), (3, 4, 5), ("a", "b")), "affine"),
        ((data, np.eye(4), (3, 4, 6), ("a", "b")), "spatial_shape"),
        ((data, np.eye(4), (3, 4, 5), ("a",)), "channel names"),
    ):
        with pytest.raises(ValueError, match=match):
            Volume(*args)


def test_cache_hit_returns_the_same_object(tmp_path):
    path = _save_nifti(tmp_path / "scan.nii.gz", _marker(1.0))
    os.symlink(path, tmp_path / "link.nii.gz")
    cache = VolumeCache(max_items=3)
    first = cache.get(path)
    assert cache.get(str(path)) is first and cache.get(tmp_path / "link.nii.gz") is first  # real path is the key
    assert len(cache) == 1
    assert cache.get(path, sequences=("flair",)) is not first  # other options, other entry
    cache.clear()
    assert len(cache) == 0 and cache.get(path) is not first


def test_cache_reloads_a_rewritten_file(tmp_path):
    path = _save_nifti(tmp_path / "scan.nii.gz", _marker(1.0))
    cache = VolumeCache()
    first = cache.get(path)
    _save_nifti(path, _marker(9.0, mark=(0, 0, 0)))
    _bump_mtime(path)
    second = cache.get(path)
    assert second is not first and second.data[0, 0, 0, 0] == 9.0 and second.data[(0, *MARK)] == 0.0
    assert cache.get(path) is second and len(cache) == 1  # the stale version was replaced, not kept
    assert first.data[(0, *MARK)] == 1.0  # an old Volume handed out earlier is not modified


def test_cache_watches_every_sibling(tmp_path):
    _brats_set(tmp_path)
    opened = tmp_path / "BraTS2021_00042_flair.nii.gz"
    cache = VolumeCache()
    first = cache.get(opened, BRATS_SEQUENCES)
    assert cache.get(opened, BRATS_SEQUENCES) is first
    assert len(volume_source_files(opened, BRATS_SEQUENCES)) == 4
    t2 = tmp_path / "BraTS2021_00042_t2.nii.gz"
    _save_nifti(t2, np.full(SHAPE, 8.0, np.float32))
    _bump_mtime(t2)
    second = cache.get(opened, BRATS_SEQUENCES)
    assert second is not first and second.data[:, 0, 0, 0].tolist() == [1.0, 2.0, 3.0, 8.0]


def test_cache_evicts_the_least_recently_used(tmp_path):
    paths = [_save_nifti(tmp_path / f"v{i}.nii.gz", np.full(SHAPE, i, np.float32)) for i in range(3)]
    cache = VolumeCache(max_items=2)
    v0, v1 = cache.get(paths[0]), cache.get(paths[1])
    assert cache.get(paths[0]) is v0  # v0 is now the most recently used
    cache.get(paths[2])  # evicts v1
    assert len(cache) == 2 and cache.get(paths[0]) is v0 and cache.get(paths[1]) is not v1


def test_cache_intensity_ranges_per_channel(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.normal(0.0, 1.0, (*SHAPE, 2)).astype(np.float32)
    array[..., 1] *= 100.0
    path = _save_nifti(tmp_path / "two.nii.gz", array)
    cache = VolumeCache()
    ranges = cache.intensity_ranges(path, lower=1.0, upper=99.0)
    for c in range(2):
        np.testing.assert_allclose(ranges[c], np.percentile(array[..., c], [1.0, 99.0]), rtol=1e-5)
    assert cache.intensity_ranges(path, lower=1.0, upper=99.0) is ranges  # computed once
    np.testing.assert_allclose(
        cache.intensity_ranges(path, lower=0.0, upper=100.0)[1], [array[..., 1].min(), array[..., 1].max()]
    )
    with pytest.raises(ValueError, match="percentiles"):
        cache.intensity_ranges(path, lower=50.0, upper=10.0)


def test_cache_pickles_empty_and_is_thread_safe(tmp_path, monkeypatch):
    path = _save_nifti(tmp_path / "scan.nii.gz", _marker(3.0))
    cache = VolumeCache(max_items=2)
    cache.get(path)
    clone = pickle.loads(pickle.dumps(cache))
    assert len(clone) == 0 and clone.max_items == 2 and clone.get(path).data[(0, *MARK)] == 3.0

    calls = []
    real = volume_cache.load_image_volume

    def slow_load(*args, **kwargs):
        calls.append(args)
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(volume_cache, "load_image_volume", slow_load)
    fresh = VolumeCache()
    results = []
    threads = [threading.Thread(target=lambda: results.append(fresh.get(path))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 6 and all(r is results[0] for r in results)
