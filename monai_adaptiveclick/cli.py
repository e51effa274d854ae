# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Command line: ``python -m monai_adaptiveclick <command>`` (evaluate, train, demo, serve-sample).

``evaluate`` runs the NoC protocol of SPEC section 5 for one or several methods (classical baselines and/or
AdaptiveClick checkpoints) on a dataset and writes a markdown table, per-method JSON/CSV results, the mIoU-vs-clicks
plot and overlay images. The parser is assembled from one ``_add_<command>_parser(subparsers)`` function per
subcommand, each binding its ``_run_<command>(args) -> int`` handler, so more subcommands plug in the same way.

User errors (a missing data folder or checkpoint, an unknown dataset, inconsistent options) print one ``error:``
line to stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["UsageError", "build_parser", "main"]

CHECKPOINT_METHOD = "checkpoint"
BASELINE_NAMES = ("random_walker", "watershed")
"""Names listed in ``--help``; the registry :data:`monai_adaptiveclick.engines.BASELINES` is the authority (imported
only when a command runs, so ``--help`` stays fast)."""
SAMPLE_DEFAULT_SPLIT = "heldout"


class UsageError(Exception):
    """A user error reported as ``error: <message>`` with exit status 2."""


def _safe_name(text: str) -> str:
    """File-system friendly version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "item"


def _add_evaluate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="NoC evaluation (SPEC section 5) of baselines and/or checkpoints on a dataset.",
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
        help=f"method to evaluate: {', '.join(BASELINE_NAMES)} (classical baselines) or {CHECKPOINT_METHOD} (every "
        "--checkpoint); repeat to compare several side by side (default: random_walker)",
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        type=Path,
        default=[],
        help="AdaptiveClick checkpoint (monai_adaptiveclick.networks.save_model); repeatable",
    )
    parser.add_argument("--max-clicks", type=int, default=20, help="click budget per object")
    parser.add_argument("--no-zoom-in", action="store_true", help="disable zoom-in test-time augmentation")
    parser.add_argument("--no-flip", action="store_true", help="disable flip test-time augmentation")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N objects")
    parser.add_argument("--output", type=Path, default=Path("outputs/evaluate"), help="output folder")
    parser.add_argument("--overlays", type=int, default=4, help="overlay PNGs written per method (first N objects)")
    parser.add_argument("--device", default="cpu", help="torch device for checkpoints (cpu, cuda, cuda:1 ...)")
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
            from monai_adaptiveclick.engines.baselines import BASELINES, get_baseline

            if method not in BASELINES:
                known = ", ".join([*BASELINES, CHECKPOINT_METHOD])
                raise UsageError(f"unknown --method {method!r}; known methods: {known}.")
            predictors.append((method, get_baseline(method)))
            continue
        from monai_adaptiveclick.inference import Predictor

        for path in args.checkpoint:
            if not path.is_file():
                raise UsageError(f"checkpoint file {str(path)!r} does not exist.")
            predictors.append((f"{CHECKPOINT_METHOD}:{path.stem}", Predictor.from_checkpoint(path, device=args.device)))
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
            progress=not args.quiet,
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
        f"zoom-in {'off' if args.no_zoom_in else 'on'}, flip {'off' if args.no_flip else 'on'}"
    )
    (output / "table.md").write_text(f"{settings}\n\n{table}\n")
    plot_miou_curves(results, output / "miou_vs_clicks.png", title=f"mIoU vs. clicks: {args.dataset}")
    print(settings)
    print(table)
    print(f"results written to {output}")
    return 0


def _add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand (iterative click-simulation training, SPEC section 4)."""
    parser = subparsers.add_parser(
        "train",
        help="Train AdaptiveClick with iterative click simulation (SPEC section 4) on a dataset.",
        description=(
            "Train a preset on a registered dataset (default: the embedded sample's train split) and write full-state "
            "checkpoints, TensorBoard logs and the final model.pt (usable with `evaluate --checkpoint`)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dataset", default="sample", help="dataset name of monai_adaptiveclick.data.get_dataset")
    parser.add_argument("--dataset-dir", type=Path, default=None, help="dataset root folder (default: the dataset's)")
    parser.add_argument("--split", default="train", help="split of the embedded sample pack (train, heldout, all)")
    parser.add_argument("--preset", default="small_cpu", help="model preset (tiny, small_cpu, vit_b_448, vit_h_448)")
    parser.add_argument("--head", default="camd", choices=("camd", "mask_fixed"), help="decoder head")
    parser.add_argument("--loss", default="afl", help="mask loss name of monai_adaptiveclick.losses.get_loss")
    parser.add_argument("--in-channels", type=int, default=3, help="image channels of the model")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size")
    parser.add_argument("--lr", type=float, default=5e-5, help="Adam learning rate (x0.1 at 2/3 of the epochs)")
    parser.add_argument("--max-extra-clicks", type=int, default=3, help="simulated extra clicks per iteration (0..N)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many iterations")
    parser.add_argument("--init-checkpoint", type=Path, default=None, help="model file to fine-tune from")
    parser.add_argument(
        "--pretrained-backbone", type=Path, default=None, help="local MAE / timm ViT state dict for the backbone"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    parser.add_argument("--output", type=Path, default=Path("outputs/train"), help="output folder")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1 ...)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_train)
    return parser


