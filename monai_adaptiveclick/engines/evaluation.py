# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Number-of-clicks (NoC) evaluation protocol, SPEC section 5 (SimpleClick v1.0, which produced the paper's numbers).

Per object, a :class:`~monai_adaptiveclick.inference.ClickSession` around the (test-time augmented) predictor: for
``k = 1 .. max_clicks`` the clicker (:func:`monai_adaptiveclick.transforms.next_click`) places a click on the larger
error region of the current prediction, the session predicts from ``(image, clicks, previous probability map)``
(zeros at click 1), the prediction is ``prob > protocol.PROB_THRESHOLD`` and its IoU with the ground truth is
recorded. The loop stops once the IoU reaches the largest threshold (0.90).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from monai_adaptiveclick.inference import ClickSession
from monai_adaptiveclick.protocol import IOU_THRESHOLDS, MAX_CLICKS, PROB_THRESHOLD, is_foreground
from monai_adaptiveclick.transforms import Click, next_click

from .noc_results import NoCResult, ObjectRecord, compute_iou, noc_from_ious
from .tta import PROTOCOLS, wrap_predictor

__all__ = ["evaluate_noc"]


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
    max_clicks: int = MAX_CLICKS,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    zoom_in: bool = True,
    flip: bool = True,
    progress: bool = True,
    method: str | None = None,
    callback: Callable[[Mapping, ObjectRecord, np.ndarray], None] | None = None,
    protocol: str = "default",
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
        protocol: ``"default"`` (the project's zoom-in and flip, :mod:`~.tta`) or ``"simpleclick"``: the
            SimpleClick v1.0 predictor that produced the paper's tables (SPEC section 5: crop stretched to the
            network size with ``align_corners=True``, box clamped to the image and kept unless a positive click
            leaves it or the box IoU drops below 0.5, float click disks, flip averaged on the network logits
            before the sigmoid; :func:`~.tta.wrap_predictor`). ``"default"`` stays the default because the
            project's models are trained on the padded, aspect-keeping framing that protocol feeds them; choose
            ``"simpleclick"`` to reproduce the paper's numbers with the authors' checkpoints. The clicker, the
            0.49 threshold, the stop rule and the NoC / mIoU computation are the same in both.

    Returns:
        A :class:`NoCResult` with ``noc``, ``failures``, ``miou_at_k``, ``spc`` and the per-object ``records``.

    Example:
        >>> from monai_adaptiveclick.engines import get_baseline
        >>> image = np.zeros((1, 32, 32), np.float32)
        >>> image[0, 8:24, 8:24] = 1.0
        >>> item = {"image": image, "label": (image > 0).astype(np.uint8), "object_id": "square"}
        >>> result = evaluate_noc(get_baseline("watershed"), [item], max_clicks=5, progress=False)
        >>> result.num_objects, len(result.miou_at_k)
        (1, 5)
    """
    if not callable(predictor):
        raise ValueError(f"predictor must be callable, got {type(predictor).__name__}.")
    if isinstance(max_clicks, bool) or not isinstance(max_clicks, int) or max_clicks < 1:
        raise ValueError(f"max_clicks must be a positive integer, got {max_clicks!r}.")
    thresholds = tuple(float(t) for t in iou_thresholds)
    if not thresholds or not all(0.0 < t <= 1.0 for t in thresholds):
        raise ValueError(f"iou_thresholds must be a non-empty sequence of values in (0, 1], got {iou_thresholds!r}.")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}.")
    name = method or getattr(predictor, "name", None) or type(predictor).__name__
    wrapped = wrap_predictor(predictor, zoom_in=zoom_in, flip=flip, protocol=protocol)
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
        session = ClickSession(wrapped, image)
        prob = np.zeros(gt.shape, dtype=np.float32)
        pred = np.zeros(gt.shape, dtype=bool)
        ious: list[float] = []
        for _ in range(max_clicks):
            clicker_pred = pred if ignore is None else np.where(ignore, gt, pred)
            if not _clickable_error(clicker_pred, gt, session.clicks):
                break
            y, x, positive = next_click(clicker_pred, gt, session.clicks)
            prob = _prob_of(session.add_click(Click(int(y), int(x), bool(positive))), gt.shape, object_id)
            pred = is_foreground(prob)
            ious.append(compute_iou(pred, gt, ignore))
            if ious[-1] >= stop_iou:
                break
        clicks = session.clicks
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
        settings={
            "zoom_in": bool(zoom_in),
            "flip": bool(flip),
            "prob_threshold": PROB_THRESHOLD,
            "protocol": protocol,
        },
    )
