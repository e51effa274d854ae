# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Datasets: medical benchmark exports, 3-D volumes read slice-wise, natural-image sets, augmentation, registry.

Every loader returns a sequence of dataset items (ARCHITECTURE "Dataset item" contract), one object instance each:
``{"image": float32 [C, H, W], "label": uint8 [1, H, W], "ignore": optional bool [1, H, W], "object_id": str,
"meta": dict}``. Use :func:`get_dataset` with a registered name (:func:`list_datasets`).
"""

from __future__ import annotations

from .augmentation import MinAreaFilterd, training_augmentation
from .intensity import normalize_image, normalize_intensity
from .items import BadInputError, ObjectDataset, make_item, validate_item
from .medical import load_brats_png, load_oaizib_png, load_sstem_png
from .natural import load_berkeley, load_cocolvis, load_davis, load_grabcut, load_pascalvoc, load_sbd
from .registry import get_dataset, list_datasets, register_dataset
from .volumes import (
    load_brats,
    load_dicom,
    load_oaizib,
    load_sstem_stack,
    load_volume,
    load_volume_pairs,
    select_slices,
)

__all__ = [
    "BadInputError",
    "MinAreaFilterd",
    "ObjectDataset",
    "get_dataset",
    "list_datasets",
    "load_berkeley",
    "load_brats",
    "load_brats_png",
    "load_cocolvis",
    "load_davis",
    "load_dicom",
    "load_grabcut",
    "load_oaizib",
    "load_oaizib_png",
    "load_pascalvoc",
    "load_sbd",
    "load_sstem_png",
    "load_sstem_stack",
    "load_volume",
    "load_volume_pairs",
    "make_item",
    "normalize_image",
    "normalize_intensity",
    "register_dataset",
    "select_slices",
    "training_augmentation",
    "validate_item",
]
