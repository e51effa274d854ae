# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""3-D volumes read slice-wise: NIfTI / NRRD / MetaImage pairs, DICOM series, BraTS 2021, OAI-ZIB, ssTEM stacks.

Orientation (ARCHITECTURE "Coordinates" contract): volumes are read with MONAI
``LoadImage(image_only=True)`` (NiBabel reader for NIfTI, ITK reader for NRRD / MetaImage / DICOM series), whose
array order is the voxel index order ``[i, j, k]`` for every one of these formats (checked on monai 1.6.1: a marker
written at index (i, j, k) comes back at ``array[i, j, k]``; no RAS re-orientation of the array). Slice ``k`` is
``volume[:, :, k]`` and a click ``(y, x)`` on it is voxel ``(y, x, k)``, the same slice 3D Slicer shows through
MONAI Label. TIFF stacks (ssTEM) are the exception: page ``k`` is slice ``k``, stored ``[H, W]`` as in the file.

MRI intensity normalisation (:func:`normalize_intensity`): clip to the ``lower``/``upper`` percentiles (default
0.5 / 99.5) and scale to [0, 1], per channel; ``per="slice"`` computes the percentiles on the selected 2-D slice,
``per="volume"`` on the whole 3-D volume of that channel (background voxels included). A constant slice/volume
gives zeros, never NaN.

Objects per slice: each configured object (a label value, a set of values, or each connected component) on each
selected slice is one dataset item. Slice selection: ``"largest"`` (default; the slice where the object's area is
largest), ``"all"`` (every slice whose object area is >= ``min_area``) or a list of slice indices ``k``.
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .intensity import apply_intensity_range, intensity_range, normalize_image, normalize_intensity
from .items import (
    BadInputError,
    BadInputLog,
    ObjectDataset,
    build_object_dataset,
    check_dir,
    make_item,
    object_mask,
)

__all__ = [
    "BRATS_OBJECTS",
    "BRATS_SEQUENCES",
    "OAIZIB_LABELS",
    "VOLUME_EXTENSIONS",
    "StackSliceLoader",
    "VolumeCache",
    "VolumeSliceLoader",
    "load_brats",
    "load_dicom",
    "load_oaizib",
    "load_sstem_stack",
    "load_volume",
    "load_volume_pairs",
    "read_volume_header",
    "select_slices",
    "volume_slice_dataset",
]

VOLUME_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
BRATS_SEQUENCES: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")
#: BraTS 2021 label sets (seg labels 1 = necrotic core, 2 = oedema, 4 = enhancing tumour).
BRATS_OBJECTS: dict[str, tuple[int, ...]] = {
    "whole_tumor": (1, 2, 4),
    "tumor_core": (1, 4),
    "enhancing_tumor": (4,),
}
#: OAI-ZIB label values.
OAIZIB_LABELS: dict[int, str] = {1: "femur", 2: "femoral_cartilage", 3: "tibia", 4: "tibial_cartilage"}


def _strip_volume_ext(name: str) -> str:
    low = name.lower()
    for ext in VOLUME_EXTENSIONS:
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


_READERS: dict[str | None, Callable] = {}


def _volume_reader(reader: str | None) -> Callable:
    """One ``LoadImage(image_only=True, dtype=None)`` per reader choice (construction is slow and warns about the
    optional nvImageCodec DICOM plugin, which is not used here)."""
    if reader not in _READERS:
        from monai.transforms import LoadImage

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            _READERS[reader] = LoadImage(image_only=True, dtype=None, reader=reader)
    return _READERS[reader]


