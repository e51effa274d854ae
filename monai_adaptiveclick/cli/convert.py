# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``python -m monai_adaptiveclick convert SRC DST``: an authors' AdaptiveClick / SimpleClick v1.0 checkpoint into
this project's format (``networks.convert_checkpoint``), so that later loads are plain ``weights_only`` reads."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import UsageError

__all__ = ["add_convert_parser"]


def add_convert_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``convert`` subcommand."""
    parser = subparsers.add_parser(
        "convert",
        help="Convert an authors' AdaptiveClick / SimpleClick v1.0 checkpoint into this project's format.",
        description=(
            "Read a checkpoint saved by the authors' trainer (opened with a restricted unpickler: no code runs, "
            "easydict need not be installed, CUDA-saved tensors load on the CPU), recognise the family and size, and "
            "write the project's own format (loadable by evaluate --checkpoint, the bundle and the MONAI Label app)."
        ),
    )
    parser.add_argument("source", type=Path, help="the authors' checkpoint (.pth)")
    parser.add_argument("destination", type=Path, help="output file in this project's format (.pt)")
    parser.set_defaults(func=_run_convert)
    return parser


def _run_convert(args: argparse.Namespace) -> int:
    """Handler of ``convert``; returns the exit status."""
    from monai_adaptiveclick.networks import convert_checkpoint

    if not args.source.is_file():
        raise UsageError(f"checkpoint file {str(args.source)!r} does not exist.")
    try:
        report = convert_checkpoint(args.source, args.destination)
    except (ValueError, RuntimeError, OSError) as err:
        raise UsageError(f"cannot convert {str(args.source)!r}: {err}") from err
    print(f"{report['family']} ({report['size']}) written to {report['path']}; ignored {len(report['ignored'])} keys")
    return 0
