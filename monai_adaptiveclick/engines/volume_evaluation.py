# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Clicks per structure: the volume metric (issue 15, item 3).

For every 3-D object (a volume ``[C, H, W, D]`` and a binary mask ``[H, W, D]``) :func:`evaluate_volumes` simulates
the annotator with the SPEC section 5 clicker lifted to 3-D: click 1 is :func:`~monai_adaptiveclick.transforms.
next_click` on the slice where the object's area is largest; the volume is then segmented by propagation
(:func:`~monai_adaptiveclick.inference.segment_volume`) from all clicks so far, starting from the last result
(``previous``: a correction refines the propagated mask, as the 2-D protocol's previous mask); every next click
goes to the slice where the current 3-D label differs most from the truth (the largest error area, first such slice
on ties), placed by ``next_click`` on that slice's prediction vs. truth (a slice without any object pixel gets a
negative click at the interior of its false positive, where ``next_click`` would put it). The loop stops at the
largest Dice threshold or the click budget. Reported per object: the 3-D Dice after every click, clicks to reach each
threshold (the budget if never reached) and seconds per structure.

The slice-by-slice reference uses the same predictor and clicker without propagation: every slice where the object
is present is annotated on its own (a 2-D NoC loop as :func:`~.evaluation.evaluate_noc` without zoom-in or flip,
Dice instead of IoU); the clicks to reach a Dice threshold on each slice, summed over slices, are the clicks to
annotate the structure slice by slice. The 3-D Dice of the label assembled from those slices is recorded too.

Example:
    >>> from monai_adaptiveclick.engines import get_baseline
    >>> volume = np.zeros((1, 32, 32, 7), np.float32)
    >>> volume[0, 8:24, 10:22, 1:6] = 1.0
    >>> case = VolumeCase("box", volume, volume[0] > 0)
    >>> result = evaluate_volumes(get_baseline("watershed"), [case], max_clicks=3)
    >>> result.records[0].clicks_to_dice[0.9], result.records[0].slice_clicks_to_dice[0.9]
    (1, 5)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from monai_adaptiveclick.inference import ClickSession, segment_volume
from monai_adaptiveclick.protocol import is_foreground
from monai_adaptiveclick.transforms import Click, next_click

__all__ = [
    "DICE_AT",
    "DICE_THRESHOLDS",
    "VolumeCase",
    "VolumeRecord",
    "VolumeResult",
    "clicks_to_dice",
    "dice_score",
    "evaluate_volumes",
    "volume_cases",
]

DICE_THRESHOLDS = (0.80, 0.85, 0.90)
DICE_AT = (1, 3, 5)


@dataclass
class VolumeCase:
    """One 3-D object: ``volume`` float32 ``[C, H, W, D]`` (or ``[H, W, D]``) and its bool ``mask`` ``[H, W, D]``."""

    object_id: str
    volume: np.ndarray
    mask: np.ndarray


@dataclass
class VolumeRecord:
    """Per-object outcome of :func:`evaluate_volumes` (thresholds as keys).

    Attributes:
        dices: 3-D Dice after each click (propagation); shorter than the budget when the loop stopped early.
        clicks: the voxel clicks ``(i, j, k, is_positive)`` in order.
        clicks_to_dice: clicks to reach each Dice threshold with propagation (the budget if never).
        seconds: wall time of the propagation loop (seconds per structure).
        slices: number of slices where the object is present.
        slice_clicks_to_dice: slice-by-slice clicks per threshold, summed over those slices.
        slice_dice: 3-D Dice of the slice-by-slice label per threshold.
        slice_seconds: wall time of the slice-by-slice reference.
    """

    object_id: str
    dices: list[float]
    clicks: list[tuple[int, int, int, bool]]
    clicks_to_dice: dict[float, int]
    seconds: float
    slices: int
    slice_clicks_to_dice: dict[float, int] = field(default_factory=dict)
    slice_dice: dict[float, float] = field(default_factory=dict)
    slice_seconds: float = 0.0

    def dice_at(self, k: int) -> float:
        """3-D Dice after ``k`` clicks; the last value is carried forward after an early stop."""
        return self.dices[min(k, len(self.dices)) - 1]


