# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""From clicks on some slices to a 3-D label: propagation through the volume (ARCHITECTURE "Volume segmentation").

:func:`segment_volume` segments every slice that carries clicks with its clicks (a
:class:`~monai_adaptiveclick.inference.ClickSession` per slice), then propagates each of these seed slices to its
neighbours in both directions: slice ``k + 1`` is predicted from the previous slice's probability map as the
previous-mask input (what AdaptiveClick's prev-mask channel is for, paper section III-A) plus one automatic positive
click at the interior point of the previous slice's mask (the pixel farthest from its border, where the structure
most probably continues). Propagation from a seed stops at the next seed (clicks on any slice are always honoured;
each slice takes the nearest seed's propagation) or where the structure ends: the mask is empty or smaller than
``min_area`` pixels, its area changes by more than a factor ``1 / min_area_ratio`` from the previous slice's
(collapse, or an explosion such as the whole slice once the structure is gone), or its Dice overlap with the previous
slice's mask falls below ``min_overlap``, or the mean intensity inside it moves away from the seed slice's by more
than ``max_contrast_change`` of the seed's inside-outside contrast (the mask no longer covers tissue that looks like
the clicked structure).

With ``previous`` (the last result for the same structure, the 3-D counterpart of a
:class:`~monai_adaptiveclick.inference.ClickSession`'s memory), each clicked slice is served as a session that
remembers the last result there: the same clicks as last time return the stored probability map (no prediction,
so repeated calls do not drift), added clicks refine it (the previous-mask input), and the first clicks on a slice
the last result reached by propagation refine the propagated map, preceded by the automatic interior click of its
mask unless one of the slice's negative clicks falls inside that mask (the annotator says the mask is wrong there).

Any predictor of the *Predictor* contract works, the classical baselines included (they ignore the previous mask and
follow the automatic click). The stop thresholds were measured (BENCHMARKS.md, "Clicks per structure with a trained
model"): on the development structures (Colin27 AAL, MNI152 tissue) single-seed 3-D Dice is flat within 0.01 over
``min_area_ratio`` 0.2-0.5 and ``min_overlap`` 0-0.5; the appearance rule is the one that matters (without it the
mask runs on past the structure's end at a stable area), best at ``max_contrast_change`` 0.35-0.5. One interior click
measured better than none (the model then drops the structure at the first neighbour) and than three spread clicks.

Example:
    >>> from monai_adaptiveclick.engines import get_baseline
    >>> volume = np.zeros((32, 32, 9), np.float32)
    >>> volume[8:24, 10:22, 2:7] = 1.0  # a bright box on slices 2..6
    >>> result = segment_volume(get_baseline("watershed"), volume, [(16, 16, 4, True)])
    >>> result.label.shape, np.flatnonzero(result.label.any(axis=(0, 1))).tolist()
    ((32, 32, 9), [2, 3, 4, 5, 6])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from monai_adaptiveclick.protocol import is_foreground
from monai_adaptiveclick.transforms import Click

from .predictor import Prediction
from .session import ClickSession

__all__ = ["VolumeSegmentation", "as_voxel_clicks", "segment_volume"]


@dataclass
class VolumeSegmentation:
    """The 3-D result of :func:`segment_volume`.

    Attributes:
        label: uint8 ``[H, W, D]`` (1 = the structure).
        slice_confidence: float32 ``[D]``: mean probability inside the slice's mask (0 for an empty slice).
        prob: float32 ``[H, W, D]`` probability maps (0 on slices that were not predicted).
        seeds: the slices that carried clicks.
        review_order: predicted non-seed slices, least confident first (the ones worth reviewing first).
        seconds_per_slice: wall time per predicted slice.
        clicks: the voxel clicks ``(i, j, k, is_positive)`` the result was made from (what ``previous`` compares).
    """

    label: np.ndarray
    slice_confidence: np.ndarray
    prob: np.ndarray
    seeds: list[int] = field(default_factory=list)
    review_order: list[int] = field(default_factory=list)
    seconds_per_slice: float = 0.0
    clicks: list[tuple[int, int, int, bool]] = field(default_factory=list)


def as_voxel_clicks(clicks: Sequence[Any], shape: tuple[int, int, int]) -> list[tuple[int, int, int, bool]]:
    """Validate ``(i, j, k, is_positive)`` voxel clicks against a volume of spatial ``shape``.

    Raises:
        ValueError: a click that is not four values, not integral, or outside the volume (naming it).
    """
    out = []
    for click in clicks:
        values = list(click)
        if len(values) != 4:
            raise ValueError(f"a voxel click is (i, j, k, is_positive), got {click!r}.")
        i, j, k, positive = values
        if not all(float(v) == int(v) for v in (i, j, k)):
            raise ValueError(f"voxel click {click!r} must have integer indices.")
        i, j, k = int(i), int(j), int(k)
        if not all(0 <= c < s for c, s in zip((i, j, k), shape, strict=True)):
            raise ValueError(f"click {click!r} is outside the volume of shape {shape}.")
        out.append((i, j, k, bool(positive)))
    if not out:
        raise ValueError("no clicks: give at least one (i, j, k, is_positive) voxel click.")
    return out


def _interior_click(mask: np.ndarray) -> Click | None:
    """A positive click at the pixel of ``mask`` farthest from its border, ``None`` for an empty mask."""
    if not mask.any():
        return None
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), mask.shape)
    return Click(int(y), int(x), True)


def _refining_clicks(mask: np.ndarray, on_slice: list[Click]) -> list[Click]:
    """The clicks that refine a slice's previous ``mask``: its interior click, then the annotator's ``on_slice``.

    The interior click is left out when one of the annotator's negative clicks falls inside ``mask``.
    """
    if any(not click.is_positive and mask[click.y, click.x] for click in on_slice):
        return list(on_slice)
    interior = _interior_click(mask)
    return ([interior] if interior is not None and interior not in on_slice else []) + list(on_slice)


def _seed_prediction(
    predictor: Callable[..., Prediction],
    image: np.ndarray,
    on_slice: list[Click],
    before: list[Click],
    start: np.ndarray,
) -> Prediction:
    """Prediction of a clicked slice that the last result had as ``start`` (probability) from clicks ``before``."""
    session = ClickSession(predictor, image)
    if before:
        session.clicks, session.prediction = tuple(before), Prediction(prob=start)
    elif is_foreground(start).any():
        return predictor(image, _refining_clicks(is_foreground(start), on_slice), start)
    return session.update(on_slice)[0]


def _appearance(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean intensity inside ``mask`` (channels averaged) and the inside-outside contrast of the slice."""
    plane = image.mean(axis=0)
    inside = float(plane[mask].mean()) if mask.any() else 0.0
    outside = float(plane[~mask].mean()) if (~mask).any() else inside
    return inside, abs(inside - outside)


def _structure_ended(
    mask: np.ndarray,
    previous: np.ndarray,
    min_area: int,
    min_area_ratio: float,
    min_overlap: float,
    image: np.ndarray,
    seed_appearance: tuple[float, float],
    max_contrast_change: float,
) -> bool:
    """Whether the prediction on a slice no longer continues the previous slice's structure."""
    inside, _ = _appearance(image, mask)
    if abs(inside - seed_appearance[0]) > max_contrast_change * seed_appearance[1]:
        return True  # the mask no longer covers tissue that looks like the clicked structure
    area, previous_area = int(mask.sum()), int(previous.sum())
    if area < max(min_area, 1) or not min_area_ratio * previous_area <= area <= previous_area / min_area_ratio:
        return True  # vanished, collapsed or exploded (e.g. the whole slice once the structure has ended)
    dice = 2.0 * int((mask & previous).sum()) / (area + previous_area)
    return dice < min_overlap


def segment_volume(
    predictor: Callable[..., Prediction],
    volume: np.ndarray,
    clicks: Sequence[Any],
    *,
    min_area: int = 10,
    min_area_ratio: float = 0.2,
    min_overlap: float = 0.3,
    max_contrast_change: float = 0.5,
    previous: VolumeSegmentation | None = None,
    progress: bool = False,
) -> VolumeSegmentation:
    """Segment one structure in a volume from clicks on one or several slices (module docstring).

    Args:
        predictor: a *Predictor*-contract callable (``Predictor``, a classical baseline, a TTA wrapper).
        volume: float ``[C, H, W, D]`` or ``[H, W, D]``; slices along the last axis, as ``LoadImage`` returns.
        clicks: voxel clicks ``(i, j, k, is_positive)`` on any slices.
        min_area: propagation stops at a slice whose mask has fewer pixels.
        min_area_ratio: propagation stops where the mask shrinks below this fraction of the previous slice's area or
            grows beyond its inverse.
        min_overlap: propagation stops where the Dice overlap with the previous slice's mask falls below this.
        max_contrast_change: propagation stops where the mean intensity inside the mask moves away from the seed
            slice's by more than this fraction of the seed slice's inside-outside contrast.
        previous: the last result for this structure; clicked slices refine it (module docstring). ``None``: every
            clicked slice starts from nothing.
        progress: a progress bar over the propagated slices.

    Returns:
        :class:`VolumeSegmentation` (``label`` ``[H, W, D]``, ``slice_confidence`` ``[D]``).

    Raises:
        ValueError: a volume of another rank, a click outside it, no click, or ``previous`` of another shape.
    """
    volume = np.asarray(volume)
    if volume.ndim == 3:
        volume = volume[None]
    if volume.ndim != 4:
        raise ValueError(f"volume must be [C, H, W, D] or [H, W, D], got shape {volume.shape}.")
    if min_area < 0 or not 0.0 < min_area_ratio < 1.0 or not 0.0 <= min_overlap <= 1.0:
        raise ValueError(
            f"need min_area >= 0, 0 < min_area_ratio < 1 and 0 <= min_overlap <= 1, got {min_area}, "
            f"{min_area_ratio}, {min_overlap}."
        )
    height, width, depth = volume.shape[1:]
    if previous is not None and np.shape(previous.prob) != (height, width, depth):
        raise ValueError(f"previous.prob must be [H, W, D] = {(height, width, depth)}, got {np.shape(previous.prob)}.")
    voxels = as_voxel_clicks(clicks, (height, width, depth))
    max_change = float(max_contrast_change)
    prob = np.zeros((height, width, depth), np.float32)
    label = np.zeros((height, width, depth), np.uint8)
    seeds = sorted({k for _, _, k, _ in voxels})
    start, predicted = time.perf_counter(), 0

    def store(k: int, prediction: Prediction) -> np.ndarray:
        prob[:, :, k] = prediction.prob
        mask = is_foreground(prediction.prob)
        label[:, :, k] = mask
        return mask

    masks: dict[int, np.ndarray] = {}
    for k in seeds:
        on_slice = [Click(i, j, positive) for i, j, kk, positive in voxels if kk == k]
        if previous is None:
            prediction, _ = ClickSession(predictor, volume[..., k]).update(on_slice)
        else:
            before = [Click(i, j, positive) for i, j, kk, positive in previous.clicks if kk == k]
            stored = np.asarray(previous.prob[:, :, k], np.float32)
            prediction = _seed_prediction(predictor, volume[..., k], on_slice, before, stored)
        masks[k] = store(k, prediction)
        predicted += 1
    # each seed propagates until half-way to its neighbouring seed, or to where the structure ends
    bar = tqdm(total=depth - len(seeds), desc="propagating", disable=not progress, leave=False)
    for index, seed in enumerate(seeds):
        lowest = (seeds[index - 1] + seed) // 2 + 1 if index > 0 else 0
        highest = (seed + seeds[index + 1]) // 2 if index + 1 < len(seeds) else depth - 1
        seed_look = _appearance(volume[..., seed], masks[seed])
        for step, last in ((-1, lowest), (1, highest)):
            previous_mask, previous_prob = masks[seed], prob[:, :, seed]
            for k in range(seed + step, last + step, step):
                click = _interior_click(previous_mask)
                if click is None:
                    break
                prediction = predictor(volume[..., k], [click], previous_prob)
                predicted += 1
                bar.update(1)
                mask = is_foreground(prediction.prob)
                ended = _structure_ended(
                    mask, previous_mask, min_area, min_area_ratio, min_overlap, volume[..., k], seed_look, max_change
                )
                if ended:
                    break
                store(k, prediction)
                previous_mask, previous_prob = mask, prob[:, :, k]
    bar.close()
    confidence = np.zeros(depth, np.float32)
    for k in range(depth):
        inside = label[:, :, k] > 0
        if inside.any():
            confidence[k] = float(prob[:, :, k][inside].mean())
    review = sorted((k for k in np.flatnonzero(label.any(axis=(0, 1))) if k not in seeds), key=lambda k: confidence[k])
    return VolumeSegmentation(
        label=label,
        slice_confidence=confidence,
        prob=prob,
        seeds=seeds,
        review_order=[int(k) for k in review],
        seconds_per_slice=(time.perf_counter() - start) / max(predicted, 1),
        clicks=voxels,
    )
