# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The training augmentation: one MONAI ``Compose`` (RITM / SimpleClick-style, SPEC section 4).

:func:`training_augmentation` maps an item ``{"image" [C, H, W] in [0, 1], "label" [1, H, W], "ignore"? [1, H, W]}``
to a square ``image_size`` sample:

1. :class:`EnsureIgnored`: an all-zero ``ignore`` mask when the item has none (so every batch carries one);
2. scale and crop around the object, one of (MONAI ``OneOf``, weights ``p_full`` / ``1 - p_full``):

   - the whole image in the network frame (:class:`~.preprocessing.ResizeToFramed`: longest side resized, zero
     padding at the bottom / right), exactly the view the Predictor gives the model without zoom-in;
   - :class:`RandObjectWindowd`: a square window whose side is ``U(scale_range)`` times the object's bounding-box
     side, placed at random so that it contains the object's centre, then resized to ``image_size`` (the zoomed
     views the protocol's zoom-in produces);

3. horizontal and vertical flips (``RandFlipd``);
4. intensity jitter: gamma (``RandAdjustContrastd``), contrast (``RandScaleIntensityd``), brightness
   (``RandShiftIntensityd``), then clipping to [0, 1];
5. :class:`BinarizeMasksd`: label and ignore back to {0, 1} (area-resampled masks are fractions); a small object
   that no pixel covers by half keeps every pixel it touches, so it never vanishes.

Images are expected already normalised (``transforms.PrepareImaged``, the Predictor's own step), so intensities are
normalised exactly once. Deterministic after ``compose.set_random_state(seed)``.

Example:
    >>> item = {"image": np.random.rand(1, 40, 30).astype("float32"), "label": np.zeros((1, 40, 30), "uint8")}
    >>> item["label"][0, 10:20, 5:15] = 1
    >>> out = training_augmentation(32).set_random_state(0)(item)
    >>> tuple(out["image"].shape), tuple(out["label"].shape), tuple(out["ignore"].shape), bool(out["label"].any())
    ((1, 32, 32), (1, 32, 32), (1, 32, 32), True)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    EnsureTyped,
    MapTransform,
    OneOf,
    RandAdjustContrastd,
    RandFlipd,
    Randomizable,
    RandScaleIntensityd,
    RandShiftIntensityd,
    ScaleIntensityRanged,
)

from .preprocessing import ResizeToFramed, to_network_frame

__all__ = ["BinarizeMasksd", "EnsureIgnored", "RandObjectWindowd", "training_augmentation"]

KEYS = ("image", "label", "ignore")
MODES = ("bilinear", "area", "area")


class EnsureIgnored(MapTransform):
    """Add an all-zero ``ignore`` mask of the label's shape when the item has none (or ``None``).

    Example:
        >>> EnsureIgnored()({"label": np.ones((1, 2, 3))})["ignore"].shape
        (1, 2, 3)
    """

    def __init__(self, label_key: str = "label", ignore_key: str = "ignore") -> None:
        super().__init__([label_key])
        self.label_key, self.ignore_key = label_key, ignore_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        label = np.asarray(d[self.label_key])
        if d.get(self.ignore_key) is None:
            d[self.ignore_key] = np.zeros(label.shape, dtype=np.float32)
        elif np.asarray(d[self.ignore_key]).shape != label.shape:
            raise ValueError(
                f"item {d.get('object_id', '?')}: ignore shape {np.asarray(d[self.ignore_key]).shape} does not match "
                f"the label shape {label.shape}."
            )
        return d


