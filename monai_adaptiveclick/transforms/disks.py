# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Rasterisation of clicks into the guidance disk maps (SPEC section 1, ARCHITECTURE "Guidance channels").

The network sees clicks as two binary maps at network resolution: channel 0 is the union of disks of radius ``r``
around the positive clicks, channel 1 the same for the negative clicks (paper Sec. IV-B "data embedding", SPEC 1).
Coordinates are rounded to the nearest pixel by default; ``float_coordinates=True`` draws the disk around the
unrounded coordinate, as the authors' released model does (SPEC section 10).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from monai_adaptiveclick.protocol import CLICK_RADIUS

from .clicks import Click, as_clicks, check_spatial_size, clicks_to_tensors, map_clicks, scale_click_coordinate

__all__ = ["rasterize_click_batch", "rasterize_clicks"]


def rasterize_clicks(
    clicks: Sequence[Any] | None,
    spatial_size: Sequence[int],
    radius: float = CLICK_RADIUS,
    source_size: Sequence[int] | None = None,
    device: torch.device | str | None = None,
    float_coordinates: bool = False,
    mapping: str = "centers",
) -> torch.Tensor:
    """Rasterise one click sequence into the two guidance disk maps (SPEC section 1).

    Every click becomes the disk ``(yy - cy)^2 + (xx - cx)^2 <= radius^2`` at the TARGET resolution
    ``spatial_size``; channel 0 is the union of the positive disks, channel 1 the union of the negative disks.

    By default (``float_coordinates=False, mapping="centers"``) the click is mapped to the target grid and ROUNDED
    to a pixel first (:func:`scale_click_coordinate`), so every disk has the same shape. With
    ``float_coordinates=True`` the disk is drawn around the unrounded mapped coordinate
    (:func:`map_click_coordinate`), as the authors' released model draws its click maps (SPEC section 10, row 10):
    in float32, ``(y - cy)^2 + (x - cx)^2 <= radius^2`` inclusive.

    Args:
        clicks: sequence of ``Click`` or ``(y, x, is_positive)`` tuples (``None`` or empty: two zero maps).
        spatial_size: target ``(H, W)``.
        radius: disk radius in target pixels (``>= 0``; 0 marks the click pixel only).
        source_size: ``(H0, W0)`` of the image the click coordinates refer to; coordinates are mapped to the target
            grid with :func:`scale_click_coordinate` (pixel centres aligned, rounded). ``None`` means the clicks are
            already in target pixels.
        device: device of the returned tensor.
        float_coordinates: draw the disks around the unrounded mapped coordinates (default ``False``: rounded).
        mapping: the coordinate mapping when ``source_size`` is given (:data:`CLICK_MAPPINGS`; default
            ``"centers"``); ``"simpleclick"`` is the SimpleClick v1.0 formula ``target * c / source``.

    Returns:
        float32 tensor ``[2, H, W]`` with values in {0, 1}.

    Raises:
        ValueError: a click outside the source image (or outside the target when ``source_size`` is None), a bad
            size or a negative radius.

    Example:
        >>> maps = rasterize_clicks([(10, 12, True), (30, 5, False)], (64, 64), radius=5)
        >>> maps.shape
        torch.Size([2, 64, 64])
        >>> rounded = rasterize_clicks([(1, 1, True)], (4, 4), radius=1, source_size=(3, 3))
        >>> exact = rasterize_clicks([(1, 1, True)], (4, 4), radius=1, source_size=(3, 3), float_coordinates=True)
        >>> int(rounded[0].sum()), int(exact[0].sum())  # centre (2, 2) vs (1.5, 1.5)
        (5, 4)
    """
    height, width = check_spatial_size(spatial_size, "spatial_size")
    source_h, source_w = (height, width) if source_size is None else check_spatial_size(source_size, "source_size")
    items = as_clicks(clicks)
    for click in items:
        if not (0 <= click.y < source_h and 0 <= click.x < source_w):
            raise ValueError(f"click {tuple(click)} is outside the image of size (H, W) = ({source_h}, {source_w}).")
    if float_coordinates or mapping != "centers":
        if source_size is None:
            coords, signs = map_clicks(items, (height, width), (height, width), "simpleclick")  # identity
        else:
            coords, signs = map_clicks(items, (source_h, source_w), (height, width), mapping)
        if not float_coordinates:
            coords = torch.floor(coords + 0.5)
        maps = rasterize_click_batch(
            coords[None].to(device), signs[None].to(device), (height, width), radius, float_coordinates
        )
        return maps[0]
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
    float_coordinates: bool = False,
) -> torch.Tensor:
    """Rasterise a padded batch of clicks into guidance disk maps on the coordinates' device.

    By default coordinates are rounded to the nearest pixel (halves up) so that every disk has the same shape as in
    :func:`rasterize_clicks`. With ``float_coordinates=True`` the coordinates are used as they are (cast to float32)
    and a pixel ``(y, x)`` is in the disk when ``(y - cy)^2 + (x - cx)^2 <= radius^2``, computed in float32 as the
    authors' released click maps are (SPEC section 10, row 10); a click whose centre lies outside the map (allowed
    in this mode: the SimpleClick zoom-in passes clicks outside its crop) draws the part of its disk that falls
    inside. The loop runs over the click slots ``K`` only; pixels are handled by broadcasting.

    Args:
        coords: ``[B, K, 2]`` click positions ``(y, x)`` in target pixels (float or integer).
        signs: ``[B, K]`` with +1 (positive), -1 (negative) or 0 (padding: the slot is ignored, whatever its coords).
        spatial_size: target ``(H, W)``.
        radius: disk radius in pixels (``>= 0``).
        float_coordinates: draw around the unrounded coordinates (default ``False``).

    Returns:
        float32 tensor ``[B, 2, H, W]`` on ``coords.device`` (channel 0 positive disks, channel 1 negative disks).

    Raises:
        ValueError: wrong shapes, signs other than -1/0/+1, a negative radius, or (rounded mode only) a non-padding
            click outside ``spatial_size``.

    Example:
        >>> coords, signs = torch.tensor([[[0.0, 2.5]]]), torch.tensor([[1]])
        >>> rasterize_click_batch(coords, signs, (2, 5), radius=1, float_coordinates=True)[0, 0].tolist()
        [[0.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]
        >>> rasterize_click_batch(coords, signs, (2, 5), radius=1)[0, 0].tolist()  # rounded to (0, 3)
        [[0.0, 0.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0, 0.0]]
    """
    height, width = check_spatial_size(spatial_size, "spatial_size")
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
    if float_coordinates:
        return _float_disks(coords, signs, height, width, float(radius))
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


def _float_disks(coords: torch.Tensor, signs: torch.Tensor, height: int, width: int, radius: float) -> torch.Tensor:
    """Disks around unrounded coordinates, float32 arithmetic (see :func:`rasterize_click_batch`)."""
    device = coords.device
    centres = torch.nan_to_num(coords.to(torch.float32))
    maps = torch.zeros((coords.shape[0], 2, height, width), dtype=torch.bool, device=device)
    rows = torch.arange(height, device=device, dtype=torch.float32)
    cols = torch.arange(width, device=device, dtype=torch.float32)
    for k in range(coords.shape[1]):
        dy2 = (rows[None, :] - centres[:, k, 0, None]) ** 2
        dx2 = (cols[None, :] - centres[:, k, 1, None]) ** 2
        disk = (dy2[:, :, None] + dx2[:, None, :]) <= radius**2
        maps[:, 0] |= disk & (signs[:, k] > 0)[:, None, None]
        maps[:, 1] |= disk & (signs[:, k] < 0)[:, None, None]
    return maps.to(torch.float32)
