# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Iterative click-simulation training on MONAI's ``SupervisedTrainer`` (SPEC section 4).

One training iteration (:class:`ClickSimulationIteration`) follows the RITM / SimpleClick recipe that AdaptiveClick
trains with (paper section IV-A, SPEC section 4):

1. the batch holds images already augmented and cropped to the network size, binary labels and the initial clicks
   drawn per sample by the multi-point sampler (``transforms.SampleInitialClicksd``, padded to a fixed count);
2. ``n ~ U{0..N}`` extra clicks (``N = max_extra_clicks``, 3 in the paper) are simulated **without gradient**,
   batched on the training device: each pass rasterises the clicks, feeds the previous prediction back as the
   prev-mask channel (zeros before the first pass), predicts, and places one click per sample in its error region
   (:func:`monai_adaptiveclick.transforms.sample_error_clicks_batch`);
3. the gradient step: forward with the final clicks and prev-mask, the AdaptiveClick criterion (Hungarian matching +
   adaptive focal loss + Dice + click-head CE, SPEC sections 2-3), AMP autocast on CUDA, gradient clipping.

The simulation passes run the model in ``eval`` mode (as RITM does): they stand for a user looking at a finished
prediction, so dropout / drop-path must be off; the model goes back to ``train`` mode for the gradient step.

:func:`create_trainer` wires the iteration into a ``SupervisedTrainer`` with Adam (lr 5e-5), a ``MultiStepLR``
(x0.1 at 2/3 of the epochs, paper: epoch 40 of 60), console / TensorBoard logging, NoC validation and full-state
checkpoints (model, optimizer, scheduler, epoch, iteration) through MONAI's ``CheckpointSaver`` /
``CheckpointLoader``. :func:`run_training` is the Python API used by the CLI, the bundle and the MONAI Label app.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events
from monai.data import CacheDataset, DataLoader
from monai.engines import SupervisedTrainer
from monai.handlers import (
    CheckpointLoader,
    CheckpointSaver,
    LrScheduleHandler,
    StatsHandler,
    TensorBoardStatsHandler,
)
from monai.transforms import Compose, MapTransform, Randomizable
from monai.utils import CommonKeys

from monai_adaptiveclick.data.intensity import normalize_image
from monai_adaptiveclick.transforms import SampleInitialClicksd, rasterize_click_batch, sample_error_clicks_batch

__all__ = [
    "CHECKPOINT_PREFIX",
    "ClickSimulationIteration",
    "ClickTrainingCropd",
    "EnsureChannelsd",
    "HistoryRecorder",
    "ModelConfigRecord",
    "NoCValidationHandler",
    "PercentileScaled",
    "SelectTrainingKeysd",
    "create_train_dataset",
    "create_train_loader",
    "create_trainer",
    "find_last_checkpoint",
    "load_training_items",
    "require_last_checkpoint",
    "run_training",
    "save_deployable_model",
    "usable_items",
]

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint"
_CKPT_PATTERN = re.compile(rf"^{CHECKPOINT_PREFIX}_(?:final_iteration|epoch)=(\d+)\.pt$")