class RandObjectWindowd(Randomizable, MapTransform):
    """A square window around the object, resized to ``image_size`` (the zoomed view of the module docstring).

    The window side is ``U(scale_range)`` times the longer side of the label's bounding box (at least 16 px, at most
    the image's longer side); its top-left corner is drawn so that the object's centre lies between 20 % and 80 % of
    the window in each direction. Pixels outside the image are zeros.

    Args:
        keys: keys cropped with the same window (``[C, H, W]`` arrays / tensors of one spatial size).
        image_size: output size.
        modes: interpolation per key (``"bilinear"`` / ``"area"``).
        scale_range: window side relative to the object's bounding-box side.
        label_key: the object mask.

    Raises:
        ValueError: an empty label (nothing to centre the window on).
    """

    def __init__(
        self,
        keys: KeysCollection,
        image_size: int,
        modes: tuple[str, ...],
        scale_range: tuple[float, float] = (1.2, 3.0),
        label_key: str = "label",
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys=True)
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must be increasing and positive, got {scale_range}.")
        self.image_size, self.scale_range, self.label_key = int(image_size), tuple(scale_range), label_key
        self.modes = dict(zip(self.keys, modes, strict=True))
        self._window = (0, 0, 1)

    def randomize(self, label: np.ndarray) -> None:
        """Draw the window ``(top, left, side)`` for an object mask ``[H, W]``."""
        ys, xs = np.nonzero(label)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        side = int(round(max(y1 - y0, x1 - x0) * self.R.uniform(*self.scale_range)))
        side = int(min(max(side, 16), max(label.shape)))
        top = int(round((y0 + y1) / 2.0 - side * self.R.uniform(0.2, 0.8)))
        left = int(round((x0 + x1) / 2.0 - side * self.R.uniform(0.2, 0.8)))
        self._window = (top, left, side)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        label = np.asarray(d[self.label_key])[0] > 0.5
        if not label.any():
            raise ValueError(f"item {d.get('object_id', '?')} has an empty label; drop it before augmenting.")
        self.randomize(label)
        top, left, side = self._window
        for key in self.key_iterator(d):
            array = torch.as_tensor(np.asarray(d[key]), dtype=torch.float32)
            window = array.new_zeros((array.shape[0], side, side))
            y0, x0 = max(top, 0), max(left, 0)
            y1, x1 = min(top + side, array.shape[1]), min(left + side, array.shape[2])
            if y1 > y0 and x1 > x0:
                window[:, y0 - top : y1 - top, x0 - left : x1 - left] = array[:, y0:y1, x0:x1]
            d[key] = to_network_frame(window, self.image_size, self.modes[key])
        return d


class BinarizeMasksd(MapTransform):
    """Binarise resampled masks at ``>= 0.5``; for ``keep_nonempty`` keys an emptied mask keeps its pixels ``> 0``.

    Example:
        >>> out = BinarizeMasksd(["label"])({"label": torch.tensor([[[0.0, 0.2, 0.4]]])})
        >>> out["label"].tolist()
        [[[0.0, 1.0, 1.0]]]
    """

    def __init__(self, keys: KeysCollection, keep_nonempty: KeysCollection = ("label",)) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.keep_nonempty = {keep_nonempty} if isinstance(keep_nonempty, str) else set(keep_nonempty)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            mask = torch.as_tensor(d[key], dtype=torch.float32)
            binary = mask >= 0.5
            if key in self.keep_nonempty and not bool(binary.any()):
                binary = mask > 0
            d[key] = binary.float()
        return d


def training_augmentation(
    image_size: int,
    p_full: float = 0.5,
    scale_range: tuple[float, float] = (1.2, 3.0),
    flip_prob: float = 0.5,
    gamma_range: tuple[float, float] = (0.7, 1.5),
    intensity_prob: float = 0.5,
    intensity_scale: float = 0.1,
    intensity_shift: float = 0.1,
) -> Compose:
    """The training augmentation of the module docstring.

    Args:
        image_size: network input size (square output).
        p_full: probability of the whole-image view (else a window around the object).
        scale_range: window side relative to the object's bounding-box side.
        flip_prob: probability of each of the horizontal and vertical flips.
        gamma_range: range of the random gamma (applied to every sample).
        intensity_prob: probability of each of the contrast and brightness changes.
        intensity_scale: contrast change ``x * (1 + U(-s, s))``.
        intensity_shift: brightness change ``x + U(-s, s)``.

    Returns:
        the ``Compose``; call ``set_random_state(seed)`` for reproducibility.

    Raises:
        ValueError: a size below 8 px or a probability outside [0, 1].
    """
    if int(image_size) < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}.")
    for name, value in (("p_full", p_full), ("flip_prob", flip_prob), ("intensity_prob", intensity_prob)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}.")
    if not 0 < gamma_range[0] <= gamma_range[1]:
        raise ValueError(f"gamma_range must be increasing and positive, got {gamma_range}.")
    keys = list(KEYS)
    return Compose(
        [
            EnsureIgnored(),
            OneOf(
                [
                    ResizeToFramed(keys, image_size, MODES),
                    RandObjectWindowd(keys, image_size, MODES, scale_range=scale_range),
                ],
                weights=[p_full, 1.0 - p_full],
            ),
            RandFlipd(keys, prob=flip_prob, spatial_axis=1),
            RandFlipd(keys, prob=flip_prob, spatial_axis=0),
            RandAdjustContrastd("image", prob=1.0, gamma=gamma_range),
            RandScaleIntensityd("image", factors=intensity_scale, prob=intensity_prob),
            RandShiftIntensityd("image", offsets=intensity_shift, prob=intensity_prob),
            ScaleIntensityRanged("image", a_min=0.0, a_max=1.0, b_min=0.0, b_max=1.0, clip=True),
            BinarizeMasksd(["label", "ignore"]),
            EnsureTyped(keys, data_type="tensor", dtype=torch.float32, track_meta=False),
        ]
    )
