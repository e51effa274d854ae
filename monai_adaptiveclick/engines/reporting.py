# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Reports of NoC evaluations (SPEC section 5): markdown table, mIoU-vs-clicks plot and mask/click overlays.

Plots use matplotlib's non-interactive Agg backend, so they work on machines without a display.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from monai_adaptiveclick.protocol import is_foreground

if TYPE_CHECKING:
    from monai_adaptiveclick.engines.noc_results import NoCResult

__all__ = ["display_image", "format_table", "plot_curves", "plot_miou_curves", "save_overlay"]

MIOU_COLUMNS = (1, 3, 5)


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_table(results: Sequence[NoCResult]) -> str:
    """Markdown table with one row per result.

    Columns: method, NoC@t per threshold, failures@t per threshold, mIoU@1/3/5, SPC (seconds per click), objects
    (and skipped objects when any were skipped).

    Args:
        results: NoC results; their thresholds must agree.
    """
    if not results:
        raise ValueError("format_table needs at least one result.")
    thresholds = results[0].iou_thresholds
    if any(tuple(r.iou_thresholds) != tuple(thresholds) for r in results):
        raise ValueError("all results in one table must use the same iou_thresholds.")
    percents = [round(t * 100) for t in thresholds]
    header = (
        ["method"]
        + [f"NoC@{p}" for p in percents]
        + [f"fail@{p}" for p in percents]
        + [f"mIoU@{k}" for k in MIOU_COLUMNS]
        + ["SPC (s)", "objects"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for result in results:
        miou = result.miou_at_k
        objects = str(result.num_objects) + (f" (+{result.skipped} skipped)" if result.skipped else "")
        row = (
            [result.method]
            + [_fmt(result.noc[t]) for t in thresholds]
            + [str(result.failures[t]) for t in thresholds]
            + [_fmt(miou[k - 1], 3) if k <= len(miou) else "n/a" for k in MIOU_COLUMNS]
            + [_fmt(result.spc, 3), objects]
        )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_curves(
    curves: Sequence[tuple[str, Sequence[float]]],
    thresholds: Sequence[float],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str,
) -> Path:
    """Plot score-vs-clicks curves (clicks from 1), with dotted lines at ``thresholds``, and save them as PNG.

    Args:
        curves: ``(label, values)`` per line; ``values[k - 1]`` is the score after ``k`` clicks.
        thresholds: horizontal reference lines (e.g. the NoC IoU targets).
        path: output PNG path (parent folders are created).
        xlabel: x axis label.
        ylabel: y axis label (the axis spans ``[0, 1]``).
        title: plot title.

    Returns:
        The written path.
    """
    if not curves:
        raise ValueError("plot_curves needs at least one curve.")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    many = len(curves) > 4  # the legend goes beside the axes instead of over the curves
    fig, ax = plt.subplots(figsize=(10, 4.5) if many else (6, 4), dpi=100)
    styles = ("-", "--", "-.", ":")
    for index, (label, values) in enumerate(curves):
        ax.plot(
            range(1, len(values) + 1),
            values,
            marker="o",
            markersize=3,
            linestyle=styles[index // 10 % len(styles)],
            color=plt.get_cmap("tab10")(index % 10),
            label=label,
        )
    for threshold in thresholds:
        ax.axhline(threshold, color="gray", linestyle=":", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(1, max(2, max(len(values) for _, values in curves)))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    if many:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    else:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_miou_curves(results: Sequence[NoCResult], path: str | Path, title: str | None = None) -> Path:
    """Plot mIoU versus number of clicks (paper Fig. 6 style), one line per result, and save it as PNG.

    Args:
        results: NoC results (several methods on one plot).
        path: output PNG path (parent folders are created).
        title: optional plot title.

    Returns:
        The written path.
    """
    if not results:
        raise ValueError("plot_miou_curves needs at least one result.")
    curves = [(f"{r.method} (NoC@90 {_fmt(r.noc.get(0.9, math.nan))})", r.miou_at_k) for r in results]
    return plot_curves(curves, results[0].iou_thresholds, path, "number of clicks", "mIoU", title or "mIoU vs. clicks")


def display_image(image: np.ndarray) -> np.ndarray:
    """Map an image ``[C, H, W]`` (or ``[H, W]``) to a displayable ``[H, W]`` or ``[H, W, 3]`` array in [0, 1].

    Three channels are shown as RGB, otherwise the first channel in gray; each channel is scaled between its 1st
    and 99th percentiles (a constant channel becomes 0).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"image must be [C, H, W] or [H, W], got shape {image.shape}.")
    channels = image[:3] if image.shape[0] == 3 else image[:1]
    out = np.zeros_like(channels)
    for i, channel in enumerate(channels):
        lo, hi = np.percentile(channel, (1, 99))
        if hi > lo:
            out[i] = np.clip((channel - lo) / (hi - lo), 0.0, 1.0)
    return np.moveaxis(out, 0, -1) if out.shape[0] == 3 else out[0]


def save_overlay(
    image: np.ndarray,
    gt: np.ndarray,
    pred: np.ndarray,
    clicks: Sequence,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Save a PNG: the image, the ground-truth contour (yellow), the predicted mask (blue, translucent) and the
    clicks (green positive, red negative, numbered in order).

    Args:
        image: ``[C, H, W]`` image.
        gt: ``[H, W]`` (or ``[1, H, W]``) ground-truth mask.
        pred: ``[H, W]`` predicted mask (bool) or probability map (thresholded with ``protocol.is_foreground``).
        clicks: ``(y, x, is_positive)`` clicks.
        path: output PNG path.
        title: optional title.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    shown = display_image(image)
    gt = np.asarray(gt).reshape(shown.shape[:2]) > 0
    pred = np.asarray(pred)
    if pred.shape != gt.shape:
        raise ValueError(f"pred shape {pred.shape} does not match the image size {gt.shape}.")
    pred = is_foreground(pred) if pred.dtype != bool else pred
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = gt.shape
    fig, ax = plt.subplots(figsize=(5, 5 * height / max(width, 1)), dpi=100)
    ax.imshow(shown, cmap="gray", interpolation="nearest")
    blue = ListedColormap(["#1f5fff"])
    ax.imshow(np.ma.masked_where(~pred, pred), cmap=blue, alpha=0.45, interpolation="nearest", vmin=0, vmax=1)
    if gt.any() and not gt.all():
        ax.contour(gt.astype(np.float32), levels=[0.5], colors="yellow", linewidths=1.0)
    for order, (y, x, positive) in enumerate(clicks, start=1):
        color = "lime" if positive else "red"
        ax.plot(x, y, "o", color=color, markersize=6, markeredgecolor="black", markeredgewidth=0.8)
        ax.annotate(str(order), (x, y), xytext=(3, 3), textcoords="offset points", color=color, fontsize=7)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
