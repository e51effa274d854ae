# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""RITM-style training augmentation with MONAI dictionary transforms (SPEC section 4, issue 5).

:func:`training_augmentation` returns a :class:`monai.transforms.Compose` over the item keys ``image`` /
``label`` (/ ``ignore`` when present):

1. random scale: ``RandZoomd`` with a zoom factor in ``scale_range`` (default 0.75-1.4; bilinear for the image,
   nearest for the masks);
2. ``SpatialPadd`` to at least ``spatial_size`` (zeros);
3. :class:`RandObjectCropd`: a ``spatial_size`` crop that contains a random object pixel at a random position
   (so the object is never cropped away), retried up to ``max_tries`` times to keep ``min_area`` object pixels;
4. ``RandFlipd`` horizontal flip;
5. intensity: RGB colour jitter (``RandScaleIntensityd`` contrast-like scaling, ``RandShiftIntensityd``
   brightness, :class:`RandSaturationd`), or MRI intensity scaling (``RandScaleIntensityd``), bias field
   (``RandBiasFieldd``) and gamma (``RandAdjustContrastd``); the image is clipped back to [0, 1];
6. :class:`MinAreaFilterd`: ``item["valid"]`` = 1.0 when the object kept at least ``min_area`` pixels, else 0.0
   (a transform cannot drop an item; the training loop masks invalid samples out).

Outputs are float32 torch tensors: ``image [C, h, w]``, ``label [1, h, w]`` in {0, 1}, ``ignore [1, h, w]`` in
{0, 1}. Deterministic after ``compose.set_random_state(seed)``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    EnsureTyped,
    MapTransform,
    RandAdjustContrastd,
    RandBiasFieldd,
    RandFlipd,
    Randomizable,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandZoomd,
    SpatialPadd,
)

__all__ = ["ClipIntensityd", "MinAreaFilterd", "RandObjectCropd", "RandSaturationd", "training_augmentation"]


def _as_size(spatial_size: int | Sequence[int]) -> tuple[int, int]:
    size = (spatial_size, spatial_size) if isinstance(spatial_size, int) else tuple(int(s) for s in spatial_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"spatial_size must be a positive int or (h, w), got {spatial_size}")
    return size


