# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""File checks for images and labels before they are used: one rule set for the MONAI Label app and for training.

An **image** passes when it is a non-empty file that MONAI ``LoadImage`` decodes completely (a truncated or corrupt
file fails), whose array is 3-D ``[H, W, D]`` or 4-D channels last ``[H, W, D, C]`` with ``1 <= C <=
max_channels`` (the documented 4-D form: one channel per MRI sequence or colour), with at most ``max_voxels`` values
and only finite voxels (no NaN, no Inf). A **label** passes when it is a non-empty, fully decodable file whose array
(a trailing axis of size 1 is dropped) has exactly the image's spatial shape ``[H, W, D]`` and only integral values
in ``0..max_label``.

Every failure raises :class:`~monai_adaptiveclick.data.items.BadInputError` whose message starts with the name given
for the file (``name``, default the file name) and says what is wrong; messages never carry other paths than the
one checked. The checks read the header first (size and shape are refused before any voxel is decoded), then the
voxels.

Example:
    >>> import tempfile, pathlib, nibabel as nib, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> nib.save(nib.Nifti1Image(np.zeros((4, 5, 3), np.float32), np.eye(4)), folder / "image.nii.gz")
    >>> nib.save(nib.Nifti1Image(np.ones((4, 5, 2), np.uint8), np.eye(4)), folder / "label.nii.gz")
    >>> check_image_file(folder / "image.nii.gz").spatial_shape
    (4, 5, 3)
    >>> check_pair(folder / "image.nii.gz", folder / "label.nii.gz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    monai_adaptiveclick.data.items.BadInputError: label.nii.gz: label shape (4, 5, 2) differs from the image shape ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .items import BadInputError
from .volume_io import read_volume_header, volume_reader

__all__ = [
    "DEFAULT_MAX_CHANNELS",
    "DEFAULT_MAX_LABEL",
    "DEFAULT_MAX_VOXELS",
    "CheckedFile",
    "check_finite",
    "check_image_file",
    "check_label_array",
    "check_label_file",
    "check_pair",
]

#: Most channels of a 4-D (channels last) image: four MRI sequences (BraTS) or RGB(A).
DEFAULT_MAX_CHANNELS = 4
#: Largest label value accepted (labels are stored as small non-negative integers, e.g. ``uint8``).
DEFAULT_MAX_LABEL = 255
#: Most values in one file (2**28: a 1 GiB float32 volume); larger headers are refused before decoding.
DEFAULT_MAX_VOXELS = 2**28


@dataclass(frozen=True)
class CheckedFile:
    """What a passed check learned about a file.

    Attributes:
        path: the file checked.
        shape: the array shape as MONAI ``LoadImage`` returns it (the header's shape when voxels were not read).
        spatial_shape: ``(H, W, D)``: the first three axes.
        channels: number of channels (the last axis of a 4-D image, else 1).
        dtype: the stored data type (``""`` when voxels were not read).
        values: the sorted distinct values of a label, ``()`` for an image.
    """

    path: str
    shape: tuple[int, ...]
    spatial_shape: tuple[int, ...]
    channels: int
    dtype: str = ""
    values: tuple[int, ...] = ()


def _positive(value: int, what: str) -> int:
    if isinstance(value, bool) or int(value) < 1:
        raise ValueError(f"{what} must be >= 1, got {value!r}")
    return int(value)


def _clean(message: str, path: str, name: str) -> str:
    """A reader's message with the checked file's path replaced by its display name."""
    for variant in {path, os.path.realpath(path), os.path.abspath(path)}:
        message = message.replace(variant, name)
    return message.strip().splitlines()[0] if message.strip() else "unknown reader error"


def _open(path: str | Path, name: str | None, max_voxels: int) -> tuple[str, str, tuple[int, ...]]:
    """``(path, display name, header shape)`` of an existing, non-empty file whose header reads."""
    path = os.fspath(path)
    name = name or os.path.basename(path)
    if not os.path.isfile(path):
        raise BadInputError(f"{name}: not a file")
    if os.path.getsize(path) == 0:
        raise BadInputError(f"{name}: empty file (0 bytes)")
    try:
        shape, _ = read_volume_header(path)
    except BadInputError as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        raise BadInputError(f"{name}: not a readable image ({_clean(str(cause), path, name)})") from err
    shape = tuple(int(s) for s in shape)
    if not shape or min(shape) < 1:
        raise BadInputError(f"{name}: image has an empty axis (shape {shape})")
    voxels = int(np.prod(shape, dtype=np.int64))
    if voxels > max_voxels:
        raise BadInputError(f"{name}: {voxels} values (shape {shape}) exceed the limit of {max_voxels}")
    return path, name, shape


def _decode(path: str, name: str) -> np.ndarray:
    """Every voxel of ``path`` (``LoadImage`` array order); a truncated or corrupt file raises ``BadInputError``."""
    try:
        return np.asarray(volume_reader(None)(path))
    except Exception as err:  # noqa: BLE001 - any reader failure means unusable voxel data
        detail = _clean(f"{type(err).__name__}: {err}", path, name)
        raise BadInputError(f"{name}: voxel data cannot be read, the file is truncated or corrupt ({detail})") from err


def _image_layout(shape: tuple[int, ...], name: str, max_channels: int) -> tuple[tuple[int, ...], int]:
    """``(spatial shape, channels)`` of a 3-D or 4-D channels-last shape, else ``BadInputError``."""
    if len(shape) == 3:
        return shape, 1
    if len(shape) == 4 and 1 <= shape[3] <= max_channels:
        return shape[:3], shape[3]
    if len(shape) == 4:
        raise BadInputError(
            f"{name}: a 4-D image must have its channels last, at most {max_channels} of them; got shape {shape}"
        )
    raise BadInputError(f"{name}: expected a 3-D image [H, W, D] or 4-D [H, W, D, channels], got shape {shape}")


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise ``BadInputError`` naming ``name`` when ``array`` holds a NaN or an infinite value.

    Example:
        >>> check_finite(np.array([1.0, np.nan]), "scan.nii.gz")
        Traceback (most recent call last):
        ...
        monai_adaptiveclick.data.items.BadInputError: scan.nii.gz: 1 voxel values are not finite (NaN or Inf)
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.inexact):
        return
    finite = np.isfinite(array)
    if not finite.all():
        count = int(finite.size - np.count_nonzero(finite))
        raise BadInputError(f"{name}: {count} voxel values are not finite (NaN or Inf)")


