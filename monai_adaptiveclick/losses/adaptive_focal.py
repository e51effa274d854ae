# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Adaptive focal loss (AFL) of AdaptiveClick and the per-mask loss base class.

Paper: Lin et al., "AdaptiveClick: Click-Aware Transformer With Adaptive Focal Loss for Interactive Image
Segmentation", IEEE TNNLS 2024, section III-C, eq. 8-9 (ADA), eq. 19 (AGR) and eq. 20 (AFL). The exact
definition implemented here is pinned down in SPEC section 2.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from monai_adaptiveclick.losses.masking import (
    flatten_valid_mask,
    valid_pixel_count,
    valid_pixel_mean,
    valid_pixel_sum,
)

__all__ = [
    "REDUCTIONS",
    "PerMaskLoss",
    "flatten_mask_pair",
    "focal_terms",
    "adaptive_focal_loss",
    "AdaptiveFocalLoss",
]

REDUCTIONS = ("mean", "sum", "none")


def flatten_mask_pair(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a (logits, target) pair and flatten it to one row of pixels per mask.

    Each item along the first dimension is one mask; every other dimension is flattened, so ``[B, 1, H, W]``,
    ``[N, H, W]`` and ``[N, HW]`` all give ``[N, P]``.

    Args:
        logits: float tensor ``[N, ...]`` of mask logits.
        target: tensor of the same shape with values in ``[0, 1]`` (bool / integer / float; soft targets allowed).

    Returns:
        ``(logits [N, P], target [N, P])``; the target has the logits' dtype. Half precision logits are promoted to
        float32 so that the loss is computed in full precision.

    Raises:
        ValueError: non-tensor inputs, non-floating logits, a shape mismatch, fewer than 2 dimensions, masks
            without pixels, or a target value outside ``[0, 1]`` (NaN included).
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(
            f"logits and target must be torch.Tensors, got {type(logits).__name__} and {type(target).__name__}."
        )
    if not logits.is_floating_point():
        raise ValueError(
            f"logits must be a floating point tensor, got dtype {logits.dtype} (shape {tuple(logits.shape)})."
        )
    if logits.shape != target.shape:
        raise ValueError(
            "logits and target must have the same shape, "
            f"got logits {tuple(logits.shape)} and target {tuple(target.shape)}."
        )
    if logits.ndim < 2:
        raise ValueError(
            "expected one mask per item along the first dimension ([B, 1, H, W], [N, H, W] or [N, HW]), "
            f"got shape {tuple(logits.shape)}."
        )
    if logits.shape[1:].numel() == 0:
        raise ValueError(f"masks must have at least one pixel, got shape {tuple(logits.shape)}.")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    target = target.to(dtype=logits.dtype)
    in_range = (target >= 0) & (target <= 1)
    if not bool(in_range.all()):
        bad = target[~in_range]
        raise ValueError(
            f"target values must lie in [0, 1], found {bad.numel()} value(s) outside (e.g. {bad.flatten()[0].item()}) "
            f"in a target of shape {tuple(target.shape)}."
        )
    return logits.flatten(1), target.flatten(1)


def focal_terms(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Numerically stable ``-log(p_t)`` and ``log(1 - p_t)`` (paper eq. 1, SPEC section 2).

    With ``p = sigmoid(logits)`` and a binary target, ``p_t = p * t + (1 - p) * (1 - t)``. ``-log(p_t)`` is the
    binary cross-entropy with logits and ``1 - p_t = t * sigmoid(-x) + (1 - t) * sigmoid(x)`` is evaluated in log
    space with ``logaddexp`` of log-sigmoids, so no logarithm of a (possibly zero) probability is taken and both
    terms have gradients bounded by 1 in magnitude, even for logits of +-1e4 where ``p_t`` is exactly 0 or 1 in
    floating point.

    For a soft target ``t`` in ``(0, 1)`` the same two expressions are used (the convention of
    ``torchvision.ops.sigmoid_focal_loss``): the log term is the soft-target cross-entropy and the modulating
    term uses the linear ``p_t = p * t + (1 - p) * (1 - t)``. Both coincide with the paper for binary targets.

    Args:
        logits: float tensor of logits.
        target: tensor of the same shape and dtype with values in ``[0, 1]``.

    Returns:
        ``(neg_log_pt, log_one_minus_pt)``, both shaped like ``logits``.
    """
    neg_log_pt = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    # log(t) / log(1 - t) are -inf where t is 0 / 1; logaddexp then returns the other (finite) branch.
    log_one_minus_pt = torch.logaddexp(
        torch.log(target) + F.logsigmoid(-logits), torch.log1p(-target) + F.logsigmoid(logits)
    )
    return neg_log_pt, log_one_minus_pt


def adaptive_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    alpha: float = 1.0,
    delta: float = 0.4,
    ada: bool = True,
    agr: bool = True,
    eps: float = 1e-12,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-mask adaptive focal loss on already validated ``[..., P]`` tensors (paper eq. 8-9, 19-20).

    For each mask (the last dimension holds its ``P`` pixels; with ``valid``, only its ``P_v = sum_i v_i`` valid
    pixels take part and every sum / mean below runs over them):

    - ADA (eq. 8-9): ``gamma_a = 1 - mean(p_t over valid foreground pixels t > 0.5)``, detached; ``gamma_a = 1``
      when the mask has no valid foreground pixel; ``gamma_d = gamma + gamma_a`` (``gamma`` with ``ada=False``).
    - ``beta_i = (1 - p_t,i) ** gamma_d`` (carries gradient).
    - AGR (eq. 19): ``mu = P_v / ((1 + delta * gamma_d) * sum_i beta_i)``, detached, the denominator clamped to
      at least ``eps``; ``mu = 1`` with ``agr=False``.
    - eq. 20: ``l_i = -mu * beta_i * log(p_t,i) + alpha * (1 - p_t,i) ** (gamma_d + 1)``, averaged over the
      (valid) pixels.

    This is exactly the loss of the mask restricted to its valid pixels, as if the ignored pixels did not exist;
    a mask without valid pixels gets 0 and no gradient.

    Args:
        logits: float tensor ``[..., P]``.
        target: tensor ``[..., P]`` of the same dtype, values in ``[0, 1]``.
        gamma: base focusing parameter (>= 0).
        alpha: weight of the poly-1 term ``(1 - p_t) ** (gamma_d + 1)``.
        delta: AGR parameter ``delta`` of eq. 19 (>= 0).
        ada: use the adaptive difficulty adjustment.
        agr: use the adaptive gradient representation.
        eps: lower bound of the AGR denominator.
        valid: ``None`` (all pixels valid) or a ``{0, 1}`` tensor ``[..., P]`` of the logits' dtype
            (see :func:`flatten_valid_mask`).

    Returns:
        tensor ``[...]``: the loss of each mask (mean over its valid pixels).

    Example:
        >>> x, t = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[1.0, 0.0, 1.0]])
        >>> full = adaptive_focal_loss(x[:, :2], t[:, :2])
        >>> torch.allclose(adaptive_focal_loss(x, t, valid=torch.tensor([[1.0, 1.0, 0.0]])), full)
        True
    """
    neg_log_pt, log_one_minus_pt = focal_terms(logits, target)
    if ada:
        with torch.no_grad():
            foreground = target > 0.5
            if valid is not None:
                foreground = foreground & (valid > 0)
            p_t = -torch.expm1(log_one_minus_pt)
            n_foreground = foreground.sum(dim=-1, keepdim=True)
            fg_pt_sum = torch.where(foreground, p_t, torch.zeros_like(p_t)).sum(dim=-1, keepdim=True)
            gamma_a = torch.where(
                n_foreground > 0, 1.0 - fg_pt_sum / n_foreground.clamp_min(1), torch.ones_like(fg_pt_sum)
            )
        gamma_d = gamma + gamma_a
    else:
        gamma_d = torch.full_like(logits[..., :1], gamma)
    # (1 - p_t) ** g as exp(g * log(1 - p_t)): finite value and gradient also where p_t == 1.
    beta = torch.exp(gamma_d * log_one_minus_pt)
    if agr:
        with torch.no_grad():
            denominator = (1.0 + delta * gamma_d) * valid_pixel_sum(beta, valid, keepdim=True)
            mu = valid_pixel_count(logits, valid, keepdim=True) / denominator.clamp_min(eps)
        focal = mu * beta * neg_log_pt
    else:
        focal = beta * neg_log_pt
    loss = focal + alpha * torch.exp((gamma_d + 1.0) * log_one_minus_pt)
    return valid_pixel_mean(loss, valid)


class PerMaskLoss(nn.Module, ABC):
    """Base class of the binary mask losses of this package: one value per mask, then a reduction.

    Subclasses implement :meth:`per_mask` on validated ``[N, P]`` tensors; :meth:`forward` validates and flattens
    the inputs (:func:`flatten_mask_pair`, :func:`flatten_valid_mask`) and reduces the per-mask values:
    ``"mean"`` over masks (0 for an empty batch), ``"sum"``, or ``"none"`` (a ``[N]`` tensor).

    Ignored pixels: with a ``valid`` mask, the loss of each mask is defined as the loss computed on that mask's
    valid pixels only, as if the ignored pixels did not exist: every pixel mean, sum and normaliser of the loss
    (and AFL's adaptive statistics ADA and AGR, paper eq. 8-9 and 19) runs over the valid pixels. Ignored pixels
    get exactly zero gradient. A mask with no valid pixel contributes 0 (no NaN, zero gradient) and still counts
    as one mask in the ``"mean"`` reduction, so ``"mean"`` is always ``"sum" / N``.

    Args:
        reduction: one of ``"mean"``, ``"sum"``, ``"none"``.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = look_up_option(reduction, REDUCTIONS)

    @abstractmethod
    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Loss of each mask.

        Args:
            logits: float tensor ``[N, P]``.
            target: tensor ``[N, P]`` of the same dtype with values in ``[0, 1]``.
            valid: ``None`` (all pixels valid) or a ``{0, 1}`` tensor ``[N, P]`` of the same dtype; the loss of a
                mask is then its loss on the valid pixels only (see the class docstring).

        Returns:
            tensor ``[N]``.
        """

    def per_mask_values(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:meth:`per_mask` with the guarantee that a mask without valid pixels gives exactly 0.

        The logits and target of ignored pixels are replaced by 0 before :meth:`per_mask` sees them, so any value
        there (even ``inf`` / NaN) changes neither the loss nor the gradient of the other pixels, and the gradient
        with respect to ignored logits is exactly 0.

        Args:
            logits: float tensor ``[N, P]`` (validated, e.g. by :func:`flatten_mask_pair`).
            target: tensor ``[N, P]`` of the same dtype with values in ``[0, 1]``.
            valid: ``None`` or a ``{0, 1}`` tensor ``[N, P]`` of the same dtype (see :func:`flatten_valid_mask`).

        Returns:
            tensor ``[N]``.
        """
        if valid is None:
            return self.per_mask(logits, target)
        keep = valid > 0
        logits = torch.where(keep, logits, logits.new_zeros(()))
        target = torch.where(keep, target, target.new_zeros(()))
        values = self.per_mask(logits, target, valid)
        return torch.where(keep.any(dim=-1), values, values.new_zeros(()))

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: mask logits ``[B, 1, H, W]``, ``[N, H, W]`` or ``[N, HW]`` (first dimension = masks).
            target: same shape, values in ``[0, 1]``.
            valid: optional mask of the same shape, bool or with values in ``{0, 1}``: 1 / True for pixels whose
                label is known, 0 / False for ignored ones. ``None`` (default) means every pixel is valid. The
                loss of each mask is then computed on its valid pixels only (see the class docstring).

        Returns:
            a scalar for ``"mean"`` / ``"sum"``, the ``[N]`` per-mask values for ``"none"``.

        Raises:
            ValueError: bad logits / target (see :func:`flatten_mask_pair`) or valid mask
                (see :func:`flatten_valid_mask`).

        Example:
            >>> loss = AdaptiveFocalLoss()
            >>> logits, target = torch.tensor([[3.0, -2.0, 9.0]]), torch.tensor([[1.0, 0.0, 0.0]])
            >>> with_ignore = loss(logits, target, torch.tensor([[True, True, False]]))
            >>> bool(torch.isclose(with_ignore, loss(logits[:, :2], target[:, :2])))  # as if pixel 2 did not exist
            True
            >>> loss(logits, target, torch.zeros(1, 3, dtype=torch.bool))
            tensor(0.)
        """
        flat_logits, flat_target = flatten_mask_pair(logits, target)
        flat_valid = flatten_valid_mask(valid, logits.shape, flat_logits.dtype)
        values = self.per_mask_values(flat_logits, flat_target, flat_valid)
        if self.reduction == "none":
            return values
        total = values.sum()
        return total if self.reduction == "sum" else total / max(values.numel(), 1)


class AdaptiveFocalLoss(PerMaskLoss):
    """Adaptive focal loss (AFL), paper eq. 20 with ADA (eq. 8-9) and AGR (eq. 19); SPEC section 2.

    ``l_i = -mu * (1 - p_t,i) ** gamma_d * log(p_t,i) + alpha * (1 - p_t,i) ** (gamma_d + 1)`` with the
    adaptive ``gamma_d = gamma + gamma_a`` (ADA, ``gamma_a`` from the mean foreground ``p_t``, detached; 1 for a
    mask without foreground) and the detached AGR factor ``mu = P / ((1 + delta * gamma_d) * sum_i beta_i)``.
    The loss is averaged over the pixels of each mask, then reduced over masks. Unlike the authors' code there
    is no constant 0.5 balance factor (the paper has none). With a ``valid`` mask (``loss(logits, target, valid)``)
    ``P``, the pixel mean and the ADA / AGR statistics run over the valid pixels only (see :class:`PerMaskLoss`).

    Exact special cases: ``ada=False, agr=False, alpha=0`` is the focal loss without alpha-balancing;
    additionally ``gamma=0`` is BCE; ``ada=False, agr=True, delta=0, alpha=0`` is the normalized focal loss;
    ``ada=False, agr=False, alpha>0`` is the poly-1 focal loss.

    Args:
        gamma: base focusing parameter gamma (>= 0). Default 2 (paper).
        alpha: weight of the poly term. Default 1.0 (paper).
        delta: AGR parameter delta (>= 0). Default 0.4 (paper).
        ada: adaptive difficulty adjustment on/off (paper Table XI).
        agr: adaptive gradient representation on/off (paper Table XI).
        reduction: ``"mean"`` (over masks), ``"sum"`` or ``"none"`` (per-mask values).
        eps: lower bound of the AGR denominator.

    Example:
        >>> loss = AdaptiveFocalLoss()
        >>> logits = torch.randn(2, 1, 64, 64, requires_grad=True)
        >>> target = (torch.rand(2, 1, 64, 64) > 0.7).float()
        >>> loss(logits, target).backward()
        >>> valid = torch.rand(2, 1, 64, 64) > 0.1  # ~10% of the pixels have an unknown label
        >>> loss(logits, target, valid).backward()
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float = 1.0,
        delta: float = 0.4,
        ada: bool = True,
        agr: bool = True,
        reduction: str = "mean",
        eps: float = 1e-12,
    ) -> None:
        super().__init__(reduction=reduction)
        if not (math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"gamma must be a finite number >= 0, got {gamma}.")
        if not math.isfinite(alpha):
            raise ValueError(f"alpha must be finite, got {alpha}.")
        if not (math.isfinite(delta) and delta >= 0):
            raise ValueError(f"delta must be a finite number >= 0, got {delta}.")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}.")
        self.gamma = float(gamma)
        self.alpha = float(alpha)
        self.delta = float(delta)
        self.ada = bool(ada)
        self.agr = bool(agr)
        self.eps = float(eps)

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """AFL of each mask of validated ``[N, P]`` tensors (on its valid pixels), shape ``[N]``."""
        return adaptive_focal_loss(
            logits,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            delta=self.delta,
            ada=self.ada,
            agr=self.agr,
            eps=self.eps,
            valid=valid,
        )
