# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning AdaptiveClick on the datastore's accepted labels (issue 7, "Training from the datastore").

The train task turns every image with a ``final`` label into slice-wise dataset items (contract: ``image`` float32
``[C, H, W]`` = ``volume[:, :, :, k]``, ``label`` uint8 ``[1, H, W]``): one item per label value present on a slice,
so each labelled structure of a slice is its own object (SPEC section 5, "each object on its own"). The items go to
``monai_adaptiveclick.engines.run_training`` (the training code the CLI and the bundle use) starting from
the served weights (the checkpoint file, else the shipped starter model, else, with ``--conf model untrained``, a
fresh network); the result replaces the served checkpoint atomically (``os.replace``), so the infer task reloads it
at the next click. MONAI Label runs the task in a subprocess; its log lines are the progress shown by
``GET /train/``, and :meth:`AdaptiveClickTrain.stats` (``/info/`` ``train_stats``) reports the last run.

A pair that fails the file checks (``monai_adaptiveclick.data.validation``: unreadable or non-finite image, label of
another shape or with bad values) is skipped with its reason in the log and in the statistics (``skipped``); it never
fails the run (issue 16).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import Any

import numpy as np
import torch
from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.tasks.train import TrainTask

from monai_adaptiveclick.data import BadInputError, Volume, load_image_volume
from monai_adaptiveclick.data.validation import check_finite, check_label_array
from monai_adaptiveclick.engines import TrainingSettings, run_training
from monai_adaptiveclick.networks import load_model, save_model

from ..configs import AppSettings
from ..models import ModelManager

__all__ = ["AdaptiveClickTrain", "build_training_items", "limit_training_share"]

logger = logging.getLogger(__name__)

RECIPE = "app_finetune"
"""The training recipe of the task (``configs/app_finetune.json``); a request overrides any of :data:`OPTIONS`."""
OPTIONS = ("epochs", "batch_size", "lr", "max_steps", "max_extra_clicks", "max_train_items", "min_object_area", "seed")


def _read_pair(
    image_path: str, label_path: str, sequences: tuple[str, ...] | None, max_label: int
) -> tuple[Volume, np.ndarray]:
    """The image volume and its integer ``[H, W, D]`` label, checked (``data.validation``), else ``BadInputError``."""
    volume = load_image_volume(image_path, sequences)
    check_finite(volume.data, os.path.basename(image_path))
    label_volume = load_image_volume(label_path)
    name = os.path.basename(label_path)
    if label_volume.data.shape[0] != 1:
        raise BadInputError(f"{name}: expected a single-channel label, got {label_volume.data.shape[0]} channels")
    label = label_volume.data[0]
    check_label_array(label, name, volume.data.shape[1:], max_label)
    return volume, np.rint(label).astype(np.int64)


