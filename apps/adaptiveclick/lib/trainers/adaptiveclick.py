# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning AdaptiveClick on the datastore's accepted labels (issue 7, "Training from the datastore").

The train task turns every image with a ``final`` label into slice-wise dataset items (contract: ``image`` float32
``[C, H, W]`` = ``volume[:, :, :, k]``, ``label`` uint8 ``[1, H, W]``): one item per label value present on a slice,
so each labelled structure of a slice is its own object (SPEC section 5, "each object on its own"). The items go to
``monai_adaptiveclick.engines.run_training`` (the training code the CLI and the bundle use) starting from
the served checkpoint; the result replaces the served checkpoint atomically (``os.replace``), so the infer task
reloads it at the next click. MONAI Label runs the task in a subprocess; its log lines are the progress shown by
``GET /train/``, and :meth:`AdaptiveClickTrain.stats` (``/info/`` ``train_stats``) reports the last run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import Any

import numpy as np
from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.tasks.train import TrainTask

from monai_adaptiveclick.data import load_image_volume
from monai_adaptiveclick.engines import TrainingSettings, run_training
from monai_adaptiveclick.networks import load_model, save_model

from ..configs import AppSettings
from ..models import ModelManager

__all__ = ["AdaptiveClickTrain", "build_training_items"]

logger = logging.getLogger(__name__)

RECIPE = "app_finetune"
"""The training recipe of the task (``configs/app_finetune.json``); a request overrides any of :data:`OPTIONS`."""
OPTIONS = ("epochs", "batch_size", "lr", "max_steps", "max_extra_clicks", "max_train_items", "min_object_area", "seed")


def build_training_items(
    pairs: list[tuple[str, str]],
    sequences: tuple[str, ...] | None = None,
    min_area: int = 10,
    max_items: int | None = None,
) -> list[dict]:
    """Slice-wise training items from (image, label) volume pairs.

    Args:
        pairs: ``(image path, label path)`` of each labelled volume; the label has the image's spatial shape.
        sequences: the model's MRI sequence names (multi-sequence siblings, ``data.load_image_volume``), or ``None``;
            the images keep their own channels (the training transform matches them to the model, as the Predictor).
        min_area: objects with fewer pixels on a slice are skipped.
        max_items: keep at most this many items, evenly spread over the list (``None`` = all).

    Returns:
        Dataset items ``{"image", "label", "object_id", "meta"}``; ``object_id`` is ``<file>:k<slice>:v<value>``.

    Raises:
        ValueError: a label whose shape differs from its image, or a bad argument.
    """
    if min_area < 1:
        raise ValueError(f"min_area must be >= 1, got {min_area}.")
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be >= 1 or None, got {max_items}.")
    items: list[dict] = []
    for image_path, label_path in pairs:
        volume = load_image_volume(image_path, sequences)
        label = load_image_volume(label_path).data[0]
        label = np.rint(label).astype(np.int64).reshape(label.shape[:2] + (-1,))
        if label.shape != volume.data.shape[1:]:
            raise ValueError(
                f"label {label_path} has shape {label.shape} but image {image_path} has {volume.data.shape[1:]}."
            )
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


class AdaptiveClickTrain(TrainTask):
    """MONAI Label train task: fine-tune the served AdaptiveClick model on ``labels/final``.

    Args:
        settings: parsed app settings; the result is written to ``settings.checkpoint``.
        models: the model manager; its current file is the starting point (the untrained preset when none).
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
        """The recipe's settings, the request's options over them, the served model's architecture.

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
            init_checkpoint=loaded.path,
            **overrides,
        )

    def __call__(self, request: dict, datastore: Datastore) -> dict:
        """Run one fine-tuning round and publish the checkpoint; returns the run statistics."""
        started = time.time()
        loaded = self.models.get()
        settings = self._settings(request, loaded)
        pairs = []
        for image_id in datastore.get_labeled_images():
            label_id = datastore.get_label_by_image_id(image_id, DefaultLabelTag.FINAL)
            if label_id:
                pairs.append(
                    (datastore.get_image_uri(image_id), datastore.get_label_uri(label_id, DefaultLabelTag.FINAL))
                )
        if not pairs:
            raise ValueError("no image has a final label in the datastore: save at least one label first.")
        items = build_training_items(pairs, loaded.sequences, settings.min_object_area, settings.max_train_items)
        if not items:
            raise ValueError(
                f"the {len(pairs)} final labels hold no object of at least {settings.min_object_area} pixels."
            )
        logger.info(f"AdaptiveClick train: {len(items)} slice objects from {len(pairs)} labelled images")

        run_dir = os.path.join(os.path.dirname(self.settings.checkpoint), "train_run")
        shutil.rmtree(run_dir, ignore_errors=True)
        result = run_training(items, run_dir, settings, device=self.settings.device, progress=False)
        target = self.settings.checkpoint
        os.makedirs(os.path.dirname(target), exist_ok=True)
        staging = f"{target}.tmp{os.getpid()}"
        extra = {"fine_tuned_from": loaded.path, "iterations": int(result.get("iterations", 0))}
        if loaded.sequences:
            extra["sequences"] = list(loaded.sequences)
        save_model(load_model(result["checkpoint"], map_location="cpu"), staging, **extra)
        os.replace(staging, target)

        history = result.get("history") or []
        stats = {
            "checkpoint": target,
            "started_from": loaded.path,
            "images": len(pairs),
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
