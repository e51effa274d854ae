# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""One-command accuracy comparison: AdaptiveClick against its ablations and baselines on the same data (issue 8).

Every learned method is trained with the same harness (:func:`monai_adaptiveclick.engines.training.run_training`:
click simulation, SPEC section 4), the same number of training steps, batch size, learning rate and seed, on the
same training objects; then every method, learned or classical, is evaluated with the same NoC protocol (SPEC
section 5, :func:`monai_adaptiveclick.engines.evaluate_noc`) on the same held-out objects.

Methods (``--methods``, default all):

============== ======================================================================================================
key            method
============== ======================================================================================================
afl            AdaptiveClick (CAMD head) + adaptive focal loss (the method; paper eq. 10-14)
fl, nfl, bce   AdaptiveClick + focal loss / normalised focal loss / binary cross-entropy (paper Table VI pattern)
mask_fixed_nfl mask-fixed SimpleClick-style head + NFL, CAMD off (paper Table X)
afl_ada_only   AFL with the adaptive difficulty adjustment only (``agr=False``; paper Table XI)
afl_agr_only   AFL with the adaptive gradient representation only (``ada=False``; paper Table XI)
deepgrow       DeepGrow-2D-style MONAI ``BasicUNet`` on [image, positive, negative] (no previous mask), BCE + Dice
random_walker  classical click-seeded random walker (``engines.baselines``; not trained)
watershed      classical click-seeded watershed (``engines.baselines``; not trained)
============== ======================================================================================================

All AdaptiveClick variants use the criterion of SPEC section 3 (mask loss + Dice + click-head CE with Hungarian
matching; the mask-fixed head and DeepGrow: mask loss + Dice, ``losses.MaskFixedCriterion``).

