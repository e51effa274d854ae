# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Test-time augmentation of the NoC protocol (SPEC section 5) as predictor wrappers.

Both wrappers take any predictor with the *Predictor* contract
(``predictor(image [C, H, W], clicks, prev_mask [H, W] | None) -> Prediction``) and are themselves predictors, so
:func:`monai_adaptiveclick.engines.evaluate_noc` composes them around a learned model or a classical baseline alike:
``ZoomIn(FlipTTA(predictor))`` (flip is applied to the zoomed crop, as in the SimpleClick v1.0 protocol).

Two protocols (:data:`PROTOCOLS`, :func:`wrap_predictor`):

* ``"default"``, the project's: the box of :func:`object_roi` (expanded, shifted into the image), the crop
  resized by the Predictor keeping its aspect ratio (padded), flip averaged by :class:`FlipTTA` on the logits of
  the returned probabilities. The project's models are trained with that framing (the training transform uses
  the same :func:`~monai_adaptiveclick.transforms.to_network_frame`), so it stays the default.
* ``"simpleclick"``: the predictor of SimpleClick v1.0 that produced the paper's tables (SPEC section 5), to
  reproduce them with the authors' checkpoints: ``skip_clicks=-1`` (the box applies from the first click, the whole
  image until a prediction exists), the box of :func:`simpleclick_object_roi` (clamped to the image, Python
  rounding), the old box kept unless a positive click falls outside it (:func:`outside_box_simpleclick`) or
  :func:`simpleclick_box_iou` drops below 0.5, every click passed to the crop, the crop stretched to the network
  square with ``align_corners=True``, float click disks and the flip averaged on the network logits before the
  sigmoid (:class:`~monai_adaptiveclick.inference.Predictor` options ``framing="stretch", float_clicks=True,
  flip=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from monai_adaptiveclick.inference import Prediction
from monai_adaptiveclick.protocol import ZOOM_IN_THRESHOLD
from monai_adaptiveclick.transforms import Click, as_clicks
from monai_adaptiveclick.transforms.zoom_boxes import (
    Box,
    box_iou,
    object_roi,
    outside_box_simpleclick,
    simpleclick_box_iou,
    simpleclick_object_roi,
)

__all__ = [
    "BOX_RULES",
    "PROTOCOLS",
    "FlipTTA",
    "ZoomIn",
    "wrap_predictor",
]

PROTOCOLS = ("default", "simpleclick")
"""Evaluation protocols of :func:`wrap_predictor` / ``evaluate_noc`` (module docstring)."""

BOX_RULES = ("default", "simpleclick")
"""Zoom-in box rules of :class:`ZoomIn`."""

SIMPLECLICK_ZOOM = {"expansion": 1.4, "min_crop_size": 200, "recompute_iou": 0.5, "prob_threshold": 0.5}
"""The zoom-in parameters of the SimpleClick v1.0 evaluation (their ``ZoomIn`` defaults, SPEC section 5)."""

PredictorFn = Callable[..., "Prediction"]


def _as_clicks(clicks: Sequence, spatial_size: tuple[int, int]) -> list[Click]:
    """Validate clicks (``Click`` or ``(y, x, is_positive)``) and check they lie inside the image."""
    height, width = spatial_size
    out = as_clicks(clicks)
    for click in out:
        if not (0 <= click.y < height and 0 <= click.x < width):
            raise ValueError(f"click {tuple(click)} is outside the image of size (H, W) = ({height}, {width}).")
    return out


def _check_image(image: np.ndarray) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise ValueError(f"image must be a numpy array [C, H, W], got {getattr(image, 'shape', type(image))}.")
    return int(image.shape[1]), int(image.shape[2])


def _check_prev(prev_mask: np.ndarray | None, spatial_size: tuple[int, int]) -> np.ndarray:
    if prev_mask is None:
        return np.zeros(spatial_size, dtype=np.float32)
    prev_mask = np.asarray(prev_mask, dtype=np.float32)
    if prev_mask.shape != spatial_size:
        raise ValueError(f"prev_mask shape {prev_mask.shape} does not match the image size {spatial_size}.")
    return prev_mask


class ZoomIn:
    """Zoom-in test-time augmentation (SPEC section 5; RITM / SimpleClick "ZoomIn").

    From click ``skip_clicks + 1`` (the 2nd click by default) on, the wrapped predictor sees only a crop: the bbox of
    (previous prediction > 0.5 plus all positive clicks), expanded x1.4 and enlarged to at least 200 px (the whole
    side when the image is smaller; see :func:`expand_box`). The wrapped predictor resizes the crop to its network
    size itself. The crop is kept between clicks and recomputed only when a positive click falls outside it or the
    box IoU between it and the newly computed candidate box drops below ``recompute_iou``.

    Defined behaviours:
        * Only the clicks inside the crop are passed on (shifted into crop coordinates); clicks outside it cannot be
          drawn into the crop's click maps. Positive clicks are always inside (else the crop is recomputed).
        * The returned probability map is the crop's prediction pasted into zeros: outside the crop the probability
          is 0, as in RITM's zoom-in. The crop covers the whole previous prediction whenever it is (re)computed,
          so this only removes stray predictions outside the object's region. Candidate masks are pasted likewise.
        * State (the current crop) lives in the wrapper: it is reset by a call with ``<= skip_clicks`` clicks (a
          new object) or an image of another size. Use one wrapper per interactive session.

    ``box_rule="simpleclick"`` follows the SimpleClick v1.0 predictor instead (SPEC section 5, module docstring):
    the candidate is :func:`simpleclick_object_roi` (clamped, not shifted), or the whole image while the thresholded
    previous map is empty (or on the first click of an object: a call with one click resets the state, as their
    fresh predictor has no previous probability); the kept box is replaced only when a positive click is outside it
    by :func:`outside_box_simpleclick` or :func:`simpleclick_box_iou` is below ``recompute_iou``;
    ``skip_clicks=-1`` means no click skips the box (the whole image is a box too); and when the wrapped predictor
    has ``accepts_outside_clicks`` (the Predictor with ``framing="stretch"``) EVERY click is passed, shifted into the
    crop, as their zoom-in does (a negative click outside the crop can still reach into it with its disk).

    Args:
        predictor: the wrapped predictor.
        expansion: bbox expansion factor.
        min_crop_size: minimum crop side in pixels.
        recompute_iou: recompute the crop when the box IoU with the new candidate falls below this.
        prob_threshold: threshold on the previous probability map for the bbox.
        skip_clicks: number of first clicks evaluated on the whole image (``-1``: none; ``"simpleclick"`` only).
        box_rule: ``"default"`` (the project's rules above) or ``"simpleclick"`` (:data:`BOX_RULES`).

    Example:
        >>> from monai_adaptiveclick.engines import get_baseline
        >>> image = np.zeros((1, 300, 300), np.float32)
        >>> image[0, 40:80, 40:90] = 1.0
        >>> zoomed = ZoomIn(get_baseline("watershed"))
        >>> previous = zoomed(image, [(60, 60, True)])
        >>> out = zoomed(image, [(60, 60, True), (150, 150, False)], prev_mask=previous.prob)
        >>> out.prob.shape, zoomed.roi is not None
        ((300, 300), True)
    """

    def __init__(
        self,
        predictor: PredictorFn,
        expansion: float = 1.4,
        min_crop_size: int = 200,
        recompute_iou: float = 0.5,
        prob_threshold: float = ZOOM_IN_THRESHOLD,
        skip_clicks: int = 1,
        box_rule: str = "default",
    ) -> None:
        if not callable(predictor):
            raise ValueError(f"predictor must be callable, got {type(predictor).__name__}.")
        if expansion < 1.0:
            raise ValueError(f"expansion must be >= 1, got {expansion}.")
        if min_crop_size < 1:
            raise ValueError(f"min_crop_size must be >= 1, got {min_crop_size}.")
        if not 0.0 <= recompute_iou <= 1.0:
            raise ValueError(f"recompute_iou must be in [0, 1], got {recompute_iou}.")
        if box_rule not in BOX_RULES:
            raise ValueError(f"unknown box_rule {box_rule!r}; expected one of {BOX_RULES}.")
        if skip_clicks < (-1 if box_rule == "simpleclick" else 0):
            raise ValueError(f"skip_clicks must be >= 0 (or -1 with box_rule='simpleclick'), got {skip_clicks}.")
        self.box_rule = box_rule
        self.predictor = predictor
        self.expansion = expansion
        self.min_crop_size = min_crop_size
        self.recompute_iou = recompute_iou
        self.prob_threshold = prob_threshold
        self.skip_clicks = skip_clicks
        self.roi: Box | None = None
        self._spatial_size: tuple[int, int] | None = None

    def update_roi(self, prev_mask: np.ndarray, clicks: Sequence[Click]) -> Box | None:
        """Apply the crop rules for the current clicks and return the crop to use (``None``: whole image)."""
        if self.box_rule == "simpleclick":
            return self._update_roi_simpleclick(prev_mask, clicks)
        spatial_size = prev_mask.shape
        if len(clicks) <= self.skip_clicks or spatial_size != self._spatial_size:
            self.roi = None
            self._spatial_size = spatial_size
        if len(clicks) <= self.skip_clicks:
            return None
        candidate = object_roi(prev_mask, clicks, self.prob_threshold, self.expansion, self.min_crop_size)
        if candidate is None:
            self.roi = None
            return None
        roi = self.roi
        if (
            roi is None
            or any(c.is_positive and not (roi[0] <= c.y < roi[1] and roi[2] <= c.x < roi[3]) for c in clicks)
            or box_iou(roi, candidate) < self.recompute_iou
        ):
            self.roi = candidate
        return self.roi

    def _update_roi_simpleclick(self, prev_mask: np.ndarray, clicks: Sequence[Click]) -> Box | None:
        """:meth:`update_roi` for ``box_rule="simpleclick"`` (class docstring)."""
        spatial_size = prev_mask.shape
        first = len(clicks) <= 1 or spatial_size != self._spatial_size
        if first:
            self.roi = None
            self._spatial_size = spatial_size
        if len(clicks) <= self.skip_clicks:
            return None
        candidate = None
        if not first:
            candidate = simpleclick_object_roi(
                prev_mask, clicks, self.prob_threshold, self.expansion, self.min_crop_size
            )
        if candidate is None:
            if self.skip_clicks >= 0:
                return None
            candidate = (0, spatial_size[0], 0, spatial_size[1])
        roi = self.roi
        if (
            roi is None
            or any(c.is_positive and outside_box_simpleclick(roi, c) for c in clicks)
            or simpleclick_box_iou(candidate, roi) < self.recompute_iou
        ):
            self.roi = candidate
        return self.roi

    def __call__(self, image: np.ndarray, clicks: Sequence, prev_mask: np.ndarray | None = None) -> Prediction:
        """Predict with zoom-in; arguments and result as the *Predictor* contract (full image size)."""

        spatial_size = _check_image(image)
        clicks = _as_clicks(clicks, spatial_size)
        prev = _check_prev(prev_mask, spatial_size)
        roi = self.update_roi(prev, clicks)
        if roi is None or roi == (0, spatial_size[0], 0, spatial_size[1]):
            return self.predictor(image, clicks, prev)
        y0, y1, x0, x1 = roi
        every_click = self.box_rule == "simpleclick" and getattr(self.predictor, "accepts_outside_clicks", False)
        inner_clicks = [
            Click(c.y - y0, c.x - x0, c.is_positive)
            for c in clicks
            if every_click or (y0 <= c.y < y1 and x0 <= c.x < x1)
        ]
        out = self.predictor(
            np.ascontiguousarray(image[:, y0:y1, x0:x1]), inner_clicks, np.ascontiguousarray(prev[y0:y1, x0:x1])
        )

        def paste(crop_prob: np.ndarray) -> np.ndarray:
            full = np.zeros(spatial_size, dtype=np.float32)
            full[y0:y1, x0:x1] = crop_prob
            return full

        return Prediction(prob=paste(out.prob), candidates=[(paste(p), float(s)) for p, s in out.candidates])


class FlipTTA:
    """Horizontal-flip test-time augmentation averaged in logit space (SPEC section 5).

    ``prob = sigmoid((logit(P(image)) + flip(logit(P(flip(image))))) / 2)`` where the clicks and the previous mask
    are flipped with the image (``x -> W - 1 - x``). Probabilities are clipped to ``[eps, 1 - eps]`` before the
    logit. The candidate masks are those of the unflipped pass (their ranking is not comparable across passes).

    Args:
        predictor: the wrapped predictor.
        eps: probability clipping for the logit.

    Example:
        >>> from monai_adaptiveclick.engines import get_baseline
        >>> image = np.zeros((1, 32, 32), np.float32)
        >>> image[0, 5:20, 8:16] = 1.0
        >>> out = FlipTTA(get_baseline("watershed"))(image, [(10, 12, True)])
        >>> bool(out.prob[10, 12] > 0.49), bool(out.prob[25, 25] > 0.49)
        (True, False)
    """

    def __init__(self, predictor: PredictorFn, eps: float = 1e-6) -> None:
        if not callable(predictor):
            raise ValueError(f"predictor must be callable, got {type(predictor).__name__}.")
        if not 0.0 < eps < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps}.")
        self.predictor = predictor
        self.eps = eps

    def __call__(self, image: np.ndarray, clicks: Sequence, prev_mask: np.ndarray | None = None) -> Prediction:
        """Predict with flip averaging; arguments and result as the *Predictor* contract."""

        spatial_size = _check_image(image)
        clicks = _as_clicks(clicks, spatial_size)
        prev = _check_prev(prev_mask, spatial_size)
        width = spatial_size[1]
        direct = self.predictor(image, clicks, prev)
        flipped = self.predictor(
            np.ascontiguousarray(image[:, :, ::-1]),
            [Click(c.y, width - 1 - c.x, c.is_positive) for c in clicks],
            np.ascontiguousarray(prev[:, ::-1]),
        )

        def logit(p: np.ndarray) -> np.ndarray:
            p = np.clip(np.asarray(p, dtype=np.float64), self.eps, 1.0 - self.eps)
            return np.log(p) - np.log1p(-p)

        mean_logit = 0.5 * (logit(direct.prob) + logit(flipped.prob)[:, ::-1])
        prob = (1.0 / (1.0 + np.exp(-mean_logit))).astype(np.float32)
        return Prediction(prob=prob, candidates=list(direct.candidates))


