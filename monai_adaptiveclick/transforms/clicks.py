# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Click type and rasterisation of clicks into the guidance disk maps (SPEC section 1, ARCHITECTURE "Guidance").

A click is ``(y, x, is_positive)`` on the 2-D slice array (row ``y`` = array index ``i``, column ``x`` = index ``j``).
The network sees clicks as two binary maps at network resolution: channel 0 is the union of disks of radius ``r``
around the positive clicks, channel 1 the same for the negative clicks (paper Sec. IV-B "data embedding", SPEC 1).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from monai_adaptiveclick.protocol import CLICK_RADIUS

__all__ = [
    "Click",
    "as_click",
    "as_clicks",
    "clicks_to_tensors",
    "scale_click_coordinate",
    "rasterize_clicks",
    "rasterize_click_batch",
]


class Click(NamedTuple):
    """One user click on a 2-D slice.

    A click sequence is ordered: the position of a click in its sequence is its order. Being a ``NamedTuple``, a
    ``Click`` compares equal to the plain tuple ``(y, x, is_positive)``.

    Attributes:
        y: row index (array axis 0).
        x: column index (array axis 1).
        is_positive: ``True`` for a foreground (positive) click, ``False`` for a background (negative) click.
    """

    y: int
    x: int
    is_positive: bool


def _as_int(value: Any, name: str, click: Any) -> int:
    """Return ``value`` as an ``int`` if it is integral, else raise ``ValueError`` naming the click."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"click {click!r}: {name} must be an integer pixel index, got a bool.")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        return int(value)
    raise ValueError(f"click {click!r}: {name} must be an integer pixel index, got {value!r}.")


def as_click(click: Any) -> Click:
    """Convert a ``Click`` or a plain ``(y, x, is_positive)`` sequence into a validated ``Click``.

    Args:
        click: a ``Click`` or a length-3 sequence ``(y, x, is_positive)``; ``y`` and ``x`` must be integral
            (``3`` or ``3.0``), ``is_positive`` a bool (``True``/``False``, ``numpy.bool_``, or the integers 0/1).

    Returns:
        The click as a ``Click``.

    Raises:
        ValueError: when the click does not have three entries, a coordinate is not integral, or the sign is not a
            bool (``-1`` is rejected on purpose: ``bool(-1)`` would silently be ``True``).
    """
    if isinstance(click, Click):
        return Click(_as_int(click.y, "y", click), _as_int(click.x, "x", click), _as_sign(click.is_positive, click))
    try:
        items = tuple(click)
    except TypeError as err:
        raise ValueError(f"a click must be a (y, x, is_positive) sequence, got {click!r}.") from err
    if len(items) != 3:
        raise ValueError(f"a click must have exactly 3 entries (y, x, is_positive), got {click!r}.")
    return Click(_as_int(items[0], "y", click), _as_int(items[1], "x", click), _as_sign(items[2], click))


def _as_sign(value: Any, click: Any) -> bool:
    """Return the click sign as ``bool``; accept bools and the integers 0/1 only."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    raise ValueError(f"click {click!r}: is_positive must be a bool (True/False or 1/0), got {value!r}.")


def as_clicks(clicks: Sequence[Any] | None) -> list[Click]:
    """Convert a sequence of clicks (``Click`` or plain tuples) into a list of validated ``Click`` (order kept).

    Args:
        clicks: sequence of clicks, or ``None`` for no clicks.

    Returns:
        list of ``Click``.
    """
    if clicks is None:
        return []
    if isinstance(clicks, (str, bytes)):
        raise ValueError(f"clicks must be a sequence of (y, x, is_positive), got {clicks!r}.")
    if isinstance(clicks, (np.ndarray, torch.Tensor)) and clicks.ndim == 2 and clicks.shape[-1] == 3:
        clicks = clicks.tolist()
    return [as_click(c) for c in clicks]


