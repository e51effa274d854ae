# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Hungarian matching of query predictions to target objects (paper eq. 7, SPEC section 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from monai_adaptiveclick.losses.adaptive_focal import PerMaskLoss, flatten_mask_pair
from monai_adaptiveclick.losses.masking import flatten_valid_mask
from monai_adaptiveclick.losses.registry import get_loss

__all__ = ["HungarianMatcher"]


class HungarianMatcher(nn.Module):
    """One-to-one assignment between the Q query predictions and the T target objects of each image.

    The cost of pairing query ``q`` with target ``j`` is (SPEC section 3)::

        cost_afl * L_mask(mask_q, target_j) + cost_click * (-softmax(click_q)[object])
            + cost_dice * Dice(mask_q, target_j)

    where ``L_mask`` is the adaptive focal loss by default (ADA and AGR computed for each pair, exactly the value
    the criterion would give that pair) and ``Dice`` is MONAI's Dice loss per mask. The cost is minimised with
    ``scipy.optimize.linear_sum_assignment``; ``min(Q, T)`` pairs are returned. No gradient is computed.

    With a ``valid`` mask (pixels whose label is unknown are invalid), both mask costs of a pair are computed on
    the valid pixels only (:class:`~monai_adaptiveclick.losses.adaptive_focal.PerMaskLoss` semantics), so the
    predictions on ignored pixels cannot influence the assignment; a pair without valid pixels has mask costs 0.

    Args:
        cost_afl: weight of the mask-loss cost. Default 5.
        cost_click: weight of the click (object probability) cost. Default 2.
        cost_dice: weight of the Dice cost. Default 5.
        mask_loss: the mask loss used in the cost: a registry name (see ``LOSSES``) or a
            :class:`~monai_adaptiveclick.losses.adaptive_focal.PerMaskLoss` instance. Default ``"afl"``.
        mask_loss_kwargs: constructor arguments when ``mask_loss`` is a name (e.g. ``{"ada": False}``).

    Example:
        >>> matcher = HungarianMatcher()
        >>> pred_logits, pred_masks = torch.randn(2, 10, 2), torch.randn(2, 10, 16, 16)
        >>> targets = (torch.rand(2, 1, 16, 16) > 0.5).float()
        >>> [(q.tolist(), t.tolist()) for q, t in matcher(pred_logits, pred_masks, targets)][0][1]
        [0]
        >>> valid = torch.rand(2, 1, 16, 16) > 0.2  # one valid mask per image, shared by its targets
        >>> [len(q) for q, _ in matcher(pred_logits, pred_masks, targets, valid=valid)]
        [1, 1]
    """

    def __init__(
        self,
        cost_afl: float = 5.0,
        cost_click: float = 2.0,
        cost_dice: float = 5.0,
        mask_loss: str | PerMaskLoss = "afl",
        mask_loss_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        costs = {"cost_afl": cost_afl, "cost_click": cost_click, "cost_dice": cost_dice}
        for name, value in costs.items():
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}.")
        if cost_afl == 0 and cost_click == 0 and cost_dice == 0:
            raise ValueError("at least one of cost_afl, cost_click and cost_dice must be > 0.")
        self.cost_afl = float(cost_afl)
        self.cost_click = float(cost_click)
        self.cost_dice = float(cost_dice)
        if isinstance(mask_loss, PerMaskLoss):
            if mask_loss_kwargs:
                raise ValueError("mask_loss_kwargs can only be given with a mask_loss name, not a loss instance.")
            self.mask_loss = mask_loss
        else:
            self.mask_loss = get_loss(mask_loss, **(mask_loss_kwargs or {}))
        self.dice_loss = get_loss("dice")

    @staticmethod
    def _split_targets(
        targets: torch.Tensor | Sequence[torch.Tensor], batch_size: int, mask_size: tuple[int, int]
    ) -> list[torch.Tensor]:
        """Return one ``[T_b, h, w]`` tensor per image, checking batch size and mask resolution."""
        if isinstance(targets, torch.Tensor):
            if targets.ndim != 4:
                raise ValueError(
                    f"a target tensor must be [B, T, h, w] (e.g. [B, 1, h, w]), got shape {tuple(targets.shape)}."
                )
            targets = list(targets)
        if len(targets) != batch_size:
            raise ValueError(f"got {len(targets)} target entries for a batch of {batch_size} predictions.")
        for b, target in enumerate(targets):
            if not isinstance(target, torch.Tensor) or target.ndim != 3 or tuple(target.shape[1:]) != mask_size:
                shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
                raise ValueError(
                    f"targets[{b}] must be a [T, h, w] tensor at the mask resolution {mask_size}, got {shape}."
                )
        return list(targets)

    @staticmethod
    def _split_valid(
        valid: torch.Tensor | Sequence[torch.Tensor | None] | None, targets: list[torch.Tensor]
    ) -> list[torch.Tensor | None]:
        """Return one valid mask (``None`` or ``[V, h, w]`` with ``V`` 1 or ``T_b``) per image."""
        if valid is None:
            return [None] * len(targets)
        if isinstance(valid, torch.Tensor):
            if valid.ndim != 4:
                raise ValueError(
                    f"a valid tensor must be [B, 1, h, w] or [B, T, h, w], got shape {tuple(valid.shape)}."
                )
            valid = list(valid)
        if len(valid) != len(targets):
            raise ValueError(f"got {len(valid)} valid entries for a batch of {len(targets)} target entries.")
        return list(valid)

    @staticmethod
    def _pair_valid(
        valid: torch.Tensor | None, target: torch.Tensor, num_queries: int, like: torch.Tensor
    ) -> torch.Tensor | None:
        """``[Q * T, P]`` valid rows (``like``'s dtype and device) of the pairs of :meth:`cost_matrix`."""
        if valid is None:
            return None
        if not isinstance(valid, torch.Tensor):
            raise ValueError(f"valid must be a torch.Tensor or None, got {type(valid).__name__}.")
        if valid.ndim == 2:
            valid = valid[None]
        num_targets = target.shape[0]
        if valid.ndim != 3 or valid.shape[1:] != target.shape[1:] or valid.shape[0] not in (1, num_targets):
            raise ValueError(
                f"valid must be [h, w], [1, h, w] or [T, h, w] for targets of shape {tuple(target.shape)}, "
                f"got {tuple(valid.shape)}."
            )
        valid = valid.expand(num_targets, *target.shape[1:])
        flat = flatten_valid_mask(valid, tuple(valid.shape), like.dtype)
        return flat.to(like.device).repeat(num_queries, 1)

    @torch.no_grad()
    def cost_matrix(
        self,
        pred_logits: torch.Tensor,
        pred_masks: torch.Tensor,
        target: torch.Tensor,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Matching cost of one image.

        Args:
            pred_logits: ``[Q, 2]`` click logits (index 0 = object, 1 = no-object).
            pred_masks: ``[Q, h, w]`` mask logits.
            target: ``[T, h, w]`` target masks with values in ``[0, 1]``.
            valid: ``None`` (all pixels valid) or a bool / ``{0, 1}`` mask ``[h, w]``, ``[1, h, w]`` (shared by
                the targets) or ``[T, h, w]`` (one per target); the mask costs use the valid pixels only.

        Returns:
            ``[Q, T]`` cost matrix.

        Raises:
            ValueError: a valid mask of the wrong shape or with values other than 0 / 1.
        """
        num_queries, num_targets = pred_masks.shape[0], target.shape[0]
        # Pairwise rows: [Q * T, P] (row q * T + j pairs query q with target j) -> per-pair values -> [Q, T].
        masks, targets = flatten_mask_pair(
            pred_masks.flatten(1).repeat_interleave(num_targets, dim=0),
            target.flatten(1).to(pred_masks.device).repeat(num_queries, 1),
        )
        pair_valid = self._pair_valid(valid, target, num_queries, masks)
        mask_cost = self.mask_loss.per_mask_values(masks, targets, pair_valid).reshape(num_queries, num_targets)
        dice_cost = self.dice_loss.per_mask_values(masks, targets, pair_valid).reshape(num_queries, num_targets)
        cost = self.cost_afl * mask_cost + self.cost_dice * dice_cost
        object_prob = pred_logits.to(torch.promote_types(pred_logits.dtype, torch.float32)).softmax(dim=-1)[:, 0]
        return cost - self.cost_click * object_prob[:, None]

    @torch.no_grad()
    def forward(
        self,
        pred_logits: torch.Tensor,
        pred_masks: torch.Tensor,
        targets: torch.Tensor | Sequence[torch.Tensor],
        valid: torch.Tensor | Sequence[torch.Tensor | None] | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Match the predictions of every image of a batch to its targets.

        Args:
            pred_logits: ``[B, Q, 2]`` click logits (index 0 = object, 1 = no-object).
            pred_masks: ``[B, Q, h, w]`` mask logits.
            targets: a list of ``B`` tensors ``[T_b, h, w]`` (``T_b`` may be 0) or one tensor ``[B, T, h, w]``
                (``[B, 1, h, w]`` in single-object training), values in ``[0, 1]`` at the mask resolution.
            valid: optional valid-pixel masks at the mask resolution (bool or ``{0, 1}``; 0 = ignored pixel): one
                tensor ``[B, 1, h, w]`` / ``[B, T, h, w]`` or a list of ``B`` entries, each ``None`` or
                ``[1, h, w]`` / ``[T_b, h, w]`` (see :meth:`cost_matrix`). ``None``: every pixel is valid.

        Returns:
            a list of ``B`` pairs ``(pred_idx, tgt_idx)`` of int64 CPU tensors of length ``min(Q, T_b)``:
            query ``pred_idx[k]`` is matched to target ``tgt_idx[k]``.

        Raises:
            ValueError: inconsistent shapes (of the valid masks too) or a non-finite cost.
        """
        if pred_logits.ndim != 3 or pred_logits.shape[-1] != 2:
            raise ValueError(f"pred_logits must be [B, Q, 2], got shape {tuple(pred_logits.shape)}.")
        if pred_masks.ndim != 4 or pred_masks.shape[:2] != pred_logits.shape[:2]:
            raise ValueError(
                f"pred_masks must be [B, Q, h, w] matching pred_logits [B, Q, 2]; got {tuple(pred_masks.shape)} "
                f"and {tuple(pred_logits.shape)}."
            )
        per_image = self._split_targets(targets, pred_masks.shape[0], tuple(pred_masks.shape[2:]))
        valid_per_image = self._split_valid(valid, per_image)
        indices = []
        for b, (target, image_valid) in enumerate(zip(per_image, valid_per_image, strict=True)):
            if target.shape[0] == 0:
                empty = torch.zeros(0, dtype=torch.int64)
                indices.append((empty, empty.clone()))
                continue
            try:
                cost = self.cost_matrix(pred_logits[b], pred_masks[b], target, image_valid).cpu().double()
            except ValueError as error:
                raise ValueError(f"image {b}: {error}") from error
            if not bool(torch.isfinite(cost).all()):
                raise ValueError(f"the matching cost of image {b} is not finite; check pred_masks / pred_logits.")
            rows, cols = linear_sum_assignment(cost.numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices
