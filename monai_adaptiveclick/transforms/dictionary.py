# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""MONAI dictionary transforms for the guidance channels and the initial training clicks.

* :class:`AddGuidanceChannelsd` appends ``[prev_mask, positive disks, negative disks]`` to the image channels
  (ARCHITECTURE contract "Guidance channels", SPEC section 1).
* :class:`SampleInitialClicksd` draws the initial training clicks of SPEC section 4 into the item (randomised
  with MONAI's ``Randomizable`` state, so ``set_random_state`` makes it reproducible).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable

from monai_adaptiveclick.protocol import CLICK_RADIUS

from .clicks import as_clicks, clicks_to_tensors
from .disks import rasterize_clicks
from .sampling import sample_initial_clicks

__all__ = ["AddGuidanceChannelsd", "SampleInitialClicksd"]


class AddGuidanceChannelsd(MapTransform):
    """Append the three guidance channels to a channel-first 2-D image: ``[C, H, W] -> [C + 3, H, W]``.

    The appended channels are, in order: the previous-mask probability (``prev_mask_key``, zeros when absent), the
    union of disks of ``radius`` pixels around the positive clicks, the same for the negative clicks (SPEC section 1).
    The output keeps the input's type: a numpy image gives a float32 numpy array, a tensor (or ``MetaTensor``) image
    a float32 tensor on the same device.

    Args:
        keys: image key(s) to extend.
        clicks_key: key of the click sequence (``Click`` or ``(y, x, is_positive)``, in pixels of the image); a
            missing key means no click.
        prev_mask_key: key of the previous probability map ``[H, W]`` or ``[1, H, W]`` with values in [0, 1]; a missing
            key means zeros.
        radius: click disk radius in pixels.
        source_size_key: optional key holding ``(H0, W0)``, the size of the image the clicks were placed on; clicks
            are then scaled to the current image size (see ``rasterize_clicks``).
        allow_missing_keys: do not raise when an image key is missing.

    Example:
        >>> from monai.transforms import Compose
        >>> t = Compose([AddGuidanceChannelsd(keys="image")])
        >>> out = t({"image": np.zeros((1, 32, 32), np.float32), "clicks": [(5, 6, True)]})
        >>> out["image"].shape
        (4, 32, 32)
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        clicks_key: str = "clicks",
        prev_mask_key: str = "prev_mask",
        radius: float = CLICK_RADIUS,
        source_size_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not np.isfinite(radius) or radius < 0:
            raise ValueError(f"radius must be a finite number >= 0, got {radius!r}.")
        self.clicks_key = clicks_key
        self.prev_mask_key = prev_mask_key
        self.radius = radius
        self.source_size_key = source_size_key

    def _prev_mask(self, data: Mapping[Hashable, Any], spatial: tuple[int, int], key: Hashable) -> torch.Tensor:
        """Return the previous mask as a float32 CPU tensor ``[1, H, W]``, validated."""
        if self.prev_mask_key not in data or data[self.prev_mask_key] is None:
            return torch.zeros((1, *spatial), dtype=torch.float32)
        value = data[self.prev_mask_key]
        mask = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
        mask = torch.as_tensor(mask, dtype=torch.float32)
        if mask.ndim == 2:
            mask = mask[None]
        if mask.ndim != 3 or mask.shape[0] != 1 or tuple(mask.shape[1:]) != spatial:
            raise ValueError(
                f"'{self.prev_mask_key}' must have shape [H, W] or [1, H, W] matching '{key}' spatial size {spatial}, "
                f"got {tuple(mask.shape)}."
            )
        if not bool(torch.isfinite(mask).all()) or bool((mask < 0).any()) or bool((mask > 1).any()):
            raise ValueError(f"'{self.prev_mask_key}' must be a probability map with finite values in [0, 1].")
        return mask

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Extend every image key of ``data`` with the guidance channels."""
        d = dict(data)
        clicks = as_clicks(d.get(self.clicks_key))
        source_size = None
        if self.source_size_key is not None and d.get(self.source_size_key) is not None:
            source_size = tuple(int(s) for s in d[self.source_size_key])
        for key in self.key_iterator(d):
            image = d[key]
            if image.ndim != 3:
                raise ValueError(
                    f"'{key}' must be a channel-first 2-D image [C, H, W], got shape {tuple(image.shape)}."
                )
            spatial = (int(image.shape[1]), int(image.shape[2]))
            prev = self._prev_mask(d, spatial, key)
            disks = rasterize_clicks(clicks, spatial, radius=self.radius, source_size=source_size)
            guidance = torch.cat([prev, disks], dim=0)
            if isinstance(image, torch.Tensor):
                d[key] = torch.cat([image.to(torch.float32), guidance.to(image.device)], dim=0)
            else:
                d[key] = np.concatenate([np.asarray(image, dtype=np.float32), guidance.numpy()], axis=0)
        return d


def _has_object(label: np.ndarray, ignore: np.ndarray | None) -> bool:
    """Whether the label has a foreground pixel (``> 0.5``) outside the ignore mask."""
    foreground = np.asarray(label) > 0.5
    if ignore is not None:
        foreground = foreground & ~(np.asarray(ignore) > 0.5).reshape(foreground.shape)
    return bool(foreground.any())


class SampleInitialClicksd(Randomizable, MapTransform):
    """Draw the initial training clicks of an object with :func:`sample_initial_clicks` (SPEC section 4).

    Writes the click list to ``clicks_key`` and, when ``coords_key``/``signs_key`` are given, the same clicks as
    padded tensors of length ``max_points`` (float32 ``[max_points, 2]`` and int64 ``[max_points]``, sign 0 = padding)
    so that the default collate stacks them into the ``[B, K, 2]`` / ``[B, K]`` input of ``rasterize_click_batch``.

    Args:
        keys: the label key (object mask ``[1, H, W]`` or ``[H, W]``).
        clicks_key: output key of the click list.
        ignore_key: key of an optional ignore mask (skipped when absent).
        other_objects_key: key of an optional mask of the other objects (skipped when absent).
        coords_key: optional output key of the padded coordinates.
        signs_key: optional output key of the padded signs (required together with ``coords_key``).
        max_points: total click budget.
        sampler_kwargs: further keyword arguments of :func:`sample_initial_clicks` (``gamma``, ``border_width`` ...).
        allow_empty: when the label has no object pixel (outside ``ignore``), write no clicks (all padding) instead of
            raising ``ValueError`` (useful after random crops that may miss the object).
        allow_missing_keys: do not raise when the label key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection = "label",
        clicks_key: str = "clicks",
        ignore_key: str | None = "ignore",
        other_objects_key: str | None = None,
        coords_key: str | None = None,
        signs_key: str | None = None,
        max_points: int = 24,
        sampler_kwargs: Mapping[str, Any] | None = None,
        allow_empty: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"SampleInitialClicksd takes exactly one label key, got {self.keys}.")
        if (coords_key is None) != (signs_key is None):
            raise ValueError("coords_key and signs_key must be given together (or both left None).")
        if int(max_points) < 1:
            raise ValueError(f"max_points must be >= 1, got {max_points}.")
        self.clicks_key = clicks_key
        self.ignore_key = ignore_key
        self.other_objects_key = other_objects_key
        self.coords_key = coords_key
        self.signs_key = signs_key
        self.max_points = int(max_points)
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self.allow_empty = bool(allow_empty)
        self._seed = 0

    def randomize(self, data: Any = None) -> None:
        """Draw the seed of this call's numpy ``Generator`` from the transform's random state ``self.R``."""
        self._seed = int(self.R.randint(0, 2**31 - 1))

    @staticmethod
    def _numpy(value: Any) -> np.ndarray:
        return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Sample clicks for the item's object and store them."""
        d = dict(data)
        for key in self.key_iterator(d):
            self.randomize()
            optional = {}
            for name, item_key in (("ignore", self.ignore_key), ("other_objects", self.other_objects_key)):
                if item_key is not None and d.get(item_key) is not None:
                    optional[name] = self._numpy(d[item_key])
            label = self._numpy(d[key])
            if self.allow_empty and not _has_object(label, optional.get("ignore")):
                clicks = []
            else:
                clicks = sample_initial_clicks(
                    label,
                    np.random.default_rng(self._seed),
                    max_points=self.max_points,
                    **optional,
                    **self.sampler_kwargs,
                )
            d[self.clicks_key] = clicks
            if self.coords_key is not None and self.signs_key is not None:
                coords, signs = clicks_to_tensors(clicks, num_points=self.max_points)
                d[self.coords_key] = coords
                d[self.signs_key] = signs
        return d
