# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Dataset item type, validation and the helpers shared by every loader.

A *dataset item* (ARCHITECTURE "Dataset item" contract) describes ONE object instance on one 2-D image::

    {"image": float32 [C, H, W], "label": uint8 [1, H, W] in {0, 1}, "ignore": optional bool [1, H, W],
     "object_id": str, "meta": dict}

Loaders index their files once (reading only the label files, so object counts and the ``min_area`` filter are known
up front) and read the image when an item is requested. Bad input (SPEC section 6 / issue 5: a missing folder, an
image without a mask, mismatched shapes, an empty label, unreadable files) raises :class:`BadInputError` naming the
file, or, with ``skip_bad=True``, is skipped with a warning and counted in ``dataset.skipped``.

The 2-D file helpers (listing, pairing, reading, loading one 2-D object) are in :mod:`.image_io`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import Dataset
from monai.transforms import apply_transform
from scipy import ndimage

__all__ = [
    "BadInputError",
    "BadInputLog",
    "ObjectDataset",
    "build_object_dataset",
    "check_dir",
    "make_item",
    "object_mask",
    "validate_item",
]


class BadInputError(ValueError):
    """A dataset file or folder that cannot be used; the message names the file and the problem."""


class BadInputLog:
    """Raise on bad input, or (``skip_bad=True``) warn and count it.

    Args:
        skip_bad: skip bad cases with a ``UserWarning`` instead of raising.

    Example:
        >>> log = BadInputLog(skip_bad=True)
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     log.report(BadInputError("a.png: no mask"))
        >>> log.count
        1
    """

    def __init__(self, skip_bad: bool = False) -> None:
        self.skip_bad = bool(skip_bad)
        self.messages: list[str] = []

    @property
    def count(self) -> int:
        """Number of skipped cases."""
        return len(self.messages)

    def report(self, error: Exception) -> None:
        """Re-raise ``error`` as :class:`BadInputError`, or record it and warn when skipping."""
        if not self.skip_bad:
            if isinstance(error, BadInputError):
                raise error
            raise BadInputError(str(error)) from error
        self.messages.append(str(error))
        warnings.warn(f"skipped bad input: {error}", UserWarning, stacklevel=3)


def check_dir(path: str | Path, what: str = "dataset folder") -> Path:
    """Return ``path`` as a :class:`Path`, raising :class:`BadInputError` when it is not an existing directory."""
    if path is None:
        raise BadInputError(f"{what}: no path given (root=None)")
    p = Path(path).expanduser()
    if not p.is_dir():
        raise BadInputError(f"{what} not found: {p}")
    return p


def object_mask(label: np.ndarray, spec: tuple) -> np.ndarray:
    """Boolean mask of one object of an integer label array.

    ``spec`` is one of ``("nonzero",)`` (label > 0), ``("value", v)`` (label == v), ``("greater", t)`` (label > t),
    ``("values", (v1, v2, ...))``
    (label in the set), ``("component", c, connectivity)`` (connected component ``c`` (1-based, scipy.ndimage.label
    order) of label > 0; connectivity 1 = 4-/6-connected, the scipy default structure) and
    ``("layer", layer, value)`` (``label[..., layer] == value`` for layered masks).

    Raises:
        ValueError: unknown spec kind.
    """
    kind = spec[0]
    if kind == "nonzero":
        return label > 0
    if kind == "value":
        return label == spec[1]
    if kind == "greater":
        return label > spec[1]
    if kind == "values":
        return np.isin(label, np.asarray(spec[1]))
    if kind == "component":
        structure = ndimage.generate_binary_structure(label.ndim, spec[2])
        comps, _ = ndimage.label(label > 0, structure=structure)
        return comps == spec[1]
    if kind == "layer":
        return label[..., spec[1]] == spec[2]
    raise ValueError(f"unknown object spec {spec!r}")


