# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The one training wiring: :func:`create_trainer` assembles MONAI's ``SupervisedTrainer``, :func:`run_training` runs
it. The CLI (``train``, ``demo``), the bundle (``train.json`` calls :func:`train_from_settings`), the benchmarks and
the MONAI Label app's train task all come through here, with :class:`~.settings.TrainingSettings` from the recipes.

The trainer: Adam, ``MultiStepLR`` (x ``lr_gamma`` at the milestones; paper: epoch 40 of 60), the click-simulation
``iteration_update`` (:class:`~.interaction.ClickSimulation`) around ``SupervisedTrainer._iteration``, AMP on CUDA,
gradient clipping and a non-finite-loss check on ``IterationEvents``, console / TensorBoard logging, NoC
validation, full-state checkpoints (model, optimizer, scheduler, trainer state, model config) through MONAI's
``CheckpointSaver`` / ``CheckpointLoader``, and an early stop after ``max_steps`` iterations or ``max_seconds``.
Under ``torchrun`` (``distributed=True``) the model is wrapped in DDP, each process reads its share through a
``DistributedSampler`` and only rank 0 logs, validates and writes files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data import DistributedSampler
from monai.engines import SupervisedTrainer
from monai.handlers import CheckpointLoader, LrScheduleHandler, StatsHandler, TensorBoardStatsHandler
from monai.utils import CommonKeys

from monai_adaptiveclick.losses import build_criterion
from monai_adaptiveclick.networks import (
    AdaptiveClickExportWrapper,
    atomic_save,
    create_model,
    get_head,
    load_model,
    load_pretrained,
    load_pretrained_backbone,
    pretrained_name,
    save_model,
)

from . import distributed
from .checkpoints import CHECKPOINT_PREFIX, TrainingCheckpoints, find_last_checkpoint, list_checkpoints
from .handlers import FiniteLossCheck, GradientClipping, HistoryRecorder, ModelConfigRecord, NoCValidationHandler
from .interaction import ClickSimulation, TrainingLoss, unwrap_model
from .settings import TrainingSettings
from .training_data import create_train_dataset, create_train_loader, load_training_items, usable_items

__all__ = ["create_trainer", "run_training", "save_deployable_model", "train_from_settings"]

logger = logging.getLogger(__name__)


def _loss_of(output: Mapping[str, Any]) -> float:
    """The scalar loss of an iteration output, for the stats handlers."""
    loss = output[CommonKeys.LOSS]
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


