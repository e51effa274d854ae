# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Datasets: medical benchmark exports, 3-D volumes read slice-wise, natural-image sets, registry, image volumes.

Every loader returns a sequence of dataset items (ARCHITECTURE "Dataset item" contract), one object instance each:
``{"image": float32 [C, H, W], "label": uint8 [1, H, W], "ignore": optional bool [1, H, W], "object_id": str,
"meta": dict}``. Use :func:`get_dataset` with a registered name (:func:`list_datasets`).

Modules, one concern each: ``items`` (the item contract, dataset assembly), ``image_io`` (2-D image files),
``intensity`` (normalisation), ``volume_io`` (reading 3-D volumes and headers), ``image_volumes`` (:class:`Volume`,
:func:`load_image_volume`, multi-sequence siblings), ``volume_cache`` (the one :class:`VolumeCache` of decoded
volumes, shared with the MONAI Label app), ``volume_slices`` (slice-wise datasets over volumes),
``volume_datasets`` / ``medical`` / ``natural`` (the dataset loaders), ``registry`` (names -> loaders), ``sample``
(the embedded sample pack), ``label_maps`` / ``synthetic`` (the synthetic data engine: SynthSeg-style images
from label maps, dataset name ``synthetic``).
"""

from __future__ import annotations

from .image_volumes import (
    BRATS_SEQUENCES,
    Volume,
    find_sequence_siblings,
    load_image_volume,
    model_sequences,
)
from .intensity import normalize_image, normalize_intensity
from .items import BadInputError, ObjectDataset, make_item, validate_item
from .medical import load_brats_png, load_oaizib_png, load_sstem_png
from .natural import load_berkeley, load_cocolvis, load_davis, load_grabcut, load_pascalvoc, load_sbd
from .registry import get_dataset, list_datasets, register_dataset
from .synthetic import SynthesisOptions, SynthesizeObjectd, SyntheticObjects, load_synthetic
from .volume_cache import VolumeCache
from .volume_datasets import load_brats, load_dicom, load_oaizib, load_sstem_stack, load_volume_pairs
from .volume_io import load_volume
from .volume_slices import select_slices

__all__ = [
    "BRATS_SEQUENCES",
    "BadInputError",
    "ObjectDataset",
    "SynthesisOptions",
    "SynthesizeObjectd",
    "SyntheticObjects",
    "Volume",
    "VolumeCache",
    "find_sequence_siblings",
    "get_dataset",
    "list_datasets",
    "load_synthetic",
    "load_berkeley",
    "load_brats",
    "load_brats_png",
    "load_cocolvis",
    "load_davis",
    "load_dicom",
    "load_grabcut",
    "load_image_volume",
    "load_oaizib",
    "load_oaizib_png",
    "load_pascalvoc",
    "load_sbd",
    "load_sstem_png",
    "load_sstem_stack",
    "load_volume",
    "load_volume_pairs",
    "make_item",
    "model_sequences",
    "normalize_image",
    "normalize_intensity",
    "register_dataset",
    "select_slices",
    "validate_item",
]
