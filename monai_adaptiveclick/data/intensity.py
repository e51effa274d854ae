# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Intensity normalisation shared by the loaders, the sample pack, training and the Predictor (SPEC section 6).

Percentile scaling: clip to the ``lower`` / ``upper`` percentiles (default 0.5 / 99.5) and scale that range to
[0, 1]. A constant array (equal percentiles) gives zeros, never NaN; non-finite input raises.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_intensity_range", "intensity_range", "normalize_image", "normalize_intensity"]


def intensity_range(array: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> tuple[float, float]:
    """The ``lower`` and ``upper`` percentiles of ``array`` (the clipping range of :func:`normalize_intensity`).

    Raises:
        ValueError: percentiles not in ``0 <= lower < upper <= 100``, an empty array or non-finite values.
    """
    if not 0.0 <= lower < upper <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}")
    arr = np.asarray(array, dtype=np.float32)
    if arr.size == 0:
        raise ValueError("cannot normalise an empty array")
    if not np.all(np.isfinite(arr)):
        raise ValueError("intensity array has NaN or infinite values")
    lo, hi = np.percentile(arr, [lower, upper])
    return float(lo), float(hi)


def apply_intensity_range(array: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Clip ``array`` to ``[lo, hi]`` and scale to float32 [0, 1]; ``hi <= lo`` (constant data) gives zeros."""
    arr = np.asarray(array, dtype=np.float32)
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    scaled = (np.clip(arr.astype(np.float64), lo, hi) - lo) / (hi - lo)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def normalize_intensity(array: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> np.ndarray:
    """Percentile clipping and scaling to [0, 1] (MRI normalisation; SPEC section 6 / issue 5).

    Example:
        >>> normalize_intensity(np.arange(201.0), 0.0, 100.0)[[0, 100, 200]].tolist()
        [0.0, 0.5, 1.0]
    """
    return apply_intensity_range(array, *intensity_range(array, lower, upper))


def normalize_image(image: np.ndarray, mode: str = "auto", lower: float = 0.5, upper: float = 99.5) -> np.ndarray:
    """Scale an image ``[C, H, W]`` to float32 in [0, 1].

    Modes: ``"auto"`` (uint8 -> divide by 255; any other dtype -> ``"percentile"``), ``"uint8"`` (divide by 255),
    ``"percentile"`` (per channel: clip to the ``lower``/``upper`` percentiles and scale to [0, 1]; a constant channel
    gives zeros, never NaN), ``"none"`` (cast to float32 unchanged).

    Raises:
        ValueError: unknown mode, non-3-D input, or non-finite values.
    """
    if mode not in ("auto", "uint8", "percentile", "none"):
        raise ValueError(f"unknown intensity mode {mode!r}; expected 'auto', 'uint8', 'percentile' or 'none'")
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be [C, H, W], got shape {image.shape}")
    if mode == "auto":
        mode = "uint8" if image.dtype == np.uint8 else "percentile"
    if mode == "uint8":
        return image.astype(np.float32) / np.float32(255.0)
    out = image.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise ValueError("image has NaN or infinite values")
    if mode == "none":
        return out
    return np.stack([normalize_intensity(channel, lower, upper) for channel in out])
