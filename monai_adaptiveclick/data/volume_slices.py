# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Slice-wise object datasets over 3-D volumes: slice selection, the per-item slice loaders, case checks.

Objects per slice: each configured object (a label value, a set of values, or each connected component) on each
selected slice is one dataset item. Slice selection (:func:`select_slices`): ``"largest"`` (default; the slice where
the object's area is largest), ``"all"`` (every slice whose object area is >= ``min_area``) or a list of slice
indices ``k``. Slice ``k`` of a volume is ``volume[:, :, k]`` (see :mod:`.volume_io` for the orientation contract);
TIFF stacks (ssTEM) are the exception: page ``k`` is slice ``k``, stored ``[H, W]`` as in the file.

MRI intensity normalisation (:func:`~monai_adaptiveclick.data.intensity.normalize_intensity`): clip to the
``lower``/``upper`` percentiles (default 0.5 / 99.5) and scale to [0, 1], per channel; ``per="slice"`` computes the
percentiles on the selected 2-D slice, ``per="volume"`` on the whole 3-D volume of that channel (background voxels
included; computed once per volume by the :class:`~monai_adaptiveclick.data.volume_cache.VolumeCache`). A constant
slice/volume gives zeros, never NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from .intensity import apply_intensity_range, intensity_range, normalize_image, normalize_intensity
from .items import BadInputError, ObjectDataset, build_object_dataset, make_item, object_mask
from .volume_cache import VolumeCache
from .volume_io import load_volume, read_volume_header

__all__ = ["StackSliceLoader", "VolumeSliceLoader", "check_volume_case", "select_slices", "volume_slice_dataset"]


def select_slices(areas: np.ndarray, slices: str | Sequence[int] = "largest", min_area: int = 0) -> list[int]:
    """Choose slice indices from the per-slice object areas ``areas[k]``.

    Args:
        areas: object area (pixels) of each slice ``k``.
        slices: ``"largest"`` (the first slice of maximal area, if > 0), ``"all"`` (each slice with area > 0 and
            >= ``min_area``) or a list of slice indices (kept as given; indices where the object is absent yield
            nothing).
        min_area: minimum area for ``"all"``.

    Returns:
        The chosen slice indices.

    Raises:
        ValueError: unknown mode or an index outside ``[0, len(areas))``.

    Example:
        >>> areas = [0, 5, 9, 9, 2]
        >>> select_slices(areas), select_slices(areas, "all", min_area=3), select_slices(areas, [0, 4])
        ([2], [1, 2, 3], [4])
    """
    areas = np.asarray(areas)
    if isinstance(slices, str):
        if slices == "largest":
            return [int(np.argmax(areas))] if areas.size and areas.max() > 0 else []
        if slices == "all":
            return [int(k) for k in np.flatnonzero((areas > 0) & (areas >= min_area))]
        raise ValueError(f"unknown slice selection {slices!r}; expected 'largest', 'all' or a list of indices")
    ks = [int(k) for k in slices]
    bad = [k for k in ks if not 0 <= k < areas.size]
    if bad:
        raise ValueError(f"slice indices {bad} outside [0, {areas.size})")
    return [k for k in ks if areas[k] > 0]


def check_volume_case(case: dict) -> np.ndarray:
    """Load the label volume of a case and check the image headers against it.

    Args:
        case: ``{"images": [volume paths], "label": volume path, ...}``.

    Returns:
        The label array ``[i, j, k]`` (integer dtype).

    Raises:
        BadInputError: an unreadable or empty label, non-integer label values, an image whose shape or affine
            differs from the label's.
    """
    label, label_meta = load_volume(case["label"])
    if not np.any(label):
        raise BadInputError(f"{case['label']}: empty label volume (no non-zero voxel)")
    if np.issubdtype(label.dtype, np.floating):
        if not np.array_equal(label, np.round(label)):
            raise BadInputError(f"{case['label']}: label volume has non-integer values")
        label = label.astype(np.int32)
    for img in case["images"]:
        shape, affine = read_volume_header(img)
        if tuple(shape) != label.shape:
            kind = "a 4-D image" if len(shape) == 4 else "shape"
            raise BadInputError(
                f"{img}: {kind} {tuple(shape)} does not match the label volume {case['label']} shape {label.shape}"
            )
        if not np.allclose(affine, label_meta["affine"], rtol=1e-4, atol=1e-3):
            raise BadInputError(f"{img}: affine differs from the label volume {case['label']}")
    return label


class VolumeSliceLoader:
    """Load the item of one volume-slice entry (keys ``images``, ``label``, ``k``, ``object``, ``object_id``).

    A picklable callable (DataLoader workers) holding the :class:`VolumeCache`; see :func:`volume_slice_dataset`.

    Args:
        name: dataset name stored in the item meta.
        cache: the volume cache shared by the items of the dataset.
        per: intensity statistics, ``"slice"`` or ``"volume"``.
        lower: lower clipping percentile.
        upper: upper clipping percentile.
    """

    def __init__(self, name: str, cache: VolumeCache, per: str, lower: float, upper: float) -> None:
        self.name, self.cache, self.per, self.lower, self.upper = name, cache, per, lower, upper

    def __call__(self, entry: dict) -> dict:
        k = entry["k"]
        label_volume = self.cache.get(entry["label"])
        if label_volume.data.shape[0] != 1:
            raise BadInputError(f"{entry['label']}: expected a single-channel label, got {label_volume.channels}")
        label = label_volume.data[0]
        channels = []
        for img in entry["images"]:
            volume = self.cache.get(img)
            if volume.data.shape != label_volume.data.shape:
                raise BadInputError(
                    f"{img}: shape {volume.data.shape[1:]} ({volume.data.shape[0]} channels) does not match the "
                    f"single-channel label volume {label.shape}"
                )
            sl = volume.data[0, :, :, k]
            if self.per == "volume":
                lo, hi = self.cache.intensity_ranges(img, lower=self.lower, upper=self.upper)[0]
                channels.append(apply_intensity_range(sl, lo, hi))
            else:
                channels.append(normalize_intensity(sl, self.lower, self.upper))
        meta = {
            "dataset": self.name,
            "case": entry["key"],
            "image_files": [str(p) for p in entry["images"]],
            "label_file": str(entry["label"]),
            "slice_index": k,
            "slice_axis": 2,
            "affine": label_volume.affine,
            "spacing": label_volume.spacing,
            "object": tuple(entry["object"]),
            "area": entry["area"],
        }
        mask = object_mask(label[:, :, k], tuple(entry["object"]))
        return make_item(np.stack(channels), mask, entry["object_id"], meta)


def volume_slice_dataset(
    name: str,
    cases: Sequence[dict],
    objects: str | dict[str, tuple],
    *,
    slices: str | Sequence[int] = "largest",
    min_area: int = 0,
    per: str = "slice",
    lower: float = 0.5,
    upper: float = 99.5,
    skip_bad: bool = False,
    transform: Callable | None = None,
    cache_size: int | None = None,
) -> ObjectDataset:
    """Slice-wise object dataset over 3-D image/label volume cases.

    Args:
        name: dataset name (first part of object ids ``"{name}/{case}/{object}/k{k}"``).
        cases: dicts with ``"key"`` (case id), ``"images"`` (list of volume paths = channels), ``"label"``.
        objects: ``"values"`` (each non-zero label value of the case is an object), ``"components"`` (each
            connected component of label > 0 on each selected slice, 4-connected) or a dict
            ``tag -> spec`` (``items.object_mask`` spec, e.g. ``("values", (1, 2, 4))``).
        slices: slice selection (:func:`select_slices`); for ``"components"`` it picks slices by the area of
            label > 0.
        min_area: objects (per slice) below this area are filtered and counted in ``dataset.filtered`` (with
            ``"largest"`` an object whose largest slice is too small is filtered).
        per: intensity normalisation statistics, ``"slice"`` or ``"volume"`` (see module docstring).
        lower: lower clipping percentile.
        upper: upper clipping percentile.
        skip_bad: skip bad cases (warn + count in ``skipped``) instead of raising.
        transform: optional transform applied to each item.
        cache_size: volumes kept in memory (default: channels + 1 label, enough for sequential access).

    Returns:
        The dataset, one item per object and selected slice.

    Raises:
        ValueError: bad options.
        BadInputError: bad cases with ``skip_bad=False``.

    Example:
        >>> import tempfile, pathlib, nibabel as nib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> label = np.zeros((8, 8, 4), np.uint8)
        >>> label[2:5, 2:5, 1] = 1
        >>> nib.save(nib.Nifti1Image(label, np.eye(4)), folder / "label.nii.gz")
        >>> nib.save(nib.Nifti1Image(label * 100.0, np.eye(4)), folder / "image.nii.gz")
        >>> case = {"key": "c1", "images": [folder / "image.nii.gz"], "label": folder / "label.nii.gz"}
        >>> ds = volume_slice_dataset("demo", [case], "values")
        >>> ds[0]["object_id"], ds[0]["image"].shape, int(ds[0]["label"].sum())
        ('demo/c1/label1/k1', (1, 8, 8), 9)
    """
    if per not in ("slice", "volume"):
        raise ValueError(f"per must be 'slice' or 'volume', got {per!r}")
    intensity_range(np.zeros(2), lower, upper)  # validates the percentiles
    if isinstance(slices, str):
        select_slices(np.zeros(1), slices)  # validates the mode
    if not isinstance(objects, dict) and objects not in ("values", "components"):
        raise ValueError(f"objects must be 'values', 'components' or a dict tag -> spec, got {objects!r}")
    n_channels = max((len(c["images"]) for c in cases), default=1)
    cache = VolumeCache(cache_size or n_channels + 1)

    def list_objects(case: dict) -> list[tuple]:
        label = check_volume_case(case)
        found: list[tuple] = []
        if objects == "components":
            areas = np.count_nonzero(label, axis=(0, 1))
            for k in select_slices(areas, slices):
                comps, n = ndimage.label(label[:, :, k] > 0)
                sizes = np.bincount(comps.ravel(), minlength=n + 1)
                found += [(("component", c, 1), int(sizes[c]), f"component{c}/k{k}", {"k": k}) for c in range(1, n + 1)]
            return found
        specs = objects
        if objects == "values":
            specs = {f"label{int(v)}": ("value", int(v)) for v in np.unique(label[label != 0])}
        for tag, spec in specs.items():
            areas = np.count_nonzero(object_mask(label, spec), axis=(0, 1))
            found += [(spec, int(areas[k]), f"{tag}/k{k}", {"k": k}) for k in select_slices(areas, slices)]
        return found

    loader = VolumeSliceLoader(name, cache, per, lower, upper)
    return build_object_dataset(
        cases, list_objects, loader, name=name, min_area=min_area, skip_bad=skip_bad, transform=transform
    )


class StackSliceLoader:
    """Load the item of one TIFF-stack entry (page ``k``); picklable, reads the image stack once on first use.

    Args:
        image_path: the multi-page image TIFF.
        label_path: the multi-page label TIFF (for the item meta).
        label: the label stack ``[K, H, W]``, already read.
        intensity: :func:`~monai_adaptiveclick.data.intensity.normalize_image` mode.
    """

    def __init__(self, image_path: Path, label_path: Path, label: np.ndarray, intensity: str) -> None:
        self.image_path, self.label_path, self.label, self.intensity = image_path, label_path, label, intensity
        self._image: np.ndarray | None = None

    def __call__(self, entry: dict) -> dict:
        import tifffile

        if self._image is None:
            arr = np.asarray(tifffile.imread(str(self.image_path)))
            self._image = arr[None] if arr.ndim == 2 else arr
        k = entry["k"]
        meta = {
            "dataset": "sstem",
            "image_file": str(self.image_path),
            "label_file": str(self.label_path),
            "slice_index": k,
            "object": tuple(entry["object"]),
            "area": entry["area"],
        }
        mask = object_mask(self.label[k], tuple(entry["object"]))
        return make_item(normalize_image(self._image[k][None], self.intensity), mask, entry["object_id"], meta)
