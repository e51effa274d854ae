# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The image preprocessing that training and inference share: channels, intensities, the network frame.

One implementation, called by :class:`monai_adaptiveclick.inference.Predictor` at inference time and by the training
transform (:class:`PrepareImaged`, :class:`ResizeToFramed`), so that a model sees at inference exactly the kind of
input it was trained on:

1. :func:`match_channels`: the image channels equal the model's are used as they are; a 1-channel image is repeated
   to the model's channel count (a grey slice for an RGB-pretrained model); a 3-channel image is averaged for a
   1-channel model; anything else is an error naming both counts;
2. :func:`prepare_image`: validation (rank, dtype, NaN) + :func:`match_channels` + the intensity normalisation
   (``"percentile"``: per channel 0.5 / 99.5 percentile clip scaled to [0, 1]; ``"none"``: unchanged);
3. :func:`network_frame` / :func:`to_network_frame`: the longest side resized to the network size (bilinear with
   antialiasing, aspect kept), zero padding at the bottom / right to a square (the project's framing); or
   :func:`stretch_to_size`: the whole image stretched to the network square (bilinear, ``align_corners=True``, no
   antialiasing, aspect not kept; the SimpleClick v1.0 evaluation framing, SPEC section 5).

Example:
    >>> image = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    >>> prepare_image(image, 3).shape
    (3, 3, 4)
    >>> network_frame(30, 60, 64)
    (32, 64)
    >>> to_network_frame(torch.ones(1, 30, 60), 64).shape
    torch.Size([1, 64, 64])
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import look_up_option

from monai_adaptiveclick.data.intensity import normalize_image

__all__ = [
    "INTENSITY_MODES",
    "PrepareImaged",
    "ResizeToFramed",
    "match_channels",
    "network_frame",
    "prepare_image",
    "stretch_to_size",
    "to_network_frame",
]

INTENSITY_MODES = ("percentile", "none")
"""Intensity normalisations of :func:`prepare_image`."""


def match_channels(image: np.ndarray, num_channels: int) -> np.ndarray:
    """Bring a ``[C, H, W]`` image to ``num_channels`` channels (module docstring, step 1).

    Raises:
        ValueError: a channel count that cannot be matched, naming both counts.
    """
    if int(num_channels) < 1:
        raise ValueError(f"num_channels must be >= 1, got {num_channels}.")
    got = image.shape[0]
    if got == num_channels:
        return image
    if got == 1:
        return np.repeat(image, num_channels, axis=0)
    if got == 3 and num_channels == 1:
        return image.mean(0, keepdims=True)
    raise ValueError(
        f"channel mismatch: the model expects {num_channels} image channel(s), the image has {got} "
        "(only 1-channel images are repeated and 3-channel images averaged)."
    )


def prepare_image(image: Any, num_channels: int, intensity: str = "percentile") -> np.ndarray:
    """Validate an image, match its channels and normalise its intensities (module docstring, steps 1-2).

    Args:
        image: ``[C, H, W]`` or ``[H, W]`` numeric array.
        num_channels: the model's image channels.
        intensity: one of :data:`INTENSITY_MODES`.

    Returns:
        float32 ``[num_channels, H, W]``.

    Raises:
        ValueError: wrong rank, non-numeric dtype, NaN values or unmatched channels.
    """
    intensity = look_up_option(intensity, INTENSITY_MODES)
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"image must be [C, H, W] (or [H, W]), got shape {image.shape}.")
    if not (np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer)):
        raise ValueError(f"image must be numeric, got dtype {image.dtype}.")
    image = image.astype(np.float32, copy=False)
    if np.isnan(image).any():
        raise ValueError("image contains NaN values.")
    return normalize_image(match_channels(image, num_channels), intensity)


def network_frame(height: int, width: int, image_size: int) -> tuple[int, int]:
    """Size ``(h, w)`` of an ``height x width`` image resized so that its longest side is ``image_size``."""
    if min(height, width, image_size) < 1:
        raise ValueError(f"sizes must be >= 1, got image {height} x {width} and network size {image_size}.")
    scale = image_size / max(height, width)
    return max(1, min(image_size, round(height * scale))), max(1, min(image_size, round(width * scale)))


