# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Reports of the clicks-per-structure evaluation (:func:`~.volume_evaluation.evaluate_volumes`): the markdown
table and the mean 3-D Dice-vs-clicks plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .reporting import plot_curves
from .volume_evaluation import DICE_AT, VolumeResult

__all__ = ["format_volume_table", "plot_dice_curves"]


def format_volume_table(results: Sequence[VolumeResult]) -> str:
    """Markdown table: method, objects, mean clicks to each Dice with propagation and slice by slice (the budget
    counted for an object that never reaches it), objects not reaching each Dice (propagation: the last 3-D Dice;
    slice by slice: the 3-D Dice of the assembled slices), mean 3-D Dice after 1/3/5 clicks, seconds per structure.

    Example:
        >>> from monai_adaptiveclick.engines.volume_evaluation import VolumeRecord
        >>> r = VolumeResult("m", 3, (0.9,), [VolumeRecord("a", [0.5, 0.95], [], {0.9: 2}, 1.0, 4, {0.9: 8})])
        >>> print(format_volume_table([r]).splitlines()[-1])
        | m | 1 | 2.00 | 8.00 | 0 | 1 | 0.500 | 0.950 | n/a | 1.00 |
    """
    if not results:
        raise ValueError("format_volume_table needs at least one result.")
    percents = [round(t * 100) for t in results[0].thresholds]
    header = (
        ["method", "objects"]
        + [f"clicks@{p} (propagation)" for p in percents]
        + [f"clicks@{p} (slice by slice)" for p in percents]
        + ["not reached " + "/".join(map(str, percents)) + " (propagation)"]
        + ["not reached " + "/".join(map(str, percents)) + " (slice by slice)"]
        + [f"Dice@{k}" for k in DICE_AT]
        + ["s / structure"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for result in results:
        s = result.summary()
        row = (
            [result.method, str(s["objects"])]
            + [f"{s['clicks'][t]:.2f}" for t in result.thresholds]
            + [f"{s['slice_clicks'][t]:.2f}" for t in result.thresholds]
            + ["/".join(str(s["failures"][t]) for t in result.thresholds)]
            + ["/".join(str(s["slice_failures"][t]) for t in result.thresholds)]
            + ["n/a" if s["dice_at"][k] is None else f"{s['dice_at'][k]:.3f}" for k in DICE_AT]
            + [f"{s['seconds']:.2f}"]
        )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_dice_curves(results: Sequence[VolumeResult], path: str | Path, title: str | None = None) -> Path:
    """Mean 3-D Dice vs. clicks (propagation), one line per method, saved as PNG (Agg backend)."""
    if not results:
        raise ValueError("plot_dice_curves needs at least one result.")
    curves = [(r.method, r.dice_curve()) for r in results]
    return plot_curves(
        curves,
        results[0].thresholds,
        path,
        "number of clicks (propagation)",
        "mean 3-D Dice",
        title or "3-D Dice vs. clicks per structure",
    )
