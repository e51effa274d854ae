# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Ignite / MONAI event handlers of the training run, and checkpoint discovery.

* :class:`ModelConfigRecord`: the model's config in full-state checkpoints; a resume with another architecture fails
  when the checkpoint is loaded, before any step;
* :class:`GradientClipping`: clips the gradient norm on ``IterationEvents.BACKWARD_COMPLETED`` (after unscaling
  under AMP), between ``SupervisedTrainer``'s backward and its optimizer step;
* :class:`FiniteLossCheck`: stops a run whose loss is NaN / inf on ``IterationEvents.LOSS_COMPLETED``;
* :class:`NoCValidationHandler`: NoC validation on held-out items every few epochs (SPEC section 5);
* :class:`HistoryRecorder`: per-epoch loss, learning rate, time and validation metrics;
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.engines import IterationEvents, SupervisedTrainer
from monai.utils import CommonKeys

from monai_adaptiveclick.inference import Predictor

from .evaluation import evaluate_noc
from .interaction import unwrap_model
from .training_data import usable_items

__all__ = [
    "FiniteLossCheck",
    "GradientClipping",
    "HistoryRecorder",
    "ModelConfigRecord",
    "NoCValidationHandler",
]

logger = logging.getLogger(__name__)


class GradientClipping:
    """Clip the global gradient norm to ``max_norm`` after every backward pass of a ``SupervisedTrainer``.

    Under AMP the gradients are unscaled first (``GradScaler.unscale_``), so the norm is the true one; the scaler's
    ``step`` then skips the unscaling it has already done.

    Args:
        max_norm: the largest gradient norm (> 0).
    """

    def __init__(self, max_norm: float) -> None:
        if not max_norm > 0:
            raise ValueError(f"max_norm must be > 0, got {max_norm}.")
        self.max_norm = float(max_norm)

    def attach(self, engine: SupervisedTrainer) -> None:
        """Run on ``IterationEvents.BACKWARD_COMPLETED``."""
        engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: SupervisedTrainer) -> None:
        if engine.amp and engine.scaler is not None:
            engine.scaler.unscale_(engine.optimizer)
        torch.nn.utils.clip_grad_norm_(engine.network.parameters(), self.max_norm)


class FiniteLossCheck:
    """Raise ``FloatingPointError`` naming the iteration as soon as the training loss is NaN or infinite."""

    def attach(self, engine: SupervisedTrainer) -> None:
        """Run on ``IterationEvents.LOSS_COMPLETED``."""
        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self)

    def __call__(self, engine: SupervisedTrainer) -> None:
        loss = engine.state.output[CommonKeys.LOSS]
        if not bool(torch.isfinite(loss).all()):
            raise FloatingPointError(f"non-finite training loss {float(loss)} at iteration {engine.state.iteration}.")


class ModelConfigRecord:
    """The model's ``config`` stored in full-state checkpoints; loading a different one raises ``ValueError``.

    Put into the ``save_dict`` of ``CheckpointSaver`` and the ``load_dict`` of ``CheckpointLoader`` so that a
    resume with another preset or a changed architecture fails when the checkpoint is loaded, before any step.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        config = getattr(unwrap_model(model), "config", None)
        if not isinstance(config, Mapping):
            raise ValueError("the model has no `config` dict (models from networks.create_model carry one).")
        self.config = _plain(dict(config))

    @staticmethod
    def plain(value: Any) -> Any:
        """JSON-like copy of a config value (tuples -> lists), as stored in checkpoints."""
        return _plain(value)

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
        module = unwrap_model(model)
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
        loss = engine.state.output[CommonKeys.LOSS]
        self._losses.append(float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss))

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