def check_image_file(
    path: str | Path,
    *,
    name: str | None = None,
    max_channels: int = DEFAULT_MAX_CHANNELS,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    read_voxels: bool = True,
) -> CheckedFile:
    """Check that ``path`` is a usable image (see the module docstring).

    Args:
        path: the image file.
        name: how messages call the file (default its file name), e.g. ``"upload 'case_7'"``.
        max_channels: most channels of a 4-D image.
        max_voxels: most values in the file.
        read_voxels: decode every voxel (truncation, finiteness); ``False`` checks the header only.

    Returns:
        What the check learned (:class:`CheckedFile`).

    Raises:
        BadInputError: the file is missing, empty, unreadable, truncated, of another layout, too large or holds
            non-finite voxels; the message names the file and the problem.
        ValueError: ``max_channels`` or ``max_voxels`` below 1.
    """
    max_channels = _positive(max_channels, "max_channels")
    path, name, shape = _open(path, name, _positive(max_voxels, "max_voxels"))
    _image_layout(shape, name, max_channels)
    if not read_voxels:
        spatial, channels = _image_layout(shape, name, max_channels)
        return CheckedFile(path, shape, spatial, channels)
    array = _decode(path, name)
    spatial, channels = _image_layout(tuple(int(s) for s in array.shape), name, max_channels)
    check_finite(array, name)
    return CheckedFile(path, tuple(int(s) for s in array.shape), spatial, channels, str(array.dtype))