def create_trainer(
    model: torch.nn.Module,
    train_loader: torch.utils.data.DataLoader,
    settings: TrainingSettings,
    *,
    device: str | torch.device = "cpu",
    output_dir: str | Path | None = None,
    log_dir: str | Path | None = None,
    val_items: Sequence[Mapping[str, Any]] | None = None,
    resume_from: str | Path | None = None,
    progress: bool = True,
    is_main_process: bool = True,
) -> SupervisedTrainer:
    """Build the click-simulation ``SupervisedTrainer`` (module docstring) for ``settings``.

    Args:
        model: the (possibly DDP-wrapped) model on ``device``.
        train_loader: yields batches of :func:`~.training_data.create_train_dataset` samples.
        settings: the training settings (optimiser, schedule, clicks, AMP, clipping, checkpoints, validation).
        output_dir: where full-state checkpoints go (``None``: none).
        log_dir: where TensorBoard logs go (default ``output_dir / "tensorboard"``; none without either).
        val_items: held-out items for NoC validation every ``settings.val_interval`` epochs.
        resume_from: a full-state checkpoint to restore at start (model, optimizer, scheduler, epoch, iteration).
        progress: a progress bar with the per-iteration loss (the log gets one line per epoch either way).
        is_main_process: only the main process writes checkpoints and logs and validates.

    Returns:
        the trainer; ``trainer.history_recorder``, ``trainer.validation`` (or ``None``), ``trainer.click_iteration``
        and ``trainer.lr_scheduler`` are attached for callers.
    """
    device = torch.device(device)
    loss_options = {"mask_loss_kwargs": dict(settings.loss_kwargs)} if settings.loss_kwargs else {}
    criterion = build_criterion(settings.head, mask_loss=settings.loss, **loss_options)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=(0.9, 0.999), weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, settings.milestones(), gamma=settings.lr_gamma)
    use_amp = bool(settings.amp) and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    iteration = ClickSimulation(max_extra_clicks=settings.max_extra_clicks, seed=settings.seed)
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=settings.epochs,
        train_data_loader=train_loader,
        network=model,
        optimizer=optimizer,
        loss_function=TrainingLoss(criterion),
        iteration_update=iteration,
        amp=use_amp,
        amp_kwargs={"dtype": amp_dtype} if use_amp else None,
        decollate=False,
    )
    trainer.click_iteration, trainer.lr_scheduler = iteration, scheduler
    FiniteLossCheck().attach(trainer)
    if settings.grad_clip:
        GradientClipping(settings.grad_clip).attach(trainer)
    LrScheduleHandler(scheduler, print_lr=False, epoch_level=True).attach(trainer)
    trainer.history_recorder = HistoryRecorder(optimizer)
    trainer.validation = None
    writer = None
    if is_main_process:
        # per-iteration losses go to the progress bar (on a terminal); the log gets one line per epoch
        StatsHandler(
            name="monai_adaptiveclick.train", tag_name="train_loss", output_transform=_loss_of, iteration_log=False
        ).attach(trainer)
        if log_dir is not None or output_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(log_dir if log_dir is not None else Path(output_dir) / "tensorboard"))
            TensorBoardStatsHandler(summary_writer=writer, tag_name="train_loss", output_transform=_loss_of).attach(
                trainer
            )
            trainer.add_event_handler(Events.COMPLETED, lambda _: writer.flush())
        if val_items:
            trainer.validation = NoCValidationHandler(
                val_items,
                interval=settings.val_interval,
                max_clicks=settings.val_max_clicks,
                summary_writer=writer,
                device=device,
            )
            trainer.validation.attach(trainer)
    trainer.history_recorder.attach(trainer)
    state = {
        "model_config": ModelConfigRecord(model),
        "model": unwrap_model(model),
        "optimizer": optimizer,
        "lr_scheduler": scheduler,
        "trainer": trainer,
    }
    if output_dir is not None:
        # built on every process: ignite's constructor syncs the process group; only the main process writes
        checkpoints = TrainingCheckpoints(output_dir, state, settings.checkpoint_interval, settings.checkpoints_kept)
        if is_main_process:
            checkpoints.attach(trainer)
    if resume_from is not None:
        CheckpointLoader(load_path=str(resume_from), load_dict=state, map_location=device).attach(trainer)
    if progress and is_main_process:
        from ignite.handlers import ProgressBar

        ProgressBar(persist=False).attach(trainer, output_transform=lambda out: {"loss": _loss_of(out)})
    _attach_limits(trainer, settings.max_steps, settings.max_seconds)
    return trainer


def _attach_limits(trainer: Engine, max_steps: int | None, max_seconds: float | None) -> None:
    """Terminate after ``max_steps`` iterations in total or the first iteration past ``max_seconds``."""
    if max_steps is not None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED(once=int(max_steps)), lambda engine: engine.terminate())
    if max_seconds is not None:
        deadline: dict[str, float] = {}

        def start_clock(_: Engine) -> None:
            deadline["at"] = time.perf_counter() + float(max_seconds)

        def stop_at_deadline(engine: Engine) -> None:
            if time.perf_counter() >= deadline["at"]:
                engine.terminate()

        trainer.add_event_handler(Events.STARTED, start_clock)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, stop_at_deadline)