def wrap_predictor(
    predictor: PredictorFn, zoom_in: bool = True, flip: bool = True, protocol: str = "default", **zoom_kwargs
) -> PredictorFn:
    """Compose the protocol's test-time augmentations around ``predictor`` (module docstring).

    ``protocol="default"``: ``ZoomIn(FlipTTA(predictor))``. ``protocol="simpleclick"``: a
    :class:`~monai_adaptiveclick.inference.Predictor` (anything with ``with_options``) is re-optioned on the same
    model with ``framing="stretch", float_clicks=True, flip=flip, focus=None`` (the flip then happens inside, on the
    network logits), wrapped in ``ZoomIn(box_rule="simpleclick", skip_clicks=-1, expansion=1.4, min_crop_size=200,
    recompute_iou=0.5, prob_threshold=0.5)``. A predictor without a network (a classical baseline) gets the
    SimpleClick box rules around :class:`FlipTTA` (there are no network logits or input size to stretch to).

    Args:
        predictor: any predictor with the *Predictor* contract.
        zoom_in: add :class:`ZoomIn`.
        flip: add the horizontal flip.
        protocol: one of :data:`PROTOCOLS`.
        zoom_kwargs: passed to :class:`ZoomIn` (overriding the protocol's values).

    Example:
        >>> from monai_adaptiveclick.inference import Predictor
        >>> wrapped = wrap_predictor(Predictor.from_preset("tiny", in_channels=1), protocol="simpleclick")
        >>> wrapped.box_rule, wrapped.skip_clicks, wrapped.predictor.framing, wrapped.predictor.flip
        ('simpleclick', -1, 'stretch', True)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}.")
    if protocol == "default":
        if flip:
            predictor = FlipTTA(predictor)
        if zoom_in:
            predictor = ZoomIn(predictor, **zoom_kwargs)
        return predictor
    if callable(getattr(predictor, "with_options", None)):
        predictor = predictor.with_options(framing="stretch", float_clicks=True, flip=bool(flip), focus=None)
    elif flip:
        predictor = FlipTTA(predictor)
    if zoom_in:
        predictor = ZoomIn(
            predictor, **{**SIMPLECLICK_ZOOM, "skip_clicks": -1, "box_rule": "simpleclick", **zoom_kwargs}
        )
    return predictor
