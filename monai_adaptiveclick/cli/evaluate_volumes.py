# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``python -m monai_adaptiveclick evaluate-volumes``: clicks per 3-D structure with propagation vs. slice by slice
(``engines.evaluate_volumes``), on the embedded sample's volumes or a folder of (image, label) pairs."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .common import UsageError, checkpoint_predictor, method_predictor, show_progress

__all__ = ["add_evaluate_volumes_parser", "volume_pairs"]

BASELINE_NAMES = ("watershed", "random_walker")


def volume_pairs(dataset_dir: Path) -> list[tuple[Path, Path]]:
    """(image, label) pairs of a Medical Segmentation Decathlon style folder: ``imagesTr/X`` with ``labelsTr/X``.

    Raises:
        UsageError: the folder, ``imagesTr`` or a matching label is missing, or no image is found.
    """
    images_dir, labels_dir = Path(dataset_dir) / "imagesTr", Path(dataset_dir) / "labelsTr"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise UsageError(f"--dataset-dir {str(dataset_dir)!r} must hold imagesTr/ and labelsTr/ folders.")
    images = sorted(p for p in images_dir.iterdir() if p.name.endswith((".nii", ".nii.gz")) and p.is_file())
    if not images:
        raise UsageError(f"no .nii / .nii.gz image in {str(images_dir)!r}.")
    pairs = []
    for image in images:
        label = labels_dir / image.name
        if not label.is_file():
            raise UsageError(f"image {str(image)!r} has no label {str(label)!r}.")
        pairs.append((image, label))
    return pairs


def add_evaluate_volumes_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate-volumes`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate-volumes",
        help="Clicks per 3-D structure: propagation from clicked slices vs. slice-by-slice annotation.",
        description=(
            "Every label value of every volume is one object (its largest connected component). The simulated "
            "annotator clicks (SPEC 5 clicker) on the slice with the largest 3-D error, the volume is propagated "
            "from all clicks, up to --max-clicks; the reference annotates every slice of the object on its own. "
            "Writes table.md, records.json and dice_vs_clicks.png to --output."
        ),
    )
    parser.add_argument(
        "--method",
        action="append",
        choices=BASELINE_NAMES,
        default=None,
        help="classical baseline; repeat for several (default: watershed unless --checkpoint is given)",
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="model file or pretrained:NAME (adds a row)")
    parser.add_argument("--device", default="cpu", help="torch device for a checkpoint")
    parser.add_argument("--max-clicks", type=int, default=10, help="click budget per structure (10)")
    parser.add_argument("--slice-max-clicks", type=int, default=None, help="budget per slice (default --max-clicks)")
    parser.add_argument("--limit", type=int, default=None, help="at most N objects per volume")
    parser.add_argument(
        "--no-refine-previous",
        action="store_true",
        help="every clicked slice starts from nothing instead of refining the last result (ablation)",
    )
    parser.add_argument(
        "--dataset-dir", type=Path, default=None, help="folder with imagesTr/ and labelsTr/ (default: the sample)"
    )
    parser.add_argument("--output", type=Path, required=True, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_evaluate_volumes)
    return parser


def _predictors(args: argparse.Namespace) -> list[tuple[str, Any]]:
    methods = args.method or ([] if args.checkpoint else ["watershed"])
    predictors = [(name, method_predictor(name)) for name in methods]
    if args.checkpoint is not None:
        predictors.append((args.checkpoint.stem, checkpoint_predictor(args.checkpoint, args.device)))
    return predictors


def _run_evaluate_volumes(args: argparse.Namespace) -> int:
    """Handler of ``evaluate-volumes``; returns the exit status."""
    from monai_adaptiveclick.engines.volume_evaluation import evaluate_volumes, volume_cases
    from monai_adaptiveclick.engines.volume_reporting import format_volume_table, plot_dice_curves

    for option in ("max_clicks", "slice_max_clicks", "limit"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be a positive integer, got {value}.")
    if args.dataset_dir is not None and not args.dataset_dir.is_dir():
        raise UsageError(f"--dataset-dir {str(args.dataset_dir)!r} is not a folder.")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"--output {str(args.output)!r} exists and is not a folder.")
    pairs = None if args.dataset_dir is None else volume_pairs(args.dataset_dir)
    predictors = _predictors(args)
    try:
        cases = volume_cases(pairs, limit=args.limit)
    except ValueError as err:
        raise UsageError(str(err)) from err
    if not cases:
        raise UsageError("no object (non-zero label value) found in the volumes.")
    results, start = [], time.perf_counter()
    for name, predictor in predictors:
        results.append(
            evaluate_volumes(
                predictor,
                cases,
                max_clicks=args.max_clicks,
                slice_max_clicks=args.slice_max_clicks,
                refine_previous=not args.no_refine_previous,
                method=name,
                progress=show_progress(args.quiet),
            )
        )
    args.output.mkdir(parents=True, exist_ok=True)
    table = format_volume_table(results)
    (args.output / "table.md").write_text(table + "\n")
    (args.output / "records.json").write_text(json.dumps([r.to_dict() for r in results], indent=2))
    plot_dice_curves(results, args.output / "dice_vs_clicks.png")
    print(table)
    print(f"{len(cases)} objects, {time.perf_counter() - start:.1f} s; results in {args.output}")
    return 0
