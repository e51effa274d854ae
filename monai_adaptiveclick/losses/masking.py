# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Valid-pixel masks of the mask losses: pixels whose label is unknown ("ignore") take no part in a loss.

Convention shared by every loss of this package (:class:`~monai_adaptiveclick.losses.adaptive_focal.PerMaskLoss`):
the loss of a mask with a valid mask is the loss computed on that mask's valid pixels only, as if the ignored
pixels did not exist. The helpers below give the pixel count, sum and mean over the valid pixels of each mask.
"""

from __future__ import annotations

import torch

__all__ = ["flatten_valid_mask", "valid_pixel_count", "valid_pixel_sum", "valid_pixel_mean"]


def flatten_valid_mask(
    valid: torch.Tensor | None, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype
) -> torch.Tensor | None:
    """Validate a mask of valid (not ignored) pixels and flatten it to one row per mask, like the target.

    Args:
        valid: ``None`` (every pixel valid) or a tensor of the target's shape, bool or with values in ``{0, 1}``
            (1 / True = the pixel is valid, 0 / False = its label is unknown and it is ignored).
        shape: shape of the (unflattened) logits and target, ``[N, ...]``.
        dtype: floating dtype of the returned mask (that of the flattened logits).

    Returns:
        ``None`` when ``valid`` is ``None``, else a ``[N, P]`` tensor of ``dtype`` with values in ``{0, 1}``.

    Raises:
        ValueError: not a tensor, a shape different from ``shape``, or a value other than 0 / 1 (NaN included).

    Example:
        >>> flatten_valid_mask(torch.tensor([[[True, False]]]), (1, 1, 2), torch.float32)
        tensor([[1., 0.]])
    """
    if valid is None:
        return None
    if not isinstance(valid, torch.Tensor):
        raise ValueError(f"valid must be None or a torch.Tensor, got {type(valid).__name__}.")
    if tuple(valid.shape) != tuple(shape):
        raise ValueError(f"valid must have the shape of logits and target {tuple(shape)}, got {tuple(valid.shape)}.")
    if valid.dtype != torch.bool:
        binary = (valid == 0) | (valid == 1)
        if not bool(binary.all()):
            bad = valid[~binary]
            raise ValueError(
                f"valid must be bool or have values in {{0, 1}}, found {bad.numel()} other value(s) "
                f"(e.g. {bad.flatten()[0].item()}) in a mask of shape {tuple(valid.shape)}."
            )
    return valid.to(dtype=dtype).flatten(1)


def valid_pixel_count(values: torch.Tensor, valid: torch.Tensor | None, keepdim: bool = False) -> torch.Tensor | int:
    """Number of valid pixels of each mask: ``P`` (an int) without a valid mask, else ``sum_i v_i`` per mask.

    Args:
        values: ``[..., P]`` tensor (only its last dimension is used when ``valid`` is ``None``).
        valid: ``None`` or a ``{0, 1}`` float tensor ``[..., P]``.
        keepdim: keep the reduced pixel dimension.

    Returns:
        ``P`` or a ``[...]`` (``[..., 1]`` with ``keepdim``) tensor of counts.
    """
    if valid is None:
        return values.shape[-1]
    return valid.sum(dim=-1, keepdim=keepdim)


def valid_pixel_sum(values: torch.Tensor, valid: torch.Tensor | None, keepdim: bool = False) -> torch.Tensor:
    """Sum of per-pixel ``values`` over the valid pixels of each mask (over all pixels when ``valid`` is ``None``).

    Ignored pixels are removed with ``torch.where`` (not multiplied by 0), so a non-finite value or gradient there
    cannot leak into the result or into the gradient of the other pixels.

    Args:
        values: ``[..., P]`` per-pixel values.
        valid: ``None`` or a ``{0, 1}`` tensor broadcastable to ``values``.
        keepdim: keep the reduced pixel dimension.

    Returns:
        ``[...]`` (``[..., 1]`` with ``keepdim``) sums; 0 for a mask without valid pixels.

    Example:
        >>> valid_pixel_sum(torch.tensor([[1.0, 2.0, 4.0]]), torch.tensor([[1.0, 0.0, 1.0]]))
        tensor([5.])
    """
    if valid is None:
        return values.sum(dim=-1, keepdim=keepdim)
    return torch.where(valid > 0, values, values.new_zeros(())).sum(dim=-1, keepdim=keepdim)


def valid_pixel_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-pixel ``values`` over the valid pixels of each mask (all pixels when ``valid`` is ``None``).

    Args:
        values: ``[..., P]`` per-pixel values.
        valid: ``None`` or a ``{0, 1}`` tensor broadcastable to ``values``.

    Returns:
        ``[...]`` means; 0 (not NaN) for a mask without valid pixels.

    Example:
        >>> values = torch.tensor([[1.0, 2.0, 4.0], [1.0, 1.0, 1.0]])
        >>> valid_pixel_mean(values, torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
        tensor([2.5000, 0.0000])
    """
    if valid is None:
        return values.mean(dim=-1)
    return valid_pixel_sum(values, valid) / valid.sum(dim=-1).clamp_min(1)
