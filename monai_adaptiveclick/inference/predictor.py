# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Predictor: a model plus its pre- and post-processing (ARCHITECTURE "Predictor" contract).

``predictor(image [C, H, W], clicks, prev_mask [H, W] | None) -> Prediction`` at the original image size. This is
the only inference path of the project: the evaluation engine, the CLI, the MONAI bundle
(:class:`~.bundle_transforms.PredictClicksd`) and the MONAI Label app all call it.

Pipeline: ``transforms.prepare_image`` (channels, intensity normalisation; the same function the training transform
applies) -> ``transforms.to_network_frame`` (longest side resized to ``model.image_size``, bilinear with
antialiasing, zero padding bottom / right) for the image and the previous mask -> click disks of ``radius`` px
rasterised at network resolution -> ``model.predict`` under ``torch.inference_mode`` -> crop the padding -> bilinear
resize back to ``H x W``. The mask is ``prob > protocol.PROB_THRESHOLD`` (:meth:`Prediction.mask`).
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

from monai_adaptiveclick.networks import AdaptiveClick, create_model, load_model
from monai_adaptiveclick.protocol import CLICK_RADIUS, PROB_THRESHOLD, is_foreground
from monai_adaptiveclick.transforms import (
    INTENSITY_MODES,
    as_clicks,
    network_frame,
    prepare_image,
    rasterize_clicks,
    to_network_frame,
)

__all__ = ["INTENSITY_MODES", "Prediction", "Predictor"]


@dataclass
class Prediction:
    """Result of one predictor call at the original image size.

    Attributes:
        prob: final probability map ``[H, W]`` float32 in ``[0, 1]``.
        candidates: per-query candidate masks ``(prob [H, W], score)`` ranked by score, best first (paper Fig. 1);
            empty for models without queries.

    Example:
        >>> prediction = Prediction(prob=np.array([[0.2, 0.49], [0.5, 0.9]], dtype=np.float32))
        >>> prediction.mask().tolist()
        [[False, False], [True, True]]
        >>> prediction.mask(clicks=[(1, 1, False)]).tolist()
        [[False, False], [True, False]]
    """

    prob: np.ndarray
    candidates: list[tuple[np.ndarray, float]] = field(default_factory=list)

    def mask(self, threshold: float = PROB_THRESHOLD, clicks: Sequence[Any] | None = None) -> np.ndarray:
        """Binary mask ``prob > threshold`` (SPEC section 5).

        Args:
            threshold: the decision threshold (the protocol's by default).
            clicks: when given, every clicked pixel takes its click's sign (what a user sees after clicking; the
                MONAI Label app's ``respect_clicks``). ``None``: the plain thresholded map (the NoC protocol).
        """
        mask = np.array(is_foreground(self.prob, threshold), dtype=bool)
        for click in as_clicks(clicks):
            mask[click.y, click.x] = click.is_positive
        return mask


class Predictor:
    """Model + pre/post-processing; clicks in original image pixels, output at the original size.

    Args:
        model: a model with ``.in_channels``, ``.image_size`` and ``.predict`` (AdaptiveClick, DeepGrow2D).
        device: where the model runs.
        radius: click disk radius in pixels at network resolution (``protocol.CLICK_RADIUS``).
        intensity: ``"percentile"`` (0.5 / 99.5 percentile clip per channel, scaled to [0, 1]; for raw MRI / CT /
            microscopy slices) or ``"none"`` (the image is already normalised).

    Channel handling (``transforms.match_channels``): image channels equal to ``model.in_channels`` are used as they
    are; a 1-channel image is repeated; a 3-channel image for a 1-channel model is averaged; anything else raises.

    Example:
        >>> predictor = Predictor.from_preset("tiny", in_channels=1)
        >>> out = predictor(np.random.rand(1, 40, 50).astype("float32"), [(20, 25, True)])
        >>> out.prob.shape, len(out.candidates)
        ((40, 50), 4)
    """

    def __init__(
        self,
        model: AdaptiveClick,
        device: str | torch.device = "cpu",
        radius: float = CLICK_RADIUS,
        intensity: str = "percentile",
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
        """Predictor around an untrained (randomly initialised, seeded) model of a preset, for tests and demos.

        The global random state is left untouched (the seed applies inside a forked generator).
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = create_model(preset, in_channels=in_channels, head=head)
        return cls(model, device=device, **kwargs)

    def network_frame(self, height: int, width: int) -> tuple[int, int]:
        """Size ``(h, w)`` of the resized image inside the ``image_size`` square (longest side = ``image_size``)."""
        return network_frame(height, width, self.model.image_size)

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
        image = prepare_image(image, self.model.in_channels, self.intensity)
        height, width = image.shape[-2:]
        if prev_mask is None:
            prev = np.zeros((height, width), dtype=np.float32)
        else:
            prev = np.asarray(prev_mask, dtype=np.float32)
            if prev.shape != (height, width):
                raise ValueError(f"prev_mask shape {prev.shape} does not match the image size {(height, width)}.")
            if np.isnan(prev).any():
                raise ValueError("prev_mask contains NaN values.")
        size = self.model.image_size
        frame = self.network_frame(height, width)
        click_maps = rasterize_clicks(clicks, frame, radius=self.radius, source_size=(height, width))
        click_maps = F.pad(click_maps, (0, size - frame[1], 0, size - frame[0]))
        dense = to_network_frame(torch.from_numpy(np.concatenate([image, prev[None]], 0)), size)
        x = torch.cat([dense, click_maps], 0)[None].to(self.device)
        with torch.inference_mode():
            prob, candidates, scores = self.model.predict(x)
            maps = torch.cat([prob, candidates], 1)[0, :, : frame[0], : frame[1]].float()
            maps = F.interpolate(maps[None], size=(height, width), mode="bilinear", align_corners=False)[0]
            maps = maps.clamp(0.0, 1.0).cpu().numpy()
            scores = scores[0].float().cpu().tolist()
        return Prediction(prob=maps[0], candidates=[(maps[i + 1], float(s)) for i, s in enumerate(scores)])
