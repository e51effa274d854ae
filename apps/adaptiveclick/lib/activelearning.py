# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Next-sample strategy that never hands out an image failing the file checks (issue 16).

MONAI Label's ``random`` strategy picks an unlabeled image with a weight that grows with the time since it was last
handed out. :class:`UsableRandom` keeps that rule and checks the picked image with the datastore's
``image_problem`` (``lib.datastore.ConfinedLocalDatastore``: readable, 3-D / 4-D, finite voxels, cached per file
version); a bad image is skipped with its reason in the log and the pick is repeated among the others.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy

__all__ = ["UsableRandom"]

logger = logging.getLogger(__name__)


class UsableRandom(Strategy):
    """Random unlabeled image (least recently handed out first), skipping images that cannot be used.

    Args:
        rng: the random generator (a seeded one in tests); default the ``random`` module's.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        super().__init__("Random unlabeled image; images that fail the file checks are skipped")
        self._rng = rng if rng is not None else random.Random()

    def __call__(self, request: dict, datastore: Datastore) -> dict[str, Any] | None:
        """``{"id", "weight"}`` of the next image to label, or ``None`` when no usable unlabeled image is left."""
        strategy = request.get("strategy") or "random"
        now = int(time.time())
        weights = {}
        for image in datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels")):
            info = datastore.get_image_info(image).get("strategy", {})
            last = info.get(strategy, {}).get("ts", 0) if isinstance(info, dict) else 0
            weights[image] = max(now - int(last or 0), 0)
        problem_of = getattr(datastore, "image_problem", lambda _: None)
        while weights:
            names = list(weights)
            values = [weights[n] for n in names]
            image = self._rng.choices(names, weights=values if sum(values) > 0 else None)[0]
            problem = problem_of(image)
            if problem is None:
                return {"id": image, "weight": weights[image]}
            logger.warning(f"next sample: skipping image {image!r}: {problem}")
            del weights[image]
        return None