# ----------------------------------------------------------------------------------------------------------------
# data pipeline
# ----------------------------------------------------------------------------------------------------------------
def usable_items(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Keep the dataset items whose label has at least one foreground pixel (dataset item contract).

    Raises:
        ValueError: an item misses ``image`` / ``label`` or has inconsistent shapes.
    """
    kept = []
    for index, item in enumerate(items):
        if "image" not in item or "label" not in item:
            raise ValueError(f"dataset item {index} needs 'image' and 'label' keys, got {sorted(item)}.")
        image, label = np.asarray(item["image"]), np.asarray(item["label"])
        if image.ndim != 3 or label.ndim != 3 or label.shape[0] != 1 or image.shape[1:] != label.shape[1:]:
            raise ValueError(
                f"dataset item {index} ({item.get('object_id', '?')}): expected image [C, H, W] and label [1, H, W] "
                f"of the same size, got {image.shape} and {label.shape}."
            )
        if label.any():
            kept.append(item)
    return kept


def load_training_items(
    dataset: str = "sample", dataset_dir: str | Path | None = None, split: str = "train", **options: Any
) -> list[Mapping[str, Any]]:
    """Load the items of a registered dataset for training and check them before any training starts.

    Args:
        dataset: a name of :func:`monai_adaptiveclick.data.list_datasets` (``"sample"`` = the embedded pack).
        dataset_dir: the dataset root (ignored by ``"sample"`` when ``None``).
        split: the sample-pack split (``"train"``, ``"heldout"`` or ``"all"``); only used for ``"sample"``.
        options: forwarded to :func:`monai_adaptiveclick.data.get_dataset`.

    Raises:
        FileNotFoundError: ``dataset_dir`` does not exist.
        ValueError: the dataset has no item with a non-empty label.
    """
    from monai_adaptiveclick.data import get_dataset

    if dataset_dir not in (None, "") and not Path(dataset_dir).exists():
        raise FileNotFoundError(f"dataset_dir {str(dataset_dir)!r} for dataset {dataset!r} does not exist.")
    root = None if dataset_dir in (None, "") else str(dataset_dir)
    if dataset == "sample":
        from monai_adaptiveclick.data.sample import load_sample

        items = load_sample(split=split, root=root)
    else:
        items = get_dataset(dataset, root=root, **options)
    items = usable_items(items)
    if not items:
        raise ValueError(f"dataset {dataset!r} (root {root!r}) has zero usable objects (no non-empty label).")
    return items


class EnsureChannelsd(MapTransform):
    """Bring the image to ``num_channels`` channels (a 1-channel image is repeated; others must match)."""

    def __init__(self, keys: str = "image", num_channels: int = 3) -> None:
        super().__init__(keys)
        if num_channels < 1:
            raise ValueError(f"num_channels must be >= 1, got {num_channels}.")
        self.num_channels = num_channels

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = np.asarray(d[key], dtype=np.float32)
            if image.shape[0] == self.num_channels:
                d[key] = image
            elif image.shape[0] == 1:
                d[key] = np.repeat(image, self.num_channels, axis=0)
            else:
                raise ValueError(
                    f"image of {d.get('object_id', '?')} has {image.shape[0]} channels, the model expects "
                    f"{self.num_channels} (only 1-channel images are repeated)."
                )
        return d


class PercentileScaled(MapTransform):
    """Per-channel intensity scaling of the 0.5th-99.5th percentiles to [0, 1], clipped (``intensity="percentile"``).

    The same normalisation the :class:`monai_adaptiveclick.inference.Predictor` applies at inference time.
    """

    def __init__(self, keys: str = "image", lower: float = 0.5, upper: float = 99.5) -> None:
        super().__init__(keys)
        if not 0.0 <= lower < upper <= 100.0:
            raise ValueError(f"need 0 <= lower < upper <= 100, got {lower}, {upper}.")
        self.lower, self.upper = lower, upper

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = normalize_image(np.asarray(d[key]), "percentile", self.lower, self.upper)
        return d


class ClickTrainingCropd(Randomizable, MapTransform):
    """RITM-style geometric augmentation to a square ``image_size`` crop containing the object.

    With probability ``p_full`` the whole image is used (zero-padded at the bottom / right to a square, as the
    :class:`~monai_adaptiveclick.inference.Predictor` sees it without zoom);
    otherwise a square window whose side is ``U(scale_range)`` times the object's bounding-box side (at least 16 px,
    at most the padded image) is placed at random so that it contains the object centre (zoomed views). Then random
    horizontal / vertical flips and a random contrast (gamma) change. Image: bilinear resize; label: area resize
    thresholded at 0.5 (kept non-empty by falling back to any overlap for tiny objects).
    """

    def __init__(
        self,
        image_size: int,
        keys: Sequence[str] = ("image", "label"),
        p_full: float = 0.5,
        scale_range: tuple[float, float] = (1.2, 3.0),
        p_flip: float = 0.5,
        gamma_range: tuple[float, float] = (0.7, 1.5),
    ) -> None:
        MapTransform.__init__(self, keys)
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {image_size}.")
        if not 0.0 <= p_full <= 1.0 or not 0.0 <= p_flip <= 1.0:
            raise ValueError(f"probabilities must lie in [0, 1], got p_full={p_full}, p_flip={p_flip}.")
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must be increasing and positive, got {scale_range}.")
        self.image_size = image_size
        self.p_full, self.scale_range, self.p_flip, self.gamma_range = p_full, scale_range, p_flip, gamma_range

    def randomize(self, data: Any = None) -> None:
        """Draw nothing up front: every draw happens in ``__call__`` with ``self.R``."""

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        d = dict(data)
        image = torch.as_tensor(np.asarray(d["image"], dtype=np.float32))
        label = torch.as_tensor(np.asarray(d["label"]) > 0).float()
        _, h, w = image.shape
        side = max(h, w)
        ys, xs = torch.nonzero(label[0], as_tuple=True)
        if ys.numel() == 0:
            raise ValueError(f"item {d.get('object_id', '?')} has an empty label; filter with usable_items first.")
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        if self.R.rand() < self.p_full:
            top, left, size = 0, 0, side  # zero padding at the bottom / right, as the Predictor does
        else:
            obj = max(y1 - y0, x1 - x0)
            size = int(round(obj * self.R.uniform(*self.scale_range)))
            size = int(min(max(size, 16), side))
            cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
            top = int(round(cy - size * self.R.uniform(0.2, 0.8)))
            left = int(round(cx - size * self.R.uniform(0.2, 0.8)))
        image_crop = _crop_padded(image, top, left, size)
        label_crop = _crop_padded(label, top, left, size)
        image_out = F.interpolate(
            image_crop[None], size=(self.image_size,) * 2, mode="bilinear", align_corners=False, antialias=True
        )
        area = F.interpolate(label_crop[None], size=(self.image_size,) * 2, mode="area")
        label_out = (area >= 0.5).float() if (area >= 0.5).any() else (area > 0).float()
        image_out, label_out = image_out[0], label_out[0]
        if self.R.rand() < self.p_flip:
            image_out, label_out = image_out.flip(-1), label_out.flip(-1)
        if self.R.rand() < self.p_flip:
            image_out, label_out = image_out.flip(-2), label_out.flip(-2)
        gamma = float(np.exp(self.R.uniform(np.log(self.gamma_range[0]), np.log(self.gamma_range[1]))))
        image_out = image_out.clamp(0.0, 1.0) ** gamma
        d["image"], d["label"] = image_out.numpy(), label_out.numpy()
        return d


def _crop_padded(array: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """Square crop ``[top:top+size, left:left+size]`` of a ``[C, H, W]`` tensor, zero-padded outside the image."""
    _, h, w = array.shape
    out = array.new_zeros((array.shape[0], size, size))
    sy0, sx0 = max(top, 0), max(left, 0)
    sy1, sx1 = min(top + size, h), min(left + size, w)
    if sy1 > sy0 and sx1 > sx0:
        out[:, sy0 - top : sy1 - top, sx0 - left : sx1 - left] = array[:, sy0:sy1, sx0:sx1]
    return out


class SelectTrainingKeysd(MapTransform):
    """Keep only the tensors a training batch needs (drops ``meta``, ``object_id`` and optional keys)."""

    def __init__(self, keys: Sequence[str] = ("image", "label", "click_coords", "click_signs")) -> None:
        super().__init__(keys)

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {key: torch.as_tensor(np.asarray(data[key])) for key in self.keys}


def create_train_dataset(
    items: Sequence[Mapping[str, Any]],
    image_size: int,
    in_channels: int = 3,
    max_initial_clicks: int = 24,
    seed: int = 0,
    p_full: float = 0.5,
) -> CacheDataset:
    """A MONAI ``CacheDataset`` producing training samples (deterministic part cached, augmentation per epoch).

    Raises:
        ValueError: no item has a non-empty label.
    """
    items = usable_items(items)
    if not items:
        raise ValueError("the training set has zero usable objects (every label is empty).")
    transform = Compose(
        [
            EnsureChannelsd("image", in_channels),
            PercentileScaled("image"),
            ClickTrainingCropd(image_size, p_full=p_full),
            SampleInitialClicksd(
                "label",
                ignore_key=None,
                coords_key="click_coords",
                signs_key="click_signs",
                max_points=max_initial_clicks,
            ),
            SelectTrainingKeysd(),
        ]
    ).set_random_state(seed=seed)
    return CacheDataset(data=list(items), transform=transform, progress=False, num_workers=0)


def create_train_loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int = 8,
    num_workers: int = 0,
    shuffle: bool = True,
    sampler: torch.utils.data.Sampler | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A MONAI ``DataLoader`` over :func:`create_train_dataset` (``sampler`` e.g. a ``DistributedSampler``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
    )


# ----------------------------------------------------------------------------------------------------------------
# the iteration
# ----------------------------------------------------------------------------------------------------------------
def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside ``DistributedDataParallel`` / ``DataParallel`` wrappers."""
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


