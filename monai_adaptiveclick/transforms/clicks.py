# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Click type, parsing and coordinate mapping between image and network grids (SPEC section 1).

A click is ``(y, x, is_positive)`` on the 2-D slice array (row ``y`` = array index ``i``, column ``x`` = index ``j``).
The rasterisation into the guidance disk maps is :mod:`~monai_adaptiveclick.transforms.disks`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = [
    "CLICK_MAPPINGS",
    "Click",
    "as_click",
    "as_clicks",
    "check_spatial_size",
    "clicks_to_tensors",
    "map_click_coordinate",
    "map_clicks",
    "scale_click_coordinate",
]

CLICK_MAPPINGS = ("centers", "simpleclick")
"""How a click coordinate is carried from a source axis to a target axis (:func:`map_click_coordinate`)."""


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


def check_spatial_size(size: Any, name: str) -> tuple[int, int]:
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


def map_click_coordinate(coordinate: float, source: int, target: int, mapping: str = "centers") -> float:
    """Map a pixel coordinate from a source axis to a target axis WITHOUT rounding.

    * ``"centers"``: pixel centres aligned (the ``align_corners=False`` convention),
      ``(c + 0.5) * target / source - 0.5``; :func:`scale_click_coordinate` is this value rounded (halves up).
    * ``"simpleclick"``: ``target * c / source``, the formula of the SimpleClick v1.0 zoom-in that produced the
      paper's tables (SPEC section 5; ``r' = S * (r - rmin) / (rmax - rmin + 1)`` for a crop whose first row is
      ``rmin``). It is not the mapping of the ``align_corners=True`` image resize that goes with it, but it is what
      their network was evaluated with.

    Args:
        coordinate: pixel coordinate on the source axis (any finite value; not checked against the axis).
        source: number of pixels along the source axis.
        target: number of pixels along the target axis.
        mapping: one of :data:`CLICK_MAPPINGS`.

    Returns:
        the coordinate on the target axis, as a float (computed in double precision).

    Example:
        >>> map_click_coordinate(102, 117, 448, "simpleclick")
        390.56410256410254
        >>> map_click_coordinate(3, 10, 20), scale_click_coordinate(3, 10, 20)
        (6.5, 7)
    """
    if source <= 0 or target <= 0:
        raise ValueError(f"source and target sizes must be positive, got source={source}, target={target}.")
    if mapping == "centers":
        return (coordinate + 0.5) * target / source - 0.5
    if mapping == "simpleclick":
        return target * coordinate / source
    raise ValueError(f"unknown click mapping {mapping!r}; expected one of {CLICK_MAPPINGS}.")


def map_clicks(
    clicks: Sequence[Any] | None,
    source_size: Sequence[int],
    target_size: Sequence[int],
    mapping: str = "centers",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map a click sequence to float coordinates on a target grid (:func:`map_click_coordinate`, per axis).

    Clicks are not checked against the source image: the SimpleClick v1.0 zoom-in passes clicks that lie outside
    its crop (their disks may still reach into it), so the caller decides what is allowed.

    Args:
        clicks: sequence of ``Click`` / ``(y, x, is_positive)`` (``None``: no clicks).
        source_size: ``(H0, W0)`` the click coordinates refer to.
        target_size: ``(H, W)`` of the target grid.
        mapping: one of :data:`CLICK_MAPPINGS`.

    Returns:
        ``coords`` float64 ``[K, 2]`` ``(y, x)`` on the target grid, unrounded, and ``signs`` int64 ``[K]``
        (+1 positive, -1 negative).

    Example:
        >>> coords, signs = map_clicks([(32, 102, True)], (64, 117), (448, 448), "simpleclick")
        >>> coords.tolist(), signs.tolist()
        ([[224.0, 390.56410256410254]], [1])
    """
    source_h, source_w = check_spatial_size(source_size, "source_size")
    height, width = check_spatial_size(target_size, "target_size")
    if mapping not in CLICK_MAPPINGS:
        raise ValueError(f"unknown click mapping {mapping!r}; expected one of {CLICK_MAPPINGS}.")
    items = as_clicks(clicks)
    coords = torch.tensor(
        [
            [
                map_click_coordinate(c.y, source_h, height, mapping),
                map_click_coordinate(c.x, source_w, width, mapping),
            ]
            for c in items
        ],
        dtype=torch.float64,
    ).reshape(len(items), 2)
    signs = torch.tensor([1 if c.is_positive else -1 for c in items], dtype=torch.int64)
    return coords, signs


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