def build_training_items(
    pairs: list[tuple[str, str]],
    sequences: tuple[str, ...] | None = None,
    min_area: int = 10,
    max_items: int | None = None,
    skipped: list[str] | None = None,
    max_label: int = 255,
) -> list[dict]:
    """Slice-wise training items from (image, label) volume pairs; a pair that fails the file checks is skipped.

    Args:
        pairs: ``(image path, label path)`` of each labelled volume; the label has the image's spatial shape.
        sequences: the model's MRI sequence names (multi-sequence siblings, ``data.load_image_volume``), or ``None``;
            the images keep their own channels (the training transform matches them to the model, as the Predictor).
        min_area: objects with fewer pixels on a slice are skipped.
        max_items: keep at most this many items, evenly spread over the list (``None`` = all).
        skipped: when given, one line per skipped pair (``"<image> (label <tag>/<file>): <reason>"``) is appended to it.
        max_label: largest label value accepted.

    Returns:
        Dataset items ``{"image", "label", "object_id", "meta"}``; ``object_id`` is ``<file>:k<slice>:v<value>``.
        A pair whose image is unreadable, truncated or non-finite, or whose label differs in shape from the image or
        holds non-integer, negative or too large values, gives no item; the reason is logged as a warning (issue 16).

    Raises:
        ValueError: a bad argument.
    """
    if min_area < 1:
        raise ValueError(f"min_area must be >= 1, got {min_area}.")
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be >= 1 or None, got {max_items}.")
    items: list[dict] = []
    for image_path, label_path in pairs:
        try:
            volume, label = _read_pair(image_path, label_path, sequences, max_label)
        except (ValueError, OSError) as err:  # BadInputError, a vanished file
            label_name = os.path.join(os.path.basename(os.path.dirname(label_path)), os.path.basename(label_path))
            reason = f"{os.path.basename(image_path)} (label {label_name}): {err}"
            logger.warning(f"AdaptiveClick train: skipping {reason}")
            if skipped is not None:
                skipped.append(reason)
            continue
        name = os.path.basename(image_path)
        for k in np.flatnonzero(label.reshape(-1, label.shape[2]).any(axis=0)):
            plane = label[:, :, k]
            for value in np.unique(plane[plane != 0]):
                mask = plane == value
                if int(mask.sum()) < min_area:
                    continue
                items.append(
                    {
                        "image": np.ascontiguousarray(volume.data[..., k], dtype=np.float32),
                        "label": mask[None].astype(np.uint8),
                        "object_id": f"{name}:k{int(k)}:v{int(value)}",
                        "meta": {"image": image_path, "label": label_path, "slice": int(k), "value": int(value)},
                    }
                )
    if max_items is not None and len(items) > max_items:
        keep = np.unique(np.linspace(0, len(items) - 1, max_items).round().astype(int))
        items = [items[i] for i in keep]
    return items


def limit_training_share(threads: int, nice: int) -> None:
    """Run the rest of this process with ``threads`` torch / OpenMP threads and ``nice`` more niceness.

    Raises:
        ValueError: ``threads < 1`` or ``nice < 0``.
    """
    if threads < 1 or nice < 0:
        raise ValueError(f"need threads >= 1 and nice >= 0, got {threads} and {nice}.")
    torch.set_num_threads(int(threads))
    if nice and hasattr(os, "nice"):
        os.nice(int(nice))