def _run_train(args: argparse.Namespace) -> int:
    """Handler of ``train``; returns the exit status."""
    if args.dataset_dir is not None and not args.dataset_dir.is_dir():
        raise UsageError(f"dataset folder {str(args.dataset_dir)!r} does not exist or is not a folder.")
    if args.init_checkpoint is not None and not args.init_checkpoint.is_file():
        raise UsageError(f"checkpoint file {str(args.init_checkpoint)!r} does not exist.")
    if args.pretrained_backbone is not None and not args.pretrained_backbone.is_file():
        raise UsageError(f"pretrained backbone file {str(args.pretrained_backbone)!r} does not exist.")
    from monai_adaptiveclick.engines.training import load_training_items

    try:
        items = load_training_items(args.dataset, args.dataset_dir, split=args.split)
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"cannot load dataset {args.dataset!r}: {err}") from err
    try:
        result = _train(items, args)
    except ValueError as err:
        raise UsageError(f"cannot train: {err}") from err
    print(f"model written to {result['checkpoint']}")
    return 0


def _train(items: Sequence[Mapping[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """``run_training`` with the ``train`` subcommand's arguments."""
    from monai_adaptiveclick.engines.training import run_training

    return run_training(
        items,
        args.output,
        preset=args.preset,
        in_channels=args.in_channels,
        head=args.head,
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_extra_clicks=args.max_extra_clicks,
        init_checkpoint=args.init_checkpoint,
        pretrained_backbone=args.pretrained_backbone,
        resume=args.resume,
        device=args.device,
        seed=args.seed,
        progress=not args.quiet,
        max_steps=args.max_steps,
    )


def _add_demo_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand (train + evaluate on the embedded sample, with a report)."""
    parser = subparsers.add_parser(
        "demo",
        help="Train the small preset on the embedded sample, evaluate it beside baselines, write a report.",
        description=(
            "The README's main job: trains AdaptiveClick (small_cpu architecture) on the sample pack's train split "
            "within the time budget, evaluates it, the untrained model and the classical baseline on held-out "
            "objects, and writes report.md, miou_vs_clicks.png and overlays to --output."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output", type=Path, default=Path("outputs/demo"), help="output folder")
    parser.add_argument("--minutes", type=float, default=8.0, help="total wall-time budget in minutes")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda ...)")
    parser.add_argument("--preset", default="small_cpu", help="model preset (small_cpu; tiny for a quick check)")
    parser.add_argument("--image-size", type=int, default=128, help="network input size used by the demo")
    parser.add_argument("--eval-objects", type=int, default=12, help="held-out objects evaluated")
    parser.add_argument("--max-clicks", type=int, default=10, help="click budget per object")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
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
            preset=args.preset,
            image_size=args.image_size,
            eval_objects=args.eval_objects,
            max_clicks=args.max_clicks,
            seed=args.seed,
            progress=not args.quiet,
        )
    except ValueError as err:
        raise UsageError(str(err)) from err
    print(f"demo report: {result['report']}")
    return 0


DEMO_MODEL = Path("outputs/demo/training/model.pt")
"""The model ``make demo`` trains; ``serve-sample`` serves it by default when it exists."""


def _add_serve_sample_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``serve-sample`` subcommand (MONAI Label server on the embedded sample volumes)."""
    parser = subparsers.add_parser(
        "serve-sample",
        help="Start the MONAI Label server on 127.0.0.1 with the embedded sample volumes as studies.",
        description=(
            "Runs apps/adaptiveclick/start_sample_server.sh; connect 3D Slicer's MONAI Label module to it. The weights "
            f"served: --weights, else {DEMO_MODEL} when `make demo` has written it (while the app has no checkpoint "
            "of its own), else an untrained model (the server says so)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1")
    parser.add_argument("--studies", type=Path, default=Path("outputs/label_studies"), help="studies folder")
    parser.add_argument("--with-labels", action="store_true", help="also copy the sample labels to labels/final")
    parser.add_argument("--weights", type=Path, default=None, help="model file to serve (default: the demo's model)")
    parser.set_defaults(func=_run_serve_sample)
    return parser


def _serve_sample_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """``(argv, environment)`` that start the sample server for ``serve-sample``'s arguments."""
    import os

    script = Path(__file__).resolve().parents[1] / "apps" / "adaptiveclick" / "start_sample_server.sh"
    if not script.is_file():
        raise UsageError(f"the MONAI Label app is not next to this package ({script} missing); use a source checkout.")
    weights = args.weights if args.weights is not None else (DEMO_MODEL if DEMO_MODEL.is_file() else None)
    if weights is not None and not weights.is_file():
        raise UsageError(f"weights file {str(weights)!r} does not exist.")
    argv = ["/bin/bash", str(script)]
    if weights is not None:
        argv += ["--conf", "bundle_checkpoint", str(weights.resolve())]
    env = {
        **os.environ,
        "PORT": str(args.port),
        "STUDIES": str(args.studies.resolve()),
        "WITH_LABELS": "1" if args.with_labels else "0",
        "PYTHON": sys.executable,
    }
    return argv, env


def _run_serve_sample(args: argparse.Namespace) -> int:
    """Handler of ``serve-sample``: replaces this process with the server start script."""
    import os

    argv, env = _serve_sample_command(args)
    os.execve(argv[0], argv, env)
    return 0  # not reached: execve replaces the process


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m monai_adaptiveclick`` parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_adaptiveclick",
        description="AdaptiveClick interactive segmentation for MONAI: demo, training, evaluation, sample server.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_evaluate_parser(subparsers)
    _add_train_parser(subparsers)
    _add_demo_parser(subparsers)
    _add_serve_sample_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user errors, reported without a traceback)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, FileNotFoundError, NotADirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
