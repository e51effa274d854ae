# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Statistics over seeds: one pooled result per method (for the plot) and mean ± sample sd (for the table)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from monai_adaptiveclick.engines import NoCResult

__all__ = ["mean_sd", "pooled"]


def pooled(results: Sequence[NoCResult]) -> NoCResult:
    """One result holding the records of all seeds: its mIoU curve and NoC are the means over the seeds.

    Args:
        results: the results of one method, one per seed (a single result is returned as it is).

    Returns:
        The pooled result, named ``"{method} ({n} seeds)"`` when there are several.
    """
    if len(results) == 1:
        return results[0]
    first = results[0]
    return NoCResult(
        method=f"{first.method} ({len(results)} seeds)",
        max_clicks=first.max_clicks,
        iou_thresholds=first.iou_thresholds,
        records=[record for result in results for record in result.records],
        total_seconds=sum(result.total_seconds for result in results),
        settings=dict(first.settings),
    )


def mean_sd(values: Sequence[float | None], digits: int) -> str:
    """``"mean ± sd"`` (sample sd, ``ddof=1``) of the values that are not ``None`` or NaN.

    Args:
        values: one value per seed.
        digits: decimals shown.

    Returns:
        The mean ± sd; the value alone when there is one; ``"n/a"`` when there is none.
    """
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"