def _check_size(size: Any, name: str) -> tuple[int, int]:
    """Validate a 2-D spatial size ``(H, W)`` of positive integers."""
    try:
        items = tuple(int(s) for s in size)
    except TypeError as err:
        raise ValueError(f"{name} must be a pair (H, W) of positive integers, got {size!r}.") from err
    if len(items) != 2 or min(items) <= 0:
        raise ValueError(f"{name} must be a pair (H, W) of positive integers, got {size!r}.")
    return items[0], items[1]


def scale_click_coordinate(coordinate: int, source: int, target: int) -> int:
    """Map a pixel index from an axis of ``source`` pixels to an axis of ``target`` pixels.

    Pixel centres are aligned (the convention of ``align_corners=False`` resizing):
    ``round((c + 0.5) * target / source - 0.5)`` with halves rounded up, i.e. ``floor((c + 0.5) * target / source)``,
    clamped to ``[0, target - 1]``.

    Args:
        coordinate: pixel index in ``[0, source)``.
        source: number of pixels along the source axis.
        target: number of pixels along the target axis.

    Returns:
        the pixel index on the target axis.
    """
    if source <= 0 or target <= 0:
        raise ValueError(f"source and target sizes must be positive, got source={source}, target={target}.")
    value = math.floor((coordinate + 0.5) * target / source)
    return min(max(value, 0), target - 1)


