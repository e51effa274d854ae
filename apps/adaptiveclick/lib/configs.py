# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""App settings from ``monailabel start_server --conf key value`` pairs (issue 7, "Default weights").

Keys (all optional):

- ``checkpoint``: the model file the infer task serves and watches (reloaded when its mtime changes) and the file
  the train task writes. Default ``<app>/model/adaptiveclick.pt``.
- ``bundle_checkpoint``: used while ``checkpoint`` does not exist. Default ``<repo>/bundle/models/model.pt``.
- ``model``: what is served while neither file exists: ``starter`` (default), the model shipped inside the package
  (``monai_adaptiveclick.networks.list_pretrained()`` names the shipped models), or ``untrained``: a freshly
  initialised ``preset`` network, with a warning in the log and the response. The train task starts from whatever
  is served and writes ``checkpoint``, which is served from then on.
- ``preset`` (``small_cpu``), ``in_channels`` (3), ``head`` (``camd``): the architecture of a plain state dict and of
  the untrained model.
- ``device``: ``cpu``, ``cuda``, ``cuda:1`` ... Default ``cuda`` when available, else ``cpu``.
- ``labels``: comma-separated label names shown to clients. Default ``object``.
- ``radius``: click disk radius at network resolution (default ``protocol.CLICK_RADIUS``); ``threshold``: the mask
  is ``prob > threshold`` (default ``protocol.PROB_THRESHOLD``, SPEC section 5).
- ``num_candidates`` (3): candidate masks returned per request; ``max_sessions`` (256): interactions kept;
  ``max_volumes`` (4): decoded volumes kept; ``respect_clicks`` (true): the clicked voxels always take the clicked
  sign in the returned label; ``output_ext`` (``.nii.gz``) of the returned label file.
- ``max_clicks`` (500): the most ``foreground`` + ``background`` voxels one infer request may send; more are refused
  with HTTP 400 before any work (issue 16).
- ``max_channels`` (4), ``max_label`` (255): the door checks of uploaded images and labels
  (``monai_adaptiveclick.data.validation``): most channels of a 4-D image, largest label value.
- ``baseline`` (empty): the name of a classical baseline (``watershed``, ``random_walker``;
  ``monai_adaptiveclick.engines.BASELINES``) to serve instead of the network, for comparison and for tests that need
  a deterministic segmenter; the train task is refused while a baseline is served.
- ``train_threads`` (half the CPU cores, at least 1) and ``train_nice`` (19, the lowest priority): the share of
  the machine the train task takes (torch threads, process priority), so that clicks stay interactive while the
  model trains (issue 16).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from monai_adaptiveclick.engines.baselines import BASELINES
from monai_adaptiveclick.networks import get_head, list_heads, list_pretrained
from monai_adaptiveclick.protocol import CLICK_RADIUS, PROB_THRESHOLD

__all__ = ["DEFAULT_MODEL", "UNTRAINED", "AppSettings", "parse_settings"]

