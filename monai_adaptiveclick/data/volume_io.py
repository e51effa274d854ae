# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Reading 3-D volumes and their headers: NIfTI, NRRD, MetaImage files and DICOM series folders.

Orientation (ARCHITECTURE "Coordinates" contract): volumes are read with MONAI ``LoadImage(image_only=True)``
(NiBabel reader for NIfTI, ITK reader for NRRD / MetaImage / DICOM series), whose array order is the voxel index
order ``[i, j, k]`` for every one of these formats (checked on monai 1.6.1: a marker written at index (i, j, k) comes
back at ``array[i, j, k]``; no RAS re-orientation of the array). Slice ``k`` is ``volume[:, :, k]`` and a click
``(y, x)`` on it is voxel ``(y, x, k)``, the same slice 3D Slicer shows through MONAI Label.

Headers (:func:`read_volume_header`) are read without decoding the voxels (nibabel for NIfTI, SimpleITK for the
others) and report the affine in the RAS convention MONAI uses, so headers of different formats compare.

Example:
    >>> import tempfile, pathlib, nibabel as nib, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> marker = np.zeros((4, 5, 6), np.int16)
    >>> marker[1, 2, 3] = 7
    >>> nib.save(nib.Nifti1Image(marker, np.eye(4)), folder / "scan.nii.gz")
    >>> array, meta = load_volume(folder / "scan.nii.gz")
    >>> int(array[1, 2, 3]), meta["spacing"].tolist()
    (7, [1.0, 1.0, 1.0])
    >>> read_volume_header(folder / "scan.nii.gz")[0]
    (4, 5, 6)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .items import BadInputError

__all__ = [
    "VOLUME_EXTENSIONS",
    "affine_spacing",
    "load_volume",
    "read_volume_header",
    "split_ext",
    "strip_volume_ext",
    "volume_reader",
]

#: File name endings of the volume formats the dataset loaders list (DICOM series are folders).
VOLUME_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_DOUBLE_EXTS: tuple[str, ...] = (".nii.gz", ".seg.nrrd")


def split_ext(path: str | Path) -> tuple[str, str]:
    """Split ``path`` into ``(stem, extension)``, keeping double extensions such as ``.nii.gz`` together.

    Args:
        path: a file name or path.

    Returns:
        ``(everything before the extension, the extension)``; the extension keeps its case.

    Example:
        >>> split_ext("/data/BraTS2021_00000_flair.nii.gz")
        ('/data/BraTS2021_00000_flair', '.nii.gz')
        >>> split_ext("knee.seg.nrrd"), split_ext("scan.mha"), split_ext("README")
        (('knee', '.seg.nrrd'), ('scan', '.mha'), ('README', ''))
    """
    path = str(path)
    lower = path.lower()
    for ext in _DOUBLE_EXTS:
        if lower.endswith(ext):
            return path[: -len(ext)], path[-len(ext) :]
    return os.path.splitext(path)


def strip_volume_ext(name: str) -> str:
    """``name`` without its volume extension (:data:`VOLUME_EXTENSIONS`); other names are returned unchanged.

    Example:
        >>> strip_volume_ext("case7.nii.gz"), strip_volume_ext("case7.png")
        ('case7', 'case7.png')
    """
    low = name.lower()
    for ext in VOLUME_EXTENSIONS:
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


_READERS: dict[str | None, Callable] = {}


def volume_reader(reader: str | None = None) -> Callable:
    """The shared ``LoadImage(image_only=True, dtype=None, reader=reader)`` for one reader choice.

    Construction is slow and warns about the optional nvImageCodec DICOM plugin (not used here), so one instance
    per reader is built on first use and kept.

    Args:
        reader: a MONAI reader name (``"ITKReader"`` for DICOM series folders) or ``None`` (chosen by file name).
    """
    if reader not in _READERS:
        from monai.transforms import LoadImage

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            _READERS[reader] = LoadImage(image_only=True, dtype=None, reader=reader)
    return _READERS[reader]


def affine_spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel spacing (length of each of the first three affine columns) of a ``[4, 4]`` affine.

    Example:
        >>> affine_spacing(np.diag([0.5, 2.0, 3.0, 1.0])).tolist()
        [0.5, 2.0, 3.0]
    """
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be a [4, 4] matrix, got shape {affine.shape}")
    return np.sqrt((affine[:3, :3] ** 2).sum(axis=0))


def load_volume(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a 3-D volume (NIfTI / NRRD / MetaImage file or DICOM series folder) with MONAI ``LoadImage``.

    Args:
        path: the volume file, or the folder of a DICOM series.

    Returns:
        ``(array, meta)``: the array in ``LoadImage`` order ``[i, j, k]`` and the file's dtype (float32 for NRRD,
        as MONAI's NRRD reader returns it); meta has ``file``, ``affine`` (4x4, RAS as MONAI reports it) and
        ``spacing``.

    Raises:
        BadInputError: missing or unreadable file, or an array that is not 3-D (a 4-D file where 3-D is expected).
    """
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"volume not found: {path}")
    try:
        vol = volume_reader("ITKReader" if path.is_dir() else None)(str(path))
    except Exception as e:  # noqa: BLE001 - any reader failure means an unreadable volume
        raise BadInputError(f"unreadable volume {path}: {e}") from e
    arr = np.asarray(vol)
    if arr.ndim != 3:
        raise BadInputError(f"{path}: expected a 3-D volume, got an array of shape {arr.shape}")
    affine = np.asarray(vol.affine, dtype=np.float64)
    return arr, {"file": str(path), "affine": affine, "spacing": affine_spacing(affine)}


def read_volume_header(path: str | Path) -> tuple[tuple[int, ...], np.ndarray]:
    """``(shape, affine)`` of a volume from its header only (NIfTI: nibabel; NRRD / MetaImage: SimpleITK).

    The affine is RAS (ITK's LPS affine with the first two rows negated, as MONAI's ITK reader reports it), so
    headers of different formats compare. A DICOM folder is read in full through :func:`load_volume`.

    Args:
        path: the volume file, or the folder of a DICOM series.

    Returns:
        The array shape as :func:`load_volume` would return it (multi-component files get the component count as a
        last axis) and the ``[4, 4]`` affine.

    Raises:
        BadInputError: missing or unreadable file.
    """
    path = Path(path)
    if path.is_dir():
        arr, meta = load_volume(path)
        return arr.shape, meta["affine"]
    if not path.is_file():
        raise BadInputError(f"volume not found: {path}")
    try:
        if path.name.lower().endswith((".nii", ".nii.gz")):
            import nibabel as nib

            img = nib.load(str(path))
            return tuple(int(s) for s in img.shape), np.asarray(img.affine, dtype=np.float64)
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        size = tuple(int(s) for s in reader.GetSize())
        if reader.GetNumberOfComponents() != 1:
            size = (*size, int(reader.GetNumberOfComponents()))
        dim = reader.GetDimension()
        direction = np.asarray(reader.GetDirection(), dtype=np.float64).reshape(dim, dim)
        affine = np.eye(4)
        k = min(dim, 3)
        affine[:k, :k] = (direction * np.asarray(reader.GetSpacing()))[:k, :k]
        affine[:k, 3] = np.asarray(reader.GetOrigin())[:k]
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
        return size, affine
    except Exception as e:  # noqa: BLE001 - any reader failure means an unreadable volume
        raise BadInputError(f"unreadable volume {path}: {e}") from e
