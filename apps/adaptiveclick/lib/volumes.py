# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Volume loading for the MONAI Label app: channel assembly (multi-sequence MRI) and a (path, mtime) cache.

Coordinates follow the ARCHITECTURE contract: the array is what MONAI ``LoadImage`` returns, voxel ``[i, j, k]``
is pixel ``(y=i, x=j)`` of slice ``k`` = ``array[:, :, k]``; no RAS reorientation, no transposes.

Multi-sequence (issue 7): a model trained on several MRI sequences stores their names in ``config["sequences"]``
(a 4-channel model without that key is taken to be BraTS-ordered ``flair, t1, t1ce, t2``). When the opened image is
named ``<case>_<sequence>.<ext>`` and every ``<case>_<s>.<ext>`` sibling exists next to it, the siblings are stacked
as channels in the model's order; otherwise the opened volume is used (its own channels, or its single channel
repeated to the model's channel count, e.g. a grey volume for an RGB-pretrained model).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from monai.transforms import LoadImage

from .common import LRUCache

__all__ = [
    "BRATS_SEQUENCES",
    "Volume",
    "VolumeCache",
    "find_sequence_siblings",
    "load_array",
    "load_volume",
    "split_ext",
    "model_sequences",
]

BRATS_SEQUENCES: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")
_DOUBLE_EXTS = (".nii.gz", ".seg.nrrd")
_SEQUENCE_NAME = re.compile(r"^(?P<case>.+)_(?P<sequence>[A-Za-z0-9]+)$")


@dataclass(frozen=True)
class Volume:
    """A decoded image volume ready for slicing.

    Attributes:
        data: float32 ``[C, H, W, D]`` (``D = 1`` for a 2-D image); ``data[:, :, :, k]`` is the model input slice.
        affine: float64 ``[4, 4]`` voxel-to-world matrix of the image (as MONAI's reader reports it).
        spatial_shape: the image's spatial shape, ``(H, W, D)`` or ``(H, W)`` for a 2-D image; the label written
            back has exactly this shape.
        channels: the source of each channel (file name, or file name + ``[c]`` for a multi-channel file).
    """

    data: np.ndarray
    affine: np.ndarray
    spatial_shape: tuple[int, ...]
    channels: tuple[str, ...]

    @property
    def depth(self) -> int:
        """Number of slices along the third axis (1 for a 2-D image)."""
        return int(self.data.shape[-1])


def split_ext(path: str) -> tuple[str, str]:
    """Split ``path`` into ``(stem, extension)``, keeping double extensions such as ``.nii.gz`` together."""
    lower = path.lower()
    for ext in _DOUBLE_EXTS:
        if lower.endswith(ext):
            return path[: -len(ext)], path[-len(ext) :]
    stem, ext = os.path.splitext(path)
    return stem, ext


def model_sequences(config: dict, in_channels: int) -> tuple[str, ...] | None:
    """The MRI sequence names a model was trained with, in channel order, or ``None`` when not multi-sequence.

    Args:
        config: the model's ``config`` dict; ``config["sequences"]`` wins when present.
        in_channels: number of image channels of the model.

    Returns:
        ``config["sequences"]`` (lower-cased) when it lists ``in_channels`` names; the BraTS order for a 4-channel
        model without the key; ``None`` otherwise (e.g. 3 channels = RGB-pretrained, 1 channel = grey).

    Raises:
        ValueError: when ``config["sequences"]`` is present but does not list ``in_channels`` names.
    """
    sequences = config.get("sequences") if isinstance(config, dict) else None
    if sequences:
        names = tuple(str(s).lower() for s in sequences)
        if len(names) != in_channels:
            raise ValueError(f"model config lists {len(names)} sequences {names} but has {in_channels} image channels.")
        return names
    if in_channels == len(BRATS_SEQUENCES):
        return BRATS_SEQUENCES
    return None


def find_sequence_siblings(path: str, sequences: Sequence[str]) -> list[str] | None:
    """Find the BraTS-style sibling files ``<case>_<sequence><ext>`` of ``path``, one per entry of ``sequences``.

    Args:
        path: the opened image, e.g. ``/studies/BraTS2021_00000_flair.nii.gz``.
        sequences: the wanted sequence names in channel order, e.g. ``("flair", "t1", "t1ce", "t2")``.

    Returns:
        The sibling paths in the order of ``sequences`` (``path`` itself among them) when the file name has the
        ``<case>_<sequence>`` form with a sequence of the list and every sibling exists; ``None`` otherwise.
        Names are matched case-insensitively, with the opened file's extension.
    """
    if not sequences:
        raise ValueError("sequences must list at least one sequence name.")
    folder = os.path.dirname(path)
    stem, ext = split_ext(os.path.basename(path))
    match = _SEQUENCE_NAME.match(stem)
    wanted = [s.lower() for s in sequences]
    if match is None or match.group("sequence").lower() not in wanted:
        return None
    case = match.group("case")
    listing = {name.lower(): name for name in os.listdir(folder or ".")}
    found = []
    for sequence in wanted:
        name = listing.get(f"{case}_{sequence}{ext}".lower())
        if name is None:
            return None
        found.append(os.path.join(folder, name))
    return found


