# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Label maps for the synthetic data engine (SPEC section 11): the sample pack's training labels and procedural shapes.

A label map is an ``int32`` array ``[H, W]``: ``0`` is background, every other value a structure; each connected
component of a non-zero value becomes an object of :mod:`.synthetic`.

* :func:`sample_label_maps` reads the label planes of the embedded sample pack that are allowed for training: every
  slice of a volume at least ``split_gap`` slices (the pack's own rule, 10) away from every held-out slice, and the
  training regions of the 2-D images. Labels only: the synthetic engine gives them new intensities.
* :func:`noise_label_map`, :func:`voronoi_label_map` and :func:`blob_label_map` draw shapes from a random generator
  (thresholded smoothed noise, jittered Voronoi cells, star-shaped blobs); they need no source at all.

Example:
    >>> rng = np.random.default_rng(0)
    >>> labels = voronoi_label_map(rng, (48, 40), 6)
    >>> labels.shape, labels.dtype, int(labels.min()), int(labels.max())
    ((48, 40), dtype('int32'), 1, 6)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from .sample import SAMPLE_PACK_DIR, load_index

__all__ = [
    "PROCEDURAL_GENERATORS",
    "blob_label_map",
    "noise_label_map",
    "sample_label_maps",
    "voronoi_label_map",
]


def _check_shape(shape: tuple[int, int], count: int) -> None:
    if len(shape) != 2 or min(shape) < 8:
        raise ValueError(f"label map shape must be (H, W) with H, W >= 8, got {shape}.")
    if count < 1:
        raise ValueError(f"the number of labels must be >= 1, got {count}.")


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-8)


def noise_label_map(rng: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    """Organic regions: label ``1..count`` wins where its smoothed Gaussian noise field is the largest.

    Each field has its own smoothing (``sigma`` between 1/25 and 1/6 of the shorter side), so region sizes vary.
    """
    _check_shape(shape, count)
    side = min(shape)
    fields = [_smooth_noise(rng, shape, rng.uniform(side / 25, side / 6)) for _ in range(count)]
    return (np.argmax(np.stack(fields), axis=0) + 1).astype(np.int32)


def voronoi_label_map(rng: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    """Cells ``1..count`` around random seeds, their borders bent by a smooth random displacement."""
    _check_shape(shape, count)
    seeds = rng.uniform(0, 1, (count, 2)) * np.array(shape)
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    amplitude = rng.uniform(0, min(shape) / 12)
    sigma = min(shape) / 10
    rows = rows + amplitude * _smooth_noise(rng, shape, sigma)
    cols = cols + amplitude * _smooth_noise(rng, shape, sigma)
    distance = (rows[None] - seeds[:, 0, None, None]) ** 2 + (cols[None] - seeds[:, 1, None, None]) ** 2
    return (np.argmin(distance, axis=0) + 1).astype(np.int32)


def blob_label_map(rng: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    """Background ``0`` with ``count`` star-shaped blobs (nuclei, lesions, organs), later blobs drawn on top.

    A blob's radius is ``r0 * (1 + sum_m a_m cos(m * theta + phi_m))`` for ``m = 2..5`` with random small ``a_m``.
    """
    _check_shape(shape, count)
    labels = np.zeros(shape, np.int32)
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    side = min(shape)
    for value in range(1, count + 1):
        centre = rng.uniform(0, 1, 2) * np.array(shape)
        radius = side * rng.uniform(0.03, 0.3)
        dy, dx = rows - centre[0], cols - centre[1]
        theta = np.arctan2(dy, dx)
        harmonics = sum(rng.uniform(0, 0.25 / m) * np.cos(m * theta + rng.uniform(0, 2 * np.pi)) for m in range(2, 6))
        aspect = rng.uniform(0.5, 1.0)
        angle = rng.uniform(0, np.pi)
        along = dx * np.cos(angle) + dy * np.sin(angle)
        across = (-dx * np.sin(angle) + dy * np.cos(angle)) / aspect
        labels[np.hypot(along, across) <= radius * (1 + harmonics)] = value
    return labels


PROCEDURAL_GENERATORS: dict[str, Callable[[np.random.Generator, tuple[int, int], int], np.ndarray]] = {
    "noise": noise_label_map,
    "voronoi": voronoi_label_map,
    "blobs": blob_label_map,
}


def _allowed_slices(index: dict, dataset: str, depth: int) -> list[int]:
    """Slices of a pack volume at least ``split_gap`` away from every held-out slice of that volume."""
    heldout = [row["k"] for row in index["slices"] if row["dataset"] == dataset and row["split"] != "train"]
    gap = int(index["split_gap"])
    return [k for k in range(depth) if all(abs(k - h) >= gap for h in heldout)]


def sample_label_maps(root: str | Path | None = None) -> dict[str, list[np.ndarray]]:
    """The training-safe label planes of the sample pack, grouped by pack dataset.

    Volumes with at least one training slice give every allowed slice (see the module docstring) that has a label;
    2-D images give their training regions. Held-out cases (a volume without training slices) give nothing.

    Returns:
        ``{dataset: [label plane int32 [H, W], ...]}``, e.g. ``colin27``, ``mni152_2009a``, ``nuclei_dsb2018``,
        ``voc2012``.

    Example:
        >>> maps = sample_label_maps()
        >>> sorted(maps), all(plane.ndim == 2 for planes in maps.values() for plane in planes)
        (['colin27', 'mni152_2009a', 'nuclei_dsb2018', 'voc2012'], True)
    """
    pack = Path(root) if root is not None else SAMPLE_PACK_DIR
    index = load_index(pack)
    groups: dict[str, list[np.ndarray]] = {}
    for row in index["slices"]:
        if row["split"] != "train":
            continue
        dataset = row["dataset"]
        if row["k"] is not None:
            if dataset in groups:
                continue
            volume = np.asanyarray(nib.load(str(pack / row["label"])).dataobj).astype(np.int32)
            planes = [volume[:, :, k] for k in _allowed_slices(index, dataset, volume.shape[2])]
            groups[dataset] = [plane for plane in planes if plane.any()]
        else:
            with Image.open(pack / row["label"]) as image:
                labels = np.asarray(image).astype(np.int32)
            y0, y1, x0, x1 = (int(v) for v in row["region"])
            groups.setdefault(dataset, []).append(labels[y0:y1, x0:x1])
    return groups
