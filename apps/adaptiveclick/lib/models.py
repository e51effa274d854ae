# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The served model: loaded once, reloaded when the checkpoint file changes (issue 7, "Speed" / "Default weights").

The infer task asks :class:`ModelManager` for the current :class:`LoadedModel` on every request; that costs one
``os.stat`` per candidate file. The first existing file of (``checkpoint``, ``bundle_checkpoint``) is served; when
its path or modification time differs from the loaded one it is loaded again, so a checkpoint written by the train
task (or copied in by hand) is picked up by the next click. With no file at all the ``--conf model`` is served: the
starter model shipped inside the package (``Predictor.from_pretrained``) by default, or, with ``--conf model
untrained``, an untrained model of the configured preset, with a warning that says so. With ``--conf baseline
<name>`` a classical baseline (``monai_adaptiveclick.engines.get_baseline``) is served instead of any network
(comparison, deterministic tests).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from monai_adaptiveclick.data import model_sequences
from monai_adaptiveclick.engines.baselines import get_baseline
from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.networks import PRETRAINED_PREFIX, load_model, read_checkpoint_extra

from .configs import UNTRAINED, AppSettings

__all__ = ["LoadedModel", "ModelManager"]

logger = logging.getLogger(__name__)

UNTRAINED_WARNING = (
    "no AdaptiveClick checkpoint found ({paths}); serving an UNTRAINED '{preset}' model (--conf model untrained): its "
    "masks are meaningless. Train one (POST /train/adaptiveclick), pass --conf checkpoint <model.pt>, or leave out "
    "--conf model to serve the shipped starter model."
)


@dataclass(frozen=True)
class LoadedModel:
    """A predictor with what identifies its weights.

    Attributes:
        predictor: the ``monai_adaptiveclick.inference.Predictor`` serving requests.
        path: the checkpoint file, ``None`` for the shipped and the untrained model.
        mtime_ns: modification time of ``path`` when it was loaded (0 without a file).
        config: the model's ``config`` dict (architecture, channels).
        sequences: MRI sequence names of the channels, ``None`` when not a multi-sequence model.
        warning: a message for clients (untrained model), else ``""``.
        baseline: the classical baseline served instead of a network (``--conf baseline``), else ``""``.
        pretrained: the name of the shipped model served (``--conf model``, default ``starter``), else ``""``.
    """

    predictor: Predictor
    path: str | None
    mtime_ns: int
    config: dict
    sequences: tuple[str, ...] | None
    warning: str = ""
    baseline: str = ""
    pretrained: str = ""

    @property
    def key(self) -> tuple:
        """Identifies the weights; interaction states made by other weights are not reused."""
        return (self.path, self.mtime_ns)

    @property
    def source(self) -> str | None:
        """Where the weights come from: the checkpoint file, ``pretrained:NAME`` for a shipped model, ``None`` for
        the untrained model (and a baseline)."""
        return f"{PRETRAINED_PREFIX}{self.pretrained}" if self.pretrained else self.path

    @property
    def in_channels(self) -> int:
        """Number of image channels the model takes."""
        return int(self.config["in_channels"])

    def describe(self) -> dict:
        """JSON-ready description for responses and ``/info/``."""
        return {
            "checkpoint": self.path,
            "mtime_ns": self.mtime_ns,
            "in_channels": self.in_channels,
            "head": self.config.get("head"),
            "image_size": self.config.get("image_size"),
            "sequences": list(self.sequences) if self.sequences else None,
            "pretrained": self.pretrained or None,
            "untrained": self.path is None and not self.baseline and not self.pretrained,
            "baseline": self.baseline or None,
        }


class ModelManager:
    """Serves the current weights; thread-safe.

    Args:
        settings: the app settings (checkpoint paths, served model, preset, device, click radius).
    """

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()

    def current_file(self) -> str | None:
        """The checkpoint file that would be served now (first existing of checkpoint, bundle), or ``None``.

        Always ``None`` while a classical baseline is served (``--conf baseline``).
        """
        if self.settings.baseline:
            return None
        for path in (self.settings.checkpoint, self.settings.bundle_checkpoint):
            if os.path.isfile(path):
                return path
        return None

    def get(self) -> LoadedModel:
        """Return the current model, (re)loading it when the served file or its mtime changed."""
        with self._lock:
            path = self.current_file()
            mtime = os.stat(path).st_mtime_ns if path else 0
            if self._loaded is None or self._loaded.key != (path, mtime):
                self._loaded = self._load(path, mtime)
            return self._loaded

    def _load(self, path: str | None, mtime_ns: int) -> LoadedModel:
        s = self.settings
        warning, pretrained = "", ""
        if s.baseline:
            logger.info(f"AdaptiveClick: serving the classical baseline {s.baseline!r} instead of a network")
            config = {"in_channels": s.in_channels, "head": None, "image_size": None}
            return LoadedModel(get_baseline(s.baseline), None, 0, config, None, "", s.baseline)  # type: ignore[arg-type]
        if path is None and s.model == UNTRAINED:
            predictor = Predictor.from_preset(
                s.preset, in_channels=s.in_channels, head=s.head, device=s.device, radius=s.radius
            )
            warning = UNTRAINED_WARNING.format(paths=f"{s.checkpoint}, {s.bundle_checkpoint}", preset=s.preset)
            logger.warning(warning)
        elif path is None:
            predictor = Predictor.from_pretrained(s.model, device=s.device, radius=s.radius)
            pretrained = s.model
            logger.info(f"AdaptiveClick: serving the shipped model {s.model!r} (no checkpoint file yet)")
        else:
            model = load_model(path, map_location="cpu", preset=s.preset, in_channels=s.in_channels, head=s.head)
            predictor = Predictor(model, device=s.device, radius=s.radius)
            logger.info(f"AdaptiveClick: loaded {path} (mtime {mtime_ns})")
        config = dict(predictor.model.config)
        stored = read_checkpoint_extra(path).get("sequences") if path is not None else None
        sequences = model_sequences({**config, "sequences": stored}, int(config["in_channels"]))
        return LoadedModel(predictor, path, mtime_ns, config, sequences, warning, pretrained=pretrained)
