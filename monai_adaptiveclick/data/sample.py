# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The embedded sample pack: real MR, microscopy and photo objects that ship with the package (issue 2 item 3).

The pack (``sample_pack/`` next to this file, built by ``scripts/build_sample_pack.py`` from the sources of SPEC
section 6; provenance, licences and the split rule are in its README.md) holds 3-D NIfTI volumes with label volumes,
2-D PNG images with instance images, and ``index.json`` listing the slices / regions used by the evaluation protocol,
their objects and the train / held-out split.

Each object becomes one dataset item (ARCHITECTURE "Dataset item" contract)::

    {"image": float32 [C, H, W] in [0, 1], "label": uint8 [1, H, W] in {0, 1}, "object_id": str, "meta": dict}

* Volumes: the slice is ``volume[:, :, k]`` of the array nibabel returns (the order of MONAI ``LoadImage``), with
  no transpose, so a click ``(y, x)`` on the item is voxel ``(y, x, k)`` (after undoing ``meta["scale"]``).
* 2-D images: the item is the crop ``array[y0:y1, x0:x1]`` of the PNG as numpy/PIL read it (rows first); the crop
  keeps held-out pixels out of training items.
* Intensities: MR and microscopy slices (1 channel) are min-max normalised between the slice's 0.5th and 99.5th
  percentiles and clipped to [0, 1] (a constant slice gives zeros); RGB photos are divided by 255 (3 channels).
* ``max_size`` (default 256): an item whose longer side exceeds it is downscaled so the longer side equals it
  (image: PIL bilinear with antialiasing, label: nearest); ``meta["scale"]`` is the factor, ``None`` keeps the
  stored resolution.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from PIL import Image

from .intensity import normalize_intensity

__all__ = [
    "MODALITIES",
    "SAMPLE_PACK_DIR",
    "SPLITS",
    "load_index",
    "load_sample",
    "sample_volume_pairs",
    "sample_volume_paths",
]

SAMPLE_PACK_DIR: Path = Path(__file__).resolve().parent / "sample_pack"
SPLITS: tuple[str, ...] = ("train", "heldout", "all")
MODALITIES: tuple[str, ...] = ("mri", "microscopy", "photo")


def _pack_dir(root: str | Path | None) -> Path:
    """The pack folder (``root`` or :data:`SAMPLE_PACK_DIR`); ``FileNotFoundError`` naming it when absent."""
    path = Path(root) if root is not None else SAMPLE_PACK_DIR
    if not path.is_dir():
        raise FileNotFoundError(f"sample pack folder not found: {path}")
    if not (path / "index.json").is_file():
        raise FileNotFoundError(f"sample pack index not found: {path / 'index.json'}")
    return path


def load_index(root: str | Path | None = None) -> dict[str, Any]:
    """Read ``index.json`` of the sample pack.

    Args:
        root: pack folder; default :data:`SAMPLE_PACK_DIR`.

    Returns:
        The index: ``volumes``, ``images_2d``, ``slices`` (each with ``objects``), ``aal_alignment``, ``provenance``.

    Raises:
        FileNotFoundError: the folder or its index is missing.
        ValueError: the index is not valid JSON or lacks the ``slices`` list.

    Example:
        >>> index = load_index()
        >>> sorted({row["split"] for row in index["slices"]})
        ['heldout', 'train']
    """
    path = _pack_dir(root) / "index.json"
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(index, dict) or not isinstance(index.get("slices"), list):
        raise ValueError(f"{path}: expected an object with a 'slices' list")
    return index


