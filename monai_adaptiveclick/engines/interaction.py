# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The click-simulation interaction of training (SPEC section 4), in MONAI's deepgrow ``Interaction`` pattern.

:class:`ClickSimulation` is the ``iteration_update`` of a ``monai.engines.SupervisedTrainer``. Per iteration:

1. the batch holds images already augmented to the network size, binary labels, ``ignore`` masks and the initial
   clicks drawn per sample (padded, ``transforms.SampleInitialClicksd``);
2. ``n ~ U{0..N}`` extra clicks (``N = max_extra_clicks``, 3 in the paper) are simulated **without gradient**,
   batched on the training device, with the model in ``eval`` mode (a user looking at a finished prediction):
   each pass rasterises the clicks, feeds the previous prediction back as the prev-mask channel (zeros before the
   first pass), predicts, and places one click per sample in its error region outside ``ignore``
   (``transforms.sample_error_clicks_batch``);
3. the network input ``[image, prev_mask, positive disks, negative disks]`` and the target ``[label, ignore]`` are
   handed to ``SupervisedTrainer._iteration``, which does the gradient step: forward through the inferer, the loss
   (:class:`TrainingLoss`), backward, optimizer step, AMP with its ``GradScaler``, the ``IterationEvents`` and
   ``PRED`` / ``LOSS`` in ``engine.state.output`` that MONAI handlers rely on. Gradient clipping and the
   non-finite-loss check are event handlers (``engines.handlers``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

import torch
from monai.engines import SupervisedTrainer
from monai.utils import CommonKeys

from monai_adaptiveclick.protocol import CLICK_RADIUS, is_foreground
from monai_adaptiveclick.transforms import rasterize_click_batch, sample_error_clicks_batch

__all__ = ["ClickSimulation", "TrainingLoss", "unwrap_model"]


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside ``DistributedDataParallel`` / ``DataParallel`` wrappers."""
    return model.module if isinstance(getattr(model, "module", None), torch.nn.Module) else model


def _float_outputs(outputs: Any) -> Any:
    """Cast autocast outputs (dicts / lists of tensors) back to float32 for the loss."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    if isinstance(outputs, Mapping):
        return {k: _float_outputs(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_float_outputs(v) for v in outputs)
    return outputs


class TrainingLoss(torch.nn.Module):
    """The ``loss_function`` of the trainer: a criterion called on the ``[label, ignore]`` target.

    ``SupervisedTrainer`` calls ``loss_function(pred, target)`` and expects a tensor; the criteria of
    ``monai_adaptiveclick.losses`` take ``(outputs, label, ignore)`` and return ``(total, parts)``. This adapter
    splits the 2-channel target, casts autocast outputs to float32 and keeps the last ``parts`` (for logging).

    Args:
        criterion: e.g. ``losses.build_criterion("camd")``.

    Example:
        >>> from monai_adaptiveclick.losses import build_criterion
        >>> loss = TrainingLoss(build_criterion("mask_fixed", mask_loss="bce"))
        >>> target = torch.cat([torch.ones(2, 1, 8, 8), torch.zeros(2, 1, 8, 8)], 1)
        >>> total = loss({"pred_masks": torch.zeros(2, 1, 2, 2)}, target)
        >>> sorted(loss.last_parts)
        ['loss_dice', 'loss_mask']
    """

    def __init__(self, criterion: torch.nn.Module) -> None:
        super().__init__()
        self.criterion = criterion
        self.last_parts: dict[str, float] = {}

    def forward(self, outputs: Any, target: torch.Tensor) -> torch.Tensor:
        """``target``: ``[B, 2, H, W]`` (label, ignore) or ``[B, 1, H, W]`` (label only)."""
        if target.ndim != 4 or target.shape[1] not in (1, 2):
            raise ValueError(f"target must be [B, 2, H, W] (label, ignore) or [B, 1, H, W], got {tuple(target.shape)}.")
        ignore = target[:, 1:2] if target.shape[1] == 2 else None
        if ignore is not None and not bool(ignore.any()):
            ignore = None  # nothing ignored in this batch: the plain (faster) loss path, same value
        total, parts = self.criterion(_float_outputs(outputs), target[:, :1], ignore=ignore)
        self.last_parts = {k: float(v) for k, v in parts.items()}
        return total


class ClickSimulation:
    """``iteration_update`` of ``SupervisedTrainer``: click simulation, then ``engine._iteration`` (SPEC 4).

    Args:
        max_extra_clicks: N; ``n ~ U{0..N}`` clicks are simulated per iteration (paper: 3).
        radius: click-disk radius in network pixels (``protocol.CLICK_RADIUS``).
        seed: seeds the number of simulated clicks and the device generator of the error-click sampler.

    Batch keys: ``image`` [B, C, H, W], ``label`` [B, 1, H, W], ``ignore`` [B, 1, H, W] (optional),
    ``click_coords`` [B, K, 2], ``click_signs`` [B, K]. ``engine.state.output`` gains ``num_extra_clicks``,
    ``num_clicks`` and ``loss_parts`` besides MONAI's ``image``, ``label``, ``pred`` and ``loss``.
    """

    def __init__(self, max_extra_clicks: int = 3, radius: float = CLICK_RADIUS, seed: int = 0) -> None:
        if max_extra_clicks < 0:
            raise ValueError(f"max_extra_clicks must be >= 0, got {max_extra_clicks}.")
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}.")
        self.max_extra_clicks, self.radius, self.seed = max_extra_clicks, radius, seed
        self._rng = random.Random(seed)
        self._generator: torch.Generator | None = None
        # wall time of the whole click simulation, and of its no-gradient model forwards alone (for benchmarks;
        # on CUDA these are asynchronous and only meaningful after a synchronisation)
        self.simulation_seconds = 0.0
        self.simulation_forward_seconds = 0.0

    def _device_generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
        return self._generator

    def simulate_clicks(
        self,
        engine: SupervisedTrainer,
        image: torch.Tensor,
        label: torch.Tensor,
        ignore: torch.Tensor,
        coords: torch.Tensor,
        signs: torch.Tensor,
        num_extra: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run ``num_extra`` no-gradient prediction / error-click rounds, batched on the image's device.

        Returns:
            ``(coords [B, K + num_extra, 2], signs [B, K + num_extra], prev_mask [B, 1, H, W])``.
        """
        spatial = tuple(image.shape[-2:])
        prev_mask = image.new_zeros((image.shape[0], 1, *spatial))
        if num_extra == 0:
            return coords, signs, prev_mask
        module = unwrap_model(engine.network)
        was_training = module.training
        module.eval()
        gt = label[:, 0] > 0.5
        ignored = ignore[:, 0] > 0.5
        generator = self._device_generator(image.device)
        use_amp = bool(engine.amp) and image.device.type == "cuda"
        try:
            with torch.no_grad(), torch.autocast(image.device.type, enabled=use_amp, **engine.amp_kwargs):
                for _ in range(num_extra):
                    click_maps = rasterize_click_batch(coords, signs, spatial, radius=self.radius)
                    forward_start = time.perf_counter()
                    prob = module.predict(torch.cat([image, prev_mask, click_maps.to(image.dtype)], dim=1))[0]
                    prev_mask = prob.float().clamp(0.0, 1.0)
                    self.simulation_forward_seconds += time.perf_counter() - forward_start
                    seen = torch.where(ignored, gt, is_foreground(prev_mask[:, 0]))  # ignored pixels count as right
                    new_coords, new_signs = sample_error_clicks_batch(seen, gt, generator=generator)
                    coords = torch.cat([coords, new_coords[:, None].to(coords.dtype)], dim=1)
                    signs = torch.cat([signs, new_signs[:, None].to(signs.dtype)], dim=1)
        finally:
            module.train(was_training)
        return coords, signs, prev_mask

    def __call__(self, engine: SupervisedTrainer, batchdata: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """One training iteration; returns ``engine.state.output``."""
        for key in ("image", "label", "click_coords", "click_signs"):
            if key not in batchdata:
                raise ValueError(f"training batch misses key {key!r}; got {sorted(batchdata)}.")
        device = torch.device(engine.state.device or "cpu")
        image = torch.as_tensor(batchdata["image"]).to(device, non_blocking=True).float()
        label = torch.as_tensor(batchdata["label"]).to(device, non_blocking=True).float()
        if image.ndim != 4 or label.shape != (image.shape[0], 1, *image.shape[-2:]):
            raise ValueError(f"expected image [B, C, H, W] and label [B, 1, H, W], got {image.shape}, {label.shape}.")
        ignore = batchdata.get("ignore")
        ignore = torch.zeros_like(label) if ignore is None else torch.as_tensor(ignore).to(device).float()
        coords = torch.as_tensor(batchdata["click_coords"]).to(device).float()
        signs = torch.as_tensor(batchdata["click_signs"]).to(device).float()

        start = time.perf_counter()
        num_extra = self._rng.randint(0, self.max_extra_clicks)
        coords, signs, prev_mask = self.simulate_clicks(engine, image, label, ignore, coords, signs, num_extra)
        click_maps = rasterize_click_batch(coords, signs, tuple(image.shape[-2:]), radius=self.radius)
        inputs = torch.cat([image, prev_mask, click_maps.to(image.dtype)], dim=1)
        self.simulation_seconds += time.perf_counter() - start

        output = engine._iteration(engine, {CommonKeys.IMAGE: inputs, CommonKeys.LABEL: torch.cat([label, ignore], 1)})
        output["num_extra_clicks"] = num_extra
        output["num_clicks"] = int((signs != 0).sum())
        output["loss_parts"] = dict(getattr(engine.loss_function, "last_parts", {}))
        return output