class ClickSimulationIteration:
    """``iteration_update`` for ``monai.engines.SupervisedTrainer``: click simulation + one gradient step (SPEC 4).

    Args:
        max_extra_clicks: N; ``n ~ U{0..N}`` clicks are simulated per iteration (paper: 3).
        radius: click-disk radius in network pixels (SPEC section 1).
        grad_clip: max gradient norm (``None`` or <= 0 disables clipping).
        amp: autocast on CUDA (bf16 where supported, else fp16 with a ``GradScaler``); ignored on CPU.
        threshold: probability threshold of the simulated user's view of the prediction (0.49, SPEC 5).
        seed: seeds the number of simulated clicks and the device generator of the error-click sampler.

    Batch keys: ``image`` [B, C, H, W], ``label`` [B, 1, H, W], ``click_coords`` [B, K, 2], ``click_signs`` [B, K].
    The engine provides ``network``, ``optimizer``, ``loss_function`` (a criterion returning ``(total, parts)``)
    and ``state.device`` via ``engine.state`` / attributes of the ``SupervisedTrainer``.

    Example:
        >>> trainer = SupervisedTrainer(device, 10, loader, model, optimizer, criterion,
        ...                             iteration_update=ClickSimulationIteration(max_extra_clicks=3))
    """

    def __init__(
        self,
        max_extra_clicks: int = 3,
        radius: int = 5,
        grad_clip: float | None = 1.0,
        amp: bool = True,
        threshold: float = 0.49,
        seed: int = 0,
    ) -> None:
        if max_extra_clicks < 0:
            raise ValueError(f"max_extra_clicks must be >= 0, got {max_extra_clicks}.")
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}.")
        self.max_extra_clicks, self.radius, self.grad_clip = max_extra_clicks, radius, grad_clip
        self.amp, self.threshold, self.seed = amp, threshold, seed
        self._rng = random.Random(seed)
        self._generator: torch.Generator | None = None
        self._scaler: torch.amp.GradScaler | None = None
        # wall time of the whole click simulation, and of its no-gradient model forwards alone (for benchmarks;
        # on CUDA these are asynchronous and only meaningful after a synchronisation)
        self.simulation_seconds = 0.0
        self.simulation_forward_seconds = 0.0

    def _autocast_settings(self, device: torch.device) -> tuple[bool, torch.dtype]:
        """Autocast on CUDA only: bf16 where supported, else fp16 (which needs the ``GradScaler``)."""
        use_amp = self.amp and device.type == "cuda"
        return use_amp, torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16

    def _device_generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
        return self._generator

    def simulate_clicks(
        self,
        model: torch.nn.Module,
        image: torch.Tensor,
        label: torch.Tensor,
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
        module = _unwrap(model)
        was_training = module.training
        module.eval()
        gt = label[:, 0] > 0.5
        generator = self._device_generator(image.device)
        try:
            use_amp, amp_dtype = self._autocast_settings(image.device)
            with torch.no_grad(), torch.autocast(device_type=image.device.type, dtype=amp_dtype, enabled=use_amp):
                for _ in range(num_extra):
                    click_maps = rasterize_click_batch(coords, signs, spatial, radius=self.radius)
                    forward_start = time.perf_counter()
                    prob = module.predict(torch.cat([image, prev_mask, click_maps.to(image.dtype)], dim=1))[0]
                    prev_mask = prob.float().clamp(0.0, 1.0)
                    self.simulation_forward_seconds += time.perf_counter() - forward_start
                    new_coords, new_signs = sample_error_clicks_batch(
                        prev_mask[:, 0] > self.threshold, gt, generator=generator
                    )
                    coords = torch.cat([coords, new_coords[:, None].to(coords.dtype)], dim=1)
                    signs = torch.cat([signs, new_signs[:, None].to(signs.dtype)], dim=1)
        finally:
            module.train(was_training)
        return coords, signs, prev_mask

    def __call__(self, engine: Engine, batchdata: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """One training iteration; returns ``engine.state.output`` (``loss``, loss parts, clicks used)."""
        for key in ("image", "label", "click_coords", "click_signs"):
            if key not in batchdata:
                raise ValueError(f"training batch misses key {key!r}; got {sorted(batchdata)}.")
        device = torch.device(getattr(engine.state, "device", None) or "cpu")
        image = torch.as_tensor(batchdata["image"]).to(device, non_blocking=True).float()
        label = torch.as_tensor(batchdata["label"]).to(device, non_blocking=True).float()
        coords = torch.as_tensor(batchdata["click_coords"]).to(device).float()
        signs = torch.as_tensor(batchdata["click_signs"]).to(device).float()
        if image.ndim != 4 or label.shape != (image.shape[0], 1, *image.shape[-2:]):
            raise ValueError(f"expected image [B, C, H, W] and label [B, 1, H, W], got {image.shape}, {label.shape}.")
        model, optimizer, criterion = engine.network, engine.optimizer, engine.loss_function

        start = time.perf_counter()
        num_extra = self._rng.randint(0, self.max_extra_clicks)
        coords, signs, prev_mask = self.simulate_clicks(model, image, label, coords, signs, num_extra)
        click_maps = rasterize_click_batch(coords, signs, tuple(image.shape[-2:]), radius=self.radius)
        inputs = torch.cat([image, prev_mask, click_maps.to(image.dtype)], dim=1)
        self.simulation_seconds += time.perf_counter() - start

        model.train()
        optimizer.zero_grad(set_to_none=True)
        use_amp, amp_dtype = self._autocast_settings(device)
        if use_amp and amp_dtype == torch.float16 and self._scaler is None:
            self._scaler = torch.amp.GradScaler("cuda")
        with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
            outputs = model(inputs)
        total, parts = criterion(_float_outputs(outputs), label)
        if not torch.isfinite(total):
            raise FloatingPointError(f"non-finite training loss {float(total)} at iteration {engine.state.iteration}.")
        scaler = self._scaler if use_amp and amp_dtype == torch.float16 else None
        if scaler is not None:
            scaler.scale(total).backward()
            scaler.unscale_(optimizer)
        else:
            total.backward()
        if self.grad_clip is not None and self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        return {
            CommonKeys.LOSS: float(total.detach()),
            "loss_parts": {k: float(v) for k, v in parts.items()},
            "num_extra_clicks": num_extra,
            "num_clicks": int((signs != 0).sum()),
            "batch_size": int(image.shape[0]),
        }


def _loss_of(output: Mapping[str, Any]) -> float:
    """The scalar loss of an iteration output, for the stats handlers."""
    return output[CommonKeys.LOSS]


def _float_outputs(outputs: Any) -> Any:
    """Cast autocast outputs (dicts / lists of tensors) back to float32 for the loss."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    if isinstance(outputs, Mapping):
        return {k: _float_outputs(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_float_outputs(v) for v in outputs)
    return outputs


# ----------------------------------------------------------------------------------------------------------------
# handlers
# ----------------------------------------------------------------------------------------------------------------
class ModelConfigRecord:
    """The model's ``config`` stored in full-state checkpoints; loading a different one raises ``ValueError``.

    Put into the ``save_dict`` of ``CheckpointSaver`` and the ``load_dict`` of ``CheckpointLoader`` so that a
    resume with another preset or a changed architecture fails when the checkpoint is loaded, before any step.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        config = getattr(_unwrap(model), "config", None)
        if not isinstance(config, Mapping):
            raise ValueError("the model has no `config` dict (models from networks.create_model carry one).")
        self.config = _plain(dict(config))

    def state_dict(self) -> dict[str, Any]:
        """The config as a checkpoint entry."""
        return {"config": self.config}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Check that the checkpoint's model config equals this model's.

        Raises:
            ValueError: the configs differ (another preset, head or changed architecture).
        """
        stored = _plain(dict(state.get("config", {})))
        if stored != self.config:
            diff = sorted(k for k in set(stored) | set(self.config) if stored.get(k) != self.config.get(k))
            raise ValueError(
                f"checkpoint model config differs from the model being trained in {diff}: "
                f"checkpoint {{{', '.join(f'{k}={stored.get(k)!r}' for k in diff)}}} vs "
                f"current {{{', '.join(f'{k}={self.config.get(k)!r}' for k in diff)}}}."
            )


def _plain(value: Any) -> Any:
    """JSON-like copy (tuples -> lists) so configs compare equal after a checkpoint round trip."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class NoCValidationHandler:
    """NoC validation on a few held-out items every ``interval`` epochs (SPEC section 5), logged.

    Uses :func:`monai_adaptiveclick.engines.evaluate_noc` with a :class:`monai_adaptiveclick.inference.Predictor`
    wrapping the model being trained; zoom-in and flip are off by default for speed. Results go to
    ``engine.state.metrics`` (``noc85``, ``noc90``, ``miou@1``, ``miou@5`` ...), the console and TensorBoard.
    """

    def __init__(
        self,
        items: Sequence[Mapping[str, Any]],
        interval: int = 1,
        max_clicks: int = 10,
        zoom_in: bool = False,
        flip: bool = False,
        summary_writer: Any | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}.")
        self.items = usable_items(items)
        if not self.items:
            raise ValueError("validation items have zero usable objects.")
        self.interval, self.max_clicks, self.zoom_in, self.flip = interval, max_clicks, zoom_in, flip
        self.summary_writer, self.device = summary_writer, device
        self.results: list[dict[str, float]] = []

    def attach(self, engine: Engine) -> None:
        """Run after every ``interval``-th epoch and after the last one."""
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        epoch, last = engine.state.epoch, engine.state.epoch == engine.state.max_epochs
        if epoch % self.interval and not last:
            return
        metrics = self.evaluate(engine.network, self.device or getattr(engine, "device", "cpu"))
        engine.state.metrics.update(metrics)
        self.results.append({"epoch": epoch, **metrics})
        logger.info("validation epoch %d: %s", epoch, ", ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
        if self.summary_writer is not None:
            for key, value in metrics.items():
                self.summary_writer.add_scalar(f"val/{key}", value, epoch)

    def evaluate(self, model: torch.nn.Module, device: str | torch.device) -> dict[str, float]:
        """NoC85 / NoC90 / mIoU@k of ``model`` on the validation items."""
        from monai_adaptiveclick.engines.evaluation import evaluate_noc
        from monai_adaptiveclick.inference import Predictor

        module = _unwrap(model)
        was_training = module.training
        module.eval()
        try:
            result = evaluate_noc(
                Predictor(module, device=str(device)),
                self.items,
                max_clicks=self.max_clicks,
                zoom_in=self.zoom_in,
                flip=self.flip,
                progress=False,
            )
        finally:
            module.train(was_training)
        metrics = {f"noc{round(t * 100)}": float(v) for t, v in result.noc.items()}
        for k in sorted({1, 3, 5, self.max_clicks}):
            if k <= len(result.miou_at_k):
                metrics[f"miou@{k}"] = float(result.miou_at_k[k - 1])
        return metrics


class HistoryRecorder:
    """Per-epoch history (mean loss, learning rate, seconds, validation metrics) for :func:`run_training`."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.history: list[dict[str, float]] = []
        self._losses: list[float] = []
        self._start = time.perf_counter()

    def attach(self, engine: Engine) -> None:
        """Record every iteration's loss; summarise at every epoch end (after the other epoch handlers)."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _epoch_started(self, engine: Engine) -> None:
        self._losses, self._start = [], time.perf_counter()

    def _iteration(self, engine: Engine) -> None:
        self._losses.append(float(engine.state.output[CommonKeys.LOSS]))

    def _epoch_completed(self, engine: Engine) -> None:
        record = {
            "epoch": engine.state.epoch,
            "iteration": engine.state.iteration,
            "loss": float(np.mean(self._losses)) if self._losses else math.nan,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "seconds": time.perf_counter() - self._start,
        }
        record.update({k: float(v) for k, v in engine.state.metrics.items() if isinstance(v, (int, float))})
        self.history.append(record)


def find_last_checkpoint(directory: str | Path) -> Path | None:
    """The newest full-state checkpoint (``checkpoint_*.pt`` written by ``CheckpointSaver``) in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    candidates = [p for p in directory.iterdir() if _CKPT_PATTERN.match(p.name)]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p.stat().st_mtime_ns, int(_CKPT_PATTERN.match(p.name).group(1))))


def require_last_checkpoint(directory: str | Path) -> str:
    """:func:`find_last_checkpoint` for ``resume=True``: raises when there is nothing to resume from.

    Raises:
        FileNotFoundError: ``directory`` holds no ``checkpoint_*.pt`` file.
    """
    found = find_last_checkpoint(directory)
    if found is None:
        raise FileNotFoundError(
            f"resume requested but {str(directory)!r} holds no {CHECKPOINT_PREFIX}_epoch=*.pt / "
            f"{CHECKPOINT_PREFIX}_final_iteration=*.pt checkpoint."
        )
    return str(found)


# ----------------------------------------------------------------------------------------------------------------
# trainer factory and Python API
# ----------------------------------------------------------------------------------------------------------------
def create_trainer(
    model: torch.nn.Module,
    train_loader: DataLoader,
    *,
    epochs: int = 10,
    lr: float = 5e-5,
    lr_milestones: Sequence[int] | None = None,
    head: str = "camd",
    loss: str = "afl",
    loss_kwargs: Mapping[str, Any] | None = None,
    max_extra_clicks: int = 3,
    device: str | torch.device = "cpu",
    output_dir: str | Path | None = None,
    val_items: Sequence[Mapping[str, Any]] | None = None,
    val_interval: int = 1,
    val_max_clicks: int = 10,
    resume_from: str | Path | None = None,
    checkpoint_interval: int = 1,
    seed: int = 0,
    progress: bool = True,
    is_main_process: bool = True,
    grad_clip: float | None = 1.0,
    iteration: ClickSimulationIteration | None = None,
) -> SupervisedTrainer:
    """Build the click-simulation ``SupervisedTrainer`` with optimizer, schedule, logging and checkpoints.

    Args:
        model: the (possibly DDP-wrapped) model on ``device``.
        train_loader: yields batches of :func:`create_train_dataset` samples.
        epochs: total epochs; ``lr_milestones`` defaults to ``[round(2/3 * epochs)]`` (paper: 40 of 60).
        head, loss: select the criterion with :func:`monai_adaptiveclick.losses.build_criterion`.
        loss_kwargs: constructor arguments of the mask loss (``mask_loss_kwargs`` of the criterion), e.g.
            ``{"agr": False}`` for AFL with ADA only (paper Table XI).
        output_dir: where checkpoints and TensorBoard logs go (``None``: no checkpoints, no TensorBoard).
        resume_from: a full-state checkpoint to restore (model, optimizer, scheduler, epoch, iteration) at start.
        is_main_process: only the main process writes checkpoints, TensorBoard and runs validation.
        iteration: a ready :class:`ClickSimulationIteration` (default: built from ``max_extra_clicks``, ``grad_clip``
            and ``seed``).

    Returns:
        the trainer; ``trainer.history_recorder`` / ``trainer.validation`` hold the recorders.
    """
    from monai_adaptiveclick.losses import build_criterion

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}.")
    device = torch.device(device)
    loss_options = {"mask_loss_kwargs": dict(loss_kwargs)} if loss_kwargs else {}
    criterion = build_criterion(head, mask_loss=loss, **loss_options) if loss else build_criterion(head, **loss_options)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=0.0)
    milestones = list(lr_milestones) if lr_milestones is not None else [max(1, round(epochs * 2 / 3))]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if iteration is None:
        iteration = ClickSimulationIteration(max_extra_clicks=max_extra_clicks, grad_clip=grad_clip, seed=seed)
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=epochs,
        train_data_loader=train_loader,
        network=model,
        optimizer=optimizer,
        loss_function=criterion,
        iteration_update=iteration,
        decollate=False,
    )
    trainer.click_iteration = iteration
    trainer.lr_scheduler = scheduler
    LrScheduleHandler(scheduler, print_lr=False, epoch_level=True).attach(trainer)
    recorder = HistoryRecorder(optimizer)
    trainer.history_recorder = recorder
    trainer.validation = None
    writer = None
    if is_main_process:
        # with a progress bar the per-iteration loss is on the bar: log epochs only, so the console stays readable
        StatsHandler(
            name="monai_adaptiveclick.train",
            tag_name="train_loss",
            output_transform=_loss_of,
            iteration_log=not progress,
        ).attach(trainer)
        if output_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))
            TensorBoardStatsHandler(summary_writer=writer, tag_name="train_loss", output_transform=_loss_of).attach(
                trainer
            )
        if val_items:
            trainer.validation = NoCValidationHandler(
                val_items, interval=val_interval, max_clicks=val_max_clicks, summary_writer=writer, device=device
            )
            trainer.validation.attach(trainer)
    recorder.attach(trainer)
    if output_dir is not None and is_main_process:
        save_dict = {
            "model": _unwrap(model),
            "optimizer": optimizer,
            "lr_scheduler": scheduler,
            "trainer": trainer,
            "model_config": ModelConfigRecord(model),
        }
        CheckpointSaver(
            save_dir=str(output_dir),
            save_dict=save_dict,
            file_prefix="",
            save_final=True,
            final_filename=None,
            epoch_level=True,
            save_interval=checkpoint_interval,
            n_saved=2,
        ).attach(trainer)
    if resume_from is not None:
        load_dict = {
            "model_config": ModelConfigRecord(model),
            "model": _unwrap(model),
            "optimizer": optimizer,
            "lr_scheduler": scheduler,
            "trainer": trainer,
        }
        CheckpointLoader(load_path=str(resume_from), load_dict=load_dict, map_location=device).attach(trainer)
    if progress and is_main_process:
        from ignite.handlers import ProgressBar

        ProgressBar(persist=False).attach(trainer, output_transform=lambda out: {"loss": out[CommonKeys.LOSS]})
    if writer is not None:
        trainer.add_event_handler(Events.COMPLETED, lambda _: writer.flush())
    return trainer


def save_deployable_model(model: torch.nn.Module, path: str | Path, **extra: Any) -> Path:
    """Write a final model file usable by every consumer of this project.

    The file is :func:`monai_adaptiveclick.networks.save_model`'s (``config`` + ``state_dict``: loadable with
    ``networks.load_model`` / ``Predictor.from_checkpoint``) plus a ``"model"`` entry holding the state dict of
    :class:`~monai_adaptiveclick.networks.AdaptiveClickExportWrapper` around the model, the layout that
    ``python -m monai.bundle ckpt_export network_def --key_in_ckpt model`` and MONAI Label's bundle tasks load into the
    bundle's ``network_def``. Tensors are shared, so the file is not larger.

    Args:
        model: the trained model (DDP wrappers are unwrapped).
        path: output file.
        extra: plain data stored beside (see ``save_model``).
    """
    from monai_adaptiveclick.networks import AdaptiveClickExportWrapper, save_model

    module = _unwrap(model)
    path = save_model(module, path, **extra)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["model"] = AdaptiveClickExportWrapper(module).state_dict()
    torch.save(payload, path)
    return Path(path)


def _check_checkpoint_config(path: Path, model: torch.nn.Module) -> None:
    """Raise ``ValueError`` before training if a full-state checkpoint holds another model config."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "model_config" not in state:
        raise ValueError(f"{path} is not a full-state training checkpoint (no 'model_config' entry).")
    ModelConfigRecord(model).load_state_dict(state["model_config"])


def run_training(
    train_items: Sequence[Mapping[str, Any]],
    output_dir: str | Path,
    *,
    preset: str = "small_cpu",
    in_channels: int = 3,
    head: str = "camd",
    loss: str = "afl",
    loss_kwargs: Mapping[str, Any] | None = None,
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 5e-5,
    max_extra_clicks: int = 3,
    val_items: Sequence[Mapping[str, Any]] | None = None,
    val_interval: int = 1,
    init_checkpoint: str | Path | None = None,
    pretrained_backbone: str | Path | None = None,
    resume: bool = False,
    device: str = "cpu",
    num_workers: int = 0,
    seed: int = 0,
    progress: bool = True,
    max_steps: int | None = None,
    lr_milestones: Sequence[int] | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    max_seconds: float | None = None,
) -> dict[str, Any]:
    """Train an AdaptiveClick model with click simulation; the Python API behind the CLI, bundle and MONAI Label.

    Args:
        train_items: dataset items (contract: ``image`` [C, H, W], ``label`` [1, H, W], ...).
        output_dir: receives ``checkpoint_*.pt`` (full state), ``tensorboard/`` and the final ``model.pt``.
        preset, in_channels, head: :func:`monai_adaptiveclick.networks.create_model` arguments.
        loss: mask loss name of the criterion (``"afl"`` = adaptive focal loss).
        loss_kwargs: constructor arguments of that mask loss (e.g. ``{"ada": False}``: AFL with AGR only).
        epochs, batch_size, lr, max_extra_clicks: the SPEC section 4 recipe (lr x0.1 at 2/3 of the epochs).
        val_items: held-out items for NoC validation every ``val_interval`` epochs (zoom-in / flip off).
        init_checkpoint: a model file (``networks.save_model``) to start from; must hold the same preset / config.
        pretrained_backbone: a local MAE / timm ViT state dict loaded into the backbone before training
            (``networks.load_pretrained_backbone``; SPEC section 4: the paper starts from MAE weights). Not
            together with ``init_checkpoint``; AdaptiveClick heads only (the DeepGrow U-Net has no ViT).
        resume: continue from the newest full-state checkpoint in ``output_dir`` (epoch, iteration, optimizer and
            schedule included).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        max_steps: stop after this many iterations in total (a checkpoint is still written), e.g. for time budgets.
        model_overrides: extra keyword arguments of ``create_model``.
        max_seconds: stop after the iteration that exceeds this wall time (a checkpoint is still written).

    Returns:
        ``{"checkpoint": path of the final model file (loadable by Predictor.from_checkpoint), "history": [...],
        "last_state": path of the last full-state checkpoint, "validation": [...], "iterations": int}``.

    Raises:
        ValueError: zero usable objects, bad arguments, a checkpoint of another preset / architecture.
        FileNotFoundError: ``init_checkpoint`` / ``pretrained_backbone`` missing, or ``resume=True`` with no
            checkpoint in ``output_dir``.
    """
    from monai_adaptiveclick.networks import create_model, load_model, load_pretrained_backbone

    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}.")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0 or None, got {max_seconds}.")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}.")
    items = usable_items(train_items)
    if not items:
        raise ValueError("the training set has zero usable objects (no item with a non-empty label).")
    output_dir = Path(output_dir)
    resume_from = None
    if resume:
        resume_from = find_last_checkpoint(output_dir)
        if resume_from is None:
            raise FileNotFoundError(f"resume=True but {output_dir} holds no {CHECKPOINT_PREFIX}_*.pt checkpoint.")
    if init_checkpoint is not None and not Path(init_checkpoint).is_file():
        raise FileNotFoundError(f"init_checkpoint {str(init_checkpoint)!r} does not exist.")
    if pretrained_backbone is not None:
        if init_checkpoint is not None:
            raise ValueError("give init_checkpoint or pretrained_backbone, not both (the checkpoint holds a backbone).")
        if head == "deepgrow_unet":
            raise ValueError(
                "pretrained_backbone needs an AdaptiveClick head (camd, mask_fixed); deepgrow_unet has no ViT."
            )
        if not Path(pretrained_backbone).is_file():
            raise FileNotFoundError(f"pretrained_backbone {str(pretrained_backbone)!r} does not exist.")

    torch.manual_seed(seed)
    np.random.seed(seed)
    model = create_model(preset, in_channels=in_channels, head=head, **dict(model_overrides or {}))
    if init_checkpoint is not None:
        initial = load_model(init_checkpoint, map_location="cpu")
        ModelConfigRecord(model).load_state_dict(ModelConfigRecord(initial).state_dict())
        model.load_state_dict(initial.state_dict())
    if pretrained_backbone is not None and resume_from is None:
        load_pretrained_backbone(model, pretrained_backbone)
    if resume_from is not None:
        _check_checkpoint_config(resume_from, model)
    model = model.to(device)
    output_dir.mkdir(parents=True, exist_ok=True)

    dataset = create_train_dataset(items, image_size=model.image_size, in_channels=in_channels, seed=seed)
    loader = create_train_loader(dataset, batch_size=batch_size, num_workers=num_workers)
    trainer = create_trainer(
        model,
        loader,
        epochs=epochs,
        lr=lr,
        lr_milestones=lr_milestones,
        head=head,
        loss=loss,
        loss_kwargs=loss_kwargs,
        max_extra_clicks=max_extra_clicks,
        device=device,
        output_dir=output_dir,
        val_items=val_items,
        val_interval=val_interval,
        resume_from=resume_from,
        seed=seed,
        progress=progress,
    )
    if max_steps is not None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED(once=max_steps), lambda engine: engine.terminate())
    if max_seconds is not None:
        deadline = time.perf_counter() + max_seconds

        def _stop_at_deadline(engine: Engine) -> None:
            if time.perf_counter() >= deadline:
                engine.terminate()

        trainer.add_event_handler(Events.ITERATION_COMPLETED, _stop_at_deadline)
    trainer.run()

    final_path = output_dir / "model.pt"
    save_deployable_model(model, final_path, preset=preset, epochs_trained=int(trainer.state.epoch))
    return {
        "checkpoint": str(final_path),
        "history": trainer.history_recorder.history,
        "validation": trainer.validation.results if trainer.validation is not None else [],
        "last_state": str(find_last_checkpoint(output_dir)) if find_last_checkpoint(output_dir) else None,
        "iterations": int(trainer.state.iteration),
    }
