# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Number-of-clicks (NoC) evaluation protocol, SPEC section 5 (SimpleClick v1.0, which produced the paper's numbers).

Per object: ``clicks = []``, ``prev = 0``; for ``k = 1 .. max_clicks``: the clicker
(:func:`monai_adaptiveclick.transforms.next_click`) places a click on the larger error region of the current
prediction, the predictor returns a probability map from ``(image, clicks, prev)``, the prediction is
``prob > 0.49`` and its IoU with the ground truth is recorded; ``prev`` becomes that probability map. The loop stops
once the IoU reaches the largest threshold (0.90).
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from monai_adaptiveclick.engines.reporting import format_table, plot_miou_curves
from monai_adaptiveclick.engines.tta import wrap_predictor
from monai_adaptiveclick.transforms import Click, next_click

__all__ = ["PROB_THRESHOLD", "NoCResult", "ObjectRecord", "compute_iou", "evaluate_noc", "noc_from_ious"]

PROB_THRESHOLD = 0.49
"""Probability threshold of the protocol (SPEC section 5)."""


def compute_iou(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """IoU of two boolean masks, ignored pixels excluded (they count neither as false negative nor false positive).

    Args:
        pred: predicted mask ``[H, W]`` (bool).
        gt: ground-truth mask ``[H, W]`` (bool).
        ignore: optional ``[H, W]`` bool mask of pixels left out of the IoU.

    Returns:
        ``|pred & gt| / |pred | gt|`` over the valid pixels; 1.0 when both are empty.
    """
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"pred and gt must be 2-D masks of the same shape, got {pred.shape} and {gt.shape}.")
    valid = np.ones_like(gt) if ignore is None else ~np.asarray(ignore, dtype=bool)
    if valid.shape != gt.shape:
        raise ValueError(f"ignore shape {valid.shape} does not match the mask shape {gt.shape}.")
    union = np.count_nonzero((pred | gt) & valid)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred & gt & valid) / union)


def noc_from_ious(ious: Sequence[float], threshold: float, max_clicks: int) -> int:
    """Number of clicks to reach ``threshold``: the first ``k`` (1-based) with ``ious[k-1] >= threshold``.

    Args:
        ious: IoU after each click.
        threshold: target IoU.
        max_clicks: value returned when the threshold is never reached (SPEC section 5: 20).
    """
    for k, iou in enumerate(ious, start=1):
        if iou >= threshold:
            return min(k, max_clicks)
    return max_clicks