@dataclass
class VolumeResult:
    """All records of one method with the aggregated means (:meth:`summary`)."""

    method: str
    max_clicks: int
    thresholds: tuple[float, ...]
    records: list[VolumeRecord]

    def summary(self) -> dict[str, Any]:
        """Means over objects: clicks per threshold (propagation, slice by slice), Dice@1/3/5, seconds."""
        recs = self.records
        mean = lambda values: float(np.mean(values)) if recs else float("nan")  # noqa: E731
        return {
            "method": self.method,
            "objects": len(recs),
            "clicks": {t: mean([r.clicks_to_dice[t] for r in recs]) for t in self.thresholds},
            "slice_clicks": {t: mean([r.slice_clicks_to_dice.get(t, np.nan) for r in recs]) for t in self.thresholds},
            "failures": {t: sum(r.dices[-1] < t if r.dices else True for r in recs) for t in self.thresholds},
            "slice_failures": {t: sum(r.slice_dice.get(t, 0.0) < t for r in recs) for t in self.thresholds},
            "dice_at": {k: mean([r.dice_at(k) for r in recs]) if k <= self.max_clicks else None for k in DICE_AT},
            "seconds": mean([r.seconds for r in recs]),
        }

    def dice_curve(self) -> list[float]:
        """Mean 3-D Dice after 1 .. ``max_clicks`` clicks."""
        return [float(np.mean([r.dice_at(k) for r in self.records])) for k in range(1, self.max_clicks + 1)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (threshold keys as strings)."""
        records = []
        for record in self.records:
            row = asdict(record)
            for key in ("clicks_to_dice", "slice_clicks_to_dice", "slice_dice"):
                row[key] = {f"{t:.2f}": v for t, v in row[key].items()}
            records.append(row)
        summary = self.summary()
        for key in ("clicks", "slice_clicks", "failures", "slice_failures"):
            summary[key] = {f"{t:.2f}": v for t, v in summary[key].items()}
        return {"method": self.method, "max_clicks": self.max_clicks, "summary": summary, "records": records}


def dice_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice ``2|A & B| / (|A| + |B|)`` of two binary masks (1.0 when both are empty).

    Example:
        >>> dice_score(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))
        0.6666666666666666
    """
    pred, gt = np.asarray(pred) > 0, np.asarray(gt) > 0
    total = int(pred.sum()) + int(gt.sum())
    return 1.0 if total == 0 else 2.0 * int((pred & gt).sum()) / total


def clicks_to_dice(dices: Sequence[float], threshold: float, max_clicks: int) -> int:
    """Clicks of the first Dice reaching ``threshold``; ``max_clicks`` when none does.

    Example:
        >>> clicks_to_dice([0.5, 0.86, 0.91], 0.85, 5), clicks_to_dice([0.5], 0.9, 5)
        (2, 5)
    """
    return next((k + 1 for k, d in enumerate(dices) if d >= threshold), max_clicks)


def volume_cases(
    pairs: Iterable[tuple[str | Path, str | Path]] | None = None,
    *,
    largest_component: bool = True,
    limit: int | None = None,
    min_voxels: int = 1,
) -> list[VolumeCase]:
    """One :class:`VolumeCase` per label value of each (image, label) volume pair.

    Args:
        pairs: (image, label) paths; default the embedded sample pack's volumes.
        largest_component: keep only the largest 3-D connected component of each label value.
        limit: at most this many objects per volume (in label-value order).
        min_voxels: label values with fewer voxels are left out.

    Raises:
        FileNotFoundError: a missing file. ValueError: a label whose shape differs from the image's.
    """
    from monai_adaptiveclick.data import load_image_volume
    from monai_adaptiveclick.data.sample import sample_volume_pairs

    cases = []
    for image_path, label_path in sample_volume_pairs() if pairs is None else pairs:
        image = load_image_volume(image_path).data
        label = np.rint(load_image_volume(label_path).data[0]).astype(np.int64)
        if label.shape != image.shape[1:]:
            raise ValueError(f"label {label_path} has shape {label.shape}, image {image_path} {image.shape[1:]}.")
        stem = Path(image_path).name.split(".")[0]
        taken = 0
        for value in (int(v) for v in np.unique(label) if v > 0):
            if limit is not None and taken >= limit:
                break
            mask = label == value
            if largest_component:
                components, count = ndimage.label(mask)
                if count > 1:
                    sizes = np.bincount(components.ravel())[1:]
                    mask = components == int(np.argmax(sizes)) + 1
            if int(mask.sum()) < min_voxels:
                continue
            cases.append(VolumeCase(f"{stem}:{value}", image, mask))
            taken += 1
    return cases


def _interior(mask: np.ndarray, clicked: Sequence[Click]) -> tuple[int, int]:
    """Pixel of ``mask`` farthest from its border, never a clicked one (first in C order on ties)."""
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    for click in clicked:
        distance[click.y, click.x] = 0.0
    y, x = np.unravel_index(int(np.argmax(distance)), mask.shape)
    return int(y), int(x)


def _place_click(label: np.ndarray, mask: np.ndarray, clicks: list[tuple[int, int, int, bool]]) -> tuple | None:
    """The 3-D clicker: ``next_click`` on the slice with the largest not-yet-clicked error area."""
    error = label != mask
    for i, j, k, _ in clicks:
        error[i, j, k] = False
    area = error.sum(axis=(0, 1))
    if not area.any():
        return None
    k = int(np.argmax(area))
    on_slice = [Click(i, j, p) for i, j, kk, p in clicks if kk == k]
    if mask[..., k].any():
        y, x, positive = next_click(label[..., k], mask[..., k], on_slice)
    else:  # only false positive here: next_click's negative click at its interior
        (y, x), positive = _interior(label[..., k], on_slice), False
    return int(y), int(x), k, bool(positive)


def _slice_by_slice(
    predictor: Callable[..., Any], volume: np.ndarray, mask: np.ndarray, thresholds: Sequence[float], budget: int
) -> tuple[dict[float, int], dict[float, float]]:
    """Clicks per threshold summed over the object's slices, and the 3-D Dice of the assembled labels."""
    total = {t: 0 for t in thresholds}
    assembled = {t: np.zeros(mask.shape, bool) for t in thresholds}
    for k in np.flatnonzero(mask.any(axis=(0, 1))):
        gt = mask[..., k]
        session = ClickSession(predictor, volume[..., k])
        pred = np.zeros(gt.shape, bool)
        preds, dices = [], []
        for _ in range(budget):
            error = pred != gt
            for click in session.clicks:
                error[click.y, click.x] = False
            if not error.any():
                break
            y, x, positive = next_click(pred, gt, session.clicks)
            pred = is_foreground(np.asarray(session.add_click(Click(int(y), int(x), bool(positive))).prob))
            preds.append(pred)
            dices.append(dice_score(pred, gt))
            if dices[-1] >= max(thresholds):
                break
        for t in thresholds:
            needed = clicks_to_dice(dices, t, budget)
            total[t] += needed
            if preds:
                assembled[t][..., k] = preds[min(needed, len(preds)) - 1]
    return total, {t: dice_score(assembled[t], mask) for t in thresholds}


def evaluate_volumes(
    predictor: Callable[..., Any],
    cases: Sequence[VolumeCase],
    max_clicks: int = 10,
    dice_thresholds: Sequence[float] = DICE_THRESHOLDS,
    *,
    slice_by_slice: bool = True,
    refine_previous: bool = True,
    slice_max_clicks: int | None = None,
    method: str | None = None,
    progress: bool = False,
    **segment_options: Any,
) -> VolumeResult:
    """Clicks per structure with propagation, and the slice-by-slice reference (module docstring).

    Args:
        predictor: a *Predictor*-contract callable (``Predictor``, a classical baseline).
        cases: the objects.
        max_clicks: click budget per structure (propagation).
        dice_thresholds: 3-D Dice thresholds; the loop stops at the largest.
        slice_by_slice: also run the slice-by-slice reference.
        refine_previous: pass the last result as ``segment_volume``'s ``previous`` (``False``: every
            clicked slice starts from nothing, the behaviour before issue 15's tuning; kept for the ablation).
        slice_max_clicks: click budget per slice for the reference (default ``max_clicks``).
        method: name in the result (default the predictor's ``name`` or class name).
        progress: a progress bar over the objects.
        **segment_options: passed to :func:`~monai_adaptiveclick.inference.segment_volume`.

    Returns:
        A :class:`VolumeResult`.

    Raises:
        ValueError: a non-positive budget, thresholds outside (0, 1], a mask of another shape than the volume's
            slices, or an empty mask (naming the object).
    """
    if isinstance(max_clicks, bool) or not isinstance(max_clicks, int) or max_clicks < 1:
        raise ValueError(f"max_clicks must be a positive integer, got {max_clicks!r}.")
    thresholds = tuple(sorted(float(t) for t in dice_thresholds))
    if not thresholds or not all(0.0 < t <= 1.0 for t in thresholds):
        raise ValueError(f"dice_thresholds must be values in (0, 1], got {dice_thresholds!r}.")
    budget = max_clicks if slice_max_clicks is None else int(slice_max_clicks)
    if budget < 1:
        raise ValueError(f"slice_max_clicks must be positive, got {slice_max_clicks!r}.")
    for case in cases:  # refuse bad input before spending time
        volume, mask = np.asarray(case.volume), np.asarray(case.mask)
        if volume.ndim not in (3, 4) or mask.shape != volume.shape[-3:]:
            raise ValueError(f"object {case.object_id!r}: mask {mask.shape} does not match volume {volume.shape}.")
        if not mask.any():
            raise ValueError(f"object {case.object_id!r} has an empty mask: nothing to segment.")
    name = method or getattr(predictor, "name", None) or type(predictor).__name__
    records = []
    for case in tqdm(cases, desc=f"volumes {name}", disable=not progress, leave=False):
        volume = np.asarray(case.volume, np.float32)
        volume = volume[None] if volume.ndim == 3 else volume
        mask = np.asarray(case.mask) > 0
        start = time.perf_counter()
        label = np.zeros(mask.shape, bool)
        clicks: list[tuple[int, int, int, bool]] = []
        dices: list[float] = []
        result = None
        while len(clicks) < max_clicks:
            click = _place_click(label, mask, clicks)
            if click is None:
                break
            clicks.append(click)
            previous = result if refine_previous else None
            result = segment_volume(predictor, volume, clicks, previous=previous, **segment_options)
            label = result.label > 0
            dices.append(dice_score(label, mask))
            if dices[-1] >= thresholds[-1]:
                break
        seconds = time.perf_counter() - start
        record = VolumeRecord(
            object_id=case.object_id,
            dices=dices,
            clicks=clicks,
            clicks_to_dice={t: clicks_to_dice(dices, t, max_clicks) for t in thresholds},
            seconds=seconds,
            slices=int(mask.any(axis=(0, 1)).sum()),
        )
        if slice_by_slice:
            start = time.perf_counter()
            record.slice_clicks_to_dice, record.slice_dice = _slice_by_slice(
                predictor, volume, mask, thresholds, budget
            )
            record.slice_seconds = time.perf_counter() - start
        records.append(record)
    return VolumeResult(method=name, max_clicks=max_clicks, thresholds=thresholds, records=records)
