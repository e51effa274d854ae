# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Predictor: an AdaptiveClick model plus its pre- and post-processing (ARCHITECTURE "Predictor" contract).

``predictor(image [C, H, W], clicks, prev_mask [H, W] | None) -> Prediction`` at the original image size. The
evaluation engine, the CLI, the MONAI bundle and the MONAI Label app all call this one object.

Pipeline: channel handling -> per-channel intensity normalisation -> resize the longest side to ``model.image_size``
(bilinear, aspect kept) and zero-pad bottom / right to a square -> guidance channels (previous mask resized the same
way, click disks of ``radius`` px rasterised at network resolution with ``transforms.rasterize_clicks``) ->
``model.predict`` under ``torch.inference_mode`` -> crop the padding -> bilinear resize back to ``H x W``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.utils import look_up_option

from .data.intensity import normalize_image
from .networks import AdaptiveClick, create_model, load_model
from .transforms import rasterize_clicks

__all__ = ["Prediction", "Predictor", "INTENSITY_MODES"]

INTENSITY_MODES = ("percentile", "none")


@dataclass
class Prediction:
    """Result of one predictor call at the original image size.

    Attributes:
        prob: final probability map ``[H, W]`` float32 in ``[0, 1]``.
        candidates: per-query candidate masks ``(prob [H, W], score)`` ranked by score, best first (paper Fig. 1);
            empty for models without queries.
    """

    prob: np.ndarray
    candidates: list[tuple[np.ndarray, float]] = field(default_factory=list)

    def mask(self, threshold: float = 0.49) -> np.ndarray:
        """Binary mask ``prob > threshold`` (0.49: the evaluation protocol's threshold, SPEC section 5)."""
        return self.prob > threshold


class Predictor:
    """Model + pre/post-processing; clicks in original image pixels, output at the original size.

    Args:
        model: an ``AdaptiveClick`` model (``.in_channels``, ``.image_size``, ``.predict``).
        device: where the model runs.
        radius: click disk radius in pixels at network resolution (SPEC section 1: 5).
        intensity: ``"percentile"`` (0.5 / 99.5 percentile clip per channel, scaled to [0, 1]; for raw MRI / CT /
            microscopy slices) or ``"none"`` (the image is already normalised, e.g. the training pipeline's output).

    Channel handling: image channels equal to ``model.in_channels`` are used as is; a 1-channel image for a
    3-channel model is repeated; a 3-channel image for a 1-channel model is averaged; anything else raises.

    Example:
        >>> predictor = Predictor.from_preset("tiny", in_channels=1)
        >>> out = predictor(np.random.rand(1, 40, 50).astype("float32"), [(20, 25, True)])
        >>> out.prob.shape, len(out.candidates)
        ((40, 50), 4)
    """

    def __init__(
        self, model: AdaptiveClick, device: str | torch.device = "cpu", radius: float = 5, intensity: str = "percentile"
    ) -> None:
        for attr in ("in_channels", "image_size", "predict"):
            if not hasattr(model, attr):
                raise ValueError(f"model {type(model).__name__} has no .{attr}; expected an AdaptiveClick model.")
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}.")
        self.intensity = look_up_option(intensity, INTENSITY_MODES)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.radius = radius

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu", **kwargs: Any) -> Predictor:
        """Predictor for a model saved by ``networks.save_model`` (``kwargs``: ``radius``, ``intensity``)."""
        return cls(load_model(path, map_location="cpu"), device=device, **kwargs)

    @classmethod
    def from_preset(
        cls,
        preset: str,
        in_channels: int = 3,
        device: str | torch.device = "cpu",
        head: str = "camd",
        seed: int = 0,
        **kwargs: Any,
    ) -> Predictor:
        """Predictor around an untrained (randomly initialised, seeded) model of a preset, for tests and demos."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = create_model(preset, in_channels=in_channels, head=head)
        return cls(model, device=device, **kwargs)

    def _prepare_image(self, image: Any) -> np.ndarray:
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
        got, want = image.shape[0], self.model.in_channels
        if got != want:
            if got == 1 and want == 3:
                image = np.repeat(image, 3, axis=0)
            elif got == 3 and want == 1:
                image = image.mean(0, keepdims=True)
            else:
                raise ValueError(f"channel mismatch: the model expects {want} image channel(s), the image has {got}.")
        return normalize_image(image, self.intensity)

    def network_frame(self, height: int, width: int) -> tuple[int, int]:
        """Size ``(h, w)`` of the resized image inside the ``image_size`` square (longest side = ``image_size``)."""
        size = self.model.image_size
        scale = size / max(height, width)
        return max(1, min(size, round(height * scale))), max(1, min(size, round(width * scale)))

    def _to_frame(self, maps: torch.Tensor, frame: tuple[int, int]) -> torch.Tensor:
        """``[K, H, W]`` -> resized to ``frame`` and zero-padded to the ``image_size`` square."""
        size = self.model.image_size
        resized = F.interpolate(maps[None], size=frame, mode="bilinear", align_corners=False, antialias=True)[0]
        return F.pad(resized, (0, size - frame[1], 0, size - frame[0]))

    def __call__(self, image: np.ndarray, clicks: Sequence[Any], prev_mask: np.ndarray | None = None) -> Prediction:
        """Predict.

        Args:
            image: ``[C, H, W]`` numeric array at the original size.
            clicks: sequence of ``Click`` / ``(y, x, is_positive)`` in original image pixels (may be empty).
            prev_mask: previous probability / binary mask ``[H, W]`` (``None``: zeros).

        Returns:
            ``Prediction`` at ``H x W``.

        Raises:
            ValueError: wrong image rank / channel count, NaN image, prev_mask of another shape, click outside the
                image.
        """
        image = self._prepare_image(image)
        height, width = image.shape[-2:]
        if prev_mask is None:
            prev = np.zeros((height, width), dtype=np.float32)
        else:
            prev = np.asarray(prev_mask, dtype=np.float32)
            if prev.shape != (height, width):
                raise ValueError(f"prev_mask shape {prev.shape} does not match the image size {(height, width)}.")
            if np.isnan(prev).any():
                raise ValueError("prev_mask contains NaN values.")
        frame = self.network_frame(height, width)
        click_maps = rasterize_clicks(clicks, frame, radius=self.radius, source_size=(height, width))
        size = self.model.image_size
        click_maps = F.pad(click_maps, (0, size - frame[1], 0, size - frame[0]))
        dense = self._to_frame(torch.from_numpy(np.concatenate([image, prev[None]], 0)), frame)
        x = torch.cat([dense, click_maps], 0)[None].to(self.device)
        with torch.inference_mode():
            prob, candidates, scores = self.model.predict(x)
            maps = torch.cat([prob, candidates], 1)[0, :, : frame[0], : frame[1]].float()
            maps = F.interpolate(maps[None], size=(height, width), mode="bilinear", align_corners=False)[0]
            maps = maps.clamp(0.0, 1.0).cpu().numpy()
            scores = scores[0].float().cpu().tolist()
        return Prediction(prob=maps[0], candidates=[(maps[i + 1], float(s)) for i, s in enumerate(scores)])
