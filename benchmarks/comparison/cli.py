# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The command line of the comparison and the whole run: parse, load the objects, run every method / seed, report.

``benchmarks/compare_methods.py`` is a thin wrapper of :func:`main`; :func:`run_comparison` is the same run,
callable from Python and tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from comparison.items import load_items
from comparison.methods import METHODS
from comparison.pool import run_tasks
from comparison.report import format_comparison_table, git_commit, write_hard_cases, write_report
from comparison.settings import BUDGETS, Budget, RunOptions
from comparison.statistics import pooled
from monai_adaptiveclick.engines import NoCResult, plot_miou_curves

__all__ = ["DESCRIPTION", "build_parser", "main", "resolve_budget", "run_comparison"]

DESCRIPTION = (
    "One-command accuracy comparison: AdaptiveClick against its ablations and baselines on the same data (issue 8)."
)


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the comparison (``--help`` lists the options)."""
    parser = argparse.ArgumentParser(description=DESCRIPTION, allow_abbrev=False)
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="quick", help="settings preset (default quick)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS), help="methods to run")
    parser.add_argument("--seeds", nargs="+", type=int, help="training seeds (quick: 0; full: 0 1 2)")
    parser.add_argument("--dataset", default="sample", help="registered dataset name (default: the embedded sample)")
    parser.add_argument("--dataset-dir", default=None, help="dataset root folder (not needed for 'sample')")
    parser.add_argument("--train-split", default=None, help="training split (sample: train)")
    parser.add_argument("--eval-split", default=None, help="evaluation split (sample: heldout)")
    parser.add_argument("--steps", type=int, help="training steps of every learned method")
    parser.add_argument("--batch-size", type=int, help="training batch size")
    parser.add_argument("--lr", type=float, help="Adam learning rate")
    parser.add_argument("--image-size", type=int, help="network input size of every learned model")
    parser.add_argument(
        "--synthetic-share", type=float, help="share of every training epoch drawn from the synthetic engine, in [0, 1)"
    )
    parser.add_argument("--preset", help="AdaptiveClick preset")
    parser.add_argument("--max-clicks", type=int, help="NoC click budget per object")
    parser.add_argument("--max-eval-objects", type=int, help="evaluate at most N held-out objects (evenly spaced)")
    parser.add_argument("--hard-cases", type=int, help="number of hard-case overlay figures")
    parser.add_argument("--device", default="cpu", help="torch device for training and evaluation")
    parser.add_argument(
        "--pretrained-backbone",
        default=None,
        help="local MAE / timm ViT state dict for every AdaptiveClick variant's backbone (DeepGrow starts from random)",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep each method's full-state training checkpoints (default: only the final model.pt is kept)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads per job (default: OMP_NUM_THREADS, or cores / jobs)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="methods / seeds run at the same time, each in its own process (default 1)"
    )
    parser.add_argument("--no-resume", action="store_true", help="re-run methods whose result JSON exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _check_at_least(option: str, value: int, lowest: int) -> None:
    """Raise ``ValueError`` naming ``--option`` when ``value < lowest``."""
    if value < lowest:
        raise ValueError(f"--{option} must be >= {lowest}, got {value}.")


def resolve_budget(args: argparse.Namespace) -> Budget:
    """The chosen budget with the command-line overrides applied.

    Args:
        args: the parsed command line (:func:`build_parser`).

    Returns:
        ``BUDGETS[args.budget]`` with the given ``--steps``, ``--batch-size``, ... and ``--seeds``.

    Raises:
        ValueError: a non-positive override.
    """
    budget = BUDGETS[args.budget]
    overrides: dict[str, Any] = {}
    for name, attr in (
        ("steps", "steps"),
        ("batch_size", "batch_size"),
        ("image_size", "image_size"),
        ("max_clicks", "max_clicks"),
        ("max_eval_objects", "max_eval_objects"),
        ("hard_cases", "num_hard_cases"),
    ):
        value = getattr(args, name)
        if value is not None:
            _check_at_least(name.replace("_", "-"), value, 0 if name == "hard_cases" else 1)
            overrides[attr] = value
    if args.lr is not None:
        if not args.lr > 0:
            raise ValueError(f"--lr must be > 0, got {args.lr}.")
        overrides["lr"] = args.lr
    if args.preset is not None:
        overrides["preset"] = args.preset
    if args.synthetic_share is not None:
        if not 0.0 <= args.synthetic_share < 1.0:
            raise ValueError(f"--synthetic-share must be in [0, 1), got {args.synthetic_share}.")
        overrides["synthetic_share"] = args.synthetic_share
    if args.seeds is not None:
        if len(set(args.seeds)) != len(args.seeds):
            raise ValueError(f"--seeds must be distinct, got {args.seeds}.")
        overrides["seeds"] = tuple(args.seeds)
    return dataclasses.replace(budget, **overrides)


def run_comparison(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the whole comparison (the command-line entry point, callable from Python and tests).

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        ``{"results": {method key: [NoCResult per seed]}, "table": markdown, "report": path, "plot": path,
        "hard_cases": [paths], "seconds": wall time}``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    budget = resolve_budget(args)
    _check_at_least("jobs", args.jobs, 1)
    if args.threads is not None:
        _check_at_least("threads", args.threads, 1)
    threads = args.threads
    if threads is None and args.jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
    if threads is not None:
        torch.set_num_threads(threads)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    if args.pretrained_backbone is not None and not Path(args.pretrained_backbone).is_file():
        raise FileNotFoundError(f"--pretrained-backbone {args.pretrained_backbone!r} does not exist.")
    options = RunOptions(
        device=args.device,
        progress=not args.no_progress,
        resume=not args.no_resume,
        pretrained_backbone=args.pretrained_backbone,
        keep_checkpoints=args.keep_checkpoints,
    )
    commit = git_commit()  # the code that runs, taken before a long run during which the repository may change
    start = time.perf_counter()
    train_items, eval_items, description = load_items(
        args.dataset, args.dataset_dir, args.train_split, args.eval_split, budget.max_eval_objects
    )
    print(
        f"[compare] {description}: {len(train_items)} training objects, {len(eval_items)} evaluation objects; "
        f"methods {args.methods}; seeds {list(budget.seeds)}",
        flush=True,
    )
    tasks = [
        (METHODS[key], seed)
        for key in args.methods
        for seed in (budget.seeds if METHODS[key].learned else budget.seeds[:1])
    ]
    results = run_tasks(tasks, budget, train_items, eval_items, output, options, args.jobs, torch.get_num_threads())
    per_method: dict[str, list[NoCResult]] = {}
    for (spec, _), result in zip(tasks, results, strict=True):
        per_method.setdefault(spec.key, []).append(result)
    table = format_comparison_table(per_method)
    plot = plot_miou_curves(
        [pooled(results) for results in per_method.values()],
        output / "miou_vs_clicks.png",
        title=f"mIoU vs. clicks ({args.dataset}, {len(eval_items)} objects, budget {args.budget})",
    )
    hard = write_hard_cases(per_method, eval_items, output, budget.num_hard_cases)
    seconds = time.perf_counter() - start
    report = write_report(
        per_method, budget, args, description, len(train_items), len(eval_items), seconds, argv, output, commit
    )
    (output / "summary.json").write_text(
        json.dumps(
            {
                key: [r.summary() | {"training": r.settings.get("training")} for r in rs]
                for key, rs in per_method.items()
            },
            indent=2,
            default=lambda v: None,
        )
    )
    print(table, flush=True)
    print(f"[compare] done in {seconds / 60:.1f} min; report {report}", flush=True)
    return {
        "results": per_method,
        "table": table,
        "report": report,
        "plot": plot,
        "hard_cases": hard,
        "seconds": seconds,
    }


def main() -> None:
    """Console entry point."""
    run_comparison()
