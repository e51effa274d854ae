# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Training click simulation (SPEC section 4): the multi-point initial sampler and the error-click rule.

* :func:`sample_initial_clicks` draws the initial clicks of a training sample in the spirit of the RITM multi-point
  sampler: the number of positive clicks ``k`` has ``P(k) ∝ gamma^k``; positives are spread over the object's
  interior; negatives come from the random background, from other objects or from a band around the object with
  probabilities 0.1 / 0.4 / 0.5.
* :func:`sample_error_click` (numpy) and :func:`sample_error_clicks_batch` (torch, batched, any device) place one
  more click at a random pixel of the larger error region whose distance-transform value exceeds half of the
  larger maximum (the iterative training rule of RITM / SimpleClick, used by AdaptiveClick).
* :func:`euclidean_distance_transform` is an exact Euclidean distance transform in torch, so the batched rule runs
  on a GPU training device without a round trip to the CPU (on the CPU, scipy's transform of each error region's
  bounding box gives the same values faster).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

from .clicker import as_binary_mask, error_regions, padded_distance_transform
from .clicks import Click

__all__ = [
    "NEGATIVE_STRATEGIES",
    "euclidean_distance_transform",
    "sample_initial_clicks",
    "sample_error_click",
    "sample_error_clicks_batch",
]

#: Negative-click strategies of :func:`sample_initial_clicks`, in the order of ``negative_strategy_probs``.
NEGATIVE_STRATEGIES: tuple[str, str, str] = ("background", "other_objects", "border")


