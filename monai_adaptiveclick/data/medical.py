# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Medical benchmark exports (the 2-D layouts of the SimpleClick release that produced the paper's numbers).

SPEC section 6:

* BraTS: ``image/*.png`` + ``annotation/*.png``; one object per slice: mask > 0 (all tumour labels merged).
* OAI-ZIB: ``test/image/*.png`` + ``test/annotations/*.png``; each non-zero label value is a separate object.
* ssTEM: ``raw/*.tif`` + ``mitochondria/*.png``; each 4-connected component of mask > 0 is an object
  (``scipy.ndimage.label`` default structure).

Images and masks are matched by file stem. Images are read as their arrays (grayscale -> 1 channel, RGB -> 3
channels) and scaled to [0, 1] by :func:`~monai_adaptiveclick.data.items.normalize_image` (``intensity="auto"``:
8-bit files divided by 255, other dtypes percentile-normalised).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from .image_io import image_size_2d, load_object_2d, pair_by_stem, read_label_2d
from .items import BadInputError, BadInputLog, ObjectDataset, build_object_dataset, check_dir

__all__ = ["label_objects_2d", "load_brats_png", "load_oaizib_png", "load_sstem_png", "paired_2d_dataset"]


def label_objects_2d(label: np.ndarray, mode: str) -> list[tuple[tuple, int, str]]:
    """List the objects of a 2-D label image as ``(spec, area, tag)`` (see ``items.object_mask`` for ``spec``).

    Args:
        label: integer label image ``[H, W]``.
        mode: ``"nonzero"`` (one object: label > 0), ``"values"`` (each non-zero value), ``"components"``
            (each 4-connected component of label > 0, in ``scipy.ndimage.label`` order).

    Raises:
        ValueError: unknown mode.
    """
    if mode == "nonzero":
        return [(("nonzero",), int(np.count_nonzero(label)), "object")]
    if mode == "values":
        values, counts = np.unique(label[label != 0], return_counts=True)
        return [(("value", int(v)), int(c), f"label{int(v)}") for v, c in zip(values, counts, strict=True)]
    if mode == "components":
        comps, n = ndimage.label(label > 0)
        areas = np.bincount(comps.ravel(), minlength=n + 1)
        return [(("component", c, 1), int(areas[c]), f"component{c}") for c in range(1, n + 1)]
    raise ValueError(f"unknown object mode {mode!r}; expected 'nonzero', 'values' or 'components'")


def paired_2d_dataset(
    name: str,
    pairs: list[tuple[str, Path, Path]],
    objects: Callable[[np.ndarray], list[tuple[tuple, int, str]]],
    log: BadInputLog,
    *,
    min_area: int = 0,
    intensity: str = "auto",
    transform: Callable | None = None,
    ignore_values: tuple[int, ...] = (),
    label_reader: Callable[[Path], np.ndarray] = read_label_2d,
) -> ObjectDataset:
    """Index ``(key, image_path, label_path)`` pairs of 2-D files into an :class:`ObjectDataset`.

    ``objects(label) -> [(spec, area, tag), ...]`` lists the objects of a label image (pixels whose value is in
    ``ignore_values`` go to ``item["ignore"]``); ``label_reader(path)`` reads a label file (a module-level function so
    the dataset pickles for DataLoader workers). The label is checked against the image size (read from the header).
    """
    cases = [
        {
            "key": key,
            "image_path": img,
            "label_path": msk,
            "dataset": name,
            "intensity": intensity,
            "ignore_values": tuple(ignore_values),
            "label_reader": label_reader,
        }
        for key, img, msk in pairs
    ]

    def list_objects(case: dict) -> list[tuple[tuple, int, str]]:
        label = label_reader(case["label_path"])
        size = image_size_2d(case["image_path"])
        if label.shape[:2] != size:
            raise BadInputError(
                f"{case['label_path']}: mask size {label.shape[:2]} differs from image {case['image_path']} size {size}"
            )
        return objects(label)

    return build_object_dataset(
        cases, list_objects, load_object_2d, name=name, min_area=min_area, transform=transform, log=log
    )


def _export_dataset(
    name: str,
    image_dir: Path,
    mask_dir: Path,
    mode: str,
    min_area: int,
    skip_bad: bool,
    intensity: str,
    transform: Callable | None,
) -> ObjectDataset:
    log = BadInputLog(skip_bad)
    pairs = pair_by_stem(image_dir, mask_dir, log)
    return paired_2d_dataset(
        name,
        pairs,
        lambda label: label_objects_2d(label, mode),
        log,
        min_area=min_area,
        intensity=intensity,
        transform=transform,
    )


def load_brats_png(
    root: str | Path,
    min_area: int = 0,
    skip_bad: bool = False,
    intensity: str = "auto",
    transform: Callable | None = None,
) -> ObjectDataset:
    """BraTS benchmark export: ``{root}/image/*.png`` + ``{root}/annotation/*.png``, one object (mask > 0) per slice.

    Args:
        root: the export folder.
        min_area: objects with fewer pixels are dropped (counted in ``filtered``).
        skip_bad: skip bad files with a warning (counted in ``skipped``) instead of raising.
        intensity: image scaling mode (``items.normalize_image``).
        transform: optional transform applied to each item.

    Raises:
        BadInputError: missing folders, an image without a mask, mismatched sizes, unreadable files.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> for folder in ("image", "annotation"):
        ...     (root / folder).mkdir()
        >>> mask = np.zeros((24, 32), np.uint8)
        >>> mask[4:10, 5:12] = 1
        >>> Image.fromarray(np.full((24, 32), 128, np.uint8)).save(root / "image" / "slice_000.png")
        >>> Image.fromarray(mask).save(root / "annotation" / "slice_000.png")
        >>> ds = load_brats_png(root)
        >>> ds[0]["label"].shape, int(ds[0]["label"].sum()), round(float(ds[0]["image"].max()), 3)
        ((1, 24, 32), 42, 0.502)
    """
    root = check_dir(root, "BraTS export folder")
    return _export_dataset(
        "brats_png", root / "image", root / "annotation", "nonzero", min_area, skip_bad, intensity, transform
    )


def load_oaizib_png(
    root: str | Path,
    split: str = "test",
    min_area: int = 0,
    skip_bad: bool = False,
    intensity: str = "auto",
    transform: Callable | None = None,
) -> ObjectDataset:
    """OAI-ZIB benchmark export: ``{root}/{split}/image/*.png`` + ``{root}/{split}/annotations/*.png``.

    Each non-zero label value of a slice is a separate object. Arguments as :func:`load_brats_png`, plus
    ``split`` (sub-folder, default ``"test"``).
    """
    root = check_dir(root, "OAI-ZIB export folder")
    return _export_dataset(
        "oaizib_png",
        root / split / "image",
        root / split / "annotations",
        "values",
        min_area,
        skip_bad,
        intensity,
        transform,
    )


def load_sstem_png(
    root: str | Path,
    min_area: int = 0,
    skip_bad: bool = False,
    intensity: str = "auto",
    transform: Callable | None = None,
) -> ObjectDataset:
    """ssTEM benchmark export: ``{root}/raw/*.tif`` + ``{root}/mitochondria/*.png``.

    Each 4-connected component of mask > 0 is an object. Arguments as :func:`load_brats_png`.
    """
    root = check_dir(root, "ssTEM export folder")
    return _export_dataset(
        "sstem_png", root / "raw", root / "mitochondria", "components", min_area, skip_bad, intensity, transform
    )