@dataclass
class ObjectRecord:
    """Outcome of the protocol on one object.

    Attributes:
        object_id: the dataset item's ``object_id``.
        ious: IoU after each click made (the loop stops at the largest threshold, so it may be shorter than
            ``max_clicks``).
        clicks: the clicks made, ``(y, x, is_positive)`` in image pixels.
        seconds: wall time spent on the object (item loading, clicker, predictor).
    """

    object_id: str
    ious: list[float]
    clicks: list[tuple[int, int, bool]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary."""
        return {
            "object_id": self.object_id,
            "ious": [float(v) for v in self.ious],
            "clicks": [[int(y), int(x), bool(p)] for y, x, p in self.clicks],
            "seconds": float(self.seconds),
        }


@dataclass
class NoCResult:
    """Result of :func:`evaluate_noc`; every metric is derived from the per-object ``records``.

    Attributes:
        method: name of the evaluated predictor.
        max_clicks: click budget per object.
        iou_thresholds: the NoC thresholds.
        records: one :class:`ObjectRecord` per evaluated object.
        total_seconds: wall time of the whole run (clicker, predictor and item loading).
        skipped_ids: object ids skipped because their ground truth is empty.
        settings: protocol settings (zoom-in, flip, probability threshold).
    """

    method: str
    max_clicks: int
    iou_thresholds: tuple[float, ...]
    records: list[ObjectRecord]
    total_seconds: float
    skipped_ids: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def num_objects(self) -> int:
        """Number of evaluated (not skipped) objects."""
        return len(self.records)

    @property
    def skipped(self) -> int:
        """Number of objects skipped for an empty ground truth."""
        return len(self.skipped_ids)

    @property
    def total_clicks(self) -> int:
        """Number of clicks made over all objects."""
        return sum(len(r.ious) for r in self.records)

    def nocs(self, threshold: float) -> list[int]:
        """Per-object NoC at ``threshold``."""
        return [noc_from_ious(r.ious, threshold, self.max_clicks) for r in self.records]

    @property
    def noc(self) -> dict[float, float]:
        """Mean NoC per threshold (NaN without objects)."""
        return {t: float(np.mean(self.nocs(t))) if self.records else math.nan for t in self.iou_thresholds}

    @property
    def failures(self) -> dict[float, int]:
        """Objects whose NoC is ``>= max_clicks`` per threshold (SPEC section 5, "failures (>= 20)").

        As in the SimpleClick v1.0 code this includes an object that reaches the threshold exactly at the last
        click, besides those that never reach it.
        """
        return {t: int(sum(n >= self.max_clicks for n in self.nocs(t))) for t in self.iou_thresholds}

    @property
    def miou_at_k(self) -> list[float]:
        """Mean IoU after ``k`` clicks for ``k = 1 .. max_clicks``.

        An object whose loop stopped early (IoU reached the largest threshold) carries its last IoU forward, the
        common practice for mIoU-vs-clicks curves.
        """
        if not self.records:
            return [math.nan] * self.max_clicks
        table = np.array([r.ious + [r.ious[-1]] * (self.max_clicks - len(r.ious)) for r in self.records])
        return [float(v) for v in table.mean(axis=0)]

    @property
    def spc(self) -> float:
        """Seconds per click: total wall time / total clicks (NaN without clicks)."""
        return self.total_seconds / self.total_clicks if self.total_clicks else math.nan

    def summary(self) -> dict[str, Any]:
        """Aggregate metrics as a JSON-friendly dictionary (thresholds as strings such as ``"0.85"``)."""
        return {
            "method": self.method,
            "objects": self.num_objects,
            "skipped": self.skipped,
            "max_clicks": self.max_clicks,
            "noc": {f"{t:.2f}": v for t, v in self.noc.items()},
            "failures": {f"{t:.2f}": v for t, v in self.failures.items()},
            "miou_at_k": self.miou_at_k,
            "spc": self.spc,
            "total_clicks": self.total_clicks,
            "total_seconds": self.total_seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        """Summary, settings and per-object records."""
        return {
            "summary": self.summary(),
            "iou_thresholds": list(self.iou_thresholds),
            "settings": dict(self.settings),
            "skipped_ids": list(self.skipped_ids),
            "records": [r.to_dict() for r in self.records],
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (NaN written as ``null``); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_nan_to_none(self.to_dict()), indent=2))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> NoCResult:
        """Rebuild a result written by :meth:`to_json`."""
        data = json.loads(Path(path).read_text())
        return cls(
            method=data["summary"]["method"],
            max_clicks=int(data["summary"]["max_clicks"]),
            iou_thresholds=tuple(float(t) for t in data["iou_thresholds"]),
            records=[
                ObjectRecord(r["object_id"], list(r["ious"]), [tuple(c) for c in r["clicks"]], r["seconds"])
                for r in data["records"]
            ],
            total_seconds=float(data["summary"]["total_seconds"]),
            skipped_ids=list(data["skipped_ids"]),
            settings=dict(data["settings"]),
        )

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per object: id, NoC per threshold, clicks made, final IoU, per-click IoUs and clicks."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        nocs = {t: self.nocs(t) for t in self.iou_thresholds}
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["object_id"]
                + [f"noc{round(t * 100)}" for t in self.iou_thresholds]
                + ["num_clicks", "final_iou", "seconds", "ious", "clicks"]
            )
            for i, record in enumerate(self.records):
                writer.writerow(
                    [record.object_id]
                    + [nocs[t][i] for t in self.iou_thresholds]
                    + [
                        len(record.ious),
                        f"{record.ious[-1]:.6f}",
                        f"{record.seconds:.4f}",
                        ";".join(f"{v:.6f}" for v in record.ious),
                        ";".join(f"{y} {x} {'+' if p else '-'}" for y, x, p in record.clicks),
                    ]
                )
        return path

    def plot(self, path: str | Path) -> Path:
        """Write the mIoU-vs-clicks PNG of this result (see :func:`~.reporting.plot_miou_curves`)."""
        return plot_miou_curves([self], path)

    def table(self) -> str:
        """Markdown table row of this result (see :func:`~.reporting.format_table`)."""
        return format_table([self])


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value


def _unpack_item(item: Mapping, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """Validate a dataset item (ARCHITECTURE *Dataset item*) and return image, gt, ignore, object id."""
    for key in ("image", "label"):
        if key not in item:
            raise ValueError(f"dataset item {index} has no {key!r} key.")
    object_id = str(item.get("object_id", index))
    image = np.asarray(item["image"], dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"item {object_id!r}: image must be [C, H, W], got shape {image.shape}.")
    if not np.isfinite(image).all():
        raise ValueError(f"item {object_id!r}: image contains NaN or infinite values.")
    label = np.asarray(item["label"])
    label = label[0] if label.ndim == 3 and label.shape[0] == 1 else label
    if label.shape != image.shape[1:]:
        raise ValueError(f"item {object_id!r}: label shape {label.shape} does not match image size {image.shape[1:]}.")
    ignore = item.get("ignore")
    if ignore is not None:
        ignore = np.asarray(ignore, dtype=bool)
        ignore = ignore[0] if ignore.ndim == 3 and ignore.shape[0] == 1 else ignore
        if ignore.shape != label.shape:
            raise ValueError(f"item {object_id!r}: ignore shape {ignore.shape} does not match label {label.shape}.")
    gt = label > 0
    if ignore is not None:
        gt &= ~ignore
    return image, gt, ignore, object_id


def _prob_of(output: Any, spatial_size: tuple[int, ...], object_id: str) -> np.ndarray:
    prob = getattr(output, "prob", None)
    if prob is None:
        raise ValueError(f"predictor output for {object_id!r} has no .prob (got {type(output).__name__}).")
    prob = np.asarray(prob, dtype=np.float32)
    if prob.shape != spatial_size:
        raise ValueError(f"predictor returned prob of shape {prob.shape} for {object_id!r}, expected {spatial_size}.")
    if not np.isfinite(prob).all():
        raise ValueError(f"predictor returned NaN or infinite probabilities for {object_id!r}.")
    return prob


def _clickable_error(pred: np.ndarray, gt: np.ndarray, clicks: Sequence[Click]) -> bool:
    """Whether an error pixel that was not clicked yet remains (the clicker never clicks a pixel twice)."""
    error = pred != gt
    for click in clicks:
        error[click.y, click.x] = False
    return bool(error.any())


def evaluate_noc(
    predictor: Callable[..., Any],
    items: Sequence[Mapping],
    max_clicks: int = 20,
    iou_thresholds: Sequence[float] = (0.85, 0.90),
    zoom_in: bool = True,
    flip: bool = True,
    progress: bool = True,
    method: str | None = None,
    callback: Callable[[Mapping, ObjectRecord, np.ndarray], None] | None = None,
) -> NoCResult:
    """Run the NoC protocol of SPEC section 5 on every object of ``items``.

    Defined behaviours: an item with an empty ground truth is skipped with a warning and counted in
    :attr:`NoCResult.skipped`; pixels of an item's optional ``ignore`` mask are left out of the IoU and never
    clicked (the clicker sees them as correctly predicted); an image containing NaN, a malformed item or a
    predictor output of the wrong shape raises ``ValueError`` naming the object. A constant image is evaluated
    like any other. The previous mask fed back to the predictor is the last probability map (zeros at click 1).
    When every error pixel has already been clicked (possible for objects of a few pixels) the clicker has nowhere
    to go: the object stops there, like an object that reached the stop IoU (its last IoU is carried forward).

    Args:
        predictor: ``predictor(image [C, H, W], clicks, prev_mask [H, W]) -> object with .prob [H, W]``
            (*Predictor* contract; ``monai_adaptiveclick.inference.Predictor`` or a classical baseline).
        items: dataset items (``{"image", "label", "ignore"?, "object_id", "meta"}``), one object each.
        max_clicks: click budget per object (20).
        iou_thresholds: NoC thresholds; the loop stops once the IoU reaches the largest.
        zoom_in: wrap the predictor in :class:`~.tta.ZoomIn`.
        flip: wrap the predictor in :class:`~.tta.FlipTTA`.
        progress: show a tqdm progress bar.
        method: name stored in the result (default: the predictor's ``name`` attribute or class name).
        callback: called as ``callback(item, record, final_prob)`` after each object (e.g. to write overlays);
            its time is not counted in the SPC.

    Returns:
        A :class:`NoCResult` with ``noc``, ``failures``, ``miou_at_k``, ``spc`` and the per-object ``records``.

    Example:
        >>> from monai_adaptiveclick.engines import evaluate_noc, get_baseline
        >>> result = evaluate_noc(get_baseline("random_walker"), items, max_clicks=5)
        >>> print(result.table())
    """
    if not callable(predictor):
        raise ValueError(f"predictor must be callable, got {type(predictor).__name__}.")
    if isinstance(max_clicks, bool) or not isinstance(max_clicks, int) or max_clicks < 1:
        raise ValueError(f"max_clicks must be a positive integer, got {max_clicks!r}.")
    thresholds = tuple(float(t) for t in iou_thresholds)
    if not thresholds or not all(0.0 < t <= 1.0 for t in thresholds):
        raise ValueError(f"iou_thresholds must be a non-empty sequence of values in (0, 1], got {iou_thresholds!r}.")
    name = method or getattr(predictor, "name", None) or type(predictor).__name__
    wrapped = wrap_predictor(predictor, zoom_in=zoom_in, flip=flip)
    stop_iou = max(thresholds)

    records: list[ObjectRecord] = []
    skipped_ids: list[str] = []
    bar = tqdm(range(len(items)), desc=f"NoC {name}", disable=not progress, leave=False)
    callback_seconds = 0.0
    start = time.perf_counter()
    for index in bar:
        object_start = time.perf_counter()
        item = items[index]
        image, gt, ignore, object_id = _unpack_item(item, index)
        if not gt.any():
            warnings.warn(f"object {object_id!r} has an empty ground truth; skipped.", stacklevel=2)
            skipped_ids.append(object_id)
            continue
        clicks: list[Click] = []
        prob = np.zeros(gt.shape, dtype=np.float32)
        pred = np.zeros(gt.shape, dtype=bool)
        ious: list[float] = []
        for _ in range(max_clicks):
            clicker_pred = pred if ignore is None else np.where(ignore, gt, pred)
            if not _clickable_error(clicker_pred, gt, clicks):
                break
            y, x, positive = next_click(clicker_pred, gt, clicks)
            clicks.append(Click(int(y), int(x), bool(positive)))
            prob = _prob_of(wrapped(image, list(clicks), prob), gt.shape, object_id)
            pred = prob > PROB_THRESHOLD
            ious.append(compute_iou(pred, gt, ignore))
            if ious[-1] >= stop_iou:
                break
        record = ObjectRecord(
            object_id=object_id,
            ious=ious,
            clicks=[(c.y, c.x, c.is_positive) for c in clicks],
            seconds=time.perf_counter() - object_start,
        )
        records.append(record)
        if callback is not None:
            callback_start = time.perf_counter()
            callback(item, record, prob)
            callback_seconds += time.perf_counter() - callback_start
        bar.set_postfix(noc=f"{np.mean([noc_from_ious(r.ious, stop_iou, max_clicks) for r in records]):.2f}")
    total_seconds = time.perf_counter() - start - callback_seconds
    return NoCResult(
        method=name,
        max_clicks=max_clicks,
        iou_thresholds=thresholds,
        records=records,
        total_seconds=total_seconds,
        skipped_ids=skipped_ids,
        settings={"zoom_in": bool(zoom_in), "flip": bool(flip), "prob_threshold": PROB_THRESHOLD},
    )