def _as_generator(rng: np.random.Generator | int) -> np.random.Generator:
    """Accept a numpy ``Generator`` or an integer seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy.random.Generator or an integer seed, got {type(rng).__name__}.")


def _as_slice_mask(array: Any, name: str) -> np.ndarray:
    """Accept ``[H, W]`` or ``[1, H, W]`` masks (the dataset-item layout) and return a boolean ``[H, W]`` array."""
    values = np.asarray(array)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    return as_binary_mask(values, name)


def _truncated_geometric(rng: np.random.Generator, low: int, high: int, gamma: float) -> int:
    """Draw ``k`` in ``[low, high]`` with ``P(k) ∝ gamma^k``."""
    support = np.arange(low, high + 1)
    weights = gamma ** support.astype(np.float64)
    return int(rng.choice(support, p=weights / weights.sum()))


def sample_initial_clicks(
    gt: Any,
    rng: np.random.Generator | int,
    other_objects: Any | None = None,
    ignore: Any | None = None,
    max_points: int = 24,
    gamma: float = 0.8,
    negative_strategy_probs: Sequence[float] = (0.1, 0.4, 0.5),
    border_width: int | None = None,
    first_click_inner: float = 0.5,
) -> list[Click]:
    """Initial training clicks of one object (SPEC section 4, RITM-style multi-point sampler).

    Procedure (deterministic given ``rng``):

    1. ``k_pos`` in ``1..max_points`` with ``P(k) ∝ gamma^k`` (capped by the number of object pixels);
       ``k_neg`` in ``0..max_points - k_pos`` with ``P(k) ∝ gamma^k``. The total never exceeds ``max_points``.
    2. The first positive click is uniform over the object's core, the pixels whose distance to the object boundary
       (exact EDT, image border counting as outside) is ``>= first_click_inner`` times the maximum. Each further
       positive is drawn with probability proportional to ``edt(p) * d(p)``, ``d(p)`` being the distance to the
       nearest click already drawn: clicks fall inside the object, are spread out and never repeat.
    3. Each negative click picks a strategy from :data:`NEGATIVE_STRATEGIES` with ``negative_strategy_probs``
       (0.1 random background, 0.4 other objects, 0.5 border band), renormalised over the strategies that still
       have free pixels (no ``other_objects`` mask -> the other two share its probability), then a uniform pixel
       of that pool. The border band is the background within ``border_width`` pixels of the object.
       When no pool has a free pixel left, fewer negatives are returned.

    Ignore pixels are never clicked and do not count as object.

    Args:
        gt: object mask ``[H, W]`` or ``[1, H, W]`` (bool, or numeric binarised with ``> 0.5``).
        rng: ``numpy.random.Generator`` or integer seed.
        other_objects: optional mask of the other objects in the image (same shape); pixels of ``gt`` are excluded.
        ignore: optional mask of pixels that must never be clicked (same shape).
        max_points: total click budget (>= 1).
        gamma: decay of the click-count distribution, in (0, 1].
        negative_strategy_probs: probabilities of (background, other objects, border); non-negative, summing to 1.
        border_width: width of the border band in pixels; ``None`` -> ``max(3, round(0.15 * sqrt(object area)))``.
        first_click_inner: fraction of the maximum EDT defining the core for the first click, in (0, 1].

    Returns:
        list of ``Click``: the positives first (the first one central), then the negatives.

    Raises:
        ValueError: bad shapes or arguments, or an object with no pixel outside ``ignore``.

    Example:
        >>> gt = np.zeros((32, 32), bool); gt[8:24, 8:24] = True
        >>> clicks = sample_initial_clicks(gt, np.random.default_rng(0))
        >>> clicks[0].is_positive
        True
    """
    generator = _as_generator(rng)
    gt_mask = _as_slice_mask(gt, "gt")
    shape = gt_mask.shape
    masks = {}
    for name, value in (("other_objects", other_objects), ("ignore", ignore)):
        if value is not None:
            mask = _as_slice_mask(value, name)
            if mask.shape != shape:
                raise ValueError(f"{name} must have the shape of gt {shape}, got {mask.shape}.")
            masks[name] = mask
    ignore_mask = masks.get("ignore", np.zeros(shape, dtype=bool))
    if int(max_points) < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}.")
    if not 0.0 < float(gamma) <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}.")
    probs = np.asarray(negative_strategy_probs, dtype=np.float64)
    if probs.shape != (3,) or (probs < 0).any() or not np.isclose(probs.sum(), 1.0):
        raise ValueError(
            f"negative_strategy_probs must be 3 non-negative probabilities for {NEGATIVE_STRATEGIES} summing to 1, "
            f"got {tuple(negative_strategy_probs)}."
        )
    if not 0.0 < float(first_click_inner) <= 1.0:
        raise ValueError(f"first_click_inner must be in (0, 1], got {first_click_inner}.")
    if border_width is not None and int(border_width) < 1:
        raise ValueError(f"border_width must be >= 1 or None, got {border_width}.")

    obj = gt_mask & ~ignore_mask
    area = int(obj.sum())
    if area == 0:
        raise ValueError(f"gt has no object pixel outside the ignore mask (shape {shape}): cannot sample clicks.")

    k_pos = min(_truncated_geometric(generator, 1, int(max_points), float(gamma)), area)
    k_neg = _truncated_geometric(generator, 0, int(max_points) - k_pos, float(gamma))

    # Positives: first in the core, then spread (weight = EDT x distance to the clicks drawn so far).
    inner_dist = padded_distance_transform(obj)
    core = np.flatnonzero(inner_dist.ravel() >= first_click_inner * inner_dist.max())
    first = int(core[generator.integers(core.size)])
    chosen = [first]
    rows, cols = np.divmod(np.arange(gt_mask.size), shape[1])
    nearest = np.hypot(rows - rows[first], cols - cols[first])
    base_weight = inner_dist.ravel()
    while len(chosen) < k_pos:
        weight = base_weight * nearest
        total = weight.sum()
        if total <= 0:
            break
        index = int(generator.choice(weight.size, p=weight / total))
        chosen.append(index)
        nearest = np.minimum(nearest, np.hypot(rows - rows[index], cols - cols[index]))
    clicks = [Click(int(rows[i]), int(cols[i]), True) for i in chosen]

    # Negatives: three pools, never on the object, on ignore pixels or on a pixel twice.
    free = ~gt_mask & ~ignore_mask
    width = border_width if border_width is not None else max(3, int(round(0.15 * np.sqrt(area))))
    outer_dist = distance_transform_edt(~gt_mask)
    pools = [
        free,
        free & masks["other_objects"] if "other_objects" in masks else np.zeros(shape, dtype=bool),
        free & (outer_dist <= width),
    ]
    pools = [pool.ravel().copy() for pool in pools]
    for _ in range(k_neg):
        available = np.array([pool.any() for pool in pools])
        weights = probs * available
        if weights.sum() <= 0:
            break
        strategy = int(generator.choice(3, p=weights / weights.sum()))
        candidates = np.flatnonzero(pools[strategy])
        index = int(candidates[generator.integers(candidates.size)])
        for pool in pools:
            pool[index] = False
        clicks.append(Click(int(rows[index]), int(cols[index]), False))
    return clicks


def sample_error_click(
    pred: Any,
    gt: Any,
    rng: np.random.Generator | int,
    ignore: Any | None = None,
) -> Click | None:
    """Training next-click rule (SPEC section 4), numpy version.

    The error regions are ``fn = gt & ~pred`` and ``fp = ~gt & pred`` (minus ``ignore``). Their exact EDTs are taken
    with a 1-px zero padding (the image border counts as outside). The larger one wins (positive click iff the FN
    peak is strictly larger), and the click is a uniformly random pixel of the winning region whose EDT value is
    strictly greater than half the winning maximum.

    Args:
        pred: binary prediction ``[H, W]`` (bool; numeric arrays are binarised with ``> 0.5``; threshold a probability
            map yourself to use another threshold).
        gt: binary ground truth ``[H, W]``.
        rng: ``numpy.random.Generator`` or integer seed.
        ignore: optional ``[H, W]`` mask of pixels that are never errors.

    Returns:
        a ``Click``, or ``None`` when there is no error pixel at all.

    Raises:
        ValueError: non-2-D inputs or mismatched shapes.
    """
    generator = _as_generator(rng)
    pred_mask = as_binary_mask(pred, "pred")
    gt_mask = as_binary_mask(gt, "gt")
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(f"pred and gt must have the same shape, got pred {pred_mask.shape} and gt {gt_mask.shape}.")
    fn, fp = error_regions(pred_mask, gt_mask)
    if ignore is not None:
        ignore_mask = as_binary_mask(ignore, "ignore")
        if ignore_mask.shape != gt_mask.shape:
            raise ValueError(f"ignore must have the shape of gt {gt_mask.shape}, got {ignore_mask.shape}.")
        fn, fp = fn & ~ignore_mask, fp & ~ignore_mask
    fn_dist = padded_distance_transform(fn)
    fp_dist = padded_distance_transform(fp)
    fn_max, fp_max = float(fn_dist.max()), float(fp_dist.max())
    if fn_max == 0.0 and fp_max == 0.0:
        return None
    is_positive = fn_max > fp_max
    dist = fn_dist if is_positive else fp_dist
    candidates = np.argwhere(dist > max(fn_max, fp_max) / 2.0)
    y, x = candidates[generator.integers(len(candidates))]
    return Click(int(y), int(x), bool(is_positive))


def euclidean_distance_transform(mask: torch.Tensor, border_is_background: bool = True) -> torch.Tensor:
    """Exact Euclidean distance transform in torch, batched, on the mask's device.

    For every ``True`` pixel: the Euclidean distance to the nearest ``False`` pixel (0 on ``False`` pixels), the
    same values as ``scipy.ndimage.distance_transform_edt``. Two separable passes:

    1. rows: distance ``g`` to the nearest zero along each row, from running maxima of zero-pixel indices
       (``cummax`` from the left, the same on the flipped row from the right);
    2. columns: ``D(y, x)^2 = min_r g(r, x)^2 + (y - r)^2``, evaluated as a loop over row offsets ``d = |y - r|``
       (whole-tensor shifted minima, never a loop over pixels). The loop stops as soon as ``d^2`` reaches the
       largest squared distance found so far, since no farther row can improve any pixel; memory stays
       ``O(N H W)`` whatever the image size.

    Args:
        mask: boolean (or numeric, nonzero = True) tensor ``[..., H, W]``.
        border_is_background: pad one pixel of zeros around the image first, so the border counts as background
            (the convention of the clicker); with ``False`` an image without any zero gives ``inf`` everywhere.

    Returns:
        float32 tensor of the mask's shape.

    Raises:
        ValueError: fewer than 2 dimensions or an empty spatial size.
    """
    if mask.ndim < 2 or mask.shape[-1] == 0 or mask.shape[-2] == 0:
        raise ValueError(f"mask must have shape [..., H, W] with H, W > 0, got {tuple(mask.shape)}.")
    lead, (height, width) = mask.shape[:-2], mask.shape[-2:]
    device = mask.device
    values = mask.reshape(-1, height, width) != 0
    pad = 1 if border_is_background else 0
    if pad:
        values = torch.nn.functional.pad(values, (1, 1, 1, 1), value=False)
    count, rows_p, cols_p = values.shape

    # Row pass: distance along each row to the nearest zero pixel (inf when the row has none).
    index = torch.arange(cols_p, device=device, dtype=torch.int64).expand(count, rows_p, cols_p)
    sentinel = 2 * (rows_p + cols_p) + 2
    left = torch.where(~values, index, torch.full_like(index, -sentinel)).cummax(dim=-1).values
    right_flipped = torch.where(~values, cols_p - 1 - index, torch.full_like(index, -sentinel)).flip(-1)
    right = cols_p - 1 - right_flipped.cummax(dim=-1).values.flip(-1)
    row_dist = torch.minimum(index - left, right - index).to(torch.float32)
    row_dist2 = torch.where(row_dist >= sentinel, torch.full_like(row_dist, float("inf")), row_dist * row_dist)

    # Column pass: lower envelope over row offsets, stopped once the offset cannot improve any pixel.
    dist2 = row_dist2.clone()
    has_zero = (~values).flatten(1).any(dim=1)
    for offset in range(1, rows_p):
        if not bool(has_zero.any()) or offset * offset >= float(dist2[has_zero].amax()):
            break
        step = float(offset * offset)
        torch.minimum(dist2[:, :-offset], row_dist2[:, offset:] + step, out=dist2[:, :-offset])
        torch.minimum(dist2[:, offset:], row_dist2[:, :-offset] + step, out=dist2[:, offset:])
    distances = dist2[:, pad : pad + height, pad : pad + width].sqrt()
    return distances.reshape(*lead, height, width)


def _as_batch_mask(mask: torch.Tensor, name: str) -> torch.Tensor:
    """Accept ``[B, H, W]`` or ``[B, 1, H, W]``; bool kept, numeric binarised with ``> 0.5``."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}.")
    if mask.ndim == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.ndim != 3:
        raise ValueError(f"{name} must have shape [B, H, W] or [B, 1, H, W], got {tuple(mask.shape)}.")
    return mask if mask.dtype == torch.bool else mask > 0.5


