# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The network input convention shared by every model of this package (ARCHITECTURE "Guidance channels")."""

from __future__ import annotations

import torch

from monai_adaptiveclick.protocol import GUIDANCE_CHANNEL_ORDER

__all__ = ["GUIDANCE_CHANNELS", "check_network_input"]

GUIDANCE_CHANNELS = len(GUIDANCE_CHANNEL_ORDER)
"""Number of channels after the image channels (``protocol.GUIDANCE_CHANNEL_ORDER``: previous-mask probability,
positive-click disks, negative-click disks)."""


def check_network_input(x: torch.Tensor, in_channels: int) -> None:
    """Raise ``ValueError`` unless ``x`` is a float ``[B, in_channels + 3, H, W]`` tensor without NaN.

    The NaN check reads the data, so it is skipped while tracing (``torch.jit.trace``) to keep the graph static,
    and on the meta device (FLOP counting).

    Args:
        x: the network input.
        in_channels: the model's number of image channels.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"expected a 4-D tensor [B, C+3, H, W], got {getattr(x, 'shape', type(x))}.")
    expected = in_channels + GUIDANCE_CHANNELS
    if x.shape[1] != expected:
        raise ValueError(
            f"channel mismatch: expected {expected} input channels ({in_channels} image + "
            f"{GUIDANCE_CHANNELS} guidance), got {x.shape[1]}."
        )
    if not x.is_floating_point():
        raise ValueError(f"expected a floating point input, got {x.dtype}.")
    if not torch.jit.is_tracing() and not x.is_meta and bool(torch.isnan(x).any()):
        raise ValueError("input contains NaN values.")
