# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Evaluation clicker: the deterministic next-click rule of the NoC protocol (SPEC section 5).

The next click goes to the pixel farthest from the boundary of the larger error region, measured with the exact
Euclidean distance transform of the error region padded by one pixel of zeros (the image border counts as
outside). False negatives give a positive click, false positives a negative click; the positive side wins only
when its peak distance is strictly larger (ties go negative). Pixels clicked before get distance 0, so no pixel is
clicked twice. This is the clicker of SimpleClick v1.0, which produced the paper's NoC numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.ndimage import distance_transform_edt

from .clicks import Click, as_clicks

__all__ = ["as_binary_mask", "padded_distance_transform", "error_regions", "next_click"]


def as_binary_mask(array: Any, name: str) -> np.ndarray:
    """Return ``array`` as a boolean 2-D numpy array.

    Boolean arrays are used as they are; any other numeric array is binarised with ``array > 0.5`` (so a probability
    map is thresholded at 0.5 and a {0, 1} label map is kept). Threshold a probability map yourself and pass a
    boolean array to use another threshold (the NoC protocol uses 0.49).

    Args:
        array: array-like (numpy array, nested lists, or a CPU torch tensor).
        name: name used in error messages.

    Raises:
        ValueError: the array is not 2-D or is not numeric.
    """
    values = np.asarray(array)
    if values.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [H, W], got shape {values.shape}.")
    if values.dtype == np.bool_:
        return values
    if not (np.issubdtype(values.dtype, np.number)):
        raise ValueError(f"{name} must be a boolean or numeric array, got dtype {values.dtype}.")
    return values > 0.5


def padded_distance_transform(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of every ``True`` pixel to the nearest ``False`` pixel, the border counting as False.

    Only the bounding box of the ``True`` pixels is transformed (``scipy.ndimage.distance_transform_edt``), padded
    with one pixel of zeros on every side: every pixel outside the box is ``False`` (or the border), and clamping any
    such pixel onto that one-pixel ring moves it closer to every pixel in the box, so the nearest ``False`` pixel of
    a box pixel is always on the ring or inside the box; the result is exact, and costs the box's area, not the
    image's. A region touching the image border gets distance 1 at the border pixel.

    Args:
        mask: boolean ``[H, W]`` array.

    Returns:
        float64 ``[H, W]`` distances (0 on ``False`` pixels).
    """
    mask = np.asarray(mask, dtype=bool)
    distances = np.zeros(mask.shape, dtype=np.float64)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return distances
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    padded = np.pad(mask[box], 1, mode="constant", constant_values=False)
    distances[box] = distance_transform_edt(padded)[1:-1, 1:-1]
    return distances


def error_regions(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-negative and false-positive regions of a binary prediction.

    Args:
        pred: boolean ``[H, W]`` prediction.
        gt: boolean ``[H, W]`` ground truth.

    Returns:
        ``(fn, fp)`` with ``fn = gt & ~pred`` and ``fp = ~gt & pred``.
    """
    return gt & ~pred, ~gt & pred


def next_click(pred: Any, gt: Any, previous_clicks: Sequence[Any] = (), ignore: Any | None = None) -> Click:
    """Next click of the evaluation protocol (SPEC section 5, SimpleClick v1.0 clicker).

    Args:
        pred: current binary prediction ``[H, W]`` (bool; other numeric dtypes are binarised with ``> 0.5``, see
            :func:`as_binary_mask`). Before the first click pass an all-``False`` array.
        gt: binary ground truth ``[H, W]`` of the object (same conversion rule).
        previous_clicks: clicks already placed, ``Click`` or ``(y, x, is_positive)``; their pixels are never chosen.
        ignore: optional ``[H, W]`` mask of pixels that belong to neither error region (e.g. the 255 "void" label of
            PascalVOC or 128 of GrabCut/Berkeley), so they are never clicked (as SimpleClick's ``ignore_label``).

    Returns:
        the click, a ``Click(y, x, is_positive)`` (equal to the plain tuple). Its location is the first pixel in C
        (row-major) order holding the maximum distance of the winning error map.

    Raises:
        ValueError: ``pred``/``gt``/``ignore`` not 2-D or of different shapes, empty ground truth, a previous click
            outside the image, or no error pixel left that has not been clicked (``pred`` equals ``gt`` there).

    Example:
        >>> gt = np.zeros((7, 7), bool); gt[1:6, 1:6] = True
        >>> next_click(np.zeros_like(gt), gt)
        Click(y=3, x=3, is_positive=True)
    """
    pred_mask = as_binary_mask(pred, "pred")
    gt_mask = as_binary_mask(gt, "gt")
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(f"pred and gt must have the same shape, got pred {pred_mask.shape} and gt {gt_mask.shape}.")
    if not gt_mask.any():
        raise ValueError(f"gt is empty (no foreground pixel in the {gt_mask.shape} mask): nothing to click on.")
    clicks = as_clicks(previous_clicks)
    height, width = gt_mask.shape
    not_clicked = np.ones_like(gt_mask)
    for click in clicks:
        if not (0 <= click.y < height and 0 <= click.x < width):
            raise ValueError(
                f"previous click {tuple(click)} is outside the image of size (H, W) = ({height}, {width})."
            )
        not_clicked[click.y, click.x] = False
    fn, fp = error_regions(pred_mask, gt_mask)
    if ignore is not None:
        ignore_mask = as_binary_mask(ignore, "ignore")
        if ignore_mask.shape != gt_mask.shape:
            raise ValueError(f"ignore must have the shape of gt {gt_mask.shape}, got {ignore_mask.shape}.")
        fn, fp = fn & ~ignore_mask, fp & ~ignore_mask
    fn_dist = padded_distance_transform(fn) * not_clicked
    fp_dist = padded_distance_transform(fp) * not_clicked
    fn_max = float(fn_dist.max())
    fp_max = float(fp_dist.max())
    if fn_max == 0.0 and fp_max == 0.0:
        raise ValueError(
            "no error region left to click: the prediction equals the ground truth on every pixel not clicked yet."
        )
    is_positive = fn_max > fp_max
    winner = fn_dist if is_positive else fp_dist
    y, x = np.unravel_index(int(np.argmax(winner)), winner.shape)
    return Click(int(y), int(x), bool(is_positive))