def sample_error_clicks_batch(
    pred: torch.Tensor,
    gt: torch.Tensor,
    generator: torch.Generator | None = None,
    ignore: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training next-click rule (SPEC section 4), batched in torch on the inputs' device.

    The same rule as :func:`sample_error_click` for every batch item: the larger error region (positive iff the FN
    peak distance is strictly larger), a uniformly random pixel of it with EDT value above half the maximum. The
    random choice is the argmax of i.i.d. uniform scores over the candidate pixels (no loop over pixels). The
    distances come from :func:`euclidean_distance_transform` on a GPU and from scipy on each region's bounding box
    (:func:`~.clicker.padded_distance_transform`, the same values) on the CPU.

    Args:
        pred: binary predictions ``[B, H, W]`` or ``[B, 1, H, W]`` (bool; numeric tensors binarised with ``> 0.5``).
        gt: binary ground truth, same shape.
        generator: optional ``torch.Generator`` (on any device; the scores are drawn on its device and moved).
        ignore: optional mask of pixels that are never errors, same shape.

    Returns:
        ``coords`` int64 ``[B, 2]`` (y, x) and ``signs`` int64 ``[B]``: +1 positive, -1 negative, 0 when the item
        has no error pixel (its coords are then ``(0, 0)`` and must be ignored). Both on ``pred.device``.

    Raises:
        ValueError: wrong shapes or devices.
    """
    pred_mask = _as_batch_mask(pred, "pred")
    gt_mask = _as_batch_mask(gt, "gt")
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(
            f"pred and gt must have the same shape, got pred {tuple(pred.shape)} and gt {tuple(gt.shape)}."
        )
    if pred_mask.device != gt_mask.device:
        raise ValueError(f"pred and gt must be on the same device, got {pred_mask.device} and {gt_mask.device}.")
    fn, fp = gt_mask & ~pred_mask, ~gt_mask & pred_mask
    if ignore is not None:
        ignore_mask = _as_batch_mask(ignore, "ignore").to(pred_mask.device)
        if ignore_mask.shape != pred_mask.shape:
            raise ValueError(f"ignore must have shape {tuple(pred_mask.shape)}, got {tuple(ignore.shape)}.")
        fn, fp = fn & ~ignore_mask, fp & ~ignore_mask
    batch, height, width = pred_mask.shape
    errors = torch.stack([fn, fp], dim=1)
    if errors.device.type == "cpu":  # scipy on each region's bounding box: the same values, far faster on a CPU
        per_item = [[padded_distance_transform(region) for region in pair] for pair in errors.numpy()]
        distances = torch.from_numpy(np.asarray(per_item, dtype=np.float32).reshape(errors.shape))
    else:
        distances = euclidean_distance_transform(errors)
    peaks = distances.flatten(2).amax(dim=-1)  # [B, 2]
    is_positive = peaks[:, 0] > peaks[:, 1]
    chosen = torch.where(is_positive[:, None, None], distances[:, 0], distances[:, 1])
    peak = peaks.amax(dim=1)
    candidates = (chosen > (peak / 2.0)[:, None, None]).flatten(1)
    score_device = generator.device if generator is not None else pred_mask.device
    scores = torch.rand((batch, height * width), generator=generator, device=score_device).to(pred_mask.device)
    flat = torch.where(candidates, scores, torch.full_like(scores, -1.0)).argmax(dim=1)
    has_error = peak > 0
    coords = torch.stack([flat // width, flat % width], dim=1)
    coords = torch.where(has_error[:, None], coords, torch.zeros_like(coords))
    signs = torch.where(is_positive, 1, -1).to(torch.int64)
    signs = torch.where(has_error, signs, torch.zeros_like(signs))
    return coords, signs
