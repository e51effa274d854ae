# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Comparison losses of paper Table VI (and Dice, the second mask loss of paper eq. 21).

Settings follow SPEC section 2: BCE, WBCE (positive weight 3), Balanced CE (positive / negative weights 3 / 1),
Soft IoU, FL (gamma 2, balance 0.5), NFL (gamma 2, balance 0.5), PL (gamma 2, balance 0.5, alpha 1) and MONAI's
Dice loss. Every loss takes mask logits, works per mask (mean over the pixels of each mask) and reduces over masks
like :class:`~monai_adaptiveclick.losses.adaptive_focal.PerMaskLoss`. Every loss accepts an optional ``valid`` mask
(``loss(logits, target, valid)``); the loss of a mask is then the loss on its valid pixels only, as if the ignored
pixels did not exist: the pixel means, sums and normalisers below all run over the valid pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from monai_adaptiveclick.losses.adaptive_focal import PerMaskLoss, focal_terms
from monai_adaptiveclick.losses.masking import valid_pixel_count, valid_pixel_mean, valid_pixel_sum

__all__ = [
    "BinaryCrossEntropyLoss",
    "WeightedBCELoss",
    "BalancedCrossEntropyLoss",
    "SoftIoULoss",
    "SigmoidFocalLoss",
    "NormalizedFocalLoss",
    "PolyFocalLoss",
    "MaskDiceLoss",
]


def _check_positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}.")
    return float(value)


def _check_balance(balance: float | None) -> float | None:
    if balance is None:
        return None
    if not 0 <= balance <= 1:
        raise ValueError(f"balance must lie in [0, 1] or be None, got {balance}.")
    return float(balance)


def _check_gamma(gamma: float) -> float:
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma}.")
    return float(gamma)


def _balance_weight(target: torch.Tensor, balance: float | None) -> torch.Tensor | float:
    """Alpha-balancing weight of the focal loss (Lin et al. 2017): ``balance`` on positives, ``1 - balance`` else.

    ``None`` means no balancing (weight 1 everywhere).
    """
    if balance is None:
        return 1.0
    return balance * target + (1.0 - balance) * (1.0 - target)


class BinaryCrossEntropyLoss(PerMaskLoss):
    """Binary cross-entropy with logits (paper eq. 1, Table VI "BCE"), mean over the pixels of each mask.

    Args:
        reduction: ``"mean"`` over masks, ``"sum"`` or ``"none"``.

    Example:
        >>> BinaryCrossEntropyLoss()(torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8))
        tensor(0.6931)
        >>> valid = torch.tensor([[True, False]])  # the second pixel (logit 50, target 0) is ignored
        >>> BinaryCrossEntropyLoss()(torch.tensor([[0.0, 50.0]]), torch.tensor([[1.0, 0.0]]), valid)
        tensor(0.6931)
    """

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """BCE of each mask (mean over its valid pixels), ``[N]``."""
        return valid_pixel_mean(F.binary_cross_entropy_with_logits(logits, target, reduction="none"), valid)


