# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""2-D image files: listing and pairing them by stem, reading images and label images, loading one 2-D object item.

2-D image files are read as their arrays, row index first: a grayscale file gives 1 channel, an RGB(A) file gives
3 channels (alpha dropped), a palette PNG gives its palette indices (used for label images). PNG / JPEG / BMP are
read with PIL, TIFF with tifffile. A missing or unreadable file raises
:class:`~monai_adaptiveclick.data.items.BadInputError` naming it.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rgb = np.zeros((4, 6, 3), np.uint8)
    >>> rgb[1, 2] = (10, 20, 30)
    >>> Image.fromarray(rgb).save(folder / "photo.png")
    >>> image = read_image_2d(folder / "photo.png")
    >>> image.shape, image[:, 1, 2].tolist(), image_size_2d(folder / "photo.png")
    ((3, 4, 6), [10, 20, 30], (4, 6))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .intensity import normalize_image
from .items import BadInputError, BadInputLog, check_dir, make_item, object_mask

__all__ = [
    "IMAGE_EXTENSIONS",
    "files_by_stem",
    "image_size_2d",
    "load_object_2d",
    "pair_by_stem",
    "read_image_2d",
    "read_label_2d",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def files_by_stem(folder: Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> dict[str, Path]:
    """Map file stem -> path for the files of ``folder`` with one of ``extensions`` (case-insensitive).

    Raises:
        BadInputError: two files share a stem (ambiguous match).
    """
    exts = {e.lower() for e in extensions}
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in exts:
            if f.stem in out:
                raise BadInputError(f"two files with the stem {f.stem!r} in {folder}: {out[f.stem].name}, {f.name}")
            out[f.stem] = f
    return out


def _read_array_2d(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"file not found: {path}")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = np.asarray(tifffile.imread(str(path)))
        else:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode in ("RGBA", "LA", "CMYK", "YCbCr", "I;16B"):
                    im = im.convert("RGB" if im.mode != "LA" else "L")
                arr = np.asarray(im)
    except BadInputError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure means an unreadable file
        raise BadInputError(f"unreadable image file {path}: {e}") from e
    return arr


def read_image_2d(path: str | Path) -> np.ndarray:
    """Read a 2-D image file as ``[C, H, W]`` in its own dtype (grayscale -> C=1, RGB(A) -> C=3, alpha dropped).

    Raises:
        BadInputError: missing or unreadable file, or an array that is not 2-D / 2-D + channels.
    """
    arr = _read_array_2d(Path(path))
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return np.ascontiguousarray(np.moveaxis(arr[..., :3], -1, 0))
    raise BadInputError(f"{path}: expected a 2-D grayscale or RGB image, got an array of shape {arr.shape}")


def read_label_2d(path: str | Path) -> np.ndarray:
    """Read a 2-D label file as an integer ``[H, W]`` array (palette PNGs give their indices).

    A 3-channel label file is accepted only when its channels are equal (a gray mask saved as RGB).

    Raises:
        BadInputError: missing or unreadable file, a colour label image, or a non-2-D array.
    """
    arr = _read_array_2d(Path(path))
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise BadInputError(f"{path}: colour label image (channels differ); expected a gray or palette mask")
        arr = rgb[..., 0]
    if arr.ndim != 2:
        raise BadInputError(f"{path}: expected a 2-D label image, got an array of shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise BadInputError(f"{path}: label image has non-integer values")
        arr = arr.astype(np.int64)
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8)
    return arr


def image_size_2d(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of a 2-D image file, read from its header only.

    Raises:
        BadInputError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"file not found: {path}")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(str(path)) as tif:
                shape = tif.pages[0].shape
            return int(shape[0]), int(shape[1])
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
        return int(h), int(w)
    except Exception as e:  # noqa: BLE001 - any decoder failure means an unreadable file
        raise BadInputError(f"unreadable image file {path}: {e}") from e


def pair_by_stem(
    image_dir: Path, mask_dir: Path, log: BadInputLog, image_exts: Iterable[str] = IMAGE_EXTENSIONS
) -> list[tuple[str, Path, Path]]:
    """Pair the images of ``image_dir`` with the masks of ``mask_dir`` by file stem.

    An image without a mask is bad input (raised or skipped+counted through ``log``); masks without an image are
    ignored. Returns ``[(stem, image_path, mask_path), ...]`` sorted by stem.

    Raises:
        BadInputError: a missing folder, or (``skip_bad=False``) an image without a mask.
    """
    images = files_by_stem(check_dir(image_dir, "image folder"), image_exts)
    masks = files_by_stem(check_dir(mask_dir, "mask folder"))
    pairs = []
    for stem, img in images.items():
        if stem not in masks:
            log.report(BadInputError(f"image without a mask: {img} (no {stem}.* in {mask_dir})"))
            continue
        pairs.append((stem, img, masks[stem]))
    return pairs


def load_object_2d(entry: Mapping[str, Any]) -> dict:
    """Load the item of one 2-D entry (keys ``image_path``, ``label_path``, ``object``, ``object_id``).

    Optional entry keys: ``label_reader`` (a module-level function ``path -> label array``, default
    :func:`read_label_2d`), ``intensity`` (:func:`normalize_image` mode, default ``"auto"``), ``ignore_values``
    (label values that become ``item["ignore"]``), ``dataset`` (stored in meta).

    Raises:
        BadInputError: unreadable files or image / label size mismatch.
    """
    image = read_image_2d(entry["image_path"])
    label = entry.get("label_reader", read_label_2d)(entry["label_path"])
    if label.shape[:2] != image.shape[1:]:
        raise BadInputError(
            f"{entry['label_path']}: label size {label.shape[:2]} differs from image {entry['image_path']} "
            f"size {image.shape[1:]}"
        )
    ignore_values = entry.get("ignore_values")
    ignore = np.isin(label, np.asarray(ignore_values)) if ignore_values else None
    meta = {
        "dataset": entry.get("dataset", ""),
        "image_file": str(entry["image_path"]),
        "label_file": str(entry["label_path"]),
        "object": tuple(entry["object"]),
        "area": entry.get("area"),
    }
    meta.update(entry.get("meta", {}))
    return make_item(
        normalize_image(image, entry.get("intensity", "auto")),
        object_mask(label, tuple(entry["object"])),
        entry["object_id"],
        meta,
        ignore=ignore,
    )
