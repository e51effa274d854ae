# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Image volumes as the model sees them: channels first, multi-sequence MRI stacked from sibling files.

Coordinates follow the ARCHITECTURE contract: the array is what MONAI ``LoadImage`` returns (no RAS reorientation,
no transposes), voxel ``[i, j, k]`` is pixel ``(y=i, x=j)`` of slice ``k``, and :class:`Volume` keeps it as
``data[c, i, j, k]``, so ``data[:, :, :, k]`` is the ``[C, H, W]`` input of slice ``k``. A 2-D image is a volume of
one slice (``D = 1``), a 3-D volume has one channel, a 4-D (channels last) file has its last axis as channels. Note
that MONAI's PIL reader (PNG / JPEG) returns the column first, ``array[x, y]``; it is kept as read. Decoded volumes
are kept between uses by :class:`~monai_adaptiveclick.data.volume_cache.VolumeCache`.

Multi-sequence MRI (issue 7): a model trained on several sequences lists their names (:func:`model_sequences`;
BraTS order :data:`BRATS_SEQUENCES` for a 4-channel model without names). When the opened image is named
``<case>_<sequence>.<ext>`` and every ``<case>_<s>.<ext>`` sibling exists next to it, :func:`load_image_volume`
stacks the siblings as channels in the asked order. It never adapts channels to a model: a volume has the file's
own channels (or the stacked siblings); repeating a grey volume for an RGB model is the Predictor's job.

Example:
    >>> import tempfile, pathlib, nibabel as nib, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for value, sequence in enumerate(BRATS_SEQUENCES):
    ...     nib.save(nib.Nifti1Image(np.full((4, 5, 3), value, np.float32), np.eye(4)), folder / f"c1_{sequence}.nii")
    >>> volume = load_image_volume(folder / "c1_t1.nii", sequences=BRATS_SEQUENCES)
    >>> volume.data.shape, volume.data[:, 0, 0, 0].tolist()
    ((4, 4, 5, 3), [0.0, 1.0, 2.0, 3.0])
    >>> load_image_volume(folder / "c1_t1.nii").channels
    ('c1_t1.nii',)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .items import BadInputError
from .volume_io import affine_spacing, split_ext, volume_reader

__all__ = [
    "BRATS_SEQUENCES",
    "Volume",
    "check_sequences",
    "find_sequence_siblings",
    "load_image_volume",
    "model_sequences",
    "volume_source_files",
]

#: BraTS 2021 MRI sequences, in the channel order of the BraTS loaders and of 4-channel models without names.
BRATS_SEQUENCES: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")
_SEQUENCE_NAME = re.compile(r"^(?P<case>.+)_(?P<sequence>[A-Za-z0-9]+)$")


@dataclass(frozen=True, eq=False)
class Volume:
    """A decoded image volume ready for slicing (shared when cached: do not modify ``data`` in place).

    Attributes:
        data: float32 ``[C, H, W, D]`` (``D = 1`` for a 2-D image); ``data[:, :, :, k]`` is the model input slice.
        affine: float64 ``[4, 4]`` voxel-to-world matrix of the image (as MONAI's reader reports it).
        spatial_shape: the image's spatial shape, ``(H, W, D)`` or ``(H, W)`` for a 2-D image; a label written
            back has exactly this shape.
        channels: the source of each channel (file name, or file name + ``[c]`` for a multi-channel file).

    Raises:
        ValueError: inconsistent fields (``data`` not 4-D float32, ``affine`` not 4x4, shapes or channel names not
            matching ``data``).
    """

    data: np.ndarray
    affine: np.ndarray
    spatial_shape: tuple[int, ...]
    channels: tuple[str, ...]

    def __post_init__(self) -> None:
        data, spatial = self.data, tuple(self.spatial_shape)
        if not isinstance(data, np.ndarray) or data.ndim != 4 or data.dtype != np.float32:
            raise ValueError(f"Volume.data must be a float32 [C, H, W, D] array, got {getattr(data, 'shape', data)}")
        if np.shape(self.affine) != (4, 4):
            raise ValueError(f"Volume.affine must be [4, 4], got shape {np.shape(self.affine)}")
        if data.shape[1:] != spatial and not (len(spatial) == 2 and data.shape[1:] == (*spatial, 1)):
            raise ValueError(f"Volume.spatial_shape {spatial} does not match data of shape {data.shape}")
        if len(self.channels) != data.shape[0]:
            raise ValueError(f"Volume has {data.shape[0]} channels but {len(self.channels)} channel names")

    @property
    def depth(self) -> int:
        """Number of slices along the third axis (1 for a 2-D image)."""
        return int(self.data.shape[-1])

    @property
    def spacing(self) -> np.ndarray:
        """Voxel spacing along ``i, j, k`` from the affine."""
        return affine_spacing(self.affine)