class WeightedBCELoss(PerMaskLoss):
    """Weighted BCE (Table VI "WBCE"): the positive term weighted by ``pos_weight``, mean over pixels.

    ``l_i = -(pos_weight * t_i * log p_i + (1 - t_i) * log(1 - p_i))``.

    Args:
        pos_weight: weight of the positive class. Default 3 (SPEC section 2).
        reduction: ``"mean"`` over masks, ``"sum"`` or ``"none"``.

    Example:
        >>> loss = WeightedBCELoss(pos_weight=3.0)
        >>> loss(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
        tensor(2.0794)
    """

    def __init__(self, pos_weight: float = 3.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.pos_weight = _check_positive("pos_weight", pos_weight)

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """WBCE of each mask (mean over its valid pixels), ``[N]``."""
        pos_weight = torch.tensor(self.pos_weight, dtype=logits.dtype, device=logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none")
        return valid_pixel_mean(loss, valid)


class BalancedCrossEntropyLoss(PerMaskLoss):
    """Class-balanced cross-entropy (Table VI "Balanced CE", Xie and Tu, ICCV 2015) with fixed class weights.

    ``w_i = pos_weight * t_i + neg_weight * (1 - t_i)`` and the loss of a mask is the weighted average
    ``sum_i w_i * bce_i / sum_i w_i`` (normalised by the weights, which distinguishes it from WBCE); with a
    ``valid`` mask both sums run over the valid pixels.

    Args:
        pos_weight: weight of foreground pixels. Default 3 (SPEC section 2).
        neg_weight: weight of background pixels. Default 1 (SPEC section 2).
        reduction: ``"mean"`` over masks, ``"sum"`` or ``"none"``.

    Example:
        >>> BalancedCrossEntropyLoss()(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
        tensor(0.6931)
    """

    def __init__(self, pos_weight: float = 3.0, neg_weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.pos_weight = _check_positive("pos_weight", pos_weight)
        self.neg_weight = _check_positive("neg_weight", neg_weight)

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Balanced CE of each mask (weighted mean over its valid pixels), ``[N]``."""
        weight = self.pos_weight * target + self.neg_weight * (1.0 - target)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        denominator = valid_pixel_sum(weight, valid)
        if valid is not None:  # no valid pixel: numerator 0, denominator 0 -> 0 / 1
            denominator = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
        return valid_pixel_sum(weight * bce, valid) / denominator


class SoftIoULoss(PerMaskLoss):
    """Soft IoU loss (Table VI "Soft IoU", Rahman and Wang, ISVC 2016).

    ``1 - (sum p t + smooth) / (sum (p + t - p t) + smooth)`` with ``p = sigmoid(logits)``; ``smooth`` keeps an
    empty target with an empty prediction at loss 0 and gives an empty target a gradient towards background.
    With a ``valid`` mask the sums run over the valid pixels.

    Args:
        smooth: smoothing constant (> 0). Default 1e-5.
        reduction: ``"mean"`` over masks, ``"sum"`` or ``"none"``.

    Example:
        >>> SoftIoULoss()(torch.full((1, 4, 4), 20.0), torch.ones(1, 4, 4))
        tensor(0.)
    """

    def __init__(self, smooth: float = 1e-5, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.smooth = _check_positive("smooth", smooth)

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Soft IoU loss of each mask (sums over its valid pixels), ``[N]``."""
        prob = torch.sigmoid(logits)
        intersection = valid_pixel_sum(prob * target, valid)
        union = valid_pixel_sum(prob + target - prob * target, valid)
        return 1.0 - (intersection + self.smooth) / (union + self.smooth)


class SigmoidFocalLoss(PerMaskLoss):
    """Focal loss (paper eq. 2, Table VI "FL", Lin et al. ICCV 2017) with alpha-balancing.

    ``l_i = -w_i * (1 - p_t,i) ** gamma * log(p_t,i)``, ``w_i = balance`` on foreground, ``1 - balance`` on
    background; mean over the pixels of each mask.

    Args:
        gamma: focusing parameter (>= 0). Default 2.
        balance: alpha-balancing weight of the foreground class in ``[0, 1]``, or ``None`` for no balancing.
            Default 0.5 (Table VI setting; with 0.5 both classes get weight 0.5).
        reduction: ``"mean"`` over masks, ``"sum"`` or ``"none"``.

    Example:
        >>> SigmoidFocalLoss(gamma=0.0, balance=0.5)(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
        tensor(0.3466)
    """

    def __init__(self, gamma: float = 2.0, balance: float | None = 0.5, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.gamma = _check_gamma(gamma)
        self.balance = _check_balance(balance)

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Focal loss of each mask (mean over its valid pixels), ``[N]``."""
        neg_log_pt, log_one_minus_pt = focal_terms(logits, target)
        modulator = torch.exp(self.gamma * log_one_minus_pt)
        return valid_pixel_mean(_balance_weight(target, self.balance) * modulator * neg_log_pt, valid)


class NormalizedFocalLoss(PerMaskLoss):
    """Normalized focal loss (Table VI "NFL", Sofiiuk et al. ICCV 2019) with alpha-balancing.

    ``l_i = -w_i * mu * (1 - p_t,i) ** gamma * log(p_t,i)`` with the detached per-mask normaliser
    ``mu = P / sum_j (1 - p_t,j) ** gamma`` (denominator clamped to at least ``eps``); mean over pixels. With a
    ``valid`` mask, ``P``, the sum of ``mu`` and the mean run over the valid pixels only.

    Args:
        gamma: focusing parameter (>= 0). Default 2.
        balance: alpha-balancing weight of the foreground class in ``[0, 1]``, or ``None`` for no balancing.
            Default 0.5 (Table VI setting; with 0.5 both classes get weight 0.5).
        eps: lower bound of the normaliser's denominator.
        reduction: ``"mean"`` over masks, ``"sum"`` or ``"none"``.

    Example:
        >>> NormalizedFocalLoss()(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
        tensor(0.3466)
    """

    def __init__(
        self, gamma: float = 2.0, balance: float | None = 0.5, eps: float = 1e-12, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma = _check_gamma(gamma)
        self.balance = _check_balance(balance)
        self.eps = _check_positive("eps", eps)

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """NFL of each mask (normaliser and mean over its valid pixels), ``[N]``."""
        neg_log_pt, log_one_minus_pt = focal_terms(logits, target)
        modulator = torch.exp(self.gamma * log_one_minus_pt)
        with torch.no_grad():
            denominator = valid_pixel_sum(modulator, valid, keepdim=True).clamp_min(self.eps)
            mu = valid_pixel_count(logits, valid, keepdim=True) / denominator
        return valid_pixel_mean(_balance_weight(target, self.balance) * mu * modulator * neg_log_pt, valid)


class PolyFocalLoss(PerMaskLoss):
    """Poly-1 focal loss (paper eq. 3, Table VI "PL", Leng et al. ICLR 2022).

    ``l_i = -w_i * (1 - p_t,i) ** gamma * log(p_t,i) + alpha * (1 - p_t,i) ** (gamma + 1)``; the balance weight
    ``w_i`` multiplies the focal term only (as in the Poly-1 paper); mean over the pixels of each mask.

    Args:
        gamma: focusing parameter (>= 0). Default 2.
        balance: alpha-balancing weight of the foreground class in ``[0, 1]``, or ``None`` for no balancing.
            Default 0.5 (Table VI setting; with 0.5 both classes get weight 0.5).
        alpha: coefficient of the poly-1 term. Default 1.
        reduction: ``"mean"`` over masks, ``"sum"`` or ``"none"``.

    Example:
        >>> PolyFocalLoss(gamma=0.0, balance=0.5, alpha=1.0)(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
        tensor(0.8466)
    """

    def __init__(
        self, gamma: float = 2.0, balance: float | None = 0.5, alpha: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma = _check_gamma(gamma)
        self.balance = _check_balance(balance)
        if not math.isfinite(alpha):
            raise ValueError(f"alpha must be finite, got {alpha}.")
        self.alpha = float(alpha)

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """PL of each mask (mean over its valid pixels), ``[N]``."""
        neg_log_pt, log_one_minus_pt = focal_terms(logits, target)
        focal = _balance_weight(target, self.balance) * torch.exp(self.gamma * log_one_minus_pt) * neg_log_pt
        poly = self.alpha * torch.exp((self.gamma + 1.0) * log_one_minus_pt)
        return valid_pixel_mean(focal + poly, valid)


class MaskDiceLoss(PerMaskLoss):
    """MONAI's :class:`monai.losses.DiceLoss` (``sigmoid=True``) applied to each mask (paper eq. 21).

    ``1 - (2 sum p t + smooth_nr) / (sum p + sum t + smooth_dr)`` per mask, ``p = sigmoid(logits)``. With a
    ``valid`` mask the sums run over the valid pixels: ignored pixels enter MONAI's loss with logit ``-inf`` and
    target 0, so they add exactly 0 to every sum (and get zero gradient).

    Args:
        smooth_nr: numerator smoothing (MONAI default 1e-5).
        smooth_dr: denominator smoothing (MONAI default 1e-5).
        reduction: ``"mean"`` over masks, ``"sum"`` or ``"none"``.

    Example:
        >>> MaskDiceLoss()(torch.full((1, 4, 4), 20.0), torch.ones(1, 4, 4))
        tensor(0.)
        >>> valid = torch.tensor([[True, False]])  # the wrong second pixel is ignored
        >>> MaskDiceLoss()(torch.tensor([[20.0, 20.0]]), torch.tensor([[1.0, 0.0]]), valid)
        tensor(0.)
    """

    def __init__(self, smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.dice = DiceLoss(sigmoid=True, smooth_nr=smooth_nr, smooth_dr=smooth_dr, reduction="none")

    def per_mask(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Dice loss of each mask (sums over its valid pixels), ``[N]``."""
        if valid is not None:
            keep = valid > 0
            logits = torch.where(keep, logits, logits.new_full((), -math.inf))
            target = torch.where(keep, target, target.new_zeros(()))
        return self.dice(logits[:, None, :], target[:, None, :]).reshape(logits.shape[0])
