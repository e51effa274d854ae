# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Label-map sources of the synthetic engine: the sample pack's training-safe planes and the procedural shapes."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from monai_adaptiveclick.data.label_maps import (
    blob_label_map,
    noise_label_map,
    sample_label_maps,
    voronoi_label_map,
)
from monai_adaptiveclick.data.sample import SAMPLE_PACK_DIR


@pytest.mark.parametrize("generator", [noise_label_map, voronoi_label_map])
def test_partition_generators_cover_the_image_with_the_requested_labels(generator):
    labels = generator(np.random.default_rng(3), (40, 56), 5)
    assert labels.shape == (40, 56) and labels.dtype == np.int32
    assert labels.min() >= 1 and labels.max() <= 5 and len(np.unique(labels)) >= 2
    assert np.array_equal(labels, generator(np.random.default_rng(3), (40, 56), 5))


def test_blobs_lie_on_a_background():
    labels = blob_label_map(np.random.default_rng(1), (64, 64), 4)
    assert (labels == 0).any() and set(np.unique(labels)) <= set(range(5)) and labels.max() >= 1


@pytest.mark.parametrize("generator", [noise_label_map, voronoi_label_map, blob_label_map])
def test_generators_refuse_bad_arguments(generator):
    with pytest.raises(ValueError, match="shape"):
        generator(np.random.default_rng(0), (4, 40), 3)
    with pytest.raises(ValueError, match="labels"):
        generator(np.random.default_rng(0), (40, 40), 0)


def test_sample_planes_keep_away_from_every_heldout_slice():
    index = json.loads((SAMPLE_PACK_DIR / "index.json").read_text())
    maps = sample_label_maps()
    for dataset in ("colin27", "mni152_2009a"):
        rows = [row for row in index["slices"] if row["dataset"] == dataset]
        volume = np.asanyarray(nib.load(str(SAMPLE_PACK_DIR / rows[0]["label"])).dataobj).astype(np.int32)
        heldout = [row["k"] for row in rows if row["split"] == "heldout"]
        near = [k for k in range(volume.shape[2]) if min(abs(k - h) for h in heldout) < index["split_gap"]]
        far = [k for k in range(volume.shape[2]) if k not in near and volume[:, :, k].any()]
        assert len(maps[dataset]) == len(far)
        for plane in maps[dataset]:
            assert not any(np.array_equal(plane, volume[:, :, k]) for k in near if volume[:, :, k].any())
    # the lesion case has no training slice; 2-D images give their training regions only
    assert "pyradiomics_brain1" not in maps
    assert [plane.shape for plane in maps["nuclei_dsb2018"]] == [(256, 256), (256, 256)]
    assert [plane.shape for plane in maps["voc2012"]] == [(375, 280)]