def save_deployable_model(model: torch.nn.Module, path: str | Path, **extra: Any) -> Path:
    """Write a final model file usable by every consumer of this project.

    The file is :func:`monai_adaptiveclick.networks.save_model`'s (``config`` + ``state_dict``: loadable with
    ``networks.load_model`` / ``Predictor.from_checkpoint``) plus a ``"model"`` entry holding the state dict of
    :class:`~monai_adaptiveclick.networks.AdaptiveClickExportWrapper` around the model, the layout that
    ``python -m monai.bundle ckpt_export network_def --key_in_ckpt model`` loads into the bundle's ``network_def``.
    Tensors are shared, so the file is not larger.
    """
    module = unwrap_model(model)
    path = save_model(module, path, **extra)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["model"] = AdaptiveClickExportWrapper(module).state_dict()
    return atomic_save(payload, path)


def _check_checkpoint_config(path: Path, model: torch.nn.Module) -> None:
    """Raise ``ValueError`` before training if a full-state checkpoint holds another model config."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "model_config" not in state:
        raise ValueError(f"{path} is not a full-state training checkpoint (no 'model_config' entry).")
    ModelConfigRecord(model).load_state_dict(state["model_config"])


def _build_model(settings: TrainingSettings, resume_from: Path | None) -> torch.nn.Module:
    """The model to train: the fine-tuning checkpoint's (any format ``networks.load_model`` reads, or a shipped
    model ``pretrained:NAME``), else the settings' architecture, optionally with an MAE backbone."""
    shipped = pretrained_name(settings.init_checkpoint)
    if settings.init_checkpoint is not None and shipped is None and not Path(settings.init_checkpoint).is_file():
        raise FileNotFoundError(f"init_checkpoint {str(settings.init_checkpoint)!r} does not exist.")
    if settings.pretrained_backbone is not None:
        if not get_head(settings.head).vit_backbone:
            raise ValueError(f"pretrained_backbone needs a head with a ViT backbone; {settings.head} has none.")
        if not Path(settings.pretrained_backbone).is_file():
            raise FileNotFoundError(f"pretrained_backbone {str(settings.pretrained_backbone)!r} does not exist.")
    if settings.init_checkpoint is not None:
        # the file defines the architecture (an authors' checkpoint of any size included); what the settings ask
        # for explicitly (channels, head, model_overrides) must agree with it
        if shipped is not None:
            model = load_pretrained(shipped)
        else:
            model = load_model(settings.init_checkpoint, map_location="cpu")
        requested = {"in_channels": settings.in_channels, "head": settings.head, **dict(settings.model_overrides)}
        stored = ModelConfigRecord(model).config
        differs = sorted(k for k, v in requested.items() if ModelConfigRecord.plain(v) != stored.get(k))
        if differs:
            raise ValueError(
                f"init_checkpoint model config differs from the requested settings in {differs}: checkpoint "
                f"{ {k: stored.get(k) for k in differs} } vs requested { {k: requested[k] for k in differs} }."
            )
    else:
        model = create_model(
            settings.preset, in_channels=settings.in_channels, head=settings.head, **dict(settings.model_overrides)
        )
    if settings.pretrained_backbone is not None and resume_from is None:
        load_pretrained_backbone(model, settings.pretrained_backbone)
    if resume_from is not None:
        _check_checkpoint_config(resume_from, model)
    return model


