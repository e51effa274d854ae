# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Training data: checked dataset items, the training transform, the cached dataset and its loader (SPEC section 4).

The transform is one MONAI ``Compose``:

1. ``transforms.PrepareImaged``: the Predictor's own channel matching and intensity normalisation (the only
   normalisation of the pipeline);
2. ``transforms.training_augmentation``: scale and crop around the object or the whole-image view, flips,
   intensity jitter; adds an all-zero ``ignore`` mask to items without one;
3. ``transforms.SampleInitialClicksd``: the initial clicks, never on ``ignore`` pixels, padded to a fixed count;
4. only the batch keys are kept: ``image``, ``label``, ``ignore``, ``click_coords``, ``click_signs``.

The deterministic first step is cached by ``CacheDataset``; everything random runs again every epoch. With
``synthetic_share > 0`` each epoch also holds ``n_real * share / (1 - share)`` synthetic samples, each drawn fresh by
``data.SynthesizeObjectd`` (SynthSeg-style, SPEC section 11) in front of the same transform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import CacheDataset, DataLoader, Dataset
from monai.transforms import Compose, SelectItemsd

from monai_adaptiveclick.data import SynthesizeObjectd
from monai_adaptiveclick.transforms import PrepareImaged, SampleInitialClicksd, training_augmentation

from .settings import TrainingSettings

__all__ = [
    "BATCH_KEYS",
    "create_train_dataset",
    "create_train_loader",
    "load_training_items",
    "training_transform",
    "usable_items",
]

BATCH_KEYS = ("image", "label", "ignore", "click_coords", "click_signs")


def usable_items(items: Sequence[Mapping[str, Any]], min_area: int = 1) -> list[Mapping[str, Any]]:
    """Keep the dataset items whose object has at least ``min_area`` pixels outside ``ignore``.

    Raises:
        ValueError: an item misses ``image`` / ``label`` or has inconsistent shapes.

    Example:
        >>> empty = {"image": np.zeros((1, 4, 4)), "label": np.zeros((1, 4, 4))}
        >>> full = {"image": np.zeros((1, 4, 4)), "label": np.ones((1, 4, 4))}
        >>> len(usable_items([empty, full])), len(usable_items([full], min_area=17))
        (1, 0)
    """
    kept = []
    for index, item in enumerate(items):
        if "image" not in item or "label" not in item:
            raise ValueError(f"dataset item {index} needs 'image' and 'label' keys, got {sorted(item)}.")
        image, label = np.asarray(item["image"]), np.asarray(item["label"])
        if image.ndim != 3 or label.ndim != 3 or label.shape[0] != 1 or image.shape[1:] != label.shape[1:]:
            raise ValueError(
                f"dataset item {index} ({item.get('object_id', '?')}): expected image [C, H, W] and label [1, H, W] "
                f"of the same size, got {image.shape} and {label.shape}."
            )
        foreground = label > 0
        if item.get("ignore") is not None:
            foreground &= ~(np.asarray(item["ignore"]).reshape(label.shape) > 0)
        if int(foreground.sum()) >= min_area:
            kept.append(item)
    return kept


def load_training_items(
    dataset: str = "sample", dataset_dir: str | Path | None = None, split: str | None = "train", **options: Any
) -> list[Mapping[str, Any]]:
    """Load the items of a registered dataset and check them before any training starts.

    Args:
        dataset: a name of :func:`monai_adaptiveclick.data.list_datasets` (``"sample"`` = the embedded pack).
        dataset_dir: the dataset root (``None``: the dataset's default, e.g. the embedded sample).
        split: the sample-pack split (``"train"``, ``"heldout"`` or ``"all"``); only used for ``"sample"``.
        options: forwarded to :func:`monai_adaptiveclick.data.get_dataset`.

    Raises:
        FileNotFoundError: ``dataset_dir`` does not exist.
        ValueError: the dataset has no item with a non-empty label.
    """
    from monai_adaptiveclick.data import get_dataset

    if dataset_dir not in (None, "") and not Path(dataset_dir).exists():
        raise FileNotFoundError(f"dataset_dir {str(dataset_dir)!r} for dataset {dataset!r} does not exist.")
    root = None if dataset_dir in (None, "") else str(dataset_dir)
    if dataset == "sample" and split is not None:
        options = {**options, "split": split}
    items = usable_items(get_dataset(dataset, root=root, **options))
    if not items:
        raise ValueError(f"dataset {dataset!r} (root {root!r}) has zero usable objects (no non-empty label).")
    return items


def training_transform(image_size: int, in_channels: int, settings: TrainingSettings) -> Compose:
    """The training ``Compose`` of the module docstring (not yet seeded: call ``set_random_state``)."""
    return Compose(
        [
            PrepareImaged("image", in_channels),
            training_augmentation(image_size, **settings.augmentation_options()),
            SampleInitialClicksd(
                "label",
                ignore_key="ignore",
                coords_key="click_coords",
                signs_key="click_signs",
                max_points=settings.max_initial_clicks,
            ),
            SelectItemsd(BATCH_KEYS),
        ]
    )


def create_train_dataset(
    items: Sequence[Mapping[str, Any]], image_size: int, in_channels: int, settings: TrainingSettings
) -> torch.utils.data.Dataset:
    """Training samples: a MONAI ``CacheDataset`` of the real items, plus synthetic ones if the settings ask.

    The real items' channel / intensity step is cached, the rest runs per epoch. With ``settings.synthetic_share``
    = ``s > 0``, ``round(n_real * s / (1 - s))`` synthetic samples (fresh every epoch) join them in a
    ``ConcatDataset``.

    Raises:
        ValueError: no item has an object of ``settings.min_object_area`` pixels.
    """
    items = usable_items(items, settings.min_object_area)
    if not items:
        raise ValueError(f"the training set has zero usable objects (of at least {settings.min_object_area} pixels).")
    transform = training_transform(image_size, in_channels, settings).set_random_state(seed=settings.seed)
    real = CacheDataset(data=list(items), transform=transform, progress=False, num_workers=0)
    share = settings.synthetic_share
    if share == 0:
        return real
    count = max(1, round(len(items) * share / (1 - share)))
    synthetic_transform = Compose(
        [SynthesizeObjectd(settings.synthetic_options), training_transform(image_size, in_channels, settings)]
    ).set_random_state(seed=settings.seed + 1)
    synthetic = Dataset(data=[{} for _ in range(count)], transform=synthetic_transform)
    return torch.utils.data.ConcatDataset([real, synthetic])


def create_train_loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    num_workers: int = 0,
    sampler: torch.utils.data.Sampler | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A shuffling MONAI ``DataLoader`` (``sampler``, e.g. a ``DistributedSampler``, replaces the shuffle)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
    )
