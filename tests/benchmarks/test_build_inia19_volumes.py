# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The INIA19 selection script (issue 15's second volume data set): edge contrast against a direct count, the
folder it writes, and the grid check."""

from __future__ import annotations

import itertools
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "build_inia19_volumes.py"


def _labels_and_image(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((9, 10, 8), np.int32)
    labels[2:5, 2:6, 1:4] = 3
    labels[5:8, 3:7, 2:6] = 7  # touches label 3
    labels[1:3, 7:9, 5:7] = 9
    image = np.random.default_rng(seed).normal(0, 1, labels.shape).astype(np.float32) + 5.0 * (labels == 7)
    return labels, image


def test_edge_contrast_is_the_mean_step_across_boundary_faces(load_benchmark):
    labels, image = _labels_and_image()
    got = load_benchmark("build_inia19_volumes").edge_contrast(image, labels, [3, 7, 9])
    for value in (3, 7, 9):
        steps = []
        for i, j, k in itertools.product(*(range(s) for s in labels.shape)):
            for di, dj, dk in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
                a, b = (i, j, k), (i + di, j + dj, k + dk)
                if b[0] < labels.shape[0] and b[1] < labels.shape[1] and b[2] < labels.shape[2]:
                    if (labels[a] == value) != (labels[b] == value):
                        steps.append(abs(float(image[a]) - float(image[b])))
        assert got[value] == pytest.approx(np.mean(steps), rel=1e-5)


def test_folder_holds_the_top_labels_relabelled_and_grids_are_checked(tmp_path, load_benchmark):
    labels, image = _labels_and_image(1)
    templates = tmp_path / "templates"
    templates.mkdir()
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    nib.save(nib.Nifti1Image(image, affine), templates / "inia19-t1-brain.nii.gz")
    nib.save(nib.Nifti1Image(labels.astype(np.int16), affine), templates / "inia19-NeuroMaps.nii.gz")
    script = load_benchmark("build_inia19_volumes")
    out = tmp_path / "out"
    selection = script.main(["--templates", str(templates), "--output", str(out), "--min-voxels", "10", "--top", "2"])
    contrast = script.edge_contrast(image, labels, [3, 7])  # label 9 (8 voxels) is too small
    assert [row["neuromaps_value"] for row in selection] == sorted([3, 7], key=lambda v: -contrast[v])
    written = np.asarray(nib.load(out / "labelsTr" / "inia19.nii.gz").dataobj)
    for row in selection:
        assert np.array_equal(written == row["label"], labels == row["neuromaps_value"])
    assert set(np.unique(written)) == {0, 1, 2} and (out / "imagesTr" / "inia19.nii.gz").is_file()
    nib.save(nib.Nifti1Image(labels[:-1].astype(np.int16), affine), templates / "inia19-NeuroMaps.nii.gz")
    with pytest.raises(ValueError, match="not on one grid"):
        script.main(["--templates", str(templates), "--output", str(out)])
