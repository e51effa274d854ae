# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Clicks, guidance and preprocessing: click type, disk rasterisation, evaluation clicker, training click samplers,
the image preprocessing shared by training and inference, the training augmentation, MONAI dict transforms."""

from __future__ import annotations

from .augmentation import BinarizeMasksd, EnsureIgnored, RandObjectWindowd, training_augmentation
from .clicker import as_binary_mask, error_regions, next_click, padded_distance_transform
from .clicks import (
    CLICK_MAPPINGS,
    Click,
    as_click,
    as_clicks,
    clicks_to_tensors,
    map_click_coordinate,
    map_clicks,
    scale_click_coordinate,
)
from .dictionary import AddGuidanceChannelsd, SampleInitialClicksd
from .disks import rasterize_click_batch, rasterize_clicks
from .preprocessing import (
    INTENSITY_MODES,
    PrepareImaged,
    ResizeToFramed,
    match_channels,
    network_frame,
    prepare_image,
    to_network_frame,
)
from .sampling import (
    NEGATIVE_STRATEGIES,
    euclidean_distance_transform,
    sample_error_click,
    sample_error_clicks_batch,
    sample_initial_clicks,
)

__all__ = [
    "CLICK_MAPPINGS",
    "Click",
    "map_click_coordinate",
    "map_clicks",
    "as_click",
    "as_clicks",
    "clicks_to_tensors",
    "scale_click_coordinate",
    "rasterize_clicks",
    "rasterize_click_batch",
    "as_binary_mask",
    "padded_distance_transform",
    "error_regions",
    "next_click",
    "NEGATIVE_STRATEGIES",
    "euclidean_distance_transform",
    "sample_initial_clicks",
    "sample_error_click",
    "sample_error_clicks_batch",
    "AddGuidanceChannelsd",
    "SampleInitialClicksd",
    "INTENSITY_MODES",
    "PrepareImaged",
    "ResizeToFramed",
    "match_channels",
    "network_frame",
    "prepare_image",
    "to_network_frame",
    "BinarizeMasksd",
    "EnsureIgnored",
    "RandObjectWindowd",
    "training_augmentation",
]
