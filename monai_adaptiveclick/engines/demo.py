# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The end-to-end demo: train the ``small_cpu`` preset on the embedded sample, evaluate, write a report.

``run_demo`` (wired to ``python -m monai_adaptiveclick demo`` and ``make demo``):

1. trains AdaptiveClick (``small_cpu`` architecture) on the sample pack's ``train`` split with the click-simulation
   iteration of SPEC section 4 for a fixed wall-time budget (80 % of ``minutes_budget`` minus 30 s);
2. evaluates, with the NoC protocol of SPEC section 5, the trained model, the same architecture untrained (same
   seed, random weights) and the classical random-walker baseline on held-out objects of the ``heldout`` split;
3. writes ``report.md`` (NoC / mIoU table and the settings), ``miou_vs_clicks.png``, per-method JSON / CSV and
   overlay PNGs of masks and clicks, and returns the folder.

The training settings are the ``demo`` recipe (``configs/demo.json``: the CPU-budget choices and why), stated in the
report; the evaluation uses ``max_clicks`` clicks without zoom-in / flip on a subset of held-out objects.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["run_demo"]


def _subset(items: list, count: int | None, seed: int) -> list:
    """A reproducible subset of ``count`` items spread over the sources of the sample pack."""
    if count is None or count >= len(items):
        return list(items)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    by_source: dict[str, list] = {}
    for index in order:
        source = str(items[index].get("meta", {}).get("dataset", "?"))
        by_source.setdefault(source, []).append(items[index])
    chosen: list = []
    while len(chosen) < count:
        for group in by_source.values():
            if group and len(chosen) < count:
                chosen.append(group.pop())
    return chosen


