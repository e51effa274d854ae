# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Zoom-in boxes of the NoC protocol (SPEC section 5): the object's region of interest, its expansion and the box
comparisons, for the project's rule (shifted into the image) and SimpleClick v1.0's (clamped, Python rounding,
product IoU, half-open outside test). :class:`~monai_adaptiveclick.engines.tta.ZoomIn` and the ``focus`` option of
:class:`~monai_adaptiveclick.inference.Predictor` use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from monai_adaptiveclick.protocol import ZOOM_IN_THRESHOLD

from .clicks import Click

__all__ = [
    "Box",
    "box_iou",
    "expand_box",
    "expand_box_clamped",
    "object_roi",
    "outside_box_simpleclick",
    "simpleclick_box_iou",
    "simpleclick_object_roi",
]

Box = tuple[int, int, int, int]
"""A box ``(y0, y1, x0, x1)`` in pixels, half-open: rows ``y0 <= y < y1``, columns ``x0 <= x < x1``."""


def expand_box(box: Box, spatial_size: tuple[int, int], expansion: float = 1.4, min_size: int = 200) -> Box:
    """Expand ``box`` about its centre by ``expansion``, enlarge each side to at least ``min_size`` and fit the image.

    A side longer than the image becomes the whole image side; otherwise the box is shifted (not truncated) to lie
    inside the image, so every side of the result is ``>= min(min_size, image side)`` (SPEC section 5: "expanded
    x1.4, at least 200 px").

    Args:
        box: ``(y0, y1, x0, x1)``, half-open.
        spatial_size: image ``(H, W)``.
        expansion: scale factor applied to the box sides.
        min_size: minimum side in pixels.

    Returns:
        The expanded box, half-open, inside the image.
    """
    if expansion < 1.0:
        raise ValueError(f"expansion must be >= 1, got {expansion}.")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}.")
    out = []
    for lo, hi, limit in ((box[0], box[1], spatial_size[0]), (box[2], box[3], spatial_size[1])):
        if not 0 <= lo < hi <= limit:
            raise ValueError(f"box {box} is empty or outside the image of size {spatial_size}.")
        side = min(limit, max(min_size, math.ceil(round((hi - lo) * expansion, 6))))
        start = int(round((lo + hi) / 2.0 - side / 2.0))
        start = min(max(start, 0), limit - side)
        out.extend((start, start + side))
    return out[0], out[1], out[2], out[3]


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two half-open boxes ``(y0, y1, x0, x1)``."""
    inter_h = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    inter_w = max(0, min(a[3], b[3]) - max(a[2], b[2]))
    inter = inter_h * inter_w
    union = (a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2]) - inter
    return float(inter / union) if union > 0 else 0.0


def object_roi(
    prev_mask: np.ndarray,
    clicks: Sequence[Click],
    prob_threshold: float = ZOOM_IN_THRESHOLD,
    expansion: float = 1.4,
    min_size: int = 200,
) -> Box | None:
    """Zoom-in region of interest: bbox of (``prev_mask > prob_threshold`` plus positive clicks), expanded.

    Args:
        prev_mask: previous probability map ``[H, W]``.
        clicks: the clicks so far (``Click`` or ``(y, x, is_positive)``); only positive ones count.
        prob_threshold: threshold on ``prev_mask`` (SPEC section 5: 0.5).
        expansion: see :func:`expand_box`.
        min_size: see :func:`expand_box`.

    Returns:
        The box, or ``None`` when there is no predicted pixel and no positive click.
    """
    region = np.asarray(prev_mask) > prob_threshold
    rows, cols = np.nonzero(region)
    ys = list(rows) + [int(c[0]) for c in clicks if bool(c[2])]
    xs = list(cols) + [int(c[1]) for c in clicks if bool(c[2])]
    if not ys:
        return None
    tight = (int(min(ys)), int(max(ys)) + 1, int(min(xs)), int(max(xs)) + 1)
    return expand_box(tight, region.shape, expansion=expansion, min_size=min_size)


def expand_box_clamped(box: Box, spatial_size: tuple[int, int], expansion: float = 1.4, min_size: int = 200) -> Box:
    """SimpleClick v1.0 box expansion (SPEC section 5): about the centre, rounded, then CLAMPED to the image.

    In their inclusive coordinates ``(rmin, rmax)`` per axis: centre ``c = 0.5 * (rmin + rmax)``, side
    ``s = max(expansion * (rmax - rmin + 1), min_size)``, ``rmin' = int(round(c - 0.5 * s))``,
    ``rmax' = int(round(c + 0.5 * s))`` (Python's ``round``: halves to even), then ``rmin' >= 0`` and
    ``rmax' <= H - 1`` (the box shrinks at the border; it is not shifted as in :func:`expand_box`).

    Args:
        box: ``(y0, y1, x0, x1)``, half-open, non-empty, inside the image.
        spatial_size: image ``(H, W)``.
        expansion: scale factor of the sides.
        min_size: minimum side before clamping.

    Returns:
        the box, half-open.

    Example:
        >>> expand_box_clamped((18, 47, 212, 236), (64, 240))  # centre 223.5, 123.5 rounds to 124
        (0, 64, 124, 240)
        >>> expand_box((18, 47, 212, 236), (64, 240))  # the default rule shifts the box inside instead
        (0, 64, 40, 240)
    """
    out = []
    for lo, hi, limit in ((box[0], box[1], spatial_size[0]), (box[2], box[3], spatial_size[1])):
        if not 0 <= lo < hi <= limit:
            raise ValueError(f"box {box} is empty or outside the image of size {spatial_size}.")
        first, last = lo, hi - 1
        centre = 0.5 * (first + last)
        side = expansion * (last - first + 1)
        side = max(side, min_size)
        start = max(int(round(centre - 0.5 * side)), 0)
        stop = min(int(round(centre + 0.5 * side)), limit - 1)
        out.extend((start, stop + 1))
    return out[0], out[1], out[2], out[3]


def simpleclick_box_iou(a: Box, b: Box) -> float:
    """The box "IoU" of SimpleClick v1.0: the PRODUCT of the two per-axis segment IoUs (not the area IoU).

    Per axis, with half-open segments ``[a0, a1)`` and ``[b0, b1)``: ``max(0, min(a1, b1) - max(a0, b0)) /
    (max(a1, b1) - min(a0, b0))`` (the denominator is the hull, not the union length).

    Example:
        >>> simpleclick_box_iou((0, 10, 0, 10), (0, 10, 5, 15)), round(box_iou((0, 10, 0, 10), (0, 10, 5, 15)), 4)
        (0.3333333333333333, 0.3333)
        >>> simpleclick_box_iou((0, 10, 0, 10), (5, 15, 5, 15)), round(box_iou((0, 10, 0, 10), (5, 15, 5, 15)), 4)
        (0.1111111111111111, 0.1429)
    """
    iou = 1.0
    for lo_a, hi_a, lo_b, hi_b in ((a[0], a[1], b[0], b[1]), (a[2], a[3], b[2], b[3])):
        inter = max(0, min(hi_a, hi_b) - max(lo_a, lo_b))
        hull = max(1e-6, max(hi_a, hi_b) - min(lo_a, lo_b))
        iou *= inter / hull
    return iou


def outside_box_simpleclick(box: Box, click: Click) -> bool:
    """SimpleClick v1.0's test that a click lies outside the kept box.

    Their test reads ``r < rmin or r >= rmax`` on the INCLUSIVE box, so a click on the last row or column of the
    box counts as outside: with the half-open ``box``, ``y < y0 or y >= y1 - 1`` (same for ``x``).

    Example:
        >>> outside_box_simpleclick((0, 10, 0, 10), Click(8, 8, True))
        False
        >>> outside_box_simpleclick((0, 10, 0, 10), Click(9, 0, True))  # last row of the box
        True
    """
    return not (box[0] <= click.y < box[1] - 1 and box[2] <= click.x < box[3] - 1)


def simpleclick_object_roi(
    prev_mask: np.ndarray,
    clicks: Sequence[Click],
    prob_threshold: float = 0.5,
    expansion: float = 1.4,
    min_size: int = 200,
) -> Box | None:
    """SimpleClick v1.0 zoom-in box: ``prev_mask > prob_threshold`` with every positive click pixel set, its tight
    bbox, :func:`expand_box_clamped`; ``None`` when the thresholded map is EMPTY (positive clicks alone make no box).

    Args:
        prev_mask: previous probability ``[H, W]``.
        clicks: clicks inside the image; only positive ones count.
        prob_threshold: threshold on ``prev_mask`` (0.5).
        expansion: see :func:`expand_box_clamped`.
        min_size: see :func:`expand_box_clamped`.

    Returns:
        the half-open box or ``None``.

    Example:
        >>> prev = np.zeros((300, 400), np.float32)
        >>> prev[100:120, 350:380] = 0.9
        >>> simpleclick_object_roi(prev, [Click(110, 340, True)])  # rows 9.5 -> 10, 209.5 -> 210 (inclusive)
        (10, 211, 260, 400)
        >>> simpleclick_object_roi(np.zeros((300, 400)), [Click(110, 340, True)]) is None
        True
    """
    region = np.asarray(prev_mask) > prob_threshold
    if not region.any():
        return None
    region = region.copy()
    for click in clicks:
        if click.is_positive:
            region[click.y, click.x] = True
    rows, cols = np.nonzero(region.any(1))[0], np.nonzero(region.any(0))[0]
    tight = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    return expand_box_clamped(tight, region.shape, expansion=expansion, min_size=min_size)