def make_item(
    image: np.ndarray,
    mask: np.ndarray,
    object_id: str,
    meta: Mapping[str, Any] | None = None,
    ignore: np.ndarray | None = None,
) -> dict:
    """Build a validated dataset item from an image ``[C, H, W]`` and a 2-D (or ``[1, H, W]``) object mask.

    Args:
        image: float image ``[C, H, W]`` (converted to float32, C-contiguous).
        mask: object mask ``[H, W]`` or ``[1, H, W]``; non-zero = object.
        object_id: unique identifier of the object instance.
        meta: free-form metadata (source files, slice index, affine, ...).
        ignore: optional ignore mask ``[H, W]`` or ``[1, H, W]``; non-zero = ignored pixel.

    Returns:
        The item dict (ARCHITECTURE "Dataset item" contract).

    Raises:
        ValueError: shape mismatches or an image that is not 3-D.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    label = np.asarray(mask)
    if label.ndim == 2:
        label = label[None]
    item: dict[str, Any] = {
        "image": image,
        "label": np.ascontiguousarray(label != 0, dtype=np.uint8),
        "object_id": str(object_id),
        "meta": dict(meta or {}),
    }
    if ignore is not None:
        ign = np.asarray(ignore)
        item["ignore"] = np.ascontiguousarray((ign[None] if ign.ndim == 2 else ign) != 0)
    validate_item(item)
    return item


def validate_item(item: Mapping[str, Any]) -> None:
    """Check that ``item`` follows the dataset item contract.

    Raises:
        ValueError: a missing key, wrong dtype / shape, non-binary label or non-finite image.
    """
    for key in ("image", "label", "object_id", "meta"):
        if key not in item:
            raise ValueError(f"dataset item has no {key!r} key")
    image, label = item["image"], item["label"]
    if not isinstance(image, np.ndarray) or image.dtype != np.float32 or image.ndim != 3:
        raise ValueError(f"item image must be a float32 [C, H, W] array, got {getattr(image, 'dtype', type(image))}")
    if not np.all(np.isfinite(image)):
        raise ValueError(f"item {item['object_id']!r}: image has NaN or infinite values")
    if not isinstance(label, np.ndarray) or label.dtype != np.uint8 or label.ndim != 3 or label.shape[0] != 1:
        raise ValueError(f"item label must be a uint8 [1, H, W] array, got {getattr(label, 'shape', type(label))}")
    if label.shape[1:] != image.shape[1:]:
        raise ValueError(f"item {item['object_id']!r}: label {label.shape} and image {image.shape} sizes differ")
    if label.max(initial=0) > 1:
        raise ValueError(f"item {item['object_id']!r}: label values must be in {{0, 1}}")
    if "ignore" in item:
        ign = item["ignore"]
        if not isinstance(ign, np.ndarray) or ign.dtype != bool or ign.shape != label.shape:
            raise ValueError(f"item {item['object_id']!r}: ignore must be a bool array of shape {label.shape}")
    if not isinstance(item["object_id"], str) or not isinstance(item["meta"], dict):
        raise ValueError("item object_id must be a str and meta a dict")


class ObjectDataset(Dataset):
    """A MONAI :class:`~monai.data.Dataset` of object instances, loaded lazily from an index of entries.

    Args:
        entries: one small dict per object instance (file paths, object spec, object id ...).
        loader: ``loader(entry) -> item`` reading the files of one entry.
        transform: optional MONAI (dict) transform applied to each loaded item.
        log: the :class:`BadInputLog` of the indexing pass (``skipped`` / ``skipped_messages`` come from it).
        filtered: number of objects dropped by the ``min_area`` filter while indexing.

    Attributes:
        skipped: number of bad files / cases skipped (``skip_bad=True``).
        skipped_messages: why each one was skipped.
        filtered: number of objects below ``min_area``.
    """

    def __init__(
        self,
        entries: Sequence[dict],
        loader: Callable[[dict], dict],
        transform: Callable | None = None,
        log: BadInputLog | None = None,
        filtered: int = 0,
    ) -> None:
        super().__init__(data=list(entries), transform=None)
        self.loader = loader
        self.item_transform = transform
        log = log or BadInputLog()
        self.skipped = log.count
        self.skipped_messages = list(log.messages)
        self.filtered = int(filtered)

    @property
    def entries(self) -> list[dict]:
        """The index: one dict per object instance."""
        return self.data

    def _transform(self, index: int) -> dict:
        item = self.loader(self.data[index])
        if self.item_transform is not None:
            item = apply_transform(self.item_transform, item)
        return item

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} objects, skipped={self.skipped}, filtered={self.filtered})"


def build_object_dataset(
    cases: Iterable[dict],
    objects_fn: Callable[[dict], list[tuple[tuple, int, str]]],
    loader: Callable[[dict], dict],
    *,
    name: str,
    min_area: int = 0,
    skip_bad: bool = False,
    transform: Callable | None = None,
    log: BadInputLog | None = None,
) -> ObjectDataset:
    """Index ``cases`` into an :class:`ObjectDataset`.

    Args:
        cases: one dict per image/case; must hold ``"key"`` (unique string used in the object ids) plus whatever
            ``objects_fn`` and ``loader`` need.
        objects_fn: ``objects_fn(case) -> [(spec, area, tag), ...]`` listing the objects of a case (reads label
            files; raises :class:`BadInputError` on bad input); ``spec`` as in :func:`object_mask`, ``tag`` the
            object's name inside the case; an optional 4th element is a dict merged into the entry (e.g. a slice
            index). Objects of area 0 are left out silently (they do not exist).
        loader: ``loader(entry) -> item``; an entry is the case dict plus ``"object"`` (the spec),
            ``"object_id"`` and ``"area"``.
        name: dataset name, first part of each ``object_id`` (``"{name}/{key}/{tag}"``).
        min_area: objects with fewer pixels are dropped and counted in ``filtered``.
        skip_bad: skip bad cases (warn + count) instead of raising.
        transform: optional transform applied to each item.
        log: a :class:`BadInputLog` that already holds the bad input met while listing ``cases`` (its
            ``skip_bad`` wins over the argument).

    Raises:
        ValueError: negative ``min_area``.
        BadInputError: bad input with ``skip_bad=False``.
    """
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0, got {min_area}")
    log = log if log is not None else BadInputLog(skip_bad)
    entries: list[dict] = []
    filtered = 0
    for case in cases:
        try:
            objects = objects_fn(case)
        except BadInputError as e:
            log.report(e)
            continue
        for obj in objects:
            spec, area, tag = obj[:3]
            if area <= 0:
                continue
            if area < min_area:
                filtered += 1
                continue
            extra = obj[3] if len(obj) > 3 else {}
            object_id = f"{name}/{case['key']}/{tag}"
            entries.append({**case, **extra, "object": spec, "area": int(area), "object_id": object_id})
    return ObjectDataset(entries, loader, transform=transform, log=log, filtered=filtered)
