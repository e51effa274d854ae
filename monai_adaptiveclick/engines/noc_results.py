# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Results of the NoC protocol (SPEC section 5): per-object records, NoC85 / NoC90, failures, mIoU@k, SPC, and their
JSON / CSV / plot / table output. :func:`~.evaluation.evaluate_noc` produces them; every metric is derived from the
per-object IoU lists, so results reloaded from JSON give the same numbers.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monai_adaptiveclick.engines.reporting import format_table, plot_miou_curves

__all__ = ["NoCResult", "ObjectRecord", "compute_iou", "noc_from_ious"]


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
