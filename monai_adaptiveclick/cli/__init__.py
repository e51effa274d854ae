# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Command line: ``python -m monai_adaptiveclick <command>`` (evaluate, train, demo, serve-sample, convert,
segment).

One module per subcommand, each with an ``add_<command>_parser(subparsers)`` that binds its handler; more
subcommands plug in the same way. User errors (a missing data folder or checkpoint, an unknown dataset or recipe,
inconsistent options, a checkpoint that does not load) print one ``error:`` line to stderr and exit with status 2,
without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .common import UsageError
from .convert import add_convert_parser
from .demo import add_demo_parser
from .evaluate import add_evaluate_parser
from .evaluate_volumes import add_evaluate_volumes_parser
from .segment import add_segment_parser
from .serve import add_serve_sample_parser, serve_sample_command
from .train import add_train_parser

__all__ = ["UsageError", "build_parser", "main", "serve_sample_command"]


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m monai_adaptiveclick`` parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_adaptiveclick",
        description=(
            "AdaptiveClick interactive segmentation for MONAI: demo, training, evaluation, sample server, "
            "checkpoint conversion."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_evaluate_parser(subparsers)
    add_evaluate_volumes_parser(subparsers)
    add_train_parser(subparsers)
    add_demo_parser(subparsers)
    add_serve_sample_parser(subparsers)
    add_convert_parser(subparsers)
    add_segment_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user errors, reported without a traceback)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, FileNotFoundError, NotADirectoryError) as err:
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"error: {message}", file=sys.stderr)
        return 2
