# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Multi-process training helpers for ``torchrun`` (DDP; nccl on GPU, gloo on CPU).

Used by ``bundle/configs/multi_gpu_train.json``: each process started by ``torchrun --nproc_per_node=N`` calls
:func:`init_distributed` (reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from the environment), wraps the model with
:func:`wrap_ddp` and draws its share of the data through a ``DistributedSampler``.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["init_distributed", "is_main_process", "local_device", "wrap_ddp"]


def local_device() -> torch.device:
    """``cuda:<LOCAL_RANK>`` when CUDA is available, else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def init_distributed(backend: str | None = None) -> torch.device:
    """Initialise the default process group from the ``torchrun`` environment and return this process's device.

    Args:
        backend: ``"nccl"`` / ``"gloo"``; ``None`` picks nccl with CUDA, gloo otherwise.

    Raises:
        RuntimeError: not started by ``torchrun`` (no ``RANK`` / ``WORLD_SIZE`` in the environment).
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError("init_distributed needs the RANK / WORLD_SIZE environment of torchrun (--nproc_per_node).")
    device = local_device()
    if backend is None:
        backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return device


def is_main_process() -> bool:
    """True for rank 0 or when no process group is initialised."""
    return not dist.is_available() or not dist.is_initialized() or dist.get_rank() == 0


def wrap_ddp(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """Move ``model`` to ``device`` and wrap it in ``DistributedDataParallel`` (device_ids only on CUDA).

    ``find_unused_parameters=True`` because the click head of the first decoder layers and the mask-fixed branch
    may not take part in every loss term.
    """
    device = torch.device(device)
    model = model.to(device)
    device_ids = [device] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)