class AdaptiveClickTrain(TrainTask):
    """MONAI Label train task: fine-tune the served AdaptiveClick model on ``labels/final``.

    Args:
        settings: parsed app settings; the result is written to ``settings.checkpoint``.
        models: the model manager; the weights it serves are the starting point (``LoadedModel.source``: the
            checkpoint file, ``pretrained:NAME`` for a shipped model, ``None`` for the untrained network).
        description: shown by clients.

    Request keys (:data:`OPTIONS`, defaults from the ``app_finetune`` recipe, shown by :meth:`config`): ``epochs``,
    ``batch_size``, ``lr``, ``max_steps`` (0 or null = no limit), ``max_extra_clicks``, ``max_train_items``,
    ``min_object_area``, ``seed``.
    """

    def __init__(
        self,
        settings: AppSettings,
        models: ModelManager,
        description: str = "Fine-tune AdaptiveClick on the accepted (final) labels, slice by slice",
    ) -> None:
        super().__init__(description)
        self.settings = settings
        self.models = models

    @property
    def stats_path(self) -> str:
        """JSON file with the statistics of the last run, next to the checkpoint."""
        return self.settings.checkpoint + ".train.json"

    def config(self) -> dict:
        """Default request values, shown by clients as editable options."""
        defaults = TrainingSettings.from_recipe(RECIPE)
        return {key: getattr(defaults, key) for key in OPTIONS}

    def stats(self) -> dict:
        """Statistics of the last finished run (``{}`` before the first one)."""
        if not os.path.isfile(self.stats_path):
            return {}
        with open(self.stats_path, encoding="utf-8") as handle:
            return json.load(handle)

    def _settings(self, request: dict, loaded: Any) -> TrainingSettings:
        """The recipe's settings, the request's options over them, the served model's architecture and weights
        (``init_checkpoint``: the served file, ``pretrained:NAME``, or ``None`` for the untrained network).

        Raises:
            ValueError: an option of the wrong type or range, naming it.
        """
        overrides: dict[str, Any] = {}
        for key in OPTIONS:
            value = request.get(key)
            if value in (None, ""):
                continue
            kind = float if key == "lr" else int
            try:
                overrides[key] = kind(value)
            except (TypeError, ValueError) as err:
                raise ValueError(f"train option {key!r} must be a {kind.__name__}, got {value!r}.") from err
        if overrides.get("max_steps") == 0:
            overrides.pop("max_steps")
        config = dict(loaded.config)
        in_channels, head = int(config.pop("in_channels")), str(config.pop("head"))
        return TrainingSettings.from_recipe(
            RECIPE,
            preset=self.settings.preset,
            in_channels=in_channels,
            head=head,
            model_overrides=config,
            init_checkpoint=loaded.source,
            **overrides,
        )

    @staticmethod
    def _pairs(datastore: Datastore) -> tuple[list[tuple[str, str]], list[str]]:
        """``(image file, final label file)`` of every labelled image, and the ids the datastore refuses (reasons)."""
        pairs, skipped = [], []
        for image_id in datastore.get_labeled_images():
            try:
                label_id = datastore.get_label_by_image_id(image_id, DefaultLabelTag.FINAL)
                if label_id:
                    image_uri = datastore.get_image_uri(image_id)
                    pairs.append((image_uri, datastore.get_label_uri(label_id, DefaultLabelTag.FINAL)))
            except ValueError as err:  # RequestError: an id or a link the datastore refuses
                skipped.append(f"{image_id}: {err}")
                logger.warning(f"AdaptiveClick train: skipping {image_id!r}: {err}")
        return pairs, skipped

    def __call__(self, request: dict, datastore: Datastore) -> dict:
        """Run one fine-tuning round and publish the checkpoint; returns the run statistics.

        MONAI Label runs the task in a process of its own: it lowers that process's priority (``train_nice``) and
        its torch threads (``train_threads``), so that the server keeps answering clicks at interactive speed.
        """
        started = time.time()
        limit_training_share(self.settings.train_threads, self.settings.train_nice)
        loaded = self.models.get()
        if loaded.baseline:
            raise ValueError(
                f"the server serves the classical baseline {loaded.baseline!r} (--conf baseline): nothing to train."
            )
        settings = self._settings(request, loaded)
        pairs, skipped = self._pairs(datastore)
        if not pairs and not skipped:
            raise ValueError("no image has a final label in the datastore: save at least one label first.")
        bad_pairs: list[str] = []
        items = build_training_items(
            pairs,
            loaded.sequences,
            settings.min_object_area,
            settings.max_train_items,
            bad_pairs,
            self.settings.max_label,
        )
        skipped += bad_pairs
        used = len(pairs) - len(bad_pairs)
        if not items:
            raise ValueError(
                f"the {used} usable final labels hold no object of at least {settings.min_object_area} pixels"
                + (f"; skipped: {'; '.join(skipped)}" if skipped else ".")
            )
        logger.info(f"AdaptiveClick train: {len(items)} slice objects from {used} labelled images")

        run_dir = os.path.join(os.path.dirname(self.settings.checkpoint), "train_run")
        shutil.rmtree(run_dir, ignore_errors=True)
        result = run_training(items, run_dir, settings, device=self.settings.device, progress=False)
        target = self.settings.checkpoint
        os.makedirs(os.path.dirname(target), exist_ok=True)
        staging = f"{target}.tmp{os.getpid()}"
        extra = {"fine_tuned_from": loaded.source, "iterations": int(result.get("iterations", 0))}
        if loaded.sequences:
            extra["sequences"] = list(loaded.sequences)
        save_model(load_model(result["checkpoint"], map_location="cpu"), staging, **extra)
        os.replace(staging, target)

        history = result.get("history") or []
        stats = {
            "checkpoint": target,
            "started_from": loaded.source,
            "images": used,
            "skipped": skipped,
            "items": len(items),
            "iterations": int(result.get("iterations", 0)),
            "epochs": settings.epochs,
            "history": history[-20:] if isinstance(history, list) else history,
            "start_ts": int(started),
            "duration_s": round(time.time() - started, 2),
        }
        with open(self.stats_path, "w", encoding="utf-8") as handle:
            json.dump(stats, handle, indent=2, default=str)
        logger.info(f"AdaptiveClick train: published {target} after {stats['iterations']} iterations")
        return stats
