# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The comparison's report: the markdown table, the hard-case figures (paper Fig. 5 style) and ``comparison.md``.

The mIoU-vs-clicks plot is :func:`monai_adaptiveclick.engines.plot_miou_curves` on the pooled results
(:func:`comparison.statistics.pooled`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from comparison import layout
from comparison.settings import PROB_THRESHOLD, Budget
from comparison.statistics import mean_sd
from monai_adaptiveclick.engines import NoCResult, display_image

__all__ = [
    "format_comparison_table",
    "git_commit",
    "hard_case_ids",
    "save_hard_case_figure",
    "write_hard_cases",
    "write_report",
]


def format_comparison_table(per_method: Mapping[str, Sequence[NoCResult]]) -> str:
    """Markdown table: one row per method, mean (± sample sd over seeds when there are several).

    Args:
        per_method: the results of each method, one per seed, in the order of the rows.

    Returns:
        The table: NoC85, NoC90, fail@85, fail@90, mIoU@1/3/5, SPC, training steps and seconds, seeds.
    """
    header = [
        "method",
        "NoC85",
        "NoC90",
        "fail@85",
        "fail@90",
        "mIoU@1",
        "mIoU@3",
        "mIoU@5",
        "SPC (s)",
        "train steps",
        "train s",
        "seeds",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for results in per_method.values():
        trainings = [r.settings.get("training") for r in results if r.settings.get("training")]
        seeds = [r.settings.get("seed") for r in results if r.settings.get("seed") is not None]
        row = [
            results[0].method,
            mean_sd([r.noc[0.85] for r in results], 2),
            mean_sd([r.noc[0.9] for r in results], 2),
            mean_sd([float(r.failures[0.85]) for r in results], 1 if len(results) > 1 else 0),
            mean_sd([float(r.failures[0.9]) for r in results], 1 if len(results) > 1 else 0),
        ]
        row += [mean_sd([r.miou_at_k[k - 1] for r in results if k <= r.max_clicks], 3) for k in (1, 3, 5)]
        row.append(mean_sd([r.spc for r in results], 3))
        row.append(str(trainings[0]["steps"]) if trainings else "-")
        row.append(mean_sd([t["seconds"] for t in trainings], 0) if trainings else "-")
        row.append(" ".join(str(s) for s in seeds) if seeds else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _final_iou(record: Any) -> float:
    """IoU after the last click of an ``ObjectRecord`` (0 without clicks)."""
    return record.ious[-1] if record.ious else 0.0


def hard_case_ids(result: NoCResult, count: int) -> list[str]:
    """Object ids with the highest NoC90 for ``result`` (ties: lowest final IoU first).

    Args:
        result: the NoC result of the reference method.
        count: number of ids.

    Returns:
        At most ``count`` object ids, hardest first.
    """
    nocs = result.nocs(0.9)
    order = sorted(range(len(result.records)), key=lambda i: (-nocs[i], _final_iou(result.records[i])))
    return [result.records[i].object_id for i in order[:count]]


def save_hard_case_figure(
    item: Mapping[str, Any],
    panels: Sequence[tuple[str, np.ndarray, Any]],
    path: Path,
) -> Path:
    """Paper Fig. 5 style figure: the image, the ground truth, then each method's final mask with its clicks.

    Args:
        item: the dataset item (``image``, ``label``, ``object_id``).
        panels: ``(label, final mask [H, W] bool, ObjectRecord)`` per method.
        path: output PNG.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    shown = display_image(item["image"])
    gt = np.asarray(item["label"]).reshape(shown.shape[:2]) > 0
    count = len(panels) + 2
    cols = min(count, 6)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 3.2 * rows), dpi=100, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    blue, yellow = ListedColormap(["#1f5fff"]), ListedColormap(["#ffd000"])
    axes[0, 0].imshow(shown, cmap="gray", interpolation="nearest")
    axes[0, 0].set_title("image", fontsize=8)
    axes[0, 1].imshow(shown, cmap="gray", interpolation="nearest")
    axes[0, 1].imshow(np.ma.masked_where(~gt, gt), cmap=yellow, alpha=0.5, interpolation="nearest", vmin=0, vmax=1)
    axes[0, 1].set_title("ground truth", fontsize=8)
    for index, (label, mask, record) in enumerate(panels, start=2):
        ax = axes[index // cols, index % cols]
        ax.imshow(shown, cmap="gray", interpolation="nearest")
        ax.imshow(np.ma.masked_where(~mask, mask), cmap=blue, alpha=0.45, interpolation="nearest", vmin=0, vmax=1)
        if gt.any() and not gt.all():
            ax.contour(gt.astype(np.float32), levels=[0.5], colors="yellow", linewidths=0.8)
        for order, (y, x, positive) in enumerate(record.clicks, start=1):
            color = "lime" if positive else "red"
            ax.plot(x, y, "o", color=color, markersize=4, markeredgecolor="black", markeredgewidth=0.5)
            ax.annotate(str(order), (x, y), xytext=(2, 2), textcoords="offset points", color=color, fontsize=5)
        ax.set_title(f"{label}\n{len(record.clicks)} clicks, IoU {_final_iou(record):.2f}", fontsize=7)
    fig.suptitle(str(item.get("object_id", "")), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_hard_cases(
    per_method: Mapping[str, Sequence[NoCResult]],
    eval_items: Sequence[Mapping[str, Any]],
    output: Path,
    count: int,
) -> list[Path]:
    """Overlay figures of the ``count`` objects with the highest NoC90 for AFL (else the first method); first seed.

    Args:
        per_method: the results of each method, one per seed; the final masks are read from ``output``.
        eval_items: the evaluation objects (images and ground truths of the figures).
        output: the comparison's output folder; figures go to ``hard_cases/{rank}_{object id}.png``.
        count: number of figures (0: none).

    Returns:
        The figure paths, hardest first.
    """
    if count == 0 or not per_method:
        return []
    reference_key = "afl" if "afl" in per_method else next(iter(per_method))
    ids = hard_case_ids(per_method[reference_key][0], count)
    by_id = {str(item["object_id"]): item for item in eval_items}
    stored = {}
    for key, results in per_method.items():
        result = results[0]
        name = layout.run_name(key, result.settings.get("seed"))
        with np.load(layout.mask_path(output, name)) as data:
            order = [str(i) for i in data["ids"]]
            stored[key] = (result, {oid: data[f"m{i}"] for i, oid in enumerate(order) if oid in ids})
    paths = []
    for rank, object_id in enumerate(ids, start=1):
        panels = []
        for result, masks in stored.values():
            record = next(r for r in result.records if r.object_id == object_id)
            panels.append((result.method, masks[object_id], record))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in object_id)
        paths.append(save_hard_case_figure(by_id[object_id], panels, output / "hard_cases" / f"{rank:02d}_{safe}.png"))
    return paths


def _git(*args: str) -> str:
    """Standard output of ``git *args`` run in this repository."""
    done = subprocess.run(
        ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def git_commit() -> str:
    """Short commit of this repository, marked when tracked files have changes; ``"unknown"`` without git."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" (working tree with changes)" if dirty else "")


def write_report(
    per_method: Mapping[str, Sequence[NoCResult]],
    budget: Budget,
    args: argparse.Namespace,
    data_description: str,
    num_train: int,
    num_eval: int,
    wall_seconds: float,
    argv: Sequence[str],
    output: Path,
    commit: str,
) -> Path:
    """Write ``comparison.md``: command, machine, commit at the start of the run, settings and the table.

    Args:
        per_method: the results of each method, one per seed.
        budget: the settings every method was compared on.
        args: the parsed command line (device, jobs, budget name, pretrained backbone).
        data_description: where the training and evaluation objects come from.
        num_train: number of training objects.
        num_eval: number of evaluation objects.
        wall_seconds: wall time of the run.
        argv: the command-line arguments, quoted back into the report.
        output: the comparison's output folder.
        commit: the repository commit at the start of the run (:func:`git_commit`).

    Returns:
        The path of ``comparison.md``.
    """
    settings = dataclasses.asdict(budget)
    lines = [
        "# Method comparison (issue 8)",
        "",
        f"Command: `python benchmarks/compare_methods.py {shlex.join(argv)}`",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"commit {commit} (at the start of the run)",
        f"- machine: {platform.machine()}, {platform.processor() or 'cpu'}, device {args.device}, torch "
        f"{torch.__version__}, {args.jobs} job(s) x {torch.get_num_threads()} CPU thread(s), "
        f"Python {platform.python_version()}",
        f"- data: {data_description}; {num_train} training objects, {num_eval} evaluation objects",
        f"- budget `{args.budget}`: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        "- every learned method: same training objects, steps, batch, lr, seed(s); classical baselines are "
        "deterministic and run once",
        "- initialisation: "
        + (
            f"AdaptiveClick backbones from {args.pretrained_backbone} (DeepGrow from random weights)"
            if args.pretrained_backbone
            else "random weights for every learned method (no pretrained backbone)"
        ),
        f"- NoC protocol of SPEC section 5: up to {budget.max_clicks} clicks, IoU thresholds 0.85 / 0.90, probability "
        f"threshold {PROB_THRESHOLD}, zoom-in {'on' if budget.zoom_in else 'off'}, "
        f"flip {'on' if budget.flip else 'off'}; fail@t = objects whose NoC@t >= the click budget; SPC = wall "
        "seconds per click (evaluation only)",
        f"- total wall time of this run: {wall_seconds / 60:.1f} min (methods loaded from earlier runs count 0)",
        "",
        format_comparison_table(per_method),
        "",
        "Plot: `miou_vs_clicks.png`; hard cases (highest NoC90 for the AFL model): `hard_cases/`; per-method JSON: "
        "`results/`.",
        "",
    ]
    path = output / "comparison.md"
    path.write_text("\n".join(lines))
    return path
