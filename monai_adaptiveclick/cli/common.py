# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""What the subcommands share: the user-error type, the progress-bar rule and loading a predictor by name or file
(a classical baseline, a model shipped inside the package, a checkpoint file or ``pretrained:NAME``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["UsageError", "checkpoint_predictor", "method_predictor", "show_progress"]


class UsageError(Exception):
    """A user error reported as ``error: <message>`` with exit status 2, without a traceback."""


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal and without ``--quiet`` (logs and CI stay readable)."""
    return not quiet and sys.stderr.isatty()


def method_predictor(name: str, device: str = "cpu", also_known: Sequence[str] = ()) -> Any:
    """The predictor of a method name: a classical baseline (``engines.BASELINES``) or a model shipped inside the
    package (``networks.list_pretrained()``, e.g. ``starter``, loaded as ``--checkpoint pretrained:NAME``).

    An unknown name is a ``UsageError`` listing the baselines, the shipped models and ``also_known`` (other names the
    subcommand accepts).
    """
    from monai_adaptiveclick.engines import BASELINES, get_baseline
    from monai_adaptiveclick.networks import PRETRAINED_PREFIX, list_pretrained

    if name in BASELINES:
        return get_baseline(name)
    shipped = list_pretrained()
    if name in shipped:
        return checkpoint_predictor(f"{PRETRAINED_PREFIX}{name}", device)
    raise UsageError(f"unknown --method {name!r}; known methods: {', '.join([*BASELINES, *shipped, *also_known])}.")


def checkpoint_predictor(path: str | Path, device: str) -> Any:
    """``Predictor.from_checkpoint(path)``: a model file, or ``pretrained:NAME`` for a model shipped inside the
    package; a missing file, an unknown name or a model that does not load is a one-line ``UsageError``."""
    from monai_adaptiveclick.networks import pretrained_name

    shipped = pretrained_name(path)
    if shipped is None and not Path(path).is_file():
        raise UsageError(f"checkpoint file {str(path)!r} does not exist.")
    from monai_adaptiveclick.inference import Predictor

    try:
        return Predictor.from_checkpoint(path, device=device)
    except (ValueError, RuntimeError, OSError) as err:
        what = f"the shipped model {shipped!r}" if shipped is not None else f"checkpoint {str(path)!r}"
        raise UsageError(f"cannot load {what}: {err}") from err
