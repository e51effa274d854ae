# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""MONAI Label app serving AdaptiveClick (Lin et al., TNNLS 2024) for 3D Slicer and OHIF (issue 7).

Start it with ``monailabel start_server --app apps/adaptiveclick --studies <folder> --conf checkpoint <model.pt>``
(see README.md). One infer task ``adaptiveclick`` (deepgrow type, dimension 2: click mode in Slicer, refining the
slice click by click) and one train task ``adaptiveclick`` (fine-tuning on ``labels/final``). ``--conf`` keys are
listed in ``lib/configs.py``.

Errors in a request (no clicks, clicks outside the volume, an unknown image, ...) come back as an HTTP 4xx error
whose JSON ``detail`` names the problem; unexpected failures as a 500 with the exception message. The server keeps
serving either way.
"""

from __future__ import annotations

import logging
import os

from fastapi import HTTPException
from lib.common import RequestError
from lib.configs import parse_settings
from lib.infers import AdaptiveClickInfer
from lib.models import ModelManager
from lib.trainers import AdaptiveClickTrain
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.exception import MONAILabelException
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

__all__ = ["AdaptiveClickApp", "MODEL_NAME"]

logger = logging.getLogger(__name__)

MODEL_NAME = "adaptiveclick"


class AdaptiveClickApp(MONAILabelApp):
    """The AdaptiveClick MONAI Label app.

    Args:
        app_dir: this folder.
        studies: the studies folder (local datastore) or a DICOMweb URL.
        conf: ``--conf`` key/value pairs (``lib/configs.py``).
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.settings = parse_settings(app_dir, conf)
        self.models = ModelManager(self.settings)
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="AdaptiveClick",
            description="Click-aware transformer (AdaptiveClick) for interactive slice-by-slice segmentation",
            version="0.1.0",
            labels=list(self.settings.labels),
        )

    def init_infers(self) -> dict[str, InferTask]:
        """The ``adaptiveclick`` infer task (deepgrow type, dimension 2)."""
        return {MODEL_NAME: AdaptiveClickInfer(self.settings, self.models)}

    def init_trainers(self) -> dict[str, TrainTask]:
        """The ``adaptiveclick`` train task (fine-tunes on ``labels/final``)."""
        return {MODEL_NAME: AdaptiveClickTrain(self.settings, self.models)}

    def infer(self, request: dict, datastore=None) -> dict:
        """Run an infer task, turning request problems into HTTP errors whose message a client can show.

        Raises:
            HTTPException: 404 for an unknown model or image id, 400 for a bad request, 500 for a failure.
        """
        model = request.get("model")
        if model not in self._infers:
            raise HTTPException(404, f"unknown model {model!r}; available: {sorted(self._infers)}.")
        image = request.get("image")
        store = datastore if datastore else self.datastore()
        if isinstance(image, str) and not image:
            raise HTTPException(400, "no image given: pass ?image=<image id>.")
        if isinstance(image, str) and not store.get_image_uri(image) and not os.path.isfile(image):
            raise HTTPException(404, f"unknown image {image!r}: no such image in the datastore.")
        try:
            return super().infer(request, datastore)
        except RequestError as err:
            raise HTTPException(err.status_code, err.message) from err
        except MONAILabelException as err:
            raise HTTPException(400, str(err.msg)) from err
        except HTTPException:
            raise
        except Exception as err:
            logger.exception("AdaptiveClick inference failed")
            raise HTTPException(500, f"AdaptiveClick inference failed: {type(err).__name__}: {err}") from err
