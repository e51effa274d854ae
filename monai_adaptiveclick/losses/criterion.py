# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Training criteria: the AdaptiveClick total loss (paper eq. 21-22, SPEC section 3) and the mask-fixed variant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from monai_adaptiveclick.losses.adaptive_focal import PerMaskLoss
from monai_adaptiveclick.losses.matcher import HungarianMatcher
from monai_adaptiveclick.losses.registry import get_loss
from monai_adaptiveclick.networks.heads import get_head

__all__ = ["downsample_target", "downsample_valid", "AdaptiveClickCriterion", "MaskFixedCriterion", "build_criterion"]


def downsample_target(target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Binary target at the mask resolution: area interpolation, then ``>= 0.5`` (SPEC section 3).

    Args:
        target: ``[B, 1, H, W]`` float target in ``[0, 1]`` at input resolution.
        size: ``(h, w)`` mask resolution.

    Returns:
        ``[B, 1, h, w]`` float tensor with values in ``{0, 1}``.
    """
    target = target.float()
    if tuple(target.shape[-2:]) != tuple(size):
        target = F.interpolate(target, size=tuple(size), mode="area")
    return (target >= 0.5).float()


def downsample_valid(ignore: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Valid-pixel mask at the mask resolution from an input-resolution ignore mask (same rule as the target).

    The ignore mask is downsampled exactly like the target (:func:`downsample_target`): area interpolation, then a
    mask pixel is ignored when at least half of its area is ignored (area fraction ``>= 0.5``); it is valid
    otherwise. At the input resolution this is ``ignore >= 0.5``.

    Args:
        ignore: ``[B, 1, H, W]`` bool / float ignore mask in ``[0, 1]`` (1 / True = label unknown).
        size: ``(h, w)`` mask resolution.

    Returns:
        ``[B, 1, h, w]`` bool tensor, True where the pixel is valid.

    Example:
        >>> ignore = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
        >>> ignore[0, 0, :2, :1] = True  # half of the top-left 2x2 cell: that cell is ignored
        >>> downsample_valid(ignore, (2, 2))[0, 0]
        tensor([[False,  True],
                [ True,  True]])
    """
    return downsample_target(ignore, size) < 0.5


def _check_target(target: torch.Tensor) -> None:
    if not isinstance(target, torch.Tensor) or target.ndim != 4 or target.shape[1] != 1:
        shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target must be a [B, 1, H, W] tensor, got {shape}.")
    in_range = (target >= 0) & (target <= 1)
    if not bool(in_range.all()):
        raise ValueError(f"target values must lie in [0, 1] (target of shape {tuple(target.shape)}).")


def _check_ignore(ignore: torch.Tensor | None, target: torch.Tensor) -> None:
    if ignore is None:
        return
    if not isinstance(ignore, torch.Tensor) or tuple(ignore.shape) != tuple(target.shape):
        shape = tuple(ignore.shape) if isinstance(ignore, torch.Tensor) else type(ignore).__name__
        raise ValueError(
            f"ignore must be None or a [B, 1, H, W] tensor with the target's shape {tuple(target.shape)}, got {shape}."
        )
    if ignore.dtype != torch.bool and not bool(((ignore >= 0) & (ignore <= 1)).all()):
        raise ValueError(f"ignore values must be bool or lie in [0, 1] (ignore of shape {tuple(ignore.shape)}).")


def _check_weight(name: str, value: float) -> float:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}.")
    return float(value)


def _build_mask_loss(mask_loss: str | PerMaskLoss, mask_loss_kwargs: Mapping[str, Any] | None) -> PerMaskLoss:
    if isinstance(mask_loss, PerMaskLoss):
        if mask_loss_kwargs:
            raise ValueError("mask_loss_kwargs can only be given with a mask_loss name, not a loss instance.")
        return mask_loss
    return get_loss(mask_loss, **dict(mask_loss_kwargs or {}))


