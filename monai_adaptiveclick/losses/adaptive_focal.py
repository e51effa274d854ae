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

__all__ = ["REDUCTIONS", "PerMaskLoss", "flatten_mask_pair", "focal_terms", "adaptive_focal_loss", "AdaptiveFocalLoss"]

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
) -> torch.Tensor:
    """Per-mask adaptive focal loss on already validated ``[..., P]`` tensors (paper eq. 8-9, 19-20).

    For each mask (the last dimension holds its ``P`` pixels):

    - ADA (eq. 8-9): ``gamma_a = 1 - mean(p_t over foreground pixels t > 0.5)``, detached; ``gamma_a = 1`` when
      the mask has no foreground pixel; ``gamma_d = gamma + gamma_a`` (``gamma_d = gamma`` with ``ada=False``).
    - ``beta_i = (1 - p_t,i) ** gamma_d`` (carries gradient).
    - AGR (eq. 19): ``mu = P / ((1 + delta * gamma_d) * sum_i beta_i)``, detached, the denominator clamped to at
      least ``eps``; ``mu = 1`` with ``agr=False``.
    - eq. 20: ``l_i = -mu * beta_i * log(p_t,i) + alpha * (1 - p_t,i) ** (gamma_d + 1)``, averaged over pixels.

    Args:
        logits: float tensor ``[..., P]``.
        target: tensor ``[..., P]`` of the same dtype, values in ``[0, 1]``.
        gamma: base focusing parameter (>= 0).
        alpha: weight of the poly-1 term ``(1 - p_t) ** (gamma_d + 1)``.
        delta: AGR parameter ``delta`` of eq. 19 (>= 0).
        ada: use the adaptive difficulty adjustment.
        agr: use the adaptive gradient representation.
        eps: lower bound of the AGR denominator.

    Returns:
        tensor ``[...]``: the loss of each mask (mean over its pixels).
    """
    neg_log_pt, log_one_minus_pt = focal_terms(logits, target)
    if ada:
        with torch.no_grad():
            foreground = target > 0.5
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
            denominator = (1.0 + delta * gamma_d) * beta.sum(dim=-1, keepdim=True)
            mu = logits.shape[-1] / denominator.clamp_min(eps)
        focal = mu * beta * neg_log_pt
    else:
        focal = beta * neg_log_pt
    loss = focal + alpha * torch.exp((gamma_d + 1.0) * log_one_minus_pt)
    return loss.mean(dim=-1)


class PerMaskLoss(nn.Module, ABC):
    """Base class of the binary mask losses of this package: one value per mask, then a reduction.

    Subclasses implement :meth:`per_mask` on validated ``[N, P]`` tensors; :meth:`forward` validates and flattens
    the inputs (:func:`flatten_mask_pair`) and reduces the per-mask values: ``"mean"`` over masks (0 for an empty
    batch), ``"sum"``, or ``"none"`` (a ``[N]`` tensor).

    Args:
        reduction: one of ``"mean"``, ``"sum"``, ``"none"``.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = look_up_option(reduction, REDUCTIONS)

    @abstractmethod
    def per_mask(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of each mask.

        Args:
            logits: float tensor ``[N, P]``.
            target: tensor ``[N, P]`` of the same dtype with values in ``[0, 1]``.

        Returns:
            tensor ``[N]``.
        """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: mask logits ``[B, 1, H, W]``, ``[N, H, W]`` or ``[N, HW]`` (first dimension = masks).
            target: same shape, values in ``[0, 1]``.

        Returns:
            a scalar for ``"mean"`` / ``"sum"``, the ``[N]`` per-mask values for ``"none"``.
        """
        flat_logits, flat_target = flatten_mask_pair(logits, target)
        values = self.per_mask(flat_logits, flat_target)
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
    is no constant 0.5 balance factor (the paper has none).

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

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """AFL of each mask of validated ``[N, P]`` tensors, shape ``[N]``."""
        return adaptive_focal_loss(
            logits,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            delta=self.delta,
            ada=self.ada,
            agr=self.agr,
            eps=self.eps,
        )
