# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``python -m monai_adaptiveclick demo``: the shipped starter beside the baselines, a fine-tune, a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import UsageError, show_progress

__all__ = ["add_demo_parser"]


def add_demo_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand (train + evaluate on the embedded sample, with a report)."""
    parser = subparsers.add_parser(
        "demo",
        help="The shipped starter model beside classical baselines, then fine-tuned on the sample; writes a report.",
        description=(
            "The README's main job: evaluates the shipped starter model and the classical baselines (random walker, "
            "watershed) on the embedded sample's held-out objects (NoC protocol, zoom-in and flip), fine-tunes the "
            "starter on the sample's train split within the time budget, evaluates the fine-tuned model beside "
            "them, and writes report.md, miou_vs_clicks.png and overlays to --output."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output", type=Path, default=Path("outputs/demo"), help="output folder")
    parser.add_argument("--minutes", type=float, default=10.0, help="total wall-time budget in minutes")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda ...)")
    parser.add_argument("--recipe", default="demo", help="fine-tuning recipe (configs/<name>.json)")
    parser.add_argument("--eval-objects", type=int, default=None, help="held-out objects evaluated (default: all)")
    parser.add_argument("--max-clicks", type=int, default=20, help="click budget per object")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the recipe's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_demo)
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    """Handler of ``demo``; returns the exit status."""
    from monai_adaptiveclick.engines.demo import run_demo

    try:
        result = run_demo(
            args.output,
            minutes_budget=args.minutes,
            device=args.device,
            recipe=args.recipe,
            eval_objects=args.eval_objects,
            max_clicks=args.max_clicks,
            progress=show_progress(args.quiet),
            seed=args.seed,
        )
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from err
    print(f"demo report: {result['report']}")
    return 0
