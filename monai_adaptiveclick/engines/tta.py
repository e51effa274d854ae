# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Test-time augmentation of the NoC protocol (SPEC section 5) as predictor wrappers.

Both wrappers take any predictor with the *Predictor* contract
(``predictor(image [C, H, W], clicks, prev_mask [H, W] | None) -> Prediction``) and are themselves predictors, so
:func:`monai_adaptiveclick.engines.evaluate_noc` composes them around a learned model or a classical baseline alike:
``ZoomIn(FlipTTA(predictor))`` (flip is applied to the zoomed crop, as in the SimpleClick v1.0 protocol).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from monai_adaptiveclick.inference import Prediction
from monai_adaptiveclick.protocol import ZOOM_IN_THRESHOLD
from monai_adaptiveclick.transforms import Click, as_clicks

__all__ = ["Box", "FlipTTA", "ZoomIn", "box_iou", "expand_box", "object_roi", "wrap_predictor"]

Box = tuple[int, int, int, int]
"""A box ``(y0, y1, x0, x1)`` in pixels, half-open: rows ``y0 <= y < y1``, columns ``x0 <= x < x1``."""

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


def expand_box(box: Box, spatial_size: tuple[int, int], expansion: float = 1.4, min_size: int = 200) -> Box:
    """Expand ``box`` about its centre by ``expansion``, enlarge each side to at least ``min_size`` and fit the image.

    A side longer than the image becomes the whole image side; otherwise the box is shifted (not truncated) to lie
    inside the image, so every side of the result is ``>= min(min_size, image side)`` (SPEC section 5: "expanded
    x1.4, at least 200 px").

    Args:
        box: ``(y0, y1, x0, x1)``, half-open.
        spatial_size: image ``(H, W)``.
        expansion: scale factor applied to the box sides.
        min_size: minimum side in pixels.

    Returns:
        The expanded box, half-open, inside the image.
    """
    if expansion < 1.0:
        raise ValueError(f"expansion must be >= 1, got {expansion}.")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}.")
    out = []
    for lo, hi, limit in ((box[0], box[1], spatial_size[0]), (box[2], box[3], spatial_size[1])):
        if not 0 <= lo < hi <= limit:
            raise ValueError(f"box {box} is empty or outside the image of size {spatial_size}.")
        side = min(limit, max(min_size, math.ceil(round((hi - lo) * expansion, 6))))
        start = int(round((lo + hi) / 2.0 - side / 2.0))
        start = min(max(start, 0), limit - side)
        out.extend((start, start + side))
    return out[0], out[1], out[2], out[3]


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two half-open boxes ``(y0, y1, x0, x1)``."""
    inter_h = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    inter_w = max(0, min(a[3], b[3]) - max(a[2], b[2]))
    inter = inter_h * inter_w
    union = (a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2]) - inter
    return float(inter / union) if union > 0 else 0.0


def object_roi(
    prev_mask: np.ndarray,
    clicks: Sequence[Click],
    prob_threshold: float = ZOOM_IN_THRESHOLD,
    expansion: float = 1.4,
    min_size: int = 200,
) -> Box | None:
    """Zoom-in region of interest: bbox of (``prev_mask > prob_threshold`` plus positive clicks), expanded.

    Args:
        prev_mask: previous probability map ``[H, W]``.
        clicks: the clicks so far (``Click`` or ``(y, x, is_positive)``); only positive ones count.
        prob_threshold: threshold on ``prev_mask`` (SPEC section 5: 0.5).
        expansion: see :func:`expand_box`.
        min_size: see :func:`expand_box`.

    Returns:
        The box, or ``None`` when there is no predicted pixel and no positive click.
    """
    region = np.asarray(prev_mask) > prob_threshold
    rows, cols = np.nonzero(region)
    ys = list(rows) + [int(c[0]) for c in clicks if bool(c[2])]
    xs = list(cols) + [int(c[1]) for c in clicks if bool(c[2])]
    if not ys:
        return None
    tight = (int(min(ys)), int(max(ys)) + 1, int(min(xs)), int(max(xs)) + 1)
    return expand_box(tight, region.shape, expansion=expansion, min_size=min_size)


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

    Args:
        predictor: the wrapped predictor.
        expansion: bbox expansion factor.
        min_crop_size: minimum crop side in pixels.
        recompute_iou: recompute the crop when the box IoU with the new candidate falls below this.
        prob_threshold: threshold on the previous probability map for the bbox.
        skip_clicks: number of first clicks evaluated on the whole image.

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
    ) -> None:
        if not callable(predictor):
            raise ValueError(f"predictor must be callable, got {type(predictor).__name__}.")
        if expansion < 1.0:
            raise ValueError(f"expansion must be >= 1, got {expansion}.")
        if min_crop_size < 1:
            raise ValueError(f"min_crop_size must be >= 1, got {min_crop_size}.")
        if not 0.0 <= recompute_iou <= 1.0:
            raise ValueError(f"recompute_iou must be in [0, 1], got {recompute_iou}.")
        if skip_clicks < 0:
            raise ValueError(f"skip_clicks must be >= 0, got {skip_clicks}.")
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

    def __call__(self, image: np.ndarray, clicks: Sequence, prev_mask: np.ndarray | None = None) -> Prediction:
        """Predict with zoom-in; arguments and result as the *Predictor* contract (full image size)."""

        spatial_size = _check_image(image)
        clicks = _as_clicks(clicks, spatial_size)
        prev = _check_prev(prev_mask, spatial_size)
        roi = self.update_roi(prev, clicks)
        if roi is None or roi == (0, spatial_size[0], 0, spatial_size[1]):
            return self.predictor(image, clicks, prev)
        y0, y1, x0, x1 = roi
        inner_clicks = [Click(c.y - y0, c.x - x0, c.is_positive) for c in clicks if y0 <= c.y < y1 and x0 <= c.x < x1]
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


def wrap_predictor(predictor: PredictorFn, zoom_in: bool = True, flip: bool = True, **zoom_kwargs) -> PredictorFn:
    """Compose the protocol's test-time augmentations around ``predictor``: ``ZoomIn(FlipTTA(predictor))``.

    Args:
        predictor: any predictor with the *Predictor* contract.
        zoom_in: add :class:`ZoomIn`.
        flip: add :class:`FlipTTA`.
        zoom_kwargs: passed to :class:`ZoomIn`.
    """
    if flip:
        predictor = FlipTTA(predictor)
    if zoom_in:
        predictor = ZoomIn(predictor, **zoom_kwargs)
    return predictor