def to_network_frame(maps: torch.Tensor, image_size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``[K, H, W]`` maps into the network frame and zero-pad them to ``image_size`` squared.

    Args:
        maps: float maps ``[K, H, W]``.
        image_size: the network input size.
        mode: ``"bilinear"`` (with antialiasing; images and probability maps) or ``"area"`` (binary masks: the
            fraction of each output pixel covered, threshold it afterwards).

    Returns:
        ``[K, image_size, image_size]``; the image occupies the top-left :func:`network_frame` region.
    """
    mode = look_up_option(mode, ("bilinear", "area"))
    frame = network_frame(int(maps.shape[-2]), int(maps.shape[-1]), image_size)
    options = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    resized = F.interpolate(maps[None].float(), size=frame, mode=mode, **options)[0]
    return F.pad(resized, (0, image_size - frame[1], 0, image_size - frame[0]))


def stretch_to_size(maps: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Resize ``[K, H, W]`` maps to ``size`` with bilinear ``align_corners=True`` and no antialiasing.

    The aspect ratio is not kept. This is how the SimpleClick v1.0 predictor (which produced the paper's tables, SPEC
    section 5) brings its crop, and the previous probability with it, to the network input size; the inverse (the
    probability back to the crop size) is the same call with the crop's size.

    Args:
        maps: float maps ``[K, H, W]``.
        size: target ``S`` (square) or ``(H', W')``.

    Returns:
        float32 ``[K, H', W']``.

    Example:
        >>> stretch_to_size(torch.tensor([[[0.0, 1.0]]]), (1, 3)).tolist()
        [[[0.0, 0.5, 1.0]]]
    """
    target = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(target) != 2 or min(target) < 1:
        raise ValueError(f"size must be a positive int or a pair (H, W) of positive ints, got {size!r}.")
    return F.interpolate(maps[None].float(), size=target, mode="bilinear", align_corners=True)[0]


class PrepareImaged(MapTransform):
    """Dictionary version of :func:`prepare_image` (the Predictor's channel and intensity step, for training).

    Args:
        keys: image key(s).
        num_channels: the model's image channels.
        intensity: one of :data:`INTENSITY_MODES`.

    Example:
        >>> PrepareImaged("image", 3)({"image": np.ones((1, 4, 4))})["image"].shape
        (3, 4, 4)
    """

    def __init__(self, keys: KeysCollection = "image", num_channels: int = 3, intensity: str = "percentile") -> None:
        super().__init__(keys)
        if int(num_channels) < 1:
            raise ValueError(f"num_channels must be >= 1, got {num_channels}.")
        self.num_channels = int(num_channels)
        self.intensity = look_up_option(intensity, INTENSITY_MODES)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            try:
                d[key] = prepare_image(d[key], self.num_channels, self.intensity)
            except ValueError as err:
                raise ValueError(f"item {d.get('object_id', '?')}: {err}") from err
        return d


class ResizeToFramed(MapTransform):
    """Put the image (bilinear) and masks (area) of an item into the network frame (:func:`to_network_frame`).

    Args:
        keys: keys of ``[C, H, W]`` arrays / tensors sharing one spatial size.
        image_size: the network input size.
        modes: one interpolation mode per key (``"bilinear"`` or ``"area"``).
        allow_missing_keys: skip absent keys (e.g. ``ignore``).

    Example:
        >>> out = ResizeToFramed(["image", "label"], 8, ["bilinear", "area"])(
        ...     {"image": torch.ones(1, 4, 2), "label": torch.ones(1, 4, 2)})
        >>> out["image"].shape, float(out["label"][0, 0, 3]), float(out["label"][0, 0, 4])
        (torch.Size([1, 8, 8]), 1.0, 0.0)
    """

    def __init__(
        self, keys: KeysCollection, image_size: int, modes: Sequence[str], allow_missing_keys: bool = True
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(modes) != len(self.keys):
            raise ValueError(f"give one mode per key: {len(self.keys)} keys, {len(modes)} modes.")
        self.image_size = int(image_size)
        self.modes = dict(zip(self.keys, modes, strict=True))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = to_network_frame(torch.as_tensor(np.asarray(d[key])), self.image_size, self.modes[key])
        return d
