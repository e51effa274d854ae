# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The training and held-out evaluation objects every method shares (``--dataset``, splits, ``--max-eval-objects``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monai_adaptiveclick.engines import load_training_items, usable_items

__all__ = ["evenly_spaced", "load_items"]


def evenly_spaced(items: Sequence[Any], count: int | None) -> list[Any]:
    """At most ``count`` of ``items``, evenly spaced from the first to the last (``None``: all of them)."""
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

    Args:
        dataset: registered dataset name (``"sample"``: the embedded sample pack).
        dataset_dir: dataset root folder (not needed for the sample).
        train_split: training split (sample default ``train``).
        eval_split: evaluation split (sample default ``heldout``).
        max_eval_objects: keep at most this many evaluation objects, evenly spaced (``None``: all).

    Returns:
        ``(training items, evaluation items, description)``.

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
    chosen = evenly_spaced(evaluation, max_eval_objects)
    if len(chosen) < len(evaluation):
        how += f"; {len(chosen)} of {len(evaluation)} evaluation objects (evenly spaced)"
    return list(train), chosen, how
