# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Dataset loaders over 3-D volumes: BraTS 2021, OAI-ZIB, any image/label volume pairs, DICOM series, ssTEM stacks.

Each loader lists its cases (image volume paths as channels + a label volume) and hands them to
:func:`~monai_adaptiveclick.data.volume_slices.volume_slice_dataset`, which makes one dataset item per object and
selected slice (slice selection, intensity normalisation and orientation are described there and in
:mod:`~monai_adaptiveclick.data.volume_io`). The ssTEM loader reads multi-page TIFF stacks (page ``k`` = slice ``k``).
Bad cases raise :class:`~monai_adaptiveclick.data.items.BadInputError` naming the file, or are skipped and counted
with ``skip_bad=True``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .image_volumes import BRATS_SEQUENCES
from .items import BadInputError, BadInputLog, ObjectDataset, build_object_dataset, check_dir
from .volume_io import VOLUME_EXTENSIONS, strip_volume_ext
from .volume_slices import StackSliceLoader, select_slices, volume_slice_dataset

__all__ = [
    "BRATS_OBJECTS",
    "OAIZIB_LABELS",
    "load_brats",
    "load_dicom",
    "load_oaizib",
    "load_sstem_stack",
    "load_volume_pairs",
]

#: BraTS 2021 label sets (seg labels 1 = necrotic core, 2 = oedema, 4 = enhancing tumour).
BRATS_OBJECTS: dict[str, tuple[int, ...]] = {
    "whole_tumor": (1, 2, 4),
    "tumor_core": (1, 4),
    "enhancing_tumor": (4,),
}
#: OAI-ZIB label values.
OAIZIB_LABELS: dict[int, str] = {1: "femur", 2: "femoral_cartilage", 3: "tibia", 4: "tibial_cartilage"}


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
        >>> import tempfile, pathlib, nibabel as nib, numpy as np
        >>> case = pathlib.Path(tempfile.mkdtemp()) / "BraTS2021_00001"
        >>> case.mkdir()
        >>> seg = np.zeros((8, 8, 3), np.uint8)
        >>> seg[2:6, 2:6, 1] = 2
        >>> seg[3:5, 3:5, 1] = 4
        >>> for name, array in (("flair", seg * 10.0), ("seg", seg)):
        ...     nib.save(nib.Nifti1Image(array, np.eye(4)), case / f"BraTS2021_00001_{name}.nii.gz")
        >>> ds = load_brats(case.parent, objects=("whole_tumor", "enhancing_tumor"))
        >>> [(item["object_id"], int(item["label"].sum())) for item in ds]
        [('brats/BraTS2021_00001/whole_tumor/k1', 16), ('brats/BraTS2021_00001/enhancing_tumor/k1', 4)]
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
        {"key": strip_volume_ext(Path(i).name) if Path(i).is_file() else Path(i).name, "images": [i], "label": lb}
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
