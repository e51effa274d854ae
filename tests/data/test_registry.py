# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The dataset registry: names, errors, options passed through."""

from __future__ import annotations

import pytest

from monai_adaptiveclick.data import get_dataset, list_datasets, register_dataset
from monai_adaptiveclick.data.items import BadInputError, validate_item

EXPECTED_NAMES = {
    "sample",
    "synthetic",
    "brats_png",
    "oaizib_png",
    "sstem_png",
    "brats",
    "oaizib",
    "sstem",
    "volume",
    "dicom",
    "sbd",
    "cocolvis",
    "grabcut",
    "berkeley",
    "davis",
    "pascalvoc",
}


def test_registry_names_and_errors(tmp_path):
    assert set(list_datasets()) == EXPECTED_NAMES
    with pytest.raises(ValueError, match="known datasets: .*brats_png"):
        get_dataset("imagenet")
    with pytest.raises(BadInputError, match="needs root"):
        get_dataset("brats_png")
    with pytest.raises(BadInputError, match="not found"):
        get_dataset("pascalvoc", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("sbd", lambda root=None: [])


def test_registry_sample_passes_options_through():
    from monai_adaptiveclick.data.sample import load_sample

    items = get_dataset("sample", split="heldout", modality="mri", max_size=64)
    expected = load_sample("heldout", modality="mri", max_size=64)
    assert [x["object_id"] for x in items] == [x["object_id"] for x in expected] and len(items) > 0
    for item in items:
        validate_item(item)  # the embedded pack follows the dataset item contract
        assert max(item["image"].shape[1:]) <= 64
