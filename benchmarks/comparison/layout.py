# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Where one method / seed keeps its files in the output folder (shared by the runner and the report).

A run is named ``{key}_seed{seed}`` for a learned method and ``{key}`` for a classical one (evaluated once); its
result JSON is ``results/{name}.json``, its final masks ``masks/{name}.npz`` and its trained model
``models/{name}/`` (with the training record ``training.json``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["mask_path", "model_dir", "result_path", "run_name", "training_record_path"]


def run_name(key: str, seed: int | None) -> str:
    """File stem of one run.

    Args:
        key: the method key (``METHODS``).
        seed: the training seed of a learned method; ``None`` for a classical method.

    Returns:
        ``{key}_seed{seed}``, or ``key`` without a seed.
    """
    return f"{key}_seed{seed}" if seed is not None else key


def result_path(output: Path, name: str) -> Path:
    """The result JSON (per-object records, summary, settings) of the run ``name``."""
    return output / "results" / f"{name}.json"


def mask_path(output: Path, name: str) -> Path:
    """The ``.npz`` of the final mask of every evaluated object of the run ``name`` (for the figures)."""
    return output / "masks" / f"{name}.npz"


def model_dir(output: Path, name: str) -> Path:
    """The training folder (``model.pt``, checkpoints) of the learned run ``name``."""
    return output / "models" / name


def training_record_path(output: Path, name: str) -> Path:
    """The training record of the learned run ``name``, written once its training finished."""
    return model_dir(output, name) / "training.json"
