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

Options (the pipeline above is the default except for ``focus``):

* ``framing="stretch"``: the whole input (image and previous probability) is stretched to the network square with
  bilinear ``align_corners=True`` and no antialiasing (aspect not kept); clicks are mapped with the SimpleClick v1.0
  formula ``r' = S * r / H`` (:func:`~monai_adaptiveclick.transforms.clicks.map_click_coordinate`); the
  probability goes back with bilinear ``align_corners=True``. This is the framing of the predictor that produced
  the paper's tables (SPEC section 5; applied to the zoom-in crop by
  :class:`~monai_adaptiveclick.engines.tta.ZoomIn` with ``box_rule="simpleclick"``).
* ``float_clicks=True``: click disks around the unrounded mapped coordinates (the released model's click maps,
  SPEC section 10 row 10).
* ``flip=True``: the horizontally flipped input (clicks mirrored as ``S - 1 - x'`` in network pixels) runs in the
  same batch and the two network LOGIT maps are averaged before the sigmoid (SPEC section 5; the SimpleClick v1.0
  ``AddHorizontalFlip``). The logits come from ``model.predict_logits(x)`` when the model has it, else from
  :class:`~monai_adaptiveclick.networks.AdaptiveClickExportWrapper`.
* ``focus=z`` (default ``protocol.FOCUS_MAGNIFICATION`` = 448 / 200): once there is a previous prediction, the
  network looks only at the object's region (its box of ``prev_mask > 0.5`` plus the positive clicks, expanded x1.4
  as the protocol's zoom-in box, with sides of at least ``image_size / z`` pixels), so that a small object is
  magnified up to ``z`` times; outside the region the probability is 0. It is the protocol's zoom-in (SPEC section
  5) made part of the model's own inference and scaled to its input size: the protocol's 200 px minimum crop was
  set for 448 px networks (at most 2.24x magnification), and a 128 px network behind it never sees an object of a
  256 px image enlarged. Stateless (the region follows the previous mask on every call), so it works in the MONAI
  Label app and in volume propagation as in the evaluation. The intensity normalisation is computed on the whole
  image before the crop. ``focus=None`` turns it off (the paper-reproduction protocol does).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.utils import look_up_option

from monai_adaptiveclick.networks import (
    AdaptiveClick,
    AdaptiveClickExportWrapper,
    DeepGrow2D,
    create_model,
    load_model,
    load_pretrained,
    pretrained_name,
)
from monai_adaptiveclick.protocol import (
    CLICK_RADIUS,
    FOCUS_MAGNIFICATION,
    PROB_THRESHOLD,
    ZOOM_IN_THRESHOLD,
    is_foreground,
)
from monai_adaptiveclick.transforms import (
    INTENSITY_MODES,
    as_clicks,
    map_clicks,
    network_frame,
    prepare_image,
    rasterize_click_batch,
    rasterize_clicks,
    to_network_frame,
)
from monai_adaptiveclick.transforms.preprocessing import stretch_to_size
from monai_adaptiveclick.transforms.zoom_boxes import Box, object_roi

__all__ = ["FRAMINGS", "INTENSITY_MODES", "Prediction", "Predictor"]

FRAMINGS = ("pad", "stretch")
"""How the Predictor brings an image to the network square (module docstring)."""

