# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""MONAI Label app serving AdaptiveClick (Lin et al., TNNLS 2024) for 3D Slicer and OHIF (issues 7, 16).

Start it with ``monailabel start_server --app apps/adaptiveclick --studies <folder> --conf checkpoint <model.pt>``
(see README.md). Infer task ``adaptiveclick`` (deepgrow type, dimension 2: click mode in Slicer, refining the
slice click by click; ``"propagate": true`` segments through the volume), infer task ``adaptiveclick_3d`` (deepgrow
type, dimension 3: always propagates, issue 15) and one train task ``adaptiveclick`` (fine-tuning on
``labels/final``). ``--conf`` keys are listed in ``lib/configs.py``.

What the app guarantees (README "What the app guarantees"): image ids and label tags resolve only inside the studies
folder (``lib/datastore.py``), uploads and saved labels are checked before they are stored, bad stored files are
skipped with a logged reason, and every malformed request (``lib/guards.py``, ``lib/interaction.py``) gets an HTTP
4xx whose JSON ``detail`` names the problem. Unexpected failures answer 500 with the exception message (no
traceback); the server keeps serving either way.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException
from lib.activelearning import UsableRandom
from lib.common import RequestError
from lib.configs import parse_settings
from lib.datastore import ConfinedLocalDatastore, check_image_id, check_label_tag
from lib.guards import install_request_guards
from lib.infers import AdaptiveClickInfer
from lib.interaction import check_click_count
from lib.models import ModelManager
from lib.trainers import AdaptiveClickTrain
from monailabel.config import settings as label_settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.exception import MONAILabelException
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask

__all__ = ["AdaptiveClickApp", "MODEL_3D", "MODEL_NAME"]

logger = logging.getLogger(__name__)

MODEL_NAME = "adaptiveclick"
MODEL_3D = "adaptiveclick_3d"


def _flag(value: object, name: str) -> bool:
    """A boolean request field (JSON boolean, or the strings true / false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", ""):
        return value.strip().lower() == "true"
    raise RequestError(f"{name!r} must be true or false, got {value!r:.80}.")


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
        """``adaptiveclick`` (deepgrow type, dimension 2; ``"propagate": true`` answers in 3-D) and
        ``adaptiveclick_3d`` (deepgrow type, dimension 3: always propagates through the volume), one model and one
        volume cache."""
        slices = AdaptiveClickInfer(self.settings, self.models)
        volume = AdaptiveClickInfer(
            self.settings,
            self.models,
            description="AdaptiveClick 3-D: clicks on any slices, propagated through the volume",
            always_propagate=True,
            volumes=slices.volumes,
        )
        return {MODEL_NAME: slices, MODEL_3D: volume}

    def init_trainers(self) -> dict[str, TrainTask]:
        """The ``adaptiveclick`` train task (fine-tunes on ``labels/final``)."""
        return {MODEL_NAME: AdaptiveClickTrain(self.settings, self.models)}

    def init_datastore(self) -> Datastore:
        """The studies folder as a :class:`lib.datastore.ConfinedLocalDatastore` (remote datastores unchanged)."""
        if self.studies.startswith(("http://", "https://")):
            return super().init_datastore()
        return ConfinedLocalDatastore(
            self.studies,
            max_channels=self.settings.max_channels,
            max_label=self.settings.max_label,
            extensions=label_settings.MONAI_LABEL_DATASTORE_FILE_EXT,
            auto_reload=label_settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=label_settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_strategies(self) -> dict[str, Strategy]:
        """``random``: MONAI Label's rule, skipping images that fail the file checks."""
        return {"random": UsableRandom()}

    def on_init_complete(self) -> None:
        """Server start: MONAI Label's own start-up, then the request guards on its endpoints (``lib/guards.py``)."""
        super().on_init_complete()
        install_request_guards()

    def _image_file(self, store: Datastore, image_id: str) -> str:
        if isinstance(store, ConfinedLocalDatastore):
            return store.resolve_image(image_id)
        uri = store.get_image_uri(image_id)
        if not uri:
            raise RequestError(f"unknown image {image_id!r}: no such image in the datastore.", 404)
        return uri

    def infer(self, request: dict, datastore: Datastore | None = None) -> dict:
        """Run the infer task on a datastore image, answering request problems with HTTP errors a client can show.

        Unlike ``MONAILabelApp.infer``, ``image`` is always a datastore id (never a file path) and ``save_label``
        writes through the confined datastore with a checked ``label_tag``. The click count is checked first.

        Raises:
            RequestError: 404 unknown model or image, 400 a bad request, 403 / 422 an image that cannot be used.
            HTTPException: 500 for an unexpected failure (its message, no traceback).
        """
        model = request.get("model")
        task = self._infers.get(model)
        if task is None:
            raise RequestError(f"unknown model {model!r}; available: {sorted(self._infers)}.", 404)
        check_click_count(request, self.settings.max_clicks)
        image_id = check_image_id(request.get("image"))
        save = _flag(request.get("save_label", False), "save_label")
        tag = check_label_tag(request.get("label_tag") or DefaultLabelTag.ORIGINAL.value) if save else None
        store = datastore if datastore is not None else self.datastore()
        request = {**request, "image": self._image_file(store, image_id), "image_id": image_id}
        request["description"] = task.description
        try:
            if self._infers_threadpool:
                future = self._infers_threadpool.submit(task, request)
                label_file, result = future.result(label_settings.MONAI_LABEL_INFER_TIMEOUT)
            else:
                label_file, result = task(request)
            label_id = label_file
            if save:
                label_id = store.save_label(image_id, label_file, tag, {"model": model, "params": result})
        except HTTPException:
            raise
        except MONAILabelException as err:
            raise RequestError(str(err.msg)) from err
        except Exception as err:
            logger.exception("AdaptiveClick inference failed")
            raise HTTPException(500, f"AdaptiveClick inference failed: {type(err).__name__}: {err}") from err
        return {"label": label_id, "tag": tag or DefaultLabelTag.ORIGINAL, "file": label_file, "params": result}