def check_sequences(sequences: Sequence[str] | None) -> tuple[str, ...] | None:
    """Validate sequence names and return them lower-cased (``None`` stays ``None``).

    Raises:
        ValueError: a plain string, an empty list, an empty or non-string name, or a name given twice.
    """
    if sequences is None:
        return None
    if isinstance(sequences, (str, bytes)):
        raise ValueError(f"sequences must be a list of names such as ('flair', 't1'), got the string {sequences!r}")
    names = tuple(sequences)
    if not names or not all(isinstance(s, str) and s for s in names):
        raise ValueError(f"sequences must list at least one non-empty name, got {names!r}")
    lowered = tuple(s.lower() for s in names)
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"sequences lists a name twice: {names!r}")
    return lowered


def model_sequences(config: dict, in_channels: int) -> tuple[str, ...] | None:
    """The MRI sequence names a model was trained with, in channel order, or ``None`` when not multi-sequence.

    Args:
        config: the model's ``config`` dict; ``config["sequences"]`` wins when present.
        in_channels: number of image channels of the model.

    Returns:
        ``config["sequences"]`` (lower-cased) when it lists ``in_channels`` names; the BraTS order for a 4-channel
        model without the key; ``None`` otherwise (e.g. 3 channels = RGB-pretrained, 1 channel = grey).

    Raises:
        ValueError: ``in_channels < 1``, or ``config["sequences"]`` present but not listing ``in_channels`` names.

    Example:
        >>> model_sequences({"sequences": ["T2", "FLAIR"]}, 2), model_sequences({}, 4), model_sequences({}, 3)
        (('t2', 'flair'), ('flair', 't1', 't1ce', 't2'), None)
    """
    if int(in_channels) < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    sequences = config.get("sequences") if isinstance(config, dict) else None
    if sequences:
        names = check_sequences([str(s) for s in sequences])
        if len(names) != in_channels:
            raise ValueError(f"model config lists {len(names)} sequences {names} but has {in_channels} image channels")
        return names
    if in_channels == len(BRATS_SEQUENCES):
        return BRATS_SEQUENCES
    return None


def find_sequence_siblings(path: str | Path, sequences: Sequence[str]) -> list[str] | None:
    """Find the BraTS-style sibling files ``<case>_<sequence><ext>`` of ``path``, one per entry of ``sequences``.

    Args:
        path: the opened image, e.g. ``/studies/BraTS2021_00000_flair.nii.gz``.
        sequences: the wanted sequence names in channel order, e.g. ``("flair", "t1", "t1ce", "t2")``.

    Returns:
        The sibling paths in the order of ``sequences`` (``path`` itself among them) when the file name has the
        ``<case>_<sequence>`` form with a sequence of the list and every sibling exists; ``None`` otherwise.
        Names are matched case-insensitively, with the opened file's extension.

    Raises:
        ValueError: invalid ``sequences`` (:func:`check_sequences`).
    """
    wanted = check_sequences(sequences)
    if wanted is None:
        raise ValueError("sequences must list at least one sequence name, got None")
    path = os.fspath(path)
    folder = os.path.dirname(path)
    stem, ext = split_ext(os.path.basename(path))
    match = _SEQUENCE_NAME.match(stem)
    if match is None or match.group("sequence").lower() not in wanted or not os.path.isdir(folder or "."):
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