def clicks_to_tensors(
    clicks: Sequence[Any] | None,
    num_points: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack a click sequence into padded ``(coords, signs)`` tensors as used by :func:`rasterize_click_batch`.

    Args:
        clicks: sequence of clicks ``(y, x, is_positive)``.
        num_points: pad (with sign 0) to this length; ``None`` means ``len(clicks)``.
        device: device of the returned tensors.

    Returns:
        ``coords`` float32 ``[K, 2]`` (y, x) and ``signs`` int64 ``[K]`` (+1 positive, -1 negative, 0 padding).

    Raises:
        ValueError: when there are more clicks than ``num_points``.
    """
    items = as_clicks(clicks)
    length = len(items) if num_points is None else int(num_points)
    if length < len(items):
        raise ValueError(f"{len(items)} clicks do not fit into num_points={num_points}.")
    coords = torch.zeros((length, 2), dtype=torch.float32)
    signs = torch.zeros((length,), dtype=torch.int64)
    for index, click in enumerate(items):
        coords[index, 0] = click.y
        coords[index, 1] = click.x
        signs[index] = 1 if click.is_positive else -1
    return coords.to(device), signs.to(device)


def rasterize_clicks(
    clicks: Sequence[Any] | None,
    spatial_size: Sequence[int],
    radius: float = CLICK_RADIUS,
    source_size: Sequence[int] | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Rasterise one click sequence into the two guidance disk maps (SPEC section 1).

    Every click becomes the disk ``(yy - cy)^2 + (xx - cx)^2 <= radius^2`` at the TARGET resolution
    ``spatial_size``; channel 0 is the union of the positive disks, channel 1 the union of the negative disks.

    Args:
        clicks: sequence of ``Click`` or ``(y, x, is_positive)`` tuples (``None`` or empty: two zero maps).
        spatial_size: target ``(H, W)``.
        radius: disk radius in target pixels (``>= 0``; 0 marks the click pixel only).
        source_size: ``(H0, W0)`` of the image the click coordinates refer to; coordinates are mapped to the target
            grid with :func:`scale_click_coordinate` (pixel centres aligned, rounded). ``None`` means the clicks are
            already in target pixels.
        device: device of the returned tensor.

    Returns:
        float32 tensor ``[2, H, W]`` with values in {0, 1}.

    Raises:
        ValueError: a click outside the source image (or outside the target when ``source_size`` is None), a bad
            size or a negative radius.

    Example:
        >>> maps = rasterize_clicks([(10, 12, True), (30, 5, False)], (64, 64), radius=5)
        >>> maps.shape
        torch.Size([2, 64, 64])
    """
    height, width = _check_size(spatial_size, "spatial_size")
    source_h, source_w = (height, width) if source_size is None else _check_size(source_size, "source_size")
    items = as_clicks(clicks)
    for click in items:
        if not (0 <= click.y < source_h and 0 <= click.x < source_w):
            raise ValueError(f"click {tuple(click)} is outside the image of size (H, W) = ({source_h}, {source_w}).")
    scaled = [
        Click(
            scale_click_coordinate(c.y, source_h, height),
            scale_click_coordinate(c.x, source_w, width),
            c.is_positive,
        )
        for c in items
    ]
    coords, signs = clicks_to_tensors(scaled, device=device)
    maps = rasterize_click_batch(coords[None], signs[None], (height, width), radius=radius)
    return maps[0]


def rasterize_click_batch(
    coords: torch.Tensor,
    signs: torch.Tensor,
    spatial_size: Sequence[int],
    radius: float = CLICK_RADIUS,
) -> torch.Tensor:
    """Rasterise a padded batch of clicks into guidance disk maps on the coordinates' device.

    Coordinates are rounded to the nearest pixel (halves up) so that every disk has the same shape as in
    :func:`rasterize_clicks`. The loop runs over the click slots ``K`` only; pixels are handled by broadcasting.

    Args:
        coords: ``[B, K, 2]`` click positions ``(y, x)`` in target pixels (float or integer).
        signs: ``[B, K]`` with +1 (positive), -1 (negative) or 0 (padding: the slot is ignored, whatever its coords).
        spatial_size: target ``(H, W)``.
        radius: disk radius in pixels (``>= 0``).

    Returns:
        float32 tensor ``[B, 2, H, W]`` on ``coords.device`` (channel 0 positive disks, channel 1 negative disks).

    Raises:
        ValueError: wrong shapes, signs other than -1/0/+1, a negative radius, or a non-padding click outside
            ``spatial_size``.
    """
    height, width = _check_size(spatial_size, "spatial_size")
    if not math.isfinite(float(radius)) or radius < 0:
        raise ValueError(f"radius must be a finite number >= 0, got {radius!r}.")
    if coords.ndim != 3 or coords.shape[-1] != 2:
        raise ValueError(f"coords must have shape [B, K, 2], got {tuple(coords.shape)}.")
    if signs.shape != coords.shape[:2]:
        raise ValueError(f"signs must have shape [B, K] = {tuple(coords.shape[:2])}, got {tuple(signs.shape)}.")
    signs = signs.to(coords.device)
    if bool(((signs != 0) & (signs != 1) & (signs != -1)).any()):
        raise ValueError("signs must contain only +1 (positive), -1 (negative) and 0 (padding).")
    active = signs != 0
    if not bool(torch.isfinite(coords[active]).all()):
        raise ValueError("coords of non-padding clicks must be finite (found NaN or inf).")
    centres = torch.floor(torch.nan_to_num(coords.to(torch.float32)) + 0.5).to(torch.int64)
    if bool(active.any()):
        outside = active & (
            (centres[..., 0] < 0) | (centres[..., 0] >= height) | (centres[..., 1] < 0) | (centres[..., 1] >= width)
        )
        if bool(outside.any()):
            b, k = (int(v) for v in torch.nonzero(outside)[0])
            raise ValueError(
                f"click (batch {b}, slot {k}) at (y, x) = {tuple(coords[b, k].tolist())} is outside the map of "
                f"size (H, W) = ({height}, {width})."
            )
    batch = coords.shape[0]
    device = coords.device
    maps = torch.zeros((batch, 2, height, width), dtype=torch.bool, device=device)
    rows = torch.arange(height, device=device, dtype=torch.int64)
    cols = torch.arange(width, device=device, dtype=torch.int64)
    r2 = math.floor(float(radius) ** 2)
    for k in range(coords.shape[1]):
        dy2 = (rows[None, :] - centres[:, k, 0, None]) ** 2
        dx2 = (cols[None, :] - centres[:, k, 1, None]) ** 2
        disk = (dy2[:, :, None] + dx2[:, None, :]) <= r2
        maps[:, 0] |= disk & (signs[:, k] > 0)[:, None, None]
        maps[:, 1] |= disk & (signs[:, k] < 0)[:, None, None]
    return maps.to(torch.float32)