def run_training(
    train_items: Sequence[Mapping[str, Any]],
    output_dir: str | Path,
    settings: TrainingSettings | None = None,
    *,
    val_items: Sequence[Mapping[str, Any]] | None = None,
    resume: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
    log_dir: str | Path | None = None,
    distributed_run: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Train with click simulation; writes full-state checkpoints and the final ``model.pt`` into ``output_dir``.

    Args:
        train_items: dataset items (contract: ``image`` [C, H, W], ``label`` [1, H, W], optional ``ignore``).
        output_dir: receives ``checkpoint_*.pt`` (full state), ``tensorboard/`` (unless ``log_dir``) and
            ``model.pt`` (loadable by ``Predictor.from_checkpoint``).
        settings: the training settings; ``None`` = ``TrainingSettings.from_recipe()`` (``configs/``).
        val_items: held-out items for NoC validation (zoom-in / flip off).
        resume: continue from the newest full-state checkpoint in ``output_dir`` (epoch, iteration, optimizer and
            schedule included).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ... (ignored with ``distributed_run``: each process takes its
            local device).
        progress: progress bar.
        log_dir: TensorBoard folder (default ``output_dir / "tensorboard"``).
        distributed_run: this process is one of ``torchrun``'s (DDP, ``DistributedSampler``, rank 0 writes).
        overrides: settings replacing those of ``settings`` (e.g. ``epochs=1``), validated.

    Returns:
        ``{"checkpoint": final model file, "history": [...], "validation": [...], "last_state": last full-state
        checkpoint, "iterations": int, "model": the trained module}``.

    Raises:
        ValueError: zero usable objects, bad settings, a checkpoint of another preset / architecture.
        FileNotFoundError: ``init_checkpoint`` / ``pretrained_backbone`` missing, or ``resume=True`` with no
            checkpoint in ``output_dir``.
    """
    settings = TrainingSettings.from_recipe() if settings is None else settings
    settings = settings.replace(**overrides) if overrides else settings
    items = usable_items(train_items, settings.min_object_area)
    if not items:
        raise ValueError("the training set has zero usable objects (no item with a large enough non-empty label).")
    output_dir = Path(output_dir)
    resume_from = find_last_checkpoint(output_dir) if resume else None
    if resume and resume_from is None:
        found = [p.name for p in list_checkpoints(output_dir)]
        raise FileNotFoundError(
            f"resume=True but {output_dir} holds no loadable {CHECKPOINT_PREFIX}_*.pt checkpoint"
            + (f" (unreadable: {found})." if found else ".")
        )
    if resume_from is not None:
        logger.info("resuming from %s", resume_from)
    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    model = _build_model(settings, resume_from)
    main_process = True
    sampler = None
    dataset = create_train_dataset(items, model.image_size, settings.in_channels, settings)
    if distributed_run:
        device = distributed.init_distributed()
        main_process = distributed.is_main_process()
        sampler = DistributedSampler(dataset, even_divisible=True, shuffle=True)
        network = distributed.wrap_ddp(model, device)
    else:
        network = model.to(device)
    output_dir.mkdir(parents=True, exist_ok=True)
    loader = create_train_loader(dataset, settings.batch_size, settings.num_workers, sampler=sampler)
    trainer = create_trainer(
        network,
        loader,
        settings,
        device=device,
        output_dir=output_dir,
        log_dir=log_dir,
        val_items=val_items,
        resume_from=resume_from,
        progress=progress,
        is_main_process=main_process,
    )
    trainer.run()
    final_path = output_dir / "model.pt"
    if main_process:
        save_deployable_model(model, final_path, preset=settings.preset, epochs_trained=int(trainer.state.epoch))
    last_state = find_last_checkpoint(output_dir)
    return {
        "checkpoint": str(final_path),
        "history": trainer.history_recorder.history,
        "validation": trainer.validation.results if trainer.validation is not None else [],
        "last_state": str(last_state) if last_state else None,
        "iterations": int(trainer.state.iteration),
        "model": model,
    }


def train_from_settings(
    settings: TrainingSettings,
    output_dir: str | Path,
    *,
    resume: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
    log_dir: str | Path | None = None,
    distributed_run: bool = False,
) -> dict[str, Any]:
    """Load the training (and validation) items the settings name, then :func:`run_training` (bundle and CLI).

    Raises:
        FileNotFoundError: a dataset folder that does not exist (before any training).
        ValueError: a dataset without usable objects.
    """
    items = load_training_items(settings.dataset, settings.dataset_dir, settings.split)
    if settings.max_train_items is not None:
        items = items[: settings.max_train_items]
    val_items = None
    if settings.val_dataset and settings.val_max_items > 0:
        val_items = load_training_items(settings.val_dataset, settings.val_dataset_dir, settings.val_split)
        val_items = val_items[: settings.val_max_items]
    return run_training(
        items,
        output_dir,
        settings,
        val_items=val_items,
        resume=resume,
        device=device,
        progress=progress,
        log_dir=log_dir,
        distributed_run=distributed_run,
    )