DEFAULT_MODEL = "starter"
"""``--conf model`` default: the model shipped inside the package."""
UNTRAINED = "untrained"
"""``--conf model`` value that serves a freshly initialised network."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class AppSettings:
    """Parsed app configuration (see the module docstring for the meaning of each field)."""

    checkpoint: str
    bundle_checkpoint: str
    preset: str = "small_cpu"
    in_channels: int = 3
    head: str = "camd"
    device: str = "cpu"
    labels: tuple[str, ...] = ("object",)
    radius: int = CLICK_RADIUS
    threshold: float = PROB_THRESHOLD
    num_candidates: int = 3
    max_sessions: int = 256
    max_volumes: int = 4
    respect_clicks: bool = True
    output_ext: str = ".nii.gz"
    max_clicks: int = 500
    max_channels: int = 4
    max_label: int = 255
    train_threads: int = 1
    train_nice: int = 19
    baseline: str = ""
    model: str = DEFAULT_MODEL
    extra: dict = field(default_factory=dict)


def _int(conf: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    value = conf.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"--conf {key} must be an integer, got {value!r}.") from err
    if number < minimum:
        raise ValueError(f"--conf {key} must be >= {minimum}, got {number}.")
    return number


def _bool(conf: Mapping[str, str], key: str, default: bool) -> bool:
    value = str(conf.get(key, default)).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"--conf {key} must be true or false, got {conf.get(key)!r}.")


def parse_settings(app_dir: str, conf: Mapping[str, str] | None) -> AppSettings:
    """Build :class:`AppSettings` from the server's ``--conf`` pairs.

    Args:
        app_dir: the app folder (``apps/adaptiveclick``); relative default paths are resolved against it.
        conf: the ``--conf`` key/value strings (``None`` = all defaults).

    Raises:
        ValueError: a value of the wrong type or range, naming the key.
    """
    conf = dict(conf or {})
    app_dir = os.path.realpath(app_dir)
    checkpoint = conf.get("checkpoint") or os.path.join(app_dir, "model", "adaptiveclick.pt")
    bundle = conf.get("bundle_checkpoint") or os.path.join(app_dir, "..", "..", "bundle", "models", "model.pt")
    device = conf.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"--conf device: {device!r} is not a torch device name.") from err
    try:
        threshold = float(conf.get("threshold", PROB_THRESHOLD))
    except ValueError as err:
        raise ValueError(f"--conf threshold must be a number, got {conf.get('threshold')!r}.") from err
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"--conf threshold must be in (0, 1), got {threshold}.")
    labels = tuple(name.strip() for name in str(conf.get("labels", "object")).split(",") if name.strip())
    if not labels:
        raise ValueError("--conf labels must name at least one label.")
    output_ext = str(conf.get("output_ext", ".nii.gz"))
    if output_ext not in (".nii.gz", ".nii"):
        raise ValueError(f"--conf output_ext must be .nii.gz or .nii, got {output_ext!r}.")
    head = str(conf.get("head", "camd"))
    try:
        get_head(head)
    except ValueError as err:
        raise ValueError(f"--conf head must be one of {list_heads()}, got {head!r}.") from err
    baseline = str(conf.get("baseline", "")).strip()
    if baseline and baseline not in BASELINES:
        raise ValueError(f"--conf baseline must be one of {sorted(BASELINES)} (or empty), got {baseline!r}.")
    model = str(conf.get("model", "")).strip() or DEFAULT_MODEL
    if "model" in conf and model != UNTRAINED and model not in list_pretrained():
        raise ValueError(
            f"--conf model must be {UNTRAINED!r} or a model shipped inside the package "
            f"({', '.join(list_pretrained()) or 'none found'}), got {model!r}."
        )
    known = {
        "baseline",
        "model",
        "checkpoint",
        "bundle_checkpoint",
        "preset",
        "in_channels",
        "head",
        "device",
        "labels",
        "radius",
        "threshold",
        "num_candidates",
        "max_sessions",
        "max_volumes",
        "respect_clicks",
        "output_ext",
        "max_clicks",
        "max_channels",
        "max_label",
        "train_threads",
        "train_nice",
    }
    return AppSettings(
        checkpoint=os.path.realpath(os.path.join(app_dir, checkpoint)),
        bundle_checkpoint=os.path.realpath(os.path.join(app_dir, bundle)),
        preset=str(conf.get("preset", "small_cpu")),
        in_channels=_int(conf, "in_channels", 3, 1),
        head=head,
        device=device,
        labels=labels,
        radius=_int(conf, "radius", CLICK_RADIUS, 1),
        threshold=threshold,
        num_candidates=_int(conf, "num_candidates", 3, 0),
        max_sessions=_int(conf, "max_sessions", 256, 1),
        max_volumes=_int(conf, "max_volumes", 4, 1),
        respect_clicks=_bool(conf, "respect_clicks", True),
        output_ext=output_ext,
        max_clicks=_int(conf, "max_clicks", 500, 1),
        max_channels=_int(conf, "max_channels", 4, 1),
        max_label=_int(conf, "max_label", 255, 1),
        train_threads=_int(conf, "train_threads", max(1, (os.cpu_count() or 2) // 2), 1),
        train_nice=_int(conf, "train_nice", 19, 0),
        baseline=baseline,
        model=model,
        extra={k: v for k, v in conf.items() if k not in known},
    )
