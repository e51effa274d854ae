# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``python -m monai_adaptiveclick train``: click-simulation training (SPEC section 4) from a recipe.

The settings are the recipe's (``configs/<recipe>.json`` over ``configs/train_defaults.json``); every flag given
replaces the recipe's value. The run goes through ``engines.train_from_settings``, the wiring the bundle uses too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import UsageError, show_progress

__all__ = ["add_train_parser"]

# flag -> TrainingSettings field; ``None`` (flag not given) keeps the recipe's value
_SETTING_FLAGS = {
    "dataset": (str, "dataset name of monai_adaptiveclick.data.get_dataset"),
    "dataset_dir": (str, "dataset root folder"),
    "split": (str, "split of the embedded sample pack (train, heldout, all)"),
    "preset": (str, "model preset (tiny, small_cpu, vit_b_448, vit_h_448)"),
    "head": (str, "decoder head (monai_adaptiveclick.networks.list_heads(): camd, mask_fixed, deepgrow_unet)"),
    "loss": (str, "mask loss name of monai_adaptiveclick.losses.get_loss"),
    "in_channels": (int, "image channels of the model"),
    "epochs": (int, "training epochs"),
    "batch_size": (int, "batch size"),
    "lr": (float, "Adam learning rate"),
    "max_extra_clicks": (int, "simulated extra clicks per iteration (0..N)"),
    "max_steps": (int, "stop after this many iterations"),
    "synthetic_share": (float, "share of each epoch drawn fresh from the synthetic engine (dataset synthetic), 0..1"),
    "init_checkpoint": (
        str,
        "model file to fine-tune from (pretrained:NAME: a shipped model, e.g. pretrained:starter)",
    ),
    "pretrained_backbone": (str, "local MAE / timm ViT state dict for the backbone"),
    "val_max_items": (int, "held-out objects validated each epoch (0: no validation)"),
    "seed": (int, "random seed"),
}


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="Train AdaptiveClick with iterative click simulation (SPEC section 4) from a recipe.",
        description=(
            "Train with the settings of a recipe (configs/<recipe>.json; flags override it) and write full-state "
            "checkpoints, TensorBoard logs and the final model.pt (usable with `evaluate --checkpoint`)."
        ),
    )
    parser.add_argument("--recipe", default="train_defaults", help="training recipe name or JSON file")
    for name, (kind, text) in _SETTING_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=f"{text} (default: recipe)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    parser.add_argument("--output", type=Path, default=Path("outputs/train"), help="output folder")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1 ...)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_train)
    return parser


def _run_train(args: argparse.Namespace) -> int:
    """Handler of ``train``; returns the exit status."""
    from monai_adaptiveclick.engines import TrainingSettings, train_from_settings
    from monai_adaptiveclick.networks import pretrained_name

    for flag, what in (("dataset_dir", "dataset folder"), ("init_checkpoint", "checkpoint file")):
        value = getattr(args, flag)
        if value is not None and pretrained_name(value) is None and not Path(value).exists():
            raise UsageError(f"{what} {value!r} does not exist.")
    if args.pretrained_backbone is not None and not Path(args.pretrained_backbone).is_file():
        raise UsageError(f"pretrained backbone file {args.pretrained_backbone!r} does not exist.")
    try:
        settings = TrainingSettings.from_recipe(args.recipe, **{name: getattr(args, name) for name in _SETTING_FLAGS})
        result = train_from_settings(
            settings, args.output, resume=args.resume, device=args.device, progress=show_progress(args.quiet)
        )
    except (ValueError, KeyError, TypeError, FileNotFoundError) as err:
        raise UsageError(f"cannot train: {err}") from err
    print(f"model written to {result['checkpoint']}")
    return 0
