# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The 3-D answer of the ``adaptiveclick`` infer task: ``"propagate": true`` (issue 15, item 2).

All the request's clicks (``foreground`` / ``background`` voxels on any slices) go to
``monai_adaptiveclick.inference.segment_volume`` with the served predictor and the cached volume; it segments each
clicked slice and propagates the masks to the neighbouring slices until the structure ends. This module only turns
the request into voxel clicks and the :class:`~monai_adaptiveclick.inference.VolumeSegmentation` into the label
volume and the JSON answer; the propagation rule lives in the package (no data or model logic here).

A request whose clicked slices all come back empty is refused with HTTP 422 ("the structure is not found at the
clicks") instead of answering an empty label.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monai_adaptiveclick.inference import segment_volume

from ..common import RequestError

__all__ = ["REVIEW_FIRST", "Propagation", "parse_propagate", "propagate"]

#: How many slices the answer lists under ``review_first``.
REVIEW_FIRST = 5

Point = tuple[int, int, int]


@dataclass
class Propagation:
    """A propagated label volume and the JSON fields that describe it.

    Attributes:
        label: uint8 ``[H, W, D]``, 1 on the structure on every propagated slice.
        summary: JSON-ready fields of the answer (see :func:`propagate`).
    """

    label: np.ndarray
    summary: dict[str, Any]


def parse_propagate(value: Any) -> bool:
    """The request's ``propagate`` option: a JSON boolean (or the strings ``"true"`` / ``"false"``); absent = false.

    Example:
        >>> parse_propagate(True), parse_propagate(None), parse_propagate("false")
        (True, False, False)

    Raises:
        RequestError: any other value (400), naming it.
    """
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise RequestError(f"'propagate' must be true or false, got {value!r:.80}.")


def propagate(
    predictor: Callable[..., Any],
    volume: np.ndarray,
    foreground: Sequence[Point],
    background: Sequence[Point],
    *,
    name: str,
    respect_clicks: bool = True,
) -> Propagation:
    """Segment the clicked structure through the volume (``segment_volume``) and describe the result.

    Args:
        predictor: the served predictor (``LoadedModel.predictor``).
        volume: the cached image, float ``[C, H, W, D]``.
        foreground: checked voxel clicks ``(i, j, k)`` inside the volume.
        background: checked voxel clicks ``(i, j, k)`` inside the volume.
        name: the image id, for messages.
        respect_clicks: the clicked voxels take their click's sign in the returned label (``--conf respect_clicks``).

    Returns:
        :class:`Propagation`; its ``summary`` holds ``propagated``, ``slices`` (non-empty slices), ``seeds`` (the
        clicked slices), ``slice_confidence`` (one value per slice, 0 on empty slices), ``review_first`` (up to
        :data:`REVIEW_FIRST` propagated slices, least confident first), ``clicks`` (``[i, j, k, is_positive]``),
        ``voxels`` and ``seconds`` (``propagate`` and ``per_slice``).

    Raises:
        RequestError: 400 when the image does not suit the model; 422 when every clicked slice comes back empty.
    """
    clicks = [(i, j, k, True) for i, j, k in foreground] + [(i, j, k, False) for i, j, k in background]
    start = time.perf_counter()
    try:
        result = segment_volume(predictor, volume, clicks)
    except ValueError as err:  # channel mismatch and the like
        raise RequestError(f"cannot segment {name}: {err}") from err
    seconds = time.perf_counter() - start
    label = np.asarray(result.label, dtype=np.uint8)
    if not label.any():
        seeds = ", ".join(str(k) for k in result.seeds)
        raise RequestError(
            f"the structure is not found at the clicks: the mask on the clicked slice(s) {seeds} of {name} is empty; "
            "place a foreground click inside the structure.",
            422,
        )
    if respect_clicks:
        for i, j, k, positive in clicks:
            label[i, j, k] = int(positive)
    confidence = np.asarray(result.slice_confidence, dtype=np.float64)
    summary = {
        "propagated": True,
        "slices": [int(k) for k in np.flatnonzero(label.any(axis=(0, 1)))],
        "seeds": [int(k) for k in result.seeds],
        "slice_confidence": [round(float(c), 4) for c in confidence],
        "review_first": [int(k) for k in result.review_order[:REVIEW_FIRST]],
        "clicks": [[i, j, k, int(positive)] for i, j, k, positive in clicks],
        "voxels": int(label.sum()),
        "seconds": {"propagate": round(seconds, 4), "per_slice": round(float(result.seconds_per_slice), 4)},
    }
    return Propagation(label, summary)