def load_array(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read an image with MONAI ``LoadImage`` (array order as the reader returns it, no reorientation).

    Args:
        path: a NIfTI / NRRD / MetaImage / ... file MONAI can read.

    Returns:
        ``(array float32, affine float64 [4, 4])``.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    image = LoadImage(image_only=True, dtype=np.float32)(path)
    array = np.asarray(image, dtype=np.float32)
    affine = np.asarray(image.affine, dtype=np.float64) if hasattr(image, "affine") else np.eye(4)
    return array, affine


def _as_channels(array: np.ndarray, path: str) -> tuple[np.ndarray, tuple[int, ...], tuple[str, ...]]:
    """Arrange a loaded array as ``[C, H, W, D]``; returns it with the spatial shape and the channel names."""
    name = os.path.basename(path)
    if array.ndim == 2:
        return array[None, :, :, None], tuple(array.shape), (name,)
    if array.ndim == 3:
        return array[None], tuple(array.shape), (name,)
    if array.ndim == 4:
        channels = array.shape[-1]
        data = np.moveaxis(array, -1, 0)
        return data, tuple(array.shape[:3]), tuple(f"{name}[{c}]" for c in range(channels))
    raise ValueError(f"{path}: expected a 2-D, 3-D or 4-D (channels last) image, got shape {array.shape}.")


def load_volume(path: str, in_channels: int, sequences: Sequence[str] | None = None) -> Volume:
    """Load ``path`` as a :class:`Volume` with exactly ``in_channels`` channels (see the module docstring).

    Args:
        path: the opened image.
        in_channels: number of image channels the model takes.
        sequences: the model's sequence names (:func:`model_sequences`); ``None`` disables the sibling lookup.

    Returns:
        The volume; ``channels`` tells where each channel came from.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the image has a channel count the model cannot use, or a sibling sequence has another
            spatial shape than the opened image.
    """
    if int(in_channels) < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}.")
    array, affine = load_array(path)
    data, spatial, names = _as_channels(array, path)
    if sequences and data.shape[0] == 1 and len(sequences) == in_channels > 1:
        siblings = find_sequence_siblings(path, sequences)
        if siblings is not None:
            stack = []
            for sibling in siblings:
                sibling_data = (
                    data if os.path.samefile(sibling, path) else _as_channels(load_array(sibling)[0], sibling)[0]
                )
                if sibling_data.shape != data.shape:
                    raise ValueError(
                        f"sequence {sibling} has shape {sibling_data.shape[1:]} but {path} has {data.shape[1:]}."
                    )
                stack.append(sibling_data[0])
            channels = tuple(os.path.basename(s) for s in siblings)
            return Volume(np.ascontiguousarray(np.stack(stack)), affine, spatial, channels)
    if data.shape[0] == in_channels:
        return Volume(np.ascontiguousarray(data), affine, spatial, names)
    if data.shape[0] == 1:
        repeated = np.ascontiguousarray(np.repeat(data, in_channels, axis=0))
        return Volume(repeated, affine, spatial, names * in_channels)
    raise ValueError(f"{path} has {data.shape[0]} channels but the model takes {in_channels} image channels.")


class VolumeCache:
    """Decoded volumes kept between clicks, keyed by the files' real paths and modification times (issue 7, "Speed").

    A file that changes on disk (new mtime) is decoded again; the least recently used volumes are dropped beyond
    ``max_items``.

    Args:
        max_items: the most volumes kept in memory.
    """

    def __init__(self, max_items: int = 4) -> None:
        self._cache: LRUCache[Volume] = LRUCache(max_items)

    def get(self, path: str, in_channels: int, sequences: Sequence[str] | None = None) -> Volume:
        """Return the volume of ``path`` (see :func:`load_volume`), decoding it only when not cached."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image file not found: {path}")
        files = [path]
        if sequences and in_channels > 1:
            files = find_sequence_siblings(path, sequences) or [path]
        key = (
            tuple((os.path.realpath(f), os.stat(f).st_mtime_ns) for f in files),
            int(in_channels),
            tuple(sequences or ()),
        )
        return self._cache.get_or_create(key, lambda: load_volume(path, in_channels, sequences))

    def clear(self) -> None:
        """Drop every cached volume."""
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
