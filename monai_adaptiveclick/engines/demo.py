# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The end-to-end demo: the shipped starter model against the classical baselines, then a fine-tune beside them.

``run_demo`` (wired to ``python -m monai_adaptiveclick demo`` and ``make demo``):

1. evaluates, with the NoC protocol of SPEC section 5 (zoom-in and flip on, as the shipped model's figures), the
   shipped ``starter`` model (``Predictor.from_pretrained``) and the classical baselines (random walker, watershed)
   on the held-out objects of the embedded sample;
2. fine-tunes the starter on the sample's ``train`` split (recipe ``configs/demo.json``: ``init_checkpoint`` is
   the shipped model) for what is left of the time budget, with the click-simulation iteration of SPEC section 4;
3. evaluates the fine-tuned model the same way and writes ``report.md`` (NoC / mIoU table, settings, timings),
   ``miou_vs_clicks.png``, per-method JSON / CSV and overlay PNGs of masks and clicks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

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
    minutes_budget: float = 10.0,
    *,
    device: str = "cpu",
    recipe: str = "demo",
    eval_objects: int | None = None,
    max_clicks: int = 20,
    baselines: tuple[str, ...] = ("random_walker", "watershed"),
    num_overlays: int = 4,
    progress: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Evaluate the shipped starter and the baselines, fine-tune the starter, report; within ``minutes_budget``.

    Args:
        output_dir: folder for the fine-tuned model, logs and the report (created).
        minutes_budget: total wall-time budget; the fine-tune gets what the evaluations leave (at least 10 % of it).
        device: torch device for the models.
        recipe: the fine-tuning recipe (``configs/demo.json``; its ``init_checkpoint`` names the model evaluated
            first, ``pretrained:starter``).
        eval_objects: number of held-out objects evaluated (``None``: all of them).
        max_clicks: click budget per object.
        baselines: classical baseline names (``engines.baselines.get_baseline``).
        num_overlays: overlay PNGs written for the starter and for the fine-tuned model.
        progress: progress bars.
        overrides: training settings replacing the recipe's (e.g. ``seed=1``, ``lr=1e-5``).

    Returns:
        ``{"output_dir", "report", "model", "results": {method: {"noc85", "noc90", "miou_at_k"}},
        "training": {"iterations", "seconds", "history"}}``.

    Raises:
        ValueError: a non-positive budget or bad settings.
    """
    from monai_adaptiveclick.data.sample import load_sample
    from monai_adaptiveclick.engines import evaluate_noc, format_table, get_baseline, plot_miou_curves, save_overlay
    from monai_adaptiveclick.engines.settings import TrainingSettings
    from monai_adaptiveclick.engines.trainer import run_training
    from monai_adaptiveclick.inference import Predictor
    from monai_adaptiveclick.networks import load_model, load_pretrained, pretrained_name

    if minutes_budget <= 0:
        raise ValueError(f"minutes_budget must be > 0, got {minutes_budget}.")
    if max_clicks < 1 or num_overlays < 0:
        raise ValueError(f"max_clicks must be >= 1 and num_overlays >= 0, got {max_clicks}, {num_overlays}.")
    start = time.perf_counter()
    settings = TrainingSettings.from_recipe(recipe, **overrides)
    start_model = pretrained_name(settings.init_checkpoint)
    if start_model is None:
        raise ValueError(f"recipe {recipe!r} must fine-tune a shipped model (init_checkpoint 'pretrained:NAME').")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    heldout = _subset(list(load_sample(split="heldout")), eval_objects, settings.seed)
    overlays: list[Path] = []

    def evaluate(slug: str, name: str, predictor: Any, with_overlays: bool = False) -> Any:
        written: list[Path] = []

        def write_overlay(item: dict, record: Any, prob: np.ndarray) -> None:
            if len(written) < num_overlays:
                path = output_dir / "overlays" / f"{slug}_{len(written):02d}_{record.object_id}.png"
                title = f"{name}: {record.object_id}, IoU {record.ious[-1]:.2f} after {len(record.clicks)} clicks"
                written.append(save_overlay(item["image"], item["label"][0] > 0, prob, record.clicks, path, title))

        result = evaluate_noc(
            predictor,
            heldout,
            max_clicks=max_clicks,
            zoom_in=True,
            flip=True,
            progress=progress,
            method=name,
            callback=write_overlay if with_overlays else None,
        )
        result.to_json(output_dir / f"noc_{slug}.json")
        result.to_csv(output_dir / f"noc_{slug}.csv")
        overlays.extend(written)
        return result

    print(f"[demo] evaluating the shipped '{start_model}' model and {', '.join(baselines)} on {len(heldout)} objects")
    eval_start = time.perf_counter()
    shipped = Predictor(load_pretrained(start_model), device=device)
    results = [evaluate(start_model, f"{start_model} (shipped)", shipped, with_overlays=True)]
    model_seconds = time.perf_counter() - eval_start
    results += [evaluate(name, name, get_baseline(name)) for name in baselines]

    train_items = load_sample(split="train")
    budget = minutes_budget * 60.0
    train_seconds = max(0.1 * budget, budget - (time.perf_counter() - start) - model_seconds - 15.0)
    settings = settings.replace(max_seconds=train_seconds)
    print(f"[demo] fine-tuning '{start_model}' on {len(train_items)} training objects for ~{train_seconds:.0f} s")
    trained = run_training(train_items, output_dir / "finetune", settings, device=device, progress=progress)
    tuned = Predictor(load_model(trained["checkpoint"]), device=device)
    results.append(evaluate("finetuned", f"{start_model} fine-tuned here", tuned, with_overlays=True))

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
        f"The shipped `{start_model}` model (`Predictor.from_pretrained({start_model!r})`, its card: "
        f"`monai_adaptiveclick/pretrained/{start_model}.json`) against the classical baselines, then the same model "
        f"fine-tuned here on the {len(train_items)} objects of the embedded sample's `train` split for "
        f"{trained['iterations']} iterations (recipe `{recipe}`: batch {settings.batch_size}, Adam lr "
        f"{settings.lr:g}, up to {settings.max_extra_clicks} simulated extra click(s), "
        f"{train_seconds:.0f} s budget, device {device}).\n\n"
        f"Evaluation: NoC protocol (SPEC section 5) on {len(heldout)} held-out objects, up to {max_clicks} clicks, "
        "zoom-in and flip on. NoC values of objects that never reach the threshold count as the click budget.\n\n"
        f"{table}\n\n"
        f"![mIoU vs clicks]({plot_path.name})\n\n"
        + "".join(f"![overlay]({p.relative_to(output_dir)})\n" for p in overlays)
        + f"\nTotal demo time: {total:.0f} s. Fine-tuned model: "
        f"`{Path(trained['checkpoint']).relative_to(output_dir)}`.\n"
    )
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(table)
    print(f"[demo] report written to {output_dir.resolve()}")
    return {
        "output_dir": str(output_dir.resolve()),
        "report": str(report),
        "model": trained["checkpoint"],
        "results": summary,
        "training": {
            "iterations": trained["iterations"],
            "seconds": train_seconds,
            "history": trained["history"],
        },
    }