def _resize(image: np.ndarray, label: np.ndarray, max_size: int | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Downscale ``image`` [C, H, W] float32 and ``label`` [H, W] uint8 so that max(H, W) <= ``max_size``."""
    h, w = label.shape
    if max_size is None or max(h, w) <= max_size:
        return image, label, 1.0
    scale = max_size / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL size is (width, height)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(c, dtype=np.float32)).resize(size, Image.Resampling.BILINEAR))
        for c in image
    ]
    resized = np.clip(np.stack(channels), 0.0, 1.0).astype(np.float32)
    resized_label = np.asarray(Image.fromarray(label).resize(size, Image.Resampling.NEAREST), dtype=np.uint8)
    return resized, resized_label, scale


class _Cache:
    """Reads every pack file once per :func:`load_sample` call."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.volumes: dict[str, tuple[np.ndarray, np.ndarray, tuple[float, ...]]] = {}
        self.images: dict[str, np.ndarray] = {}

    def _path(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(f"sample pack file listed in index.json not found: {path}")
        return path

    def volume(self, name: str) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
        """(array, affine, voxel sizes) of a NIfTI file."""
        if name not in self.volumes:
            img = nib.load(str(self._path(name)))
            self.volumes[name] = (
                np.asanyarray(img.dataobj),
                img.affine,
                tuple(float(z) for z in img.header.get_zooms()),
            )
        return self.volumes[name]

    def image(self, name: str) -> np.ndarray:
        """Array of a PNG file, rows first."""
        if name not in self.images:
            with Image.open(self._path(name)) as img:
                self.images[name] = np.asarray(img)
        return self.images[name]


def _slice_arrays(row: dict, cache: _Cache) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Normalised image [C, H, W], label plane [H, W] and geometry meta for one index row."""
    if row["k"] is not None:
        volume, affine, zooms = cache.volume(row["image"])
        labels, label_affine, _ = cache.volume(row["label"])
        k = int(row["k"])
        if int(row["axis"]) != 2:
            raise ValueError(f"{row['slice_id']}: only axis 2 slices are supported, got axis {row['axis']}")
        if volume.shape != labels.shape or not 0 <= k < volume.shape[2]:
            raise ValueError(f"{row['slice_id']}: slice {k} / shapes {volume.shape}, {labels.shape} do not match")
        image = normalize_intensity(volume[:, :, k])[None]
        plane = np.asarray(labels[:, :, k])
        geometry = {"axis": 2, "slice_index": k, "affine": np.array(affine), "spacing": zooms[:2], "region": None}
        return image, plane, geometry
    array = cache.image(row["image"])
    labels = cache.image(row["label"])
    y0, y1, x0, x1 = (int(v) for v in row["region"])
    if array.shape[:2] != labels.shape[:2] or not (0 <= y0 < y1 <= labels.shape[0] and 0 <= x0 < x1 <= labels.shape[1]):
        raise ValueError(f"{row['slice_id']}: region {row['region']} does not fit the image {labels.shape}")
    crop = array[y0:y1, x0:x1]
    if crop.ndim == 3:
        image = np.moveaxis(crop[..., :3].astype(np.float32) / 255.0, -1, 0)
    else:
        image = normalize_intensity(crop)[None]
    plane = np.asarray(labels[y0:y1, x0:x1])
    geometry = {
        "axis": None,
        "slice_index": None,
        "affine": np.eye(4),
        "spacing": (1.0, 1.0),
        "region": [y0, y1, x0, x1],
    }
    return image, plane, geometry


def load_sample(
    split: str = "heldout",
    root: str | Path | None = None,
    modality: str | Sequence[str] | None = None,
    max_size: int | None = 256,
) -> list[dict[str, Any]]:
    """Dataset items (one per object) of the embedded sample pack.

    Args:
        split: ``"heldout"`` (evaluation objects), ``"train"`` or ``"all"``.
        root: pack folder; default :data:`SAMPLE_PACK_DIR`.
        modality: keep only ``"mri"``, ``"microscopy"``, ``"photo"`` (or a sequence of them); ``None`` keeps all.
        max_size: downscale items whose longer side exceeds this (see the module docstring); ``None`` keeps the
            stored resolution, where every label area equals the index's ``area``.

    Returns:
        Items in index order: ``image`` float32 [C, H, W] in [0, 1], ``label`` uint8 [1, H, W] in {0, 1},
        ``object_id`` and ``meta`` (``source_file``, ``label_file``, ``dataset``, ``slice_id``, ``slice_index``,
        ``axis``, ``region``, ``affine`` (the file's voxel-to-world affine for the stored, unscaled indices; identity
        for 2-D images), ``spacing`` (of the item's pixels), ``modality``, ``split``, ``name``, ``label_value``,
        ``area`` (stored resolution), ``scale``, ``original_size``).

    Raises:
        ValueError: unknown split or modality, ``max_size`` < 8, or an index row that does not fit its files.
        FileNotFoundError: the pack folder, its index or a listed file is missing.

    Example:
        >>> items = load_sample("heldout", modality="mri")
        >>> items[0]["image"].dtype, items[0]["label"].shape[0]
        (dtype('float32'), 1)
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if modality is None:
        wanted = set(MODALITIES)
    else:
        wanted = {modality} if isinstance(modality, str) else set(modality)
        unknown = wanted - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modality {sorted(unknown)}; choose from {MODALITIES}")
    if max_size is not None and (isinstance(max_size, bool) or int(max_size) != max_size or max_size < 8):
        raise ValueError(f"max_size must be an integer >= 8 or None, got {max_size!r}")
    pack = _pack_dir(root)
    index = load_index(pack)
    cache = _Cache(pack)
    items: list[dict[str, Any]] = []
    for row in index["slices"]:
        if (split != "all" and row["split"] != split) or row["modality"] not in wanted or not row["objects"]:
            continue
        image, plane, geometry = _slice_arrays(row, cache)
        for obj in row["objects"]:
            mask = (plane == obj["label_value"]).astype(np.uint8)
            item_image, label, scale = _resize(image, mask, max_size)
            meta = {
                "source_file": str(pack / row["image"]),
                "label_file": str(pack / row["label"]),
                "dataset": row["dataset"],
                "slice_id": row["slice_id"],
                "modality": row["modality"],
                "split": row["split"],
                "name": obj["name"],
                "label_value": int(obj["label_value"]),
                "area": int(obj["area"]),
                "scale": scale,
                "original_size": tuple(int(s) for s in plane.shape),
                **geometry,
                "spacing": tuple(float(s) / scale for s in geometry["spacing"]),
            }
            items.append({"image": item_image, "label": label[None], "object_id": obj["object_id"], "meta": meta})
    return items


def sample_volume_pairs(root: str | Path | None = None) -> list[tuple[Path, Path]]:
    """(image, label) NIfTI paths of the pack's 3-D volumes, in index order.

    Raises:
        FileNotFoundError: the pack, its index or a listed volume is missing.
    """
    pack = _pack_dir(root)
    pairs = []
    for volume in load_index(pack).get("volumes", []):
        image, label = pack / volume["image"], pack / volume["label"]
        for path in (image, label):
            if not path.is_file():
                raise FileNotFoundError(f"sample pack volume listed in index.json not found: {path}")
        pairs.append((image, label))
    return pairs


def sample_volume_paths(root: str | Path | None = None) -> list[Path]:
    """The pack's 3-D NIfTI image volumes (for a MONAI Label studies folder); labels via :func:`sample_volume_pairs`.

    Example:
        >>> [p.name for p in sample_volume_paths()][:1]
        ['colin27_t1.nii.gz']
    """
    return [image for image, _ in sample_volume_pairs(root)]