def run_demo(
    output_dir: str | Path,
    minutes_budget: float = 8.0,
    *,
    device: str = "cpu",
    recipe: str = "demo",
    eval_objects: int | None = 12,
    max_clicks: int = 10,
    baseline: str = "random_walker",
    num_overlays: int = 4,
    progress: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Train, evaluate and report on the embedded sample within about ``minutes_budget`` minutes.

    Args:
        output_dir: folder for the model, logs and the report (created).
        minutes_budget: total wall-time budget; training gets 80 % of it minus 30 s, at least half of it (the rest:
            set-up and evaluation).
        device: torch device for training and evaluation.
        recipe: the training recipe (``configs/demo.json``).
        eval_objects: number of held-out objects evaluated (``None``: all).
        max_clicks: click budget per object in the evaluation.
        baseline: classical baseline name (``engines.baselines.get_baseline``).
        num_overlays: overlay PNGs written for the trained model.
        progress: progress bars.
        overrides: training settings replacing the recipe's (e.g. ``preset="tiny"``, ``seed=1``).

    Returns:
        ``{"output_dir", "report", "model", "results": {method: {"noc85", "noc90", "miou@k": [...]}} ,
        "training": {"iterations", "seconds", "history"}}``.

    Raises:
        ValueError: a non-positive budget or settings.
    """
    from monai_adaptiveclick.data.sample import load_sample
    from monai_adaptiveclick.engines import evaluate_noc, format_table, get_baseline, plot_miou_curves, save_overlay
    from monai_adaptiveclick.engines.settings import TrainingSettings
    from monai_adaptiveclick.engines.trainer import run_training
    from monai_adaptiveclick.inference import Predictor
    from monai_adaptiveclick.networks import create_model, load_model

    if minutes_budget <= 0:
        raise ValueError(f"minutes_budget must be > 0, got {minutes_budget}.")
    if max_clicks < 1 or num_overlays < 0:
        raise ValueError(f"max_clicks must be >= 1 and num_overlays >= 0, got {max_clicks}, {num_overlays}.")
    start = time.perf_counter()
    budget_seconds = minutes_budget * 60.0
    train_seconds = max(0.5 * budget_seconds, 0.8 * budget_seconds - 30.0)
    settings = TrainingSettings.from_recipe(recipe, **overrides).replace(max_seconds=train_seconds)
    preset, seed = settings.preset, settings.seed
    image_size = settings.model_overrides.get("image_size", "native")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    train_items = load_sample(split="train")
    heldout = _subset(list(load_sample(split="heldout")), eval_objects, seed)

    print(f"[demo] training {preset}@{image_size}px on {len(train_items)} sample objects for ~{train_seconds:.0f} s")
    trained = run_training(train_items, output_dir / "training", settings, device=device, progress=progress)
    train_elapsed = time.perf_counter() - start
    print(
        f"[demo] trained {trained['iterations']} iterations in {train_elapsed:.0f} s; evaluating {len(heldout)} objects"
    )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        untrained = create_model(
            preset, in_channels=settings.in_channels, head=settings.head, **dict(settings.model_overrides)
        )
    predictors = [
        (
            "trained",
            f"AdaptiveClick {preset} (trained here)",
            Predictor(load_model(trained["checkpoint"]), device=device),
        ),
        ("untrained", f"AdaptiveClick {preset} (untrained)", Predictor(untrained, device=device)),
        (baseline, f"classical baseline ({baseline})", get_baseline(baseline)),
    ]
    overlay_dir = output_dir / "overlays"
    overlays: list[Path] = []

    def write_overlay(item: dict, record: Any, prob: np.ndarray) -> None:
        if len(overlays) < num_overlays:
            path = overlay_dir / f"{len(overlays):02d}_{record.object_id}.png"
            title = f"{record.object_id}: IoU {record.ious[-1]:.2f} after {len(record.clicks)} clicks"
            overlays.append(save_overlay(item["image"], item["label"][0] > 0, prob, record.clicks, path, title))

    results = []
    for slug, name, predictor in predictors:
        result = evaluate_noc(
            predictor,
            heldout,
            max_clicks=max_clicks,
            zoom_in=False,
            flip=False,
            progress=progress,
            method=name,
            callback=write_overlay if slug == "trained" else None,
        )
        result.to_json(output_dir / f"noc_{slug}.json")
        result.to_csv(output_dir / f"noc_{slug}.csv")
        results.append(result)
    plot_path = plot_miou_curves(results, output_dir / "miou_vs_clicks.png", title="Held-out sample objects")
    table = format_table(results)
    total = time.perf_counter() - start
    summary = {
        r.method: {
            **{f"noc{round(t * 100)}": float(v) for t, v in r.noc.items()},
            "miou_at_k": [float(v) for v in r.miou_at_k],
        }
        for r in results
    }
    report = output_dir / "report.md"
    report.write_text(
        "# monai-adaptiveclick demo\n\n"
        f"Trained the `{preset}` AdaptiveClick architecture (input {image_size} px) on the {len(train_items)} objects "
        f"of the embedded sample's `train` split for {trained['iterations']} iterations "
        f"({train_elapsed:.0f} s, recipe `{recipe}`: batch {settings.batch_size}, Adam lr {settings.lr:g}, up to "
        f"{settings.max_extra_clicks} simulated extra click(s) per iteration, device {device}).\n\n"
        f"Evaluation: NoC protocol (SPEC section 5) on {len(heldout)} held-out objects, up to {max_clicks} clicks, "
        "zoom-in and flip off. NoC values of objects that never reach the threshold count as the click budget.\n\n"
        f"{table}\n\n"
        f"![mIoU vs clicks]({plot_path.name})\n\n"
        + "".join(f"![overlay]({p.relative_to(output_dir)})\n" for p in overlays)
        + f"\nTotal demo time: {total:.0f} s. Model: `{Path(trained['checkpoint']).relative_to(output_dir)}`.\n"
    )
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(table)
    print(f"[demo] report written to {output_dir.resolve()}")
    return {
        "output_dir": str(output_dir.resolve()),
        "report": str(report),
        "model": trained["checkpoint"],
        "results": summary,
        "training": {"iterations": trained["iterations"], "seconds": train_elapsed, "history": trained["history"]},
    }
