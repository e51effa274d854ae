# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The Predictor as a MONAI dictionary transform, for the bundle's ``inference.json`` and MONAI pipelines.

:class:`PredictClicksd` runs :class:`~.predictor.Predictor` on a loaded item; all pre- and post-processing is the
Predictor's (no second resize / threshold implementation in the bundle configs). Inputs follow MONAI Label's
deepgrow convention for a 2-D image: ``foreground`` / ``background`` are lists of ``[y, x]`` pixel indices of the
channel-first image array (``LoadImaged`` + ``EnsureChannelFirstd``), ``prev_mask`` an optional ``[H, W]`` /
``[1, H, W]`` probability map at the image's size (refinement).

Example:
    >>> from monai_adaptiveclick.inference import Predictor
    >>> infer = PredictClicksd(Predictor.from_preset("tiny", in_channels=1))
    >>> out = infer({"image": np.random.rand(1, 30, 40).astype("float32"), "foreground": [[10, 12]]})
    >>> tuple(out["pred"].shape), tuple(out["prob"].shape), out["pred"].dtype
    ((1, 30, 40), (1, 30, 40), dtype('uint8'))
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from monai_adaptiveclick.transforms import Click

from .predictor import Prediction

__all__ = ["PredictClicksd", "points_to_clicks"]


def points_to_clicks(foreground: Any, background: Any) -> list[Click]:
    """``[[y, x], ...]`` foreground / background point lists (``None`` = none) -> positive then negative clicks.

    Raises:
        ValueError: a point that is not two integer pixel indices.

    Example:
        >>> points_to_clicks([[3, 4]], [[1, 2]])
        [Click(y=3, x=4, is_positive=True), Click(y=1, x=2, is_positive=False)]
    """
    clicks = []
    for points, positive, name in ((foreground, True, "foreground"), (background, False, "background")):
        for point in [] if points is None else points:
            values = np.asarray(point).ravel()
            if values.size != 2 or not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
                raise ValueError(f"{name} point {point!r} must be two integer pixel indices [y, x].")
            clicks.append(Click(int(values[0]), int(values[1]), positive))
    return clicks


class PredictClicksd(MapTransform):
    """Segment the clicked object of an item with a Predictor.

    Args:
        predictor: a *Predictor*-contract callable (usually ``Predictor.from_checkpoint(...)``).
        keys: the image key (channel-first ``[C, H, W]``).
        foreground_key, background_key: keys of the ``[[y, x], ...]`` point lists (missing = none).
        prev_mask_key: key of an optional previous probability map (missing or ``None``: zeros).
        prob_key: output key of the probability map ``[1, H, W]`` float32.
        pred_key: output key of the mask ``[1, H, W]`` uint8 (``Prediction.mask``; a ``MetaTensor`` carrying the
            image's metadata when the image is one, so ``SaveImaged`` writes it with the image's geometry).
        respect_clicks: clicked pixels take their click's sign in the mask.

    Raises:
        ValueError: no click, a malformed point, or what the Predictor raises (shape, channels, bounds).
    """

    def __init__(
        self,
        predictor: Callable[..., Prediction],
        keys: KeysCollection = "image",
        foreground_key: str = "foreground",
        background_key: str = "background",
        prev_mask_key: str = "prev_mask",
        prob_key: str = "prob",
        pred_key: str = "pred",
        respect_clicks: bool = False,
    ) -> None:
        super().__init__(keys)
        if len(self.keys) != 1:
            raise ValueError(f"PredictClicksd takes one image key, got {self.keys}.")
        self.predictor = predictor
        self.foreground_key, self.background_key = foreground_key, background_key
        self.prev_mask_key, self.prob_key, self.pred_key = prev_mask_key, prob_key, pred_key
        self.respect_clicks = bool(respect_clicks)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        key = self.keys[0]
        image = d[key]
        clicks = points_to_clicks(d.get(self.foreground_key), d.get(self.background_key))
        if not clicks:
            raise ValueError(f"no clicks: give '{self.foreground_key}' and/or '{self.background_key}' points.")
        prev = d.get(self.prev_mask_key)
        if prev is not None:
            prev = np.asarray(prev, dtype=np.float32)
            prev = prev[0] if prev.ndim == 3 and prev.shape[0] == 1 else prev
        array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
        prediction = self.predictor(array, clicks, prev)
        mask = prediction.mask(clicks=clicks if self.respect_clicks else None)[None].astype(np.uint8)
        d[self.prob_key] = prediction.prob[None].astype(np.float32)
        d[self.pred_key] = MetaTensor(mask, meta=dict(image.meta)) if isinstance(image, MetaTensor) else mask
        return d