def check_label_array(
    array: np.ndarray,
    name: str,
    spatial_shape: tuple[int, ...] | None = None,
    max_label: int = DEFAULT_MAX_LABEL,
) -> tuple[int, ...]:
    """Check a decoded label array; return its sorted distinct values.

    Args:
        array: the label as read (a trailing axis of size 1 is ignored).
        name: how messages call the label.
        spatial_shape: the image's ``(H, W, D)``; ``None`` checks a 3-D shape only.
        max_label: largest value accepted.

    Raises:
        BadInputError: a shape other than ``spatial_shape`` (or not 3-D), non-finite, non-integral, negative or too
            large values.
        ValueError: ``max_label`` below 1.

    Example:
        >>> check_label_array(np.array([[[0, 2]], [[2, 1]]]), "label", (2, 1, 2))
        (0, 1, 2)
        >>> check_label_array(np.full((2, 1, 2), 0.5), "label")
        Traceback (most recent call last):
        ...
        monai_adaptiveclick.data.items.BadInputError: label: label values must be integers, found 0.5
    """
    max_label = _positive(max_label, "max_label")
    array = np.asarray(array)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    shape = tuple(int(s) for s in array.shape)
    expected = tuple(int(s) for s in spatial_shape) if spatial_shape is not None else None
    if expected is not None and shape != expected:
        raise BadInputError(f"{name}: label shape {shape} differs from the image shape {expected}")
    if array.ndim != 3:
        raise BadInputError(f"{name}: expected a 3-D label [H, W, D], got shape {shape}")
    check_finite(array, name)
    values = np.unique(array)
    fractional = values[values != np.rint(values)]
    if fractional.size:
        raise BadInputError(f"{name}: label values must be integers, found {fractional[0].item():g}")
    if values.size and values[0] < 0:
        raise BadInputError(f"{name}: label values must be >= 0, found {values[0].item():g}")
    if values.size and values[-1] > max_label:
        raise BadInputError(f"{name}: label values must be <= {max_label}, found {values[-1].item():g}")
    return tuple(int(v) for v in values)


def check_label_file(
    path: str | Path,
    spatial_shape: tuple[int, ...] | None = None,
    *,
    name: str | None = None,
    max_label: int = DEFAULT_MAX_LABEL,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> CheckedFile:
    """Check that ``path`` is a usable label for an image of ``spatial_shape`` (see :func:`check_label_array`).

    Args:
        path: the label file.
        spatial_shape: the image's ``(H, W, D)`` (:attr:`CheckedFile.spatial_shape` of the image); ``None``: any
            3-D shape.
        name: how messages call the file (default its file name).
        max_label: largest label value accepted.
        max_voxels: most values in the file.

    Returns:
        What the check learned, with the label's distinct ``values``.

    Raises:
        BadInputError: missing, empty, unreadable or truncated file, another shape, bad values.
        ValueError: bad limits.
    """
    path, name, _ = _open(path, name, _positive(max_voxels, "max_voxels"))
    array = _decode(path, name)
    values = check_label_array(array, name, spatial_shape, max_label)
    shape = tuple(int(s) for s in array.shape)
    return CheckedFile(path, shape, shape[:3], 1, str(array.dtype), values)


def check_pair(
    image: str | Path,
    label: str | Path,
    *,
    max_channels: int = DEFAULT_MAX_CHANNELS,
    max_label: int = DEFAULT_MAX_LABEL,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> tuple[CheckedFile, CheckedFile]:
    """Check an image and its label together (:func:`check_image_file`, then :func:`check_label_file`).

    Returns:
        ``(image check, label check)``.

    Raises:
        BadInputError: naming whichever file fails first, image first.
    """
    checked = check_image_file(image, max_channels=max_channels, max_voxels=max_voxels)
    return checked, check_label_file(label, checked.spatial_shape, max_label=max_label, max_voxels=max_voxels)
