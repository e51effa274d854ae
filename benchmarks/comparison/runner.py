# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""One method / seed end to end: resume, train (learned methods), NoC evaluation, stored result and final masks.

Every method, learned or classical, is evaluated with the same NoC protocol (SPEC section 5,
:func:`monai_adaptiveclick.engines.evaluate_noc`) on the same held-out objects. :func:`run_method` is what a
``--jobs`` worker process runs (:mod:`comparison.pool`); it is a module-level function so that it pickles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from comparison import layout
from comparison.methods import MethodSpec
from comparison.settings import PROB_THRESHOLD, THRESHOLDS, Budget, RunOptions
from comparison.training import train_method
from monai_adaptiveclick.engines import NoCResult, evaluate_noc, get_baseline
from monai_adaptiveclick.inference import Predictor

__all__ = ["evaluate_method", "run_method"]


def evaluate_method(
    predictor: Any,
    items: Sequence[Mapping[str, Any]],
    budget: Budget,
    label: str,
    mask_path: Path,
    progress: bool,
) -> NoCResult:
    """NoC protocol on ``items``; the final mask of every object is saved to ``mask_path`` (``.npz``).

    Args:
        predictor: a learned model's :class:`~monai_adaptiveclick.inference.Predictor` or a classical baseline.
        items: the evaluation objects.
        budget: click budget and TTA settings.
        label: method name stored in the result.
        mask_path: output ``.npz`` (``ids`` plus ``m0``, ``m1``, ... in the order of the records).
        progress: show a progress bar.

    Returns:
        The NoC result of the method on ``items``.
    """
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

    Args:
        spec: the method.
        seed: training seed (ignored by a classical method, whose result is stored without one).
        budget: settings shared by every method.
        train_items: the training objects.
        eval_items: the evaluation objects.
        output: the comparison's output folder (files as in :mod:`comparison.layout`).
        options: how the method runs.

    Returns:
        The NoC result, its ``settings`` holding ``method_key``, ``seed`` and the ``training`` record.
    """
    stored_seed = seed if spec.learned else None
    name = layout.run_name(spec.key, stored_seed)
    json_path = layout.result_path(output, name)
    mask_path = layout.mask_path(output, name)
    if options.resume and json_path.is_file() and mask_path.is_file():
        print(f"[compare] {name}: loading {json_path} (resume)", flush=True)
        return NoCResult.from_json(json_path)
    training = None
    if spec.learned:
        record_path = layout.training_record_path(output, name)
        if options.resume and record_path.is_file():
            training = json.loads(record_path.read_text())
            print(f"[compare] {name}: loading the model trained earlier ({record_path})", flush=True)
        else:
            print(f"[compare] {name}: training {budget.steps} steps ({spec.label})", flush=True)
            training = train_method(spec, budget, train_items, layout.model_dir(output, name), seed, options)
            record_path.write_text(json.dumps(training, indent=2))
            print(f"[compare] {name}: trained {training['steps']} steps in {training['seconds']:.0f} s", flush=True)
        predictor = Predictor.from_checkpoint(training["checkpoint"], device=options.device)
    else:
        predictor = get_baseline(spec.baseline)
    print(f"[compare] {name}: NoC evaluation on {len(eval_items)} objects", flush=True)
    result = evaluate_method(predictor, eval_items, budget, spec.label, mask_path, options.progress)
    result.settings.update({"method_key": spec.key, "seed": stored_seed, "training": training})
    result.to_json(json_path)
    print(
        f"[compare] {name}: NoC85 {result.noc[0.85]:.2f}, NoC90 {result.noc[0.9]:.2f}, "
        f"mIoU@5 {result.miou_at_k[min(4, budget.max_clicks - 1)]:.3f}",
        flush=True,
    )
    return result