def load_volume(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a 3-D volume (NIfTI / NRRD / MetaImage file or DICOM series folder) with MONAI ``LoadImage``.

    Returns:
        ``(array, meta)``: the array in ``LoadImage`` order ``[i, j, k]`` and native dtype; meta has ``file``,
        ``affine`` (4x4, RAS as MONAI reports it) and ``spacing``.

    Raises:
        BadInputError: missing or unreadable file, or an array that is not 3-D (a 4-D file where 3-D is expected).
    """
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"volume not found: {path}")
    try:
        vol = _volume_reader("ITKReader" if path.is_dir() else None)(str(path))
    except Exception as e:  # noqa: BLE001 - any reader failure means an unreadable volume
        raise BadInputError(f"unreadable volume {path}: {e}") from e
    arr = np.asarray(vol)
    if arr.ndim != 3:
        raise BadInputError(f"{path}: expected a 3-D volume, got an array of shape {arr.shape}")
    affine = np.asarray(vol.affine, dtype=np.float64)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return arr, {"file": str(path), "affine": affine, "spacing": spacing}


def read_volume_header(path: str | Path) -> tuple[tuple[int, ...], np.ndarray]:
    """``(shape, affine)`` of a volume from its header only (NIfTI: nibabel; NRRD / MetaImage: SimpleITK).

    The affine is RAS (ITK's LPS affine with the first two rows negated, as MONAI's ITK reader reports it), so
    headers of different formats compare. A DICOM folder is read in full through :func:`load_volume`.

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


def select_slices(areas: np.ndarray, slices: str | Sequence[int] = "largest", min_area: int = 0) -> list[int]:
    """Choose slice indices from the per-slice object areas ``areas[k]``.

    Args:
        areas: object area (pixels) of each slice ``k``.
        slices: ``"largest"`` (the first slice of maximal area, if > 0), ``"all"`` (each slice with area > 0 and
            >= ``min_area``) or a list of slice indices (kept as given; indices where the object is absent yield
            nothing).
        min_area: minimum area for ``"all"``.

    Raises:
        ValueError: unknown mode or an index outside ``[0, len(areas))``.
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


class VolumeCache:
    """A small LRU cache of loaded volumes (and, for ``per="volume"``, their intensity ranges).

    Args:
        maxsize: number of volumes kept.
        lower: lower percentile of the intensity ranges.
        upper: upper percentile.
    """

    def __init__(self, maxsize: int = 8, lower: float = 0.5, upper: float = 99.5) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = int(maxsize)
        self.lower, self.upper = float(lower), float(upper)
        self._store: OrderedDict[str, tuple[np.ndarray, dict, tuple[float, float] | None]] = OrderedDict()

    def get(self, path: str | Path, with_range: bool = False) -> tuple[np.ndarray, dict, tuple[float, float] | None]:
        """``(array, meta, range)`` of the volume at ``path`` (range only if ``with_range``)."""
        key = str(path)
        if key in self._store:
            arr, meta, rng = self._store.pop(key)
        else:
            arr, meta = load_volume(path)
            rng = None
        if with_range and rng is None:
            rng = intensity_range(arr, self.lower, self.upper)
        self._store[key] = (arr, meta, rng)
        while len(self._store) > self.maxsize:
            self._store.popitem(last=False)
        return arr, meta, rng

    def clear(self) -> None:
        """Drop every cached volume."""
        self._store.clear()

    def __getstate__(self) -> dict:
        # pickled copies (DataLoader workers) start empty instead of carrying the loaded volumes along
        state = dict(self.__dict__)
        state["_store"] = OrderedDict()
        return state


def _check_case(case: dict) -> np.ndarray:
    """Load the label volume of a case and check it against the image headers; returns the label array."""
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
    """

    def __init__(self, name: str, cache: VolumeCache, per: str, lower: float, upper: float) -> None:
        self.name, self.cache, self.per, self.lower, self.upper = name, cache, per, lower, upper

    def __call__(self, entry: dict) -> dict:
        k = entry["k"]
        label, label_meta, _ = self.cache.get(entry["label"])
        channels = []
        for img in entry["images"]:
            arr, _, rng = self.cache.get(img, with_range=self.per == "volume")
            if arr.shape != label.shape:
                raise BadInputError(f"{img}: shape {arr.shape} does not match the label volume {label.shape}")
            sl = arr[:, :, k]
            channels.append(apply_intensity_range(sl, *rng) if rng else normalize_intensity(sl, self.lower, self.upper))
        meta = {
            "dataset": self.name,
            "case": entry["key"],
            "image_files": [str(p) for p in entry["images"]],
            "label_file": str(entry["label"]),
            "slice_index": k,
            "slice_axis": 2,
            "affine": label_meta["affine"],
            "spacing": label_meta["spacing"],
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

    Raises:
        ValueError: bad options.
        BadInputError: bad cases with ``skip_bad=False``.
    """
    if per not in ("slice", "volume"):
        raise ValueError(f"per must be 'slice' or 'volume', got {per!r}")
    intensity_range(np.zeros(2), lower, upper)  # validates the percentiles
    if isinstance(slices, str):
        select_slices(np.zeros(1), slices)  # validates the mode
    if not isinstance(objects, dict) and objects not in ("values", "components"):
        raise ValueError(f"objects must be 'values', 'components' or a dict tag -> spec, got {objects!r}")
    n_channels = max((len(c["images"]) for c in cases), default=1)
    cache = VolumeCache(cache_size or n_channels + 1, lower, upper)

    def list_objects(case: dict) -> list[tuple]:
        label = _check_case(case)
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


def _volume_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(VOLUME_EXTENSIONS))


def _case_id(path: Path) -> str:
    return path.name.split(".")[0]


def load_brats(
    root: str | Path,
    sequences: Sequence[str] = ("flair",),
    objects: str | Sequence[str] = "whole_tumor",
    slices: str | Sequence[int] = "largest",
    min_area: int = 0,
    per: str = "slice",
    skip_bad: bool = False,
    transform: Callable | None = None,
    **options: Any,
) -> ObjectDataset:
    """BraTS 2021 case folders: ``{root}/BraTS2021_XXXXX/BraTS2021_XXXXX_{flair,t1,t1ce,t2,seg}.nii.gz``.

    Args:
        root: folder holding the case folders (every sub-folder with a ``*_seg.nii(.gz)`` file is a case).
        sequences: image channels, in order, from ``("flair", "t1", "t1ce", "t2")``.
        objects: ``"whole_tumor"`` (labels 1, 2, 4), ``"tumor_core"`` (1, 4), ``"enhancing_tumor"`` (4), or a list.
        slices: ``"largest"`` | ``"all"`` | list of k (:func:`select_slices`).
        min_area: minimum object area per slice.
        per: intensity normalisation ``"slice"`` | ``"volume"``.
        skip_bad: skip bad cases (missing sequence, shape / affine mismatch, empty seg) instead of raising.
        transform: optional transform per item.
        **options: passed to :func:`volume_slice_dataset` (``lower``, ``upper``, ``cache_size``).

    Raises:
        ValueError: unknown sequence or object name.
        BadInputError: missing folder, no case, or bad cases with ``skip_bad=False``.

    Example:
        >>> ds = load_brats("/data/BraTS2021", sequences=("flair", "t1ce"), objects="tumor_core")  # doctest: +SKIP
    """
    root = check_dir(root, "BraTS 2021 folder")
    sequences = (sequences,) if isinstance(sequences, str) else tuple(sequences)
    unknown = [s for s in sequences if s not in BRATS_SEQUENCES]
    if not sequences or unknown:
        raise ValueError(f"unknown BraTS sequences {unknown or sequences}; choose from {BRATS_SEQUENCES}")
    names = (objects,) if isinstance(objects, str) else tuple(objects)
    bad_names = [o for o in names if o not in BRATS_OBJECTS]
    if not names or bad_names:
        raise ValueError(f"unknown BraTS objects {bad_names or names}; choose from {tuple(BRATS_OBJECTS)}")
    log = BadInputLog(skip_bad)
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        segs = [f for f in folder.iterdir() if re.search(r"_seg\.nii(\.gz)?$", f.name)]
        if not segs:
            continue
        seg = segs[0]
        ext = ".nii.gz" if seg.name.endswith(".gz") else ".nii"
        prefix = seg.name[: -len("_seg" + ext)]
        images = []
        for s in sequences:
            found = [
                folder / f"{prefix}_{s}{e}" for e in (".nii.gz", ".nii") if (folder / f"{prefix}_{s}{e}").is_file()
            ]
            if not found:
                log.report(BadInputError(f"{folder}: no {s} sequence file {prefix}_{s}.nii.gz"))
                break
            images.append(found[0])
        else:
            cases.append({"key": folder.name, "images": images, "label": seg})
    if not cases and not log.count:
        raise BadInputError(f"no BraTS case folder (with a *_seg.nii.gz file) in {root}")
    specs = {o: ("values", BRATS_OBJECTS[o]) for o in names}
    ds = volume_slice_dataset(
        "brats",
        cases,
        specs,
        slices=slices,
        min_area=min_area,
        per=per,
        skip_bad=skip_bad,
        transform=transform,
        **options,
    )
    _merge_log(ds, log)
    return ds


def _merge_log(ds: ObjectDataset, log: BadInputLog) -> None:
    ds.skipped += log.count
    ds.skipped_messages = log.messages + ds.skipped_messages


def load_oaizib(
    root: str | Path,
    image_dir: str = "images",
    label_dir: str = "labels",
    labels: Sequence[int] = (1, 2, 3, 4),
    slices: str | Sequence[int] = "largest",
    min_area: int = 0,
    per: str = "slice",
    skip_bad: bool = False,
    transform: Callable | None = None,
    **options: Any,
) -> ObjectDataset:
    """OAI-ZIB MetaImage volumes: ``{root}/{image_dir}/*.mhd|mha`` + ``{root}/{label_dir}/*.mhd|mha``.

    Image and label volumes are paired by case id = file name up to the first ``"."`` (so
    ``9001104.image.mhd`` pairs with ``9001104.segmentation_masks.mhd``); any volume format of
    :data:`VOLUME_EXTENSIONS` is accepted. Labels 1-4 (femur, femoral cartilage, tibia, tibial cartilage): each
    label in ``labels`` is an object on each selected slice.

    Raises:
        ValueError: a label outside 1-4.
        BadInputError: missing folders, an image without a label volume, bad cases with ``skip_bad=False``.
    """
    root = check_dir(root, "OAI-ZIB folder")
    labels = tuple(int(v) for v in labels)
    if not labels or any(v not in OAIZIB_LABELS for v in labels):
        raise ValueError(f"OAI-ZIB labels must be in {tuple(OAIZIB_LABELS)}, got {labels}")
    log = BadInputLog(skip_bad)
    cases = _pair_volumes(check_dir(root / image_dir, "image folder"), check_dir(root / label_dir, "label folder"), log)
    specs = {OAIZIB_LABELS[v]: ("value", v) for v in labels}
    ds = volume_slice_dataset(
        "oaizib",
        cases,
        specs,
        slices=slices,
        min_area=min_area,
        per=per,
        skip_bad=skip_bad,
        transform=transform,
        **options,
    )
    _merge_log(ds, log)
    return ds


def _pair_volumes(image_dir: Path, label_dir: Path, log: BadInputLog) -> list[dict]:
    labels = {_case_id(p): p for p in _volume_files(label_dir)}
    cases = []
    for img in _volume_files(image_dir):
        cid = _case_id(img)
        if cid not in labels:
            log.report(BadInputError(f"image without a label volume: {img} (no {cid}.* in {label_dir})"))
            continue
        cases.append({"key": cid, "images": [img], "label": labels[cid]})
    if not cases and not log.count:
        raise BadInputError(f"no image volume in {image_dir}")
    return cases


def load_volume_pairs(
    root: str | Path | None = None,
    image: str | Path | Sequence[str | Path] | None = None,
    label: str | Path | Sequence[str | Path] | None = None,
    components: bool = False,
    labels: Sequence[int] | None = None,
    slices: str | Sequence[int] = "largest",
    min_area: int = 0,
    per: str = "slice",
    skip_bad: bool = False,
    transform: Callable | None = None,
    **options: Any,
) -> ObjectDataset:
    """Any NIfTI / NRRD / MetaImage image volume(s) + label volume(s), slice-wise.

    Args:
        root: folder that relative ``image`` / ``label`` paths are resolved against (optional).
        image: an image volume path or a list of them.
        label: the matching label volume path(s), same count as ``image``.
        components: objects are the connected components of label > 0 on each selected slice (instead of each
            label value).
        labels: restrict the objects to these label values (``components=False`` only).
        slices, min_area, per, skip_bad, transform, options: as :func:`volume_slice_dataset`.

    Raises:
        ValueError: missing ``image`` / ``label`` or different counts.
    """
    if image is None or label is None:
        raise ValueError("the 'volume' dataset needs image=<path(s)> and label=<path(s)>")
    images = [image] if isinstance(image, (str, Path)) else list(image)
    label_paths = [label] if isinstance(label, (str, Path)) else list(label)
    if len(images) != len(label_paths):
        raise ValueError(f"{len(images)} image volumes but {len(label_paths)} label volumes")
    base = Path(root) if root is not None else None
    images = [base / p if base is not None else Path(p) for p in images]
    label_paths = [base / p if base is not None else Path(p) for p in label_paths]
    cases = [
        {"key": _strip_volume_ext(Path(i).name) if Path(i).is_file() else Path(i).name, "images": [i], "label": lb}
        for i, lb in zip(images, label_paths, strict=True)
    ]
    if components:
        objects: str | dict = "components"
    elif labels is not None:
        objects = {f"label{int(v)}": ("value", int(v)) for v in labels}
    else:
        objects = "values"
    return volume_slice_dataset(
        "volume",
        cases,
        objects,
        slices=slices,
        min_area=min_area,
        per=per,
        skip_bad=skip_bad,
        transform=transform,
        **options,
    )


def load_dicom(
    root: str | Path,
    label: str | Path | None = None,
    **options: Any,
) -> ObjectDataset:
    """A DICOM series folder (read with MONAI's ITK reader, i.e. SimpleITK/ITK's series reader) + a label volume.

    Args:
        root: the folder holding the series' slice files.
        label: label volume (NIfTI / NRRD / MetaImage) on the same voxel grid; relative paths resolve against
            ``root``'s parent.
        **options: as :func:`load_volume_pairs` (``components``, ``labels``, ``slices``, ``min_area``, ...).

    Raises:
        ValueError: no label given.
        BadInputError: missing folder, unreadable series, shape / affine mismatch.
    """
    series = check_dir(root, "DICOM series folder")
    if label is None:
        raise ValueError("the 'dicom' dataset needs label=<label volume path>")
    label = Path(label)
    if not label.is_absolute() and not label.exists():
        label = series.parent / label
    return load_volume_pairs(image=series, label=label, **options)


class StackSliceLoader:
    """Load the item of one TIFF-stack entry (page ``k``); picklable, reads the image stack once on first use."""

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


def load_sstem_stack(
    root: str | Path,
    image: str = "raw.tif",
    label: str = "mitochondria.tif",
    slices: str | Sequence[int] = "all",
    min_area: int = 0,
    intensity: str = "auto",
    skip_bad: bool = False,
    transform: Callable | None = None,
) -> ObjectDataset:
    """ssTEM TIFF stacks: a multi-page image TIFF and a multi-page label TIFF (page k = slice k, ``[H, W]``).

    Each 4-connected component of label > 0 on a page is an object (as the benchmark export). Images are scaled
    by ``items.normalize_image`` (``"auto"``: 8-bit / 255, else percentile).

    Args:
        root: folder of the two stacks.
        image: image stack file name (relative to ``root``).
        label: label stack file name.
        slices: ``"all"`` (default) | ``"largest"`` | list of page indices (by the area of label > 0).
        min_area, skip_bad, transform: as elsewhere.
        intensity: image scaling mode.

    Raises:
        BadInputError: missing files, stacks of different shapes, a non-3-D stack.
    """
    import tifffile

    root = check_dir(root, "ssTEM stack folder")
    img_path, lbl_path = root / image, root / label
    for p in (img_path, lbl_path):
        if not p.is_file():
            raise BadInputError(f"ssTEM stack not found: {p}")
    try:
        lbl = np.asarray(tifffile.imread(str(lbl_path)))
        with tifffile.TiffFile(str(img_path)) as tif:
            img_shape = tuple(int(v) for v in tif.series[0].shape)
    except Exception as e:  # noqa: BLE001 - decoder failure = unreadable file
        raise BadInputError(f"unreadable TIFF stack in {root}: {e}") from e
    if lbl.ndim == 2:
        lbl = lbl[None]
    if len(img_shape) == 2:
        img_shape = (1, *img_shape)
    if lbl.ndim != 3 or tuple(img_shape) != lbl.shape:
        raise BadInputError(
            f"{lbl_path}: label stack shape {lbl.shape} does not match image stack {img_path} {img_shape}"
        )

    def pages(case: dict) -> list[tuple]:
        areas = np.count_nonzero(lbl, axis=(1, 2))
        found = []
        for k in select_slices(areas, slices):
            comps, n = ndimage.label(lbl[k] > 0)
            sizes = np.bincount(comps.ravel(), minlength=n + 1)
            found += [(("component", c, 1), int(sizes[c]), f"component{c}/k{k}", {"k": k}) for c in range(1, n + 1)]
        return found

    return build_object_dataset(
        [{"key": img_path.stem}],
        pages,
        StackSliceLoader(img_path, lbl_path, lbl, intensity),
        name="sstem",
        min_area=min_area,
        skip_bad=skip_bad,
        transform=transform,
    )
