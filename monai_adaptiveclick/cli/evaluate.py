# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``python -m monai_adaptiveclick evaluate``: the NoC protocol (SPEC section 5) for baselines, the models shipped
inside the package and checkpoints."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import UsageError, checkpoint_predictor, method_predictor, show_progress

__all__ = ["add_evaluate_parser"]

CHECKPOINT_METHOD = "checkpoint"
BASELINE_NAMES = ("random_walker", "watershed")
"""Names listed in ``--help``; the registry :data:`monai_adaptiveclick.engines.BASELINES` is the authority (imported
only when a command runs, so ``--help`` stays fast)."""
SHIPPED_NAMES = ("starter",)
"""The models shipped inside the package, listed in ``--help``; :func:`monai_adaptiveclick.networks.list_pretrained` is
the authority (a test checks they agree)."""
SAMPLE_DEFAULT_SPLIT = "heldout"
PROTOCOLS = ("default", "simpleclick")
"""Choices of ``--protocol``: :data:`monai_adaptiveclick.engines.tta.PROTOCOLS` (repeated here so that ``--help``
stays fast; a test checks they agree)."""


def _safe_name(text: str) -> str:
    """File-system friendly version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "item"


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="NoC evaluation (SPEC section 5) of baselines, the shipped starter model and/or checkpoints on a dataset.",
        description=(
            "Run the number-of-clicks protocol (SimpleClick v1.0: clicker on the larger error region, up to "
            "--max-clicks clicks, stop at IoU 0.90, zoom-in and flip test-time augmentation) for every method and "
            "write table.md, results_<method>.json, records_<method>.csv, miou_vs_clicks.png and overlays/."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--dataset", default="sample", help="dataset name of monai_adaptiveclick.data.get_dataset (embedded: sample)"
    )
    parser.add_argument("--dataset-dir", type=Path, default=None, help="dataset root folder (default: the dataset's)")
    parser.add_argument(
        "--split",
        default=None,
        help=f"dataset split option (the sample pack: heldout, train or all; default {SAMPLE_DEFAULT_SPLIT})",
    )
    parser.add_argument(
        "--method",
        action="append",
        metavar="METHOD",
        help=f"method to evaluate: {', '.join(BASELINE_NAMES)} (classical baselines), {', '.join(SHIPPED_NAMES)} (the "
        f"model shipped inside the package; nothing is downloaded) or {CHECKPOINT_METHOD} (every --checkpoint); repeat "
        "to compare several side by side (default: random_walker)",
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        type=Path,
        default=[],
        help="AdaptiveClick checkpoint: a model file (monai_adaptiveclick.networks.load_model reads it) or "
        "pretrained:NAME for a model shipped inside the package (pretrained:starter = --method starter); repeatable",
    )
    parser.add_argument("--max-clicks", type=int, default=20, help="click budget per object")
    parser.add_argument("--no-zoom-in", action="store_true", help="disable zoom-in test-time augmentation")
    parser.add_argument("--no-flip", action="store_true", help="disable flip test-time augmentation")
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="default",
        help="zoom-in / flip protocol: default (the project's: aspect kept, box shifted into the image) or "
        "simpleclick (SimpleClick v1.0, which produced the paper's tables: crop stretched with align_corners=True, "
        "box clamped, float click disks, flip averaged on logits; for the authors' checkpoints)",
    )
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N objects")
    parser.add_argument("--output", type=Path, default=Path("outputs/evaluate"), help="output folder")
    parser.add_argument("--overlays", type=int, default=4, help="overlay PNGs written per method (first N objects)")
    parser.add_argument(
        "--device", default="cpu", help="torch device for checkpoints and shipped models (cpu, cuda, cuda:1 ...)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_evaluate)
    return parser


def _split(args: argparse.Namespace) -> str | None:
    """The ``split`` option passed to the dataset (the sample pack defaults to its held-out split)."""
    return SAMPLE_DEFAULT_SPLIT if args.split is None and args.dataset == "sample" else args.split


def _load_items(args: argparse.Namespace) -> Sequence[dict]:
    """Dataset items for ``evaluate`` (``--dataset``, ``--dataset-dir``, ``--split``, ``--limit``)."""
    if args.dataset_dir is not None and not args.dataset_dir.is_dir():
        raise UsageError(f"dataset folder {str(args.dataset_dir)!r} does not exist or is not a folder.")
    from monai_adaptiveclick.data import get_dataset

    split = _split(args)
    options = {} if split is None else {"split": split}
    try:
        items = get_dataset(args.dataset, root=args.dataset_dir, **options)
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"cannot load dataset {args.dataset!r}: {err}") from err
    if args.limit is not None:
        items = [items[i] for i in range(min(args.limit, len(items)))]
    if len(items) == 0:
        raise UsageError(f"dataset {args.dataset!r} ({options or 'default options'}) has no objects.")
    return items


def _build_predictors(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """``(label, predictor)`` for every requested method."""
    methods = args.method or ["random_walker"]
    if CHECKPOINT_METHOD in methods and not args.checkpoint:
        raise UsageError(f"--method {CHECKPOINT_METHOD} needs at least one --checkpoint PATH.")
    if args.checkpoint and CHECKPOINT_METHOD not in methods:
        methods = [*methods, CHECKPOINT_METHOD]
    predictors = []
    for method in dict.fromkeys(methods):
        if method != CHECKPOINT_METHOD:
            predictors.append((method, method_predictor(method, args.device, also_known=(CHECKPOINT_METHOD,))))
            continue
        for path in args.checkpoint:
            predictors.append((f"{CHECKPOINT_METHOD}:{path.stem}", checkpoint_predictor(path, args.device)))
    return predictors


def _overlay_writer(folder: Path, limit: int):
    """Evaluation callback writing an overlay PNG for the first ``limit`` objects into ``folder``."""
    from monai_adaptiveclick.engines.reporting import save_overlay

    written: list[Path] = []

    def write(item: dict, record: Any, prob: Any) -> None:
        if len(written) >= limit:
            return
        title = f"{record.object_id}: {len(record.clicks)} clicks, IoU {record.ious[-1]:.3f}"
        path = folder / f"{len(written):03d}_{_safe_name(record.object_id)}.png"
        written.append(save_overlay(item["image"], item["label"], prob, record.clicks, path, title=title))

    return write


def _run_evaluate(args: argparse.Namespace) -> int:
    """Handler of ``evaluate``; returns the exit status."""
    if args.max_clicks < 1:
        raise UsageError(f"--max-clicks must be >= 1, got {args.max_clicks}.")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}.")
    from monai_adaptiveclick.engines.evaluation import evaluate_noc
    from monai_adaptiveclick.engines.reporting import format_table, plot_miou_curves

    predictors = _build_predictors(args)
    items = _load_items(args)
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    results = []
    for label, predictor in predictors:
        result = evaluate_noc(
            predictor,
            items,
            max_clicks=args.max_clicks,
            zoom_in=not args.no_zoom_in,
            flip=not args.no_flip,
            protocol=args.protocol,
            progress=show_progress(args.quiet),
            method=label,
            callback=_overlay_writer(output / "overlays" / _safe_name(label), args.overlays),
        )
        result.to_json(output / f"results_{_safe_name(label)}.json")
        result.to_csv(output / f"records_{_safe_name(label)}.csv")
        results.append(result)
    table = format_table(results)
    split = _split(args)
    settings = (
        f"dataset {args.dataset}{f' ({split})' if split else ''}, {len(items)} objects, max {args.max_clicks} clicks, "
        f"zoom-in {'off' if args.no_zoom_in else 'on'}, flip {'off' if args.no_flip else 'on'}, "
        f"protocol {args.protocol}"
    )
    (output / "table.md").write_text(f"{settings}\n\n{table}\n")
    plot_miou_curves(results, output / "miou_vs_clicks.png", title=f"mIoU vs. clicks: {args.dataset}")
    print(settings)
    print(table)
    print(f"results written to {output}")
    return 0