def volume_source_files(path: str | Path, sequences: Sequence[str] | None = None) -> list[str]:
    """Every file :func:`load_image_volume` may read for ``path``: what a cache must watch for changes.

    The sibling files when ``sequences`` finds them, the files of a DICOM series folder (after the folder itself),
    else ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: invalid ``sequences``.
    """
    path = os.fspath(path)
    sequences = check_sequences(sequences)
    if not os.path.exists(path):
        raise FileNotFoundError(f"image file not found: {path}")
    if os.path.isdir(path):
        return [path] + sorted(e.path for e in os.scandir(path) if e.is_file())
    if sequences:
        return find_sequence_siblings(path, sequences) or [path]
    return [path]


def _channels_last(image: object) -> bool:
    """Whether MONAI's reader reported a trailing channel axis (``original_channel_dim == -1``, e.g. an RGB PNG)."""
    try:
        return int(getattr(image, "meta", {}).get("original_channel_dim")) == -1
    except (TypeError, ValueError):  # "no_channel", NaN or absent
        return False


def _read_channels(path: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], tuple[str, ...]]:
    """Read one file as ``(data [C, H, W, D] float32, affine [4, 4], spatial shape, channel names)``."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        image = volume_reader("ITKReader" if os.path.isdir(path) else None)(path)
    except Exception as e:  # noqa: BLE001 - any reader failure means an unreadable image
        raise BadInputError(f"unreadable image {path}: {e}") from e
    array = np.asarray(image, dtype=np.float32)
    channels_last = array.ndim == 4 or (array.ndim == 3 and _channels_last(image))
    name = os.path.basename(os.path.normpath(path))
    if array.ndim == 2:
        data, spatial, names = array[None, :, :, None], tuple(array.shape), (name,)
    elif array.ndim == 3 and not channels_last:
        data, spatial, names = array[None], tuple(array.shape), (name,)
    elif array.ndim in (3, 4):
        data = np.moveaxis(array, -1, 0)
        data = data[..., None] if array.ndim == 3 else data
        spatial, names = tuple(array.shape[:-1]), tuple(f"{name}[{c}]" for c in range(array.shape[-1]))
    else:
        raise BadInputError(f"{path}: expected a 2-D or 3-D image (channels last allowed), got shape {array.shape}")
    affine = np.eye(4)
    raw = np.asarray(getattr(image, "affine", np.eye(4)), dtype=np.float64)
    n = min(raw.shape[0], 4) - 1  # a 2-D reader may give a [3, 3] affine: spatial block + translation column
    affine[:n, :n], affine[:n, 3] = raw[:n, :n], raw[:n, -1]
    return np.ascontiguousarray(data), affine, tuple(int(s) for s in spatial), names


def load_image_volume(path: str | Path, sequences: Sequence[str] | None = None) -> Volume:
    """Load ``path`` (any image MONAI ``LoadImage`` reads, or a DICOM series folder) as a :class:`Volume`.

    Args:
        path: the opened image.
        sequences: sequence names in channel order (e.g. :data:`BRATS_SEQUENCES`); when the opened single-channel
            file is named ``<case>_<sequence>.<ext>`` with every sibling present (:func:`find_sequence_siblings`),
            the siblings are stacked as channels in this order. ``None`` (default) disables the lookup.

    Returns:
        The volume with the file's own channels (or the stacked siblings); ``channels`` tells where each came from.
        The affine is the opened file's.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: invalid ``sequences``; :class:`BadInputError` (a ``ValueError``) naming the file for an
            unreadable image, an array that is not 2-D / 3-D (+ channels last), or a sibling with several channels
            or another spatial shape than the opened image.
    """
    sequences = check_sequences(sequences)
    path = os.fspath(path)
    data, affine, spatial, names = _read_channels(path)
    if sequences and data.shape[0] == 1 and not os.path.isdir(path):
        siblings = find_sequence_siblings(path, sequences)
        if siblings is not None:
            stack = []
            for sibling in siblings:
                sibling_data = data if os.path.samefile(sibling, path) else _read_channels(sibling)[0]
                if sibling_data.shape != data.shape:
                    raise BadInputError(
                        f"sequence {sibling} has shape {sibling_data.shape} (channels first) but {path} has "
                        f"{data.shape}; sibling sequences must be single-channel volumes of one shape"
                    )
                stack.append(sibling_data[0])
            channels = tuple(os.path.basename(s) for s in siblings)
            return Volume(np.stack(stack), affine, spatial, channels)
    return Volume(data, affine, spatial, names)