FOCUS_EXPANSION = 1.4
"""Expansion of the ``focus`` region around the object's box (the protocol's zoom-in expansion, SPEC section 5)."""


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
        framing: ``"pad"`` (default: longest side resized with antialiasing, zero padding, rounded click mapping
            with pixel centres aligned) or ``"stretch"`` (SimpleClick v1.0, see the module docstring).
        float_clicks: disks around the unrounded click coordinates (default ``False``: rounded to a pixel).
        flip: average the network logits of the input and of its horizontal flip before the sigmoid (default
            ``False``). The candidate masks are not computed in this mode (``Prediction.candidates`` is empty).
        focus: maximum magnification of the object's region once a previous prediction exists (module docstring;
            default ``protocol.FOCUS_MAGNIFICATION``; ``None``: the network sees the whole image on every call).

    With ``framing="stretch"`` clicks outside the image are accepted (the SimpleClick zoom-in passes every click,
    in crop coordinates): each is mapped with the same formula and the part of its disk inside the network square
    is drawn, except that a click whose mapped row and column are both negative is dropped, as the released
    model treats such a point as padding.

    Channel handling (``transforms.match_channels``): image channels equal to ``model.in_channels`` are used as they
    are; a 1-channel image is repeated; a 3-channel image for a 1-channel model is averaged; anything else raises.

    Example:
        >>> predictor = Predictor.from_preset("tiny", in_channels=1)
        >>> out = predictor(np.random.rand(1, 40, 50).astype("float32"), [(20, 25, True)])
        >>> out.prob.shape, len(out.candidates)
        ((40, 50), 4)
        >>> paper = predictor.with_options(framing="stretch", float_clicks=True, flip=True)
        >>> out = paper(np.random.rand(1, 40, 50).astype("float32"), [(20, 25, True)])
        >>> out.prob.shape, len(out.candidates), paper.model is predictor.model
        ((40, 50), 0, True)
    """

    def __init__(
        self,
        model: AdaptiveClick,
        device: str | torch.device = "cpu",
        radius: float = CLICK_RADIUS,
        intensity: str = "percentile",
        framing: str = "pad",
        float_clicks: bool = False,
        flip: bool = False,
        focus: float | None = FOCUS_MAGNIFICATION,
    ) -> None:
        for attr in ("in_channels", "image_size", "predict"):
            if not hasattr(model, attr):
                raise ValueError(f"model {type(model).__name__} has no .{attr}; expected an AdaptiveClick model.")
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}.")
        if focus is not None and not focus >= 1.0:
            raise ValueError(f"focus must be None or a magnification >= 1, got {focus}.")
        self.intensity = look_up_option(intensity, INTENSITY_MODES)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.radius = radius
        self.framing = look_up_option(framing, FRAMINGS)
        self.float_clicks = bool(float_clicks)
        self.flip = bool(flip)
        self.focus = None if focus is None else float(focus)

    @property
    def accepts_outside_clicks(self) -> bool:
        """Whether clicks outside the image are accepted (``framing="stretch"``; see the class docstring)."""
        return self.framing == "stretch"

    def with_options(self, **options: Any) -> Predictor:
        """A Predictor on the same model (not copied) with some options changed.

        Args:
            options: any of ``radius``, ``intensity``, ``framing``, ``float_clicks``, ``flip``, ``focus``.
        """
        names = ("radius", "intensity", "framing", "float_clicks", "flip", "focus")
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise ValueError(f"unknown Predictor option(s) {unknown}; expected some of {names}.")
        settings = {name: getattr(self, name) for name in names} | options
        return type(self)(self.model, device=self.device, **settings)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu", **kwargs: Any) -> Predictor:
        """Predictor for a model file ``networks.load_model`` reads (``kwargs``: the constructor's options).

        ``path = "pretrained:NAME"`` is the model ``NAME`` shipped inside the package (:meth:`from_pretrained`), so
        that every checkpoint setting (CLI ``--checkpoint``, the bundle's ``checkpoint``) can name it.
        """
        name = pretrained_name(path)
        if name is not None:
            return cls.from_pretrained(name, device=device, **kwargs)
        return cls(load_model(path, map_location="cpu"), device=device, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        name: str = "starter",
        device: str | torch.device = "cpu",
        folder: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> Predictor:
        """Predictor around a model shipped inside the package (ARCHITECTURE "Shipped model"); nothing is downloaded.

        Args:
            name: the shipped model (``networks.list_pretrained()``; the package ships ``"starter"``).
            device: where the model runs.
            folder: where the shipped models are (default: the package's ``pretrained/`` folder).
            kwargs: the constructor's options (``radius``, ``intensity``, ``framing``, ``float_clicks``, ``flip``).

        Raises:
            ValueError / FileNotFoundError: as ``networks.load_pretrained`` (unknown name, missing or corrupt file).
        """
        return cls(load_pretrained(name, folder=folder), device=device, **kwargs)

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
        box = self.focus_region(prev, clicks)
        if box is None:
            return self._predict(image, clicks, prev)
        y0, y1, x0, x1 = box
        shifted = [(c.y - y0, c.x - x0, c.is_positive) for c in as_clicks(clicks)]
        if self.framing == "pad":
            shifted = [c for c in shifted if 0 <= c[0] < y1 - y0 and 0 <= c[1] < x1 - x0]
        inner = self._predict(image[:, y0:y1, x0:x1], shifted, prev[y0:y1, x0:x1])

        def paste(crop: np.ndarray) -> np.ndarray:
            full = np.zeros((height, width), dtype=np.float32)
            full[y0:y1, x0:x1] = crop
            return full

        return Prediction(prob=paste(inner.prob), candidates=[(paste(p), s) for p, s in inner.candidates])

    def focus_region(self, prev_mask: np.ndarray, clicks: Sequence[Any]) -> Box | None:
        """The region ``(y0, y1, x0, x1)`` the network looks at with ``focus`` (module docstring), ``None``: all.

        Raises:
            ValueError: with ``framing="pad"``, a click outside the image.

        Example:
            >>> predictor = Predictor.from_preset("tiny", in_channels=1, focus=2.0)  # a 64 px network
            >>> prev = np.zeros((200, 300), np.float32)
            >>> prev[100:110, 50:60] = 1.0
            >>> predictor.focus_region(prev, [(105, 55, True)])  # 14 px box, at least 64 / 2 = 32 px
            (89, 121, 39, 71)
            >>> predictor.focus_region(np.zeros((200, 300), np.float32), [(105, 55, True)]) is None  # first click
            True
        """
        height, width = prev_mask.shape
        clicks = as_clicks(clicks)
        if self.framing == "pad":
            for click in clicks:
                if not (0 <= click.y < height and 0 <= click.x < width):
                    raise ValueError(f"click {tuple(click)} is outside the image of size (H, W) = ({height}, {width}).")
        if self.focus is None or not (prev_mask > ZOOM_IN_THRESHOLD).any():
            return None
        inside = [c for c in clicks if 0 <= c.y < height and 0 <= c.x < width]
        min_size = math.ceil(self.model.image_size / self.focus)
        box = object_roi(prev_mask, inside, expansion=FOCUS_EXPANSION, min_size=min_size)
        return None if box == (0, height, 0, width) else box

    def _predict(self, image: np.ndarray, clicks: Sequence[Any], prev: np.ndarray) -> Prediction:
        """The network on a prepared image ``[C, H, W]`` with its previous map ``[H, W]`` (:meth:`__call__`)."""
        height, width = image.shape[-2:]
        size = self.model.image_size
        dense_input = torch.from_numpy(np.concatenate([image, prev[None]], 0))
        if self.framing == "stretch":
            dense = stretch_to_size(dense_input, size)
            coords, signs = self.network_clicks(clicks, (height, width))
            click_maps = rasterize_click_batch(coords, signs, (size, size), self.radius, float_coordinates=True)
            passes = [dense, dense.flip(-1)] if self.flip else [dense]
            x = torch.cat([torch.stack(passes), click_maps], 1)
        else:
            frame = self.network_frame(height, width)
            click_maps = rasterize_clicks(
                clicks, frame, radius=self.radius, source_size=(height, width), float_coordinates=self.float_clicks
            )
            click_maps = F.pad(click_maps, (0, size - frame[1], 0, size - frame[0]))
            dense = to_network_frame(dense_input, size)
            x = torch.cat([dense, click_maps], 0)[None]
            if self.flip:
                x = torch.cat([x, x.flip(-1)], 0)
        x = x.to(self.device)
        with torch.inference_mode():
            if self.flip:
                logits = self.network_logits(x).float()
                maps = torch.sigmoid(0.5 * (logits[:1] + logits[1:].flip(-1)))[0]
                scores: list[float] = []
            else:
                prob, candidates, score_tensor = self.model.predict(x)
                maps = torch.cat([prob, candidates], 1)[0].float()
                scores = score_tensor[0].float().cpu().tolist()
            if self.framing == "stretch":
                maps = stretch_to_size(maps, (height, width))
            else:
                maps = maps[:, : frame[0], : frame[1]]
                maps = F.interpolate(maps[None], size=(height, width), mode="bilinear", align_corners=False)[0]
                maps = maps.clamp(0.0, 1.0)
            maps = maps.cpu().numpy()
        return Prediction(prob=maps[0], candidates=[(maps[i + 1], float(s)) for i, s in enumerate(scores)])

    def network_clicks(self, clicks: Sequence[Any], spatial_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The clicks as the network sees them with ``framing="stretch"``: ``(coords, signs)`` per pass.

        Coordinates follow ``r' = S * r / H``, ``c' = S * c / W`` (double precision, as the SimpleClick v1.0 zoom-in
        computes them), rounded to a pixel unless ``float_clicks``; the flipped pass (``flip=True``) uses
        ``c'' = S - c' - 1``. A click whose mapped row and column are both negative gets sign 0 (padding).

        Args:
            clicks: clicks in pixels of the ``spatial_size`` input (may lie outside it).
            spatial_size: ``(H, W)`` of the input.

        Returns:
            ``coords`` float64 ``[P, K, 2]`` and ``signs`` int64 ``[P, K]``, ``P = 2`` with flip else 1.

        Example:
            >>> predictor = Predictor.from_preset("tiny", in_channels=1, framing="stretch", float_clicks=True)
            >>> coords, signs = predictor.with_options(flip=True).network_clicks([(10, 20, True)], (64, 117))
            >>> [[round(v, 3) for v in c[0]] for c in coords.tolist()], signs.tolist()
            ([[10.0, 10.94], [10.0, 52.06]], [[1], [1]])
        """
        size = self.model.image_size
        coords, signs = map_clicks(clicks, spatial_size, (size, size), "simpleclick")
        if not self.float_clicks:
            coords = torch.floor(coords + 0.5)
        coords, signs = coords[None], signs[None]
        if self.flip:
            mirrored = coords.clone()
            mirrored[..., 1] = size - coords[..., 1] - 1
            coords, signs = torch.cat([coords, mirrored]), torch.cat([signs, signs])
        return coords, torch.where(coords.amax(-1) < 0, torch.zeros_like(signs), signs)

    def network_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Mask logits ``[B, 1, S, S]`` of the network for a prepared input batch ``x`` (module docstring, ``flip``)."""
        predict_logits = getattr(self.model, "predict_logits", None)
        if callable(predict_logits):
            return predict_logits(x)
        if isinstance(self.model, (AdaptiveClick, DeepGrow2D)):
            return AdaptiveClickExportWrapper(self.model)(x)
        return torch.logit(self.model.predict(x)[0], eps=1e-6)
