# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Request parsing (clicks, slice choice) and compact mask encodings of the answer (issue 7).

Request contract (SPEC section 8): ``foreground`` / ``background`` are lists of voxel indices ``[i, j, k]`` in the
array order MONAI ``LoadImage`` returns; a missing key (or ``null``) means no clicks of that sign. The slice is the
request's ``slice`` when sent (3D Slicer), otherwise the ``k`` of the latest click (OHIF). Voxel ``[i, j, k]`` is the
click ``(y=i, x=j)`` on slice ``k`` (ARCHITECTURE "Coordinates").

The click-by-click state (ordered clicks, previous probability map, refine / repeat / new) is
``monai_adaptiveclick.inference.ClickSession``, the same object the NoC evaluation uses; this module only turns
requests into clicks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .common import RequestError

__all__ = [
    "check_bounds",
    "check_click_count",
    "check_contradictions",
    "client_key",
    "latest_point",
    "mask_bbox",
    "encode_rle",
    "parse_points",
    "select_slice",
]

Point = tuple[int, int, int]


def _coordinate(value: Any, where: str) -> int:
    """A voxel index from an int or a finite real (rounded to the nearest voxel), else ``RequestError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise RequestError(f"{where}: voxel indices must be finite numbers, got {value!r}.")
    return int(round(float(value)))


def parse_points(value: Any, name: str, ndim: int = 3) -> list[Point]:
    """Parse the ``foreground`` / ``background`` field of a request into voxel points ``(i, j, k)``.

    Args:
        value: the field (``None`` or missing -> no points), a list of ``[i, j, k]`` lists.
        name: the field name, used in error messages.
        ndim: 3 for a volume; 2 for a 2-D image, where ``[i, j]`` is accepted and means ``k = 0``.

    Returns:
        The points in request order, duplicates removed.

    Raises:
        RequestError: when the field is not a list of points with ``ndim`` numeric indices each.
    """
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise RequestError(f"'{name}' must be a list of [i, j, k] voxel indices, got {value!r}.")
    points: list[Point] = []
    known: set[Point] = set()
    for n, item in enumerate(value):
        where = f"'{name}'[{n}]"
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence):
            raise RequestError(f"{where} must be an [i, j, k] voxel index, got {item!r}.")
        if len(item) == 2 and ndim == 2:
            item = [*item, 0]
        if len(item) != 3:
            raise RequestError(f"{where} must have 3 voxel indices [i, j, k], got {list(item)!r}.")
        point: Point = tuple(_coordinate(c, where) for c in item)  # type: ignore[assignment]
        if point not in known:
            known.add(point)
            points.append(point)
    return points


def check_click_count(request: dict, limit: int) -> int:
    """Refuse a request with more than ``limit`` clicks before any work is done; return the count.

    Only the lengths of the ``foreground`` / ``background`` lists are read (their content is checked later by
    :func:`parse_points`).

    Raises:
        RequestError: more than ``limit`` clicks.
    """
    counts = []
    for name in ("foreground", "background"):
        value = request.get(name)
        counts.append(len(value) if isinstance(value, (list, tuple)) else 0)
    total = sum(counts)
    if total > limit:
        raise RequestError(
            f"too many clicks: {total} sent ({counts[0]} foreground, {counts[1]} background); at most {limit} per "
            "request are accepted (--conf max_clicks)."
        )
    return total


def check_contradictions(foreground: Sequence[Point], background: Sequence[Point]) -> None:
    """Refuse a voxel sent as both foreground and background (after rounding to the nearest voxel).

    Raises:
        RequestError: naming the first such voxel.
    """
    negative = set(background)
    for point in foreground:
        if point in negative:
            raise RequestError(
                f"voxel {list(point)} is sent as both foreground and background: a click has one sign, remove it "
                "from one of the two lists."
            )


def client_key(value: Any) -> str | None:
    """The interaction-state key of a request's ``client_id``; ``None`` when the request sent none.

    A request without ``client_id`` is answered on its own: it neither reads nor writes any stored interaction.

    Raises:
        RequestError: a ``client_id`` that is not a string or integer of at most 256 characters.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or len(str(value)) > 256:
        raise RequestError(f"'client_id' must be a string of at most 256 characters, got {value!r:.80}.")
    return str(value)


def check_bounds(points: Iterable[Point], shape: Sequence[int], name: str) -> None:
    """Raise ``RequestError`` naming the first point outside a volume of spatial ``shape`` ``(H, W, D)``."""
    for point in points:
        if not all(0 <= c < s for c, s in zip(point, shape, strict=True)):
            raise RequestError(
                f"{name} click {list(point)} is outside the image: valid voxel indices are "
                f"[0..{shape[0] - 1}, 0..{shape[1] - 1}, 0..{shape[2] - 1}]."
            )


def latest_point(foreground: Sequence[Point], background: Sequence[Point], seen: Iterable[Point] = ()) -> Point:
    """The click a request most probably added last.

    Clients send two unordered lists, so the order of a foreground and a background click is unknown. The
    points not ``seen`` in the client's previous request are the new ones; the last of them (foreground first, then
    background, each in request order) is the latest. When no point is new, the last foreground point (else the
    last background point) is taken.

    Raises:
        RequestError: when both lists are empty.
    """
    everything = list(foreground) + list(background)
    if not everything:
        raise RequestError("no clicks: send at least one 'foreground' or 'background' voxel [i, j, k].")
    seen_set = set(seen)
    new = [p for p in everything if p not in seen_set]
    if new:
        return new[-1]
    return (foreground or background)[-1]


def select_slice(request: dict, foreground: Sequence[Point], background: Sequence[Point], seen=()) -> int:
    """The slice ``k`` to segment: the request's ``slice`` when present, else the ``k`` of :func:`latest_point`.

    Raises:
        RequestError: when ``slice`` is not an integer or there are no clicks at all.
    """
    if not foreground and not background:
        raise RequestError("no clicks: send at least one 'foreground' or 'background' voxel [i, j, k].")
    value = request.get("slice")
    if value is None or value == "":
        return latest_point(foreground, background, seen)[2]
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError as err:
            raise RequestError(f"'slice' must be an integer slice index, got {request['slice']!r}.") from err
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise RequestError(f"'slice' must be an integer slice index, got {request['slice']!r}.")
    return int(value)


def mask_bbox(mask: np.ndarray) -> list[int] | None:
    """Inclusive bounding box ``[i_min, j_min, i_max, j_max]`` of a 2-D boolean mask, ``None`` when empty."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}.")
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return [int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])]


def encode_rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO-style run-length encoding of a 2-D boolean mask.

    Runs are taken in column-major (Fortran) order and alternate background / foreground, starting with a
    (possibly zero) background run, so ``pycocotools.mask.frPyObjects`` decodes it as is.

    Returns:
        ``{"size": [H, W], "counts": [run lengths]}``.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}.")
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return {"size": list(mask.shape), "counts": []}
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"size": [int(s) for s in mask.shape], "counts": [int(r) for r in runs]}