class RandObjectCropd(Randomizable, MapTransform):
    """Crop ``spatial_size`` around the object: a random object pixel lands at a random position of the crop.

    Args:
        keys: keys to crop (same spatial size as ``label_key``'s array, ``[C, H, W]``, at least ``spatial_size``).
        spatial_size: crop size ``(h, w)``.
        label_key: the object mask key.
        min_area: try to keep at least this many object pixels.
        max_tries: crop candidates tried for ``min_area`` (the one with the most object pixels is kept).
        allow_missing_keys: skip absent keys (e.g. ``ignore``).

    Raises:
        ValueError: inputs smaller than ``spatial_size`` (pad first).
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_size: int | Sequence[int],
        label_key: str = "label",
        min_area: int = 1,
        max_tries: int = 10,
        allow_missing_keys: bool = True,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.spatial_size = _as_size(spatial_size)
        self.label_key = label_key
        self.min_area = int(min_area)
        self.max_tries = max(1, int(max_tries))

    def _start(self, fg: np.ndarray, shape: tuple[int, int]) -> tuple[int, int]:
        h, w = self.spatial_size
        if fg.shape[0] == 0:
            return self.R.randint(0, shape[0] - h + 1), self.R.randint(0, shape[1] - w + 1)
        y, x = fg[self.R.randint(len(fg))]
        y0 = int(np.clip(y - self.R.randint(h), 0, shape[0] - h))
        x0 = int(np.clip(x - self.R.randint(w), 0, shape[1] - w))
        return y0, x0

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        label = d[self.label_key]
        mask = np.asarray(label.detach().cpu() if isinstance(label, torch.Tensor) else label)[0] > 0.5
        shape = mask.shape
        h, w = self.spatial_size
        if shape[0] < h or shape[1] < w:
            raise ValueError(f"RandObjectCropd: input {shape} smaller than the crop {self.spatial_size}; pad first")
        fg = np.argwhere(mask)
        best, best_area = (0, 0), -1
        for _ in range(self.max_tries):
            y0, x0 = self._start(fg, shape)
            area = int(mask[y0 : y0 + h, x0 : x0 + w].sum())
            if area > best_area:
                best, best_area = (y0, x0), area
            if area >= self.min_area:
                break
        y0, x0 = best
        for key in self.key_iterator(d):
            d[key] = d[key][:, y0 : y0 + h, x0 : x0 + w]
        return d


class RandSaturationd(Randomizable, MapTransform):
    """RGB saturation jitter: ``x = gray + s * (x - gray)`` with ``s ~ U(1 - delta, 1 + delta)`` (3-channel only).

    Args:
        keys: RGB image keys ``[3, H, W]``.
        delta: maximum relative change of saturation.
        prob: probability of applying.
    """

    def __init__(self, keys: KeysCollection, delta: float = 0.1, prob: float = 0.5) -> None:
        MapTransform.__init__(self, keys, False)
        if not 0.0 <= delta < 1.0:
            raise ValueError(f"delta must be in [0, 1), got {delta}")
        self.delta, self.prob = float(delta), float(prob)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        apply = self.R.rand() < self.prob
        s = self.R.uniform(1.0 - self.delta, 1.0 + self.delta)
        if not apply:
            return d
        for key in self.key_iterator(d):
            x = d[key]
            if x.shape[0] != 3:
                continue
            gray = 0.299 * x[0:1] + 0.587 * x[1:2] + 0.114 * x[2:3]
            d[key] = gray + s * (x - gray)
        return d


class ClipIntensityd(MapTransform):
    """Clip the values of ``keys`` to ``[low, high]`` (default [0, 1])."""

    def __init__(self, keys: KeysCollection, low: float = 0.0, high: float = 1.0) -> None:
        super().__init__(keys, False)
        self.low, self.high = float(low), float(high)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = (
                d[key].clamp(self.low, self.high)
                if isinstance(d[key], torch.Tensor)
                else np.clip(d[key], self.low, self.high)
            )
        return d


class MinAreaFilterd(MapTransform):
    """Flag objects that (almost) vanished after cropping: ``data["valid"] = 1.0`` if area >= ``min_area`` else 0.0.

    The label is binarised (> 0.5) in place as float32.

    Args:
        keys: the object mask key(s) (the first one decides).
        min_area: minimum object area in pixels.
        valid_key: output key of the flag.
    """

    def __init__(self, keys: KeysCollection = "label", min_area: int = 1, valid_key: str = "valid") -> None:
        super().__init__(keys, False)
        if min_area < 0:
            raise ValueError(f"min_area must be >= 0, got {min_area}")
        self.min_area, self.valid_key = int(min_area), valid_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        area = None
        for key in self.key_iterator(d):
            lab = torch.as_tensor(d[key]) > 0.5
            d[key] = lab.to(torch.float32)
            area = int(lab.sum()) if area is None else area
        d[self.valid_key] = torch.tensor(float(area is not None and area >= self.min_area))
        return d


def training_augmentation(
    spatial_size: int | Sequence[int],
    modality: str = "mri",
    scale_range: tuple[float, float] = (0.75, 1.4),
    flip_prob: float = 0.5,
    min_area: int = 10,
    intensity_prob: float = 0.5,
) -> Compose:
    """RITM-style training augmentation (module docstring) for items ``{"image", "label"(, "ignore")}``.

    Args:
        spatial_size: training crop size (int or ``(h, w)``).
        modality: ``"mri"`` (intensity scaling, bias field, gamma) or ``"rgb"`` (brightness / contrast /
            saturation jitter). Images are expected in [0, 1] (as the loaders return them).
        scale_range: random zoom range.
        flip_prob: horizontal flip probability.
        min_area: minimum object pixels after the crop (``item["valid"]`` flag).
        intensity_prob: probability of each intensity transform.

    Returns:
        A :class:`monai.transforms.Compose`; call ``set_random_state(seed)`` for reproducibility.

    Raises:
        ValueError: bad sizes, modality or scale range.

    Example:
        >>> aug = training_augmentation(64, modality="mri").set_random_state(0)
        >>> out = aug(item)  # doctest: +SKIP
    """
    size = _as_size(spatial_size)
    if modality not in ("mri", "rgb"):
        raise ValueError(f"modality must be 'mri' or 'rgb', got {modality!r}")
    lo, hi = scale_range
    if not 0 < lo <= hi:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
    keys = ["image", "label", "ignore"]
    spatial: list = [
        EnsureTyped(keys=keys, data_type="tensor", dtype=torch.float32, track_meta=False, allow_missing_keys=True),
        RandZoomd(
            keys=keys,
            prob=1.0,
            min_zoom=lo,
            max_zoom=hi,
            mode=("bilinear", "nearest", "nearest"),
            padding_mode="constant",
            keep_size=False,
            allow_missing_keys=True,
        ),
        SpatialPadd(keys=keys, spatial_size=size, allow_missing_keys=True),
        RandObjectCropd(keys=keys, spatial_size=size, min_area=min_area),
        RandFlipd(keys=keys, prob=flip_prob, spatial_axis=1, allow_missing_keys=True),
    ]
    if modality == "rgb":
        intensity: list = [
            RandScaleIntensityd(keys="image", factors=0.15, prob=intensity_prob),
            RandShiftIntensityd(keys="image", offsets=0.1, prob=intensity_prob),
            RandSaturationd(keys="image", delta=0.15, prob=intensity_prob),
        ]
    else:
        intensity = [
            RandScaleIntensityd(keys="image", factors=0.1, prob=intensity_prob),
            RandBiasFieldd(keys="image", coeff_range=(0.0, 0.1), prob=intensity_prob),
            RandAdjustContrastd(keys="image", gamma=(0.7, 1.5), prob=intensity_prob),
        ]
    final = [
        ClipIntensityd(keys="image"),
        MinAreaFilterd(keys="label", min_area=min_area),
        EnsureTyped(keys=keys, data_type="tensor", dtype=torch.float32, track_meta=False, allow_missing_keys=True),
    ]
    return Compose(spatial + intensity + final)
