# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The constants of the interactive-segmentation protocol, in one place (SPEC sections 1 and 5).

Every module that thresholds a probability map, rasterises a click or assembles the network input reads these
names; nothing else in the package writes the numbers. They are fixed by the paper's protocol (SimpleClick v1.0),
not tuning knobs, so they live in code; tunable defaults live in ``configs/`` and the bundle JSON.

Example:
    >>> PROB_THRESHOLD, CLICK_RADIUS, GUIDANCE_CHANNEL_ORDER
    (0.49, 5, ('prev_mask', 'positive_clicks', 'negative_clicks'))
    >>> import numpy as np
    >>> is_foreground(np.array([0.49, 0.5]))
    array([False,  True])
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CLICK_RADIUS",
    "FOCUS_MAGNIFICATION",
    "GUIDANCE_CHANNEL_ORDER",
    "IOU_THRESHOLDS",
    "MAX_CLICKS",
    "PROB_THRESHOLD",
    "ZOOM_IN_THRESHOLD",
    "is_foreground",
]

PROB_THRESHOLD = 0.49
"""A pixel belongs to the object when its final probability is strictly greater than this (SPEC section 5)."""

CLICK_RADIUS = 5
"""Radius in pixels, at network resolution, of the disk drawn around every click (SPEC section 1)."""

GUIDANCE_CHANNEL_ORDER: tuple[str, ...] = ("prev_mask", "positive_clicks", "negative_clicks")
"""The channels appended after the image channels of the network input, in this order (ARCHITECTURE contract)."""

MAX_CLICKS = 20
"""Click budget per object of the NoC protocol (SPEC section 5)."""

IOU_THRESHOLDS: tuple[float, ...] = (0.85, 0.90)
"""The IoU targets of NoC85 / NoC90 (SPEC section 5)."""

ZOOM_IN_THRESHOLD = 0.5
"""Threshold on the previous probability map when the zoom-in box is computed (SPEC section 5)."""

FOCUS_MAGNIFICATION = 448 / 200
"""The largest magnification of the protocol's zoom-in for the paper's networks: a crop of at least 200 px resized to
448 px (SPEC section 5). The Predictor's ``focus`` applies it at any network size (``image_size / 2.24`` px minimum
region), so that a 128 px network is not denied the zoom a 448 px network gets."""


def is_foreground(prob: Any, threshold: float = PROB_THRESHOLD) -> Any:
    """The protocol's binary decision ``prob > threshold`` for a numpy array or a torch tensor.

    Args:
        prob: probability map(s) with values in [0, 1].
        threshold: the decision threshold (default :data:`PROB_THRESHOLD`).

    Returns:
        a boolean array / tensor of ``prob``'s shape.
    """
    return prob > threshold