class AdaptiveClickCriterion(nn.Module):
    """Total loss of AdaptiveClick with Hungarian matching and deep supervision (paper eq. 7, 21-22; SPEC 3).

    For the final output and every entry of ``aux_outputs`` (one per decoder layer), with the target
    area-downsampled to the mask resolution and thresholded at 0.5:

    - the queries are matched to the target object(s) by :class:`HungarianMatcher`;
    - ``loss_click``: cross-entropy of the click head, class 0 (object) for matched queries and 1 (no-object)
      for the others, the no-object class weighted by ``no_object_weight`` (weighted mean over queries);
    - ``loss_mask`` / ``loss_dice``: the mask loss (AFL by default) and MONAI's Dice loss of the matched query
      masks against their targets, mean over matched pairs.

    ``total = sum_layers lambda_cli * loss_click + lambda_mask * (lambda_afl * loss_mask + lambda_dice * loss_dice)``.

    Ignored pixels (``criterion(outputs, target, ignore)``): the ignore mask is downsampled to each mask resolution
    like the target (:func:`downsample_valid`: ignored where the area fraction is ``>= 0.5``) and the matching
    costs, ``loss_mask`` and ``loss_dice`` use the valid pixels only (``PerMaskLoss`` semantics), so the logits on
    ignored pixels neither change the loss nor receive gradient. ``loss_click`` needs no pixel mask.

    Args:
        mask_loss: registry name of the mask loss (``"afl"``; any of ``LOSSES`` for the Table VI / XI comparisons)
            or a :class:`PerMaskLoss` instance. It is used both in the loss and in the matching cost.
        mask_loss_kwargs: constructor arguments of a named mask loss (e.g. ``{"ada": False, "agr": True}``).
        lambda_cli: weight of the click loss. Default 2.
        lambda_mask: weight of the mask loss ``lambda_afl * L_mask + lambda_dice * L_dice``. Default 1.
        lambda_afl: weight of the mask loss term (AFL by default). Default 5.
        lambda_dice: weight of the Dice term. Default 5.
        no_object_weight: class weight of "no-object" in the click CE. Default 0.1.
        cost_click: matching weight of ``-p_object``. Default 2.
        cost_afl: matching weight of the mask loss. Default 5.
        cost_dice: matching weight of the Dice loss. Default 5.

    Example:
        >>> criterion = AdaptiveClickCriterion()
        >>> outputs = {"pred_logits": torch.randn(2, 10, 2), "pred_masks": torch.randn(2, 10, 16, 16)}
        >>> total, parts = criterion(outputs, (torch.rand(2, 1, 64, 64) > 0.5).float())
        >>> sorted(parts)
        ['loss_click', 'loss_dice', 'loss_mask']
        >>> ignore = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
        >>> ignore[:, :, :8] = True  # the top rows have an unknown label
        >>> total, parts = criterion(outputs, (torch.rand(2, 1, 64, 64) > 0.5).float(), ignore=ignore)
    """

    def __init__(
        self,
        mask_loss: str | PerMaskLoss = "afl",
        mask_loss_kwargs: Mapping[str, Any] | None = None,
        lambda_cli: float = 2.0,
        lambda_mask: float = 1.0,
        lambda_afl: float = 5.0,
        lambda_dice: float = 5.0,
        no_object_weight: float = 0.1,
        cost_click: float = 2.0,
        cost_afl: float = 5.0,
        cost_dice: float = 5.0,
    ) -> None:
        super().__init__()
        self.lambda_cli = _check_weight("lambda_cli", lambda_cli)
        self.lambda_mask = _check_weight("lambda_mask", lambda_mask)
        self.lambda_afl = _check_weight("lambda_afl", lambda_afl)
        self.lambda_dice = _check_weight("lambda_dice", lambda_dice)
        _check_weight("no_object_weight", no_object_weight)
        self.mask_loss = _build_mask_loss(mask_loss, mask_loss_kwargs)
        self.dice_loss = get_loss("dice")
        self.matcher = HungarianMatcher(
            cost_afl=cost_afl, cost_click=cost_click, cost_dice=cost_dice, mask_loss=self.mask_loss
        )
        self.register_buffer("class_weight", torch.tensor([1.0, float(no_object_weight)]), persistent=False)

    def layer_losses(
        self, layer: Mapping[str, torch.Tensor], target: torch.Tensor, valid: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Matched losses of one decoder layer.

        Args:
            layer: ``{"pred_logits": [B, Q, 2], "pred_masks": [B, Q, h, w]}``.
            target: ``[B, 1, h, w]`` binary target at the mask resolution.
            valid: optional ``[B, 1, h, w]`` bool mask of the valid pixels at the mask resolution.

        Returns:
            ``{"loss_click", "loss_mask", "loss_dice"}`` scalar tensors.
        """
        pred_logits, pred_masks = layer["pred_logits"], layer["pred_masks"]
        indices = self.matcher(pred_logits, pred_masks, target, valid=valid)
        batch_idx = torch.cat([torch.full_like(pred_idx, b) for b, (pred_idx, _) in enumerate(indices)])
        pred_idx = torch.cat([pred_idx for pred_idx, _ in indices])
        tgt_idx = torch.cat([tgt_idx for _, tgt_idx in indices])
        device = pred_logits.device
        batch_idx, pred_idx, tgt_idx = batch_idx.to(device), pred_idx.to(device), tgt_idx.to(device)

        classes = torch.ones(pred_logits.shape[:2], dtype=torch.int64, device=device)
        classes[batch_idx, pred_idx] = 0
        click_logits = pred_logits.to(torch.promote_types(pred_logits.dtype, torch.float32))
        weight = self.class_weight.to(device=device, dtype=click_logits.dtype)
        loss_click = F.cross_entropy(click_logits.transpose(1, 2), classes, weight=weight)

        matched_masks = pred_masks[batch_idx, pred_idx]
        matched_targets = target.to(pred_masks.dtype)[batch_idx, tgt_idx]
        matched_valid = None if valid is None else valid.to(device)[batch_idx, tgt_idx]
        return {
            "loss_click": loss_click,
            "loss_mask": self.mask_loss(matched_masks, matched_targets, matched_valid),
            "loss_dice": self.dice_loss(matched_masks, matched_targets, matched_valid),
        }

    def forward(
        self, outputs: Mapping[str, Any], target: torch.Tensor, ignore: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Compute the total loss.

        Args:
            outputs: model output ``{"pred_logits": [B, Q, 2], "pred_masks": [B, Q, h, w], "aux_outputs": [...]}``
                (``aux_outputs`` optional, a list of dicts with the same two keys).
            target: ``[B, 1, H, W]`` float target in ``[0, 1]`` at input resolution.
            ignore: optional ``[B, 1, H, W]`` bool / float mask at input resolution, 1 / True where the label is
                unknown; such pixels are excluded from the matching and the mask losses (see the class docstring).

        Returns:
            ``(total, parts)``: the scalar total loss and ``{"loss_click", "loss_mask", "loss_dice"}`` as python
            floats, each summed over the layers and not weighted.

        Raises:
            ValueError: missing output keys, or a target / ignore / ``pred_masks`` of the wrong shape or range.
        """
        for key in ("pred_logits", "pred_masks"):
            if key not in outputs:
                raise ValueError(f"outputs must contain {key!r} (CAMD head output); got keys {sorted(outputs)}.")
        _check_target(target)
        _check_ignore(ignore, target)
        pred_masks = outputs["pred_masks"]
        if pred_masks.ndim != 4 or pred_masks.shape[0] != target.shape[0]:
            raise ValueError(
                f"pred_masks must be [B, Q, h, w] with the target's batch size; got {tuple(pred_masks.shape)} "
                f"and target {tuple(target.shape)}."
            )
        layers = [outputs, *outputs.get("aux_outputs", [])]
        targets_by_size: dict[tuple[int, int], torch.Tensor] = {}
        valid_by_size: dict[tuple[int, int], torch.Tensor | None] = {}
        total = pred_masks.new_zeros((), dtype=torch.float32)
        sums = {"loss_click": 0.0, "loss_mask": 0.0, "loss_dice": 0.0}
        for layer in layers:
            size = tuple(layer["pred_masks"].shape[-2:])
            if size not in targets_by_size:
                device = layer["pred_masks"].device
                targets_by_size[size] = downsample_target(target, size).to(device)
                valid_by_size[size] = None if ignore is None else downsample_valid(ignore, size).to(device)
            losses = self.layer_losses(layer, targets_by_size[size], valid_by_size[size])
            mask_term = self.lambda_afl * losses["loss_mask"] + self.lambda_dice * losses["loss_dice"]
            total = total + self.lambda_cli * losses["loss_click"] + self.lambda_mask * mask_term
            for key, value in losses.items():
                sums[key] += float(value.detach())
        return total, sums


class MaskFixedCriterion(nn.Module):
    """Loss of the mask-fixed (single logit map, SimpleClick-style) head, for the CAMD ablation (paper Table X).

    No matching and no click loss: ``total = lambda_mask * (lambda_afl * L_mask + lambda_dice * L_dice)`` on the
    single map against the target area-downsampled to the mask resolution and thresholded at 0.5 (SPEC 3).
    The weights default to those of :class:`AdaptiveClickCriterion` so that only the head differs. An optional
    ``ignore`` mask is downsampled like the target (:func:`downsample_valid`) and both losses use the valid pixels
    only.

    Args:
        mask_loss: registry name or :class:`PerMaskLoss` instance; default ``"nfl"`` (SimpleClick's loss).
        mask_loss_kwargs: constructor arguments of a named mask loss.
        lambda_mask: overall weight of the mask loss. Default 1.
        lambda_afl: weight of the ``mask_loss`` term. Default 5.
        lambda_dice: weight of the Dice term. Default 5.

    Example:
        >>> criterion = MaskFixedCriterion()
        >>> total, parts = criterion({"pred_masks": torch.randn(2, 1, 16, 16)}, torch.ones(2, 1, 64, 64))
        >>> sorted(parts)
        ['loss_dice', 'loss_mask']
        >>> ignore = torch.zeros(2, 1, 64, 64)
        >>> ignore[:, :, :, :32] = 1.0  # left half unknown
        >>> total, parts = criterion({"pred_masks": torch.randn(2, 1, 16, 16)}, torch.ones(2, 1, 64, 64), ignore)
    """

    def __init__(
        self,
        mask_loss: str | PerMaskLoss = "nfl",
        mask_loss_kwargs: Mapping[str, Any] | None = None,
        lambda_mask: float = 1.0,
        lambda_afl: float = 5.0,
        lambda_dice: float = 5.0,
    ) -> None:
        super().__init__()
        self.lambda_mask = _check_weight("lambda_mask", lambda_mask)
        self.lambda_afl = _check_weight("lambda_afl", lambda_afl)
        self.lambda_dice = _check_weight("lambda_dice", lambda_dice)
        self.mask_loss = _build_mask_loss(mask_loss, mask_loss_kwargs)
        self.dice_loss = get_loss("dice")

    def forward(
        self, outputs: Mapping[str, Any], target: torch.Tensor, ignore: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Compute the total loss.

        Args:
            outputs: model output ``{"pred_masks": [B, 1, h, w]}`` (mask logits).
            target: ``[B, 1, H, W]`` float target in ``[0, 1]`` at input resolution.
            ignore: optional ``[B, 1, H, W]`` bool / float mask at input resolution, 1 / True where the label is
                unknown; those pixels are excluded from both losses.

        Returns:
            ``(total, parts)`` with ``parts = {"loss_mask", "loss_dice"}`` as python floats (not weighted).

        Raises:
            ValueError: a missing ``pred_masks``, or a target / ignore / ``pred_masks`` of the wrong shape or range.
        """
        if "pred_masks" not in outputs:
            raise ValueError(f"outputs must contain 'pred_masks'; got keys {sorted(outputs)}.")
        _check_target(target)
        _check_ignore(ignore, target)
        pred_masks = outputs["pred_masks"]
        if pred_masks.ndim != 4 or pred_masks.shape[1] != 1 or pred_masks.shape[0] != target.shape[0]:
            raise ValueError(
                f"pred_masks must be [B, 1, h, w] with the target's batch size; got {tuple(pred_masks.shape)} "
                f"and target {tuple(target.shape)}."
            )
        size = tuple(pred_masks.shape[-2:])
        small_target = downsample_target(target, size).to(pred_masks.device, pred_masks.dtype)
        valid = None if ignore is None else downsample_valid(ignore, size).to(pred_masks.device)
        loss_mask = self.mask_loss(pred_masks, small_target, valid)
        loss_dice = self.dice_loss(pred_masks, small_target, valid)
        total = self.lambda_mask * (self.lambda_afl * loss_mask + self.lambda_dice * loss_dice)
        return total, {"loss_mask": float(loss_mask.detach()), "loss_dice": float(loss_dice.detach())}


# criterion kinds of the head registry (networks.heads): query matching, or one logit map (mask-fixed, DeepGrow)
_CRITERIA = {"matched": AdaptiveClickCriterion, "single_mask": MaskFixedCriterion}


def build_criterion(head: str = "camd", **kwargs: Any) -> nn.Module:
    """Build the criterion matching a model head, as the head registry (``networks.get_head(head).criterion``) says.

    Args:
        head: a name of ``networks.list_heads()``: ``"camd"`` (:class:`AdaptiveClickCriterion`), ``"mask_fixed"`` or
            ``"deepgrow_unet"`` (:class:`MaskFixedCriterion`).
        kwargs: constructor arguments of that criterion.

    Returns:
        the criterion, called as ``criterion(outputs, target, ignore=None) -> (total, parts)``.

    Example:
        >>> type(build_criterion("camd", mask_loss="afl", mask_loss_kwargs={"agr": False})).__name__
        'AdaptiveClickCriterion'
    """
    return look_up_option(get_head(head).criterion, _CRITERIA)(**kwargs)