Budgets (``--budget``): ``quick`` is sized for a 2-core CPU (about 30 minutes for all methods, one seed): the
``small_cpu`` architecture at 128 px (DeepGrow: ``BasicUNet`` with MONAI's default widths at 128 px), 250 steps of
batch 8, Adam lr 1e-4 constant, NoC with up to 20 clicks, zoom-in and flip TTA off, all held-out objects. ``full``
is meant for a GPU: ``vit_b_448`` (randomly initialised unless ``--pretrained-backbone`` names a local MAE ViT-B/16
file, as in the paper; nothing is downloaded) at 448 px, 20 000 steps of batch 16, lr 5e-5 x0.1 at 2/3 of the steps,
DeepGrow widths (32, 64, 128, 256, 512, 32), NoC with up to 20 clicks, zoom-in and flip on, seeds 0 1 2.
``--steps``, ``--batch-size``, ``--lr``, ``--max-clicks``, ``--max-eval-objects`` and ``--seeds`` override a
budget's values. The classical baselines are deterministic and are evaluated once whatever the seeds.

Outputs in ``--output``: ``comparison.md`` (settings + table: NoC85, NoC90, fail@85, fail@90, mIoU@1/3/5, SPC,
training steps and seconds), ``miou_vs_clicks.png`` (all methods, paper Fig. 6 style), ``hard_cases/*.png`` (the
held-out objects with the highest NoC90 for the AFL model: image, ground truth and every method's final mask with its
clicks, paper Fig. 5 style), ``results/{method}_seed{s}.json`` (per-object records, summary, settings including the
training record), ``masks/`` (final masks, for the figures) and ``models/`` (trained ``model.pt`` files; the
full-state training checkpoints are deleted after training unless ``--keep-checkpoints``). A method whose result
JSON already exists is loaded instead of re-run, and a model whose training finished is evaluated without
re-training (``--no-resume`` re-runs everything).

``--jobs N`` runs N methods / seeds at the same time in separate processes (on a 2-core CPU ``--jobs 2`` with one
thread each is faster than one job with two threads); the results do not depend on it.

Usage:
    python benchmarks/compare_methods.py --budget quick --jobs 2 --output outputs/compare_quick
    python benchmarks/compare_methods.py --budget full --device cuda --dataset brats_png --dataset-dir /data/brats \
        --output outputs/compare_full
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_adaptiveclick.engines import evaluate_noc, get_baseline
from monai_adaptiveclick.engines.evaluation import NoCResult
from monai_adaptiveclick.engines.reporting import display_image, plot_miou_curves
from monai_adaptiveclick.engines.training import CHECKPOINT_PREFIX, load_training_items, run_training, usable_items
from monai_adaptiveclick.inference import Predictor

__all__ = ["BUDGETS", "METHODS", "Budget", "MethodSpec", "RunOptions", "build_parser", "run_comparison", "main"]

PROB_THRESHOLD = 0.49  # SPEC section 5
THRESHOLDS = (0.85, 0.90)


@dataclass(frozen=True)
class MethodSpec:
    """One compared method.

    Attributes:
        key: short name (file names, ``--methods``).
        label: name shown in the table and plots.
        head: model head for learned methods (``"camd"``, ``"mask_fixed"``, ``"deepgrow_unet"``); ``None`` for a
            classical baseline.
        loss: mask loss name of the criterion (learned methods).
        loss_kwargs: constructor arguments of that loss (AFL ablations).
        baseline: ``engines.baselines`` name of a classical method.
    """

    key: str
    label: str
    head: str | None = None
    loss: str | None = None
    loss_kwargs: Mapping[str, Any] = field(default_factory=dict)
    baseline: str | None = None

    @property
    def learned(self) -> bool:
        """Whether the method is trained."""
        return self.baseline is None


METHODS: dict[str, MethodSpec] = {
    spec.key: spec
    for spec in (
        MethodSpec("afl", "AdaptiveClick + AFL", head="camd", loss="afl"),
        MethodSpec("fl", "AdaptiveClick + FL", head="camd", loss="fl"),
        MethodSpec("nfl", "AdaptiveClick + NFL", head="camd", loss="nfl"),
        MethodSpec("bce", "AdaptiveClick + BCE", head="camd", loss="bce"),
        MethodSpec("mask_fixed_nfl", "mask-fixed head + NFL (CAMD off)", head="mask_fixed", loss="nfl"),
        MethodSpec(
            "afl_ada_only", "AdaptiveClick + AFL, ADA only", head="camd", loss="afl", loss_kwargs={"agr": False}
        ),
        MethodSpec(
            "afl_agr_only", "AdaptiveClick + AFL, AGR only", head="camd", loss="afl", loss_kwargs={"ada": False}
        ),
        MethodSpec("deepgrow", "DeepGrow-2D-style BasicUNet (BCE + Dice)", head="deepgrow_unet", loss="bce"),
        MethodSpec("random_walker", "random walker (classical)", baseline="random_walker"),
        MethodSpec("watershed", "watershed (classical)", baseline="watershed"),
    )
}


@dataclass(frozen=True)
class Budget:
    """Training and evaluation settings shared by every method.

    Attributes:
        preset: AdaptiveClick preset (its architecture, at ``image_size``).
        image_size: network input size of every learned model (DeepGrow included).
        steps: training iterations of every learned method.
        batch_size: training batch size.
        lr: Adam learning rate.
        decay_at: fraction of the steps after which the learning rate is multiplied by 0.1 (``None``: constant).
        deepgrow_features: ``BasicUNet`` widths of the DeepGrow model.
        max_clicks: NoC click budget per object.
        zoom_in: zoom-in TTA during evaluation.
        flip: flip TTA during evaluation.
        seeds: training seeds.
        max_eval_objects: evaluate at most this many held-out objects (evenly spaced; ``None``: all).
        num_hard_cases: number of hard-case overlay figures.
    """

    preset: str
    image_size: int
    steps: int
    batch_size: int
    lr: float
    decay_at: float | None
    deepgrow_features: tuple[int, ...]
    max_clicks: int
    zoom_in: bool
    flip: bool
    seeds: tuple[int, ...]
    max_eval_objects: int | None
    num_hard_cases: int


BUDGETS: dict[str, Budget] = {
    "quick": Budget(
        preset="small_cpu",
        image_size=128,
        steps=250,
        batch_size=8,
        lr=1e-4,
        decay_at=None,
        deepgrow_features=(32, 32, 64, 128, 256, 32),
        max_clicks=20,
        zoom_in=False,
        flip=False,
        seeds=(0,),
        max_eval_objects=None,
        num_hard_cases=4,
    ),
    "full": Budget(
        preset="vit_b_448",
        image_size=448,
        steps=20_000,
        batch_size=16,
        lr=5e-5,
        decay_at=2 / 3,
        deepgrow_features=(32, 64, 128, 256, 512, 32),
        max_clicks=20,
        zoom_in=True,
        flip=True,
        seeds=(0, 1, 2),
        max_eval_objects=None,
        num_hard_cases=6,
    ),
}


@dataclass(frozen=True)
class RunOptions:
    """How the methods run (not what they are compared on).

    Attributes:
        device: torch device for training and evaluation.
        progress: show progress bars.
        resume: reuse stored results and finished models of an earlier run in the same output folder.
        pretrained_backbone: local MAE / timm ViT state dict for the AdaptiveClick variants' backbone.
        keep_checkpoints: keep the full-state training checkpoints (otherwise only ``model.pt`` stays).
    """

    device: str = "cpu"
    progress: bool = True
    resume: bool = True
    pretrained_backbone: str | None = None
    keep_checkpoints: bool = False


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
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


def resolve_budget(args: argparse.Namespace) -> Budget:
    """The chosen budget with the command-line overrides applied.

    Raises:
        ValueError: a non-positive override.
    """
    budget = BUDGETS[args.budget]
    overrides: dict[str, Any] = {}
    for name, attr in (
        ("steps", "steps"),
        ("batch_size", "batch_size"),
        ("lr", "lr"),
        ("image_size", "image_size"),
        ("max_clicks", "max_clicks"),
        ("max_eval_objects", "max_eval_objects"),
        ("hard_cases", "num_hard_cases"),
    ):
        value = getattr(args, name)
        if value is not None:
            lowest = 0 if name == "hard_cases" else 1
            if value < lowest:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {lowest}, got {value}.")
            overrides[attr] = value
    if args.preset is not None:
        overrides["preset"] = args.preset
    if args.seeds is not None:
        if len(set(args.seeds)) != len(args.seeds):
            raise ValueError(f"--seeds must be distinct, got {args.seeds}.")
        overrides["seeds"] = tuple(args.seeds)
    return dataclasses.replace(budget, **overrides)


def _evenly_spaced(items: Sequence[Any], count: int | None) -> list[Any]:
    if count is None or count >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def load_items(
    dataset: str,
    dataset_dir: str | None,
    train_split: str | None,
    eval_split: str | None,
    max_eval_objects: int | None,
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], str]:
    """Training and evaluation items plus a one-line description of where they come from.

    The sample uses its ``train`` / ``heldout`` splits. Another dataset is loaded with ``split=`` options when
    splits are given; without them every 5th object (in dataset order) is held out for evaluation and the others
    train, so that the two sets never share an object.

    Raises:
        ValueError: a split given for one side only (other datasets), or an empty training / evaluation set.
    """
    if dataset == "sample":
        train = load_training_items("sample", dataset_dir, split=train_split or "train")
        evaluation = usable_items(load_training_items("sample", dataset_dir, split=eval_split or "heldout"))
        how = f"embedded sample pack, train split {train_split or 'train'}, eval split {eval_split or 'heldout'}"
    elif train_split is not None and eval_split is not None:
        train = load_training_items(dataset, dataset_dir, split=train_split)
        evaluation = load_training_items(dataset, dataset_dir, split=eval_split)
        how = f"{dataset} at {dataset_dir}, train split {train_split}, eval split {eval_split}"
    elif train_split is None and eval_split is None:
        everything = load_training_items(dataset, dataset_dir)
        evaluation = [item for i, item in enumerate(everything) if i % 5 == 4]
        train = [item for i, item in enumerate(everything) if i % 5 != 4]
        how = f"{dataset} at {dataset_dir}, every 5th object held out for evaluation (no splits given)"
    else:
        raise ValueError("give both --train-split and --eval-split, or neither, for datasets other than 'sample'.")
    if not train or not evaluation:
        raise ValueError(f"empty training ({len(train)}) or evaluation ({len(evaluation)}) set.")
    chosen = _evenly_spaced(evaluation, max_eval_objects)
    if len(chosen) < len(evaluation):
        how += f"; {len(chosen)} of {len(evaluation)} evaluation objects (evenly spaced)"
    return list(train), chosen, how


def train_method(
    spec: MethodSpec,
    budget: Budget,
    train_items: Sequence[Mapping[str, Any]],
    model_dir: Path,
    seed: int,
    options: RunOptions,
) -> dict[str, Any]:
    """Train one learned method for exactly ``budget.steps`` iterations; returns the training record.

    ``options.pretrained_backbone`` initialises the ViT of the AdaptiveClick variants (not DeepGrow's U-Net). Unless
    ``options.keep_checkpoints``, the full-state checkpoints (model + optimizer, for resuming) are deleted after
    training: the evaluation needs only ``model.pt``.
    """
    per_epoch = math.ceil(len(train_items) / budget.batch_size)
    epochs = math.ceil(budget.steps / per_epoch)
    milestone = epochs + 1 if budget.decay_at is None else max(1, round(budget.decay_at * budget.steps / per_epoch))
    overrides: dict[str, Any] = {"image_size": budget.image_size}
    backbone = options.pretrained_backbone
    if spec.head == "deepgrow_unet":  # a U-Net: its own widths, and no ViT for a pretrained backbone
        overrides["features"] = budget.deepgrow_features
        backbone = None
    start = time.perf_counter()
    trained = run_training(
        train_items,
        model_dir,
        preset=budget.preset,
        head=spec.head,
        loss=spec.loss,
        loss_kwargs=dict(spec.loss_kwargs),
        epochs=epochs,
        batch_size=budget.batch_size,
        lr=budget.lr,
        lr_milestones=[milestone],
        device=options.device,
        seed=seed,
        progress=options.progress,
        max_steps=budget.steps,
        model_overrides=overrides,
        pretrained_backbone=backbone,
    )
    if not options.keep_checkpoints:
        for state in model_dir.glob(f"{CHECKPOINT_PREFIX}_*.pt"):
            state.unlink()
    return {
        "checkpoint": trained["checkpoint"],
        "steps": int(trained["iterations"]),
        "seconds": time.perf_counter() - start,
        "seed": seed,
        "preset": budget.preset if spec.head != "deepgrow_unet" else "BasicUNet",
        "image_size": budget.image_size,
        "head": spec.head,
        "loss": spec.loss,
        "loss_kwargs": dict(spec.loss_kwargs),
        "batch_size": budget.batch_size,
        "lr": budget.lr,
        "lr_milestone_epoch": milestone,
        "epochs": epochs,
        "pretrained_backbone": backbone,
    }


def evaluate_method(
    predictor: Any,
    items: Sequence[Mapping[str, Any]],
    budget: Budget,
    label: str,
    mask_path: Path,
    progress: bool,
) -> NoCResult:
    """NoC protocol on ``items``; the final mask of every object is saved to ``mask_path`` (``.npz``)."""
    final_masks: dict[str, np.ndarray] = {}

    def keep_mask(item: Mapping[str, Any], record: Any, prob: np.ndarray) -> None:
        final_masks[f"m{len(final_masks)}"] = prob > PROB_THRESHOLD

    result = evaluate_noc(
        predictor,
        items,
        max_clicks=budget.max_clicks,
        iou_thresholds=THRESHOLDS,
        zoom_in=budget.zoom_in,
        flip=budget.flip,
        progress=progress,
        method=label,
        callback=keep_mask,
    )
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(mask_path, ids=np.array([r.object_id for r in result.records]), **final_masks)
    return result


def run_method(
    spec: MethodSpec,
    seed: int,
    budget: Budget,
    train_items: Sequence[Mapping[str, Any]],
    eval_items: Sequence[Mapping[str, Any]],
    output: Path,
    options: RunOptions,
) -> NoCResult:
    """Train (learned methods) and evaluate one method / seed, or load its stored result when resuming.

    Resuming also reuses a model whose training finished (``models/{name}/training.json``) but was not evaluated.
    """
    name = f"{spec.key}_seed{seed}" if spec.learned else spec.key
    json_path = output / "results" / f"{name}.json"
    mask_path = output / "masks" / f"{name}.npz"
    if options.resume and json_path.is_file() and mask_path.is_file():
        print(f"[compare] {name}: loading {json_path} (resume)", flush=True)
        return NoCResult.from_json(json_path)
    training = None
    if spec.learned:
        record_path = output / "models" / name / "training.json"
        if options.resume and record_path.is_file():
            training = json.loads(record_path.read_text())
            print(f"[compare] {name}: loading the model trained earlier ({record_path})", flush=True)
        else:
            print(f"[compare] {name}: training {budget.steps} steps ({spec.label})", flush=True)
            training = train_method(spec, budget, train_items, output / "models" / name, seed, options)
            record_path.write_text(json.dumps(training, indent=2))
            print(f"[compare] {name}: trained {training['steps']} steps in {training['seconds']:.0f} s", flush=True)
        predictor = Predictor.from_checkpoint(training["checkpoint"], device=options.device)
    else:
        predictor = get_baseline(spec.baseline)
    print(f"[compare] {name}: NoC evaluation on {len(eval_items)} objects", flush=True)
    result = evaluate_method(predictor, eval_items, budget, spec.label, mask_path, options.progress)
    result.settings.update({"method_key": spec.key, "seed": seed if spec.learned else None, "training": training})
    result.to_json(json_path)
    print(
        f"[compare] {name}: NoC85 {result.noc[0.85]:.2f}, NoC90 {result.noc[0.9]:.2f}, "
        f"mIoU@5 {result.miou_at_k[min(4, budget.max_clicks - 1)]:.3f}",
        flush=True,
    )
    return result


def _set_worker_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def run_tasks(
    tasks: Sequence[tuple[MethodSpec, int]],
    budget: Budget,
    train_items: Sequence[Mapping[str, Any]],
    eval_items: Sequence[Mapping[str, Any]],
    output: Path,
    options: RunOptions,
    jobs: int,
    threads: int,
) -> list[NoCResult]:
    """:func:`run_method` for every ``(method, seed)``, in order; ``jobs > 1`` runs them in that many processes.

    Each process is a fresh interpreter (``spawn``) with ``threads`` torch threads and no progress bars; the results
    come back in the order of ``tasks`` whatever the order in which they finish. On a CPU, several single-thread
    jobs use the cores better than one job with several threads (the small models scale poorly across threads).
    """
    if jobs == 1:
        return [run_method(spec, seed, budget, train_items, eval_items, output, options) for spec, seed in tasks]
    quiet = dataclasses.replace(options, progress=False)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_set_worker_threads, initargs=(threads,)) as pool:
        futures = [
            pool.submit(run_method, spec, seed, budget, train_items, eval_items, output, quiet) for spec, seed in tasks
        ]
        return [future.result() for future in futures]


def pooled(results: Sequence[NoCResult]) -> NoCResult:
    """One result holding the records of all seeds: its mIoU curve and NoC are the means over the seeds."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    return NoCResult(
        method=f"{first.method} ({len(results)} seeds)",
        max_clicks=first.max_clicks,
        iou_thresholds=first.iou_thresholds,
        records=[record for result in results for record in result.records],
        total_seconds=sum(result.total_seconds for result in results),
        settings=dict(first.settings),
    )


def _mean_sd(values: Sequence[float], digits: int) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def format_comparison_table(per_method: Mapping[str, Sequence[NoCResult]]) -> str:
    """Markdown table: one row per method, mean (± sample sd over seeds when there are several)."""
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
            _mean_sd([r.noc[0.85] for r in results], 2),
            _mean_sd([r.noc[0.9] for r in results], 2),
            _mean_sd([float(r.failures[0.85]) for r in results], 1 if len(results) > 1 else 0),
            _mean_sd([float(r.failures[0.9]) for r in results], 1 if len(results) > 1 else 0),
        ]
        row += [_mean_sd([r.miou_at_k[k - 1] for r in results if k <= r.max_clicks], 3) for k in (1, 3, 5)]
        row.append(_mean_sd([r.spc for r in results], 3))
        row.append(str(trainings[0]["steps"]) if trainings else "-")
        row.append(_mean_sd([t["seconds"] for t in trainings], 0) if trainings else "-")
        row.append(" ".join(str(s) for s in seeds) if seeds else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _final_iou(record: Any) -> float:
    return record.ious[-1] if record.ious else 0.0


def hard_case_ids(result: NoCResult, count: int) -> list[str]:
    """Object ids with the highest NoC90 for ``result`` (ties: lowest final IoU first)."""
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
    """Overlay figures of the ``count`` objects with the highest NoC90 for AFL (else the first method); first seed."""
    if count == 0 or not per_method:
        return []
    reference_key = "afl" if "afl" in per_method else next(iter(per_method))
    ids = hard_case_ids(per_method[reference_key][0], count)
    by_id = {str(item["object_id"]): item for item in eval_items}
    stored = {}
    for key, results in per_method.items():
        result = results[0]
        seed = result.settings.get("seed")
        name = f"{key}_seed{seed}" if seed is not None else key
        with np.load(output / "masks" / f"{name}.npz") as data:
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


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip() + (" (working tree with changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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
    """Write ``comparison.md``: command, machine, commit at the start of the run, settings and the table."""
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
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}.")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}.")
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
    commit = _git_commit()  # the code that runs, taken before a long run during which the repository may change
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


if __name__ == "__main__":
    main()
