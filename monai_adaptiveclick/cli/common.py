# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""What the subcommands share: the user-error type, the progress-bar rule and loading a predictor by name or file."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["UsageError", "baseline_predictor", "checkpoint_predictor", "show_progress"]


class UsageError(Exception):
    """A user error reported as ``error: <message>`` with exit status 2, without a traceback."""


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal and without ``--quiet`` (logs and CI stay readable)."""
    return not quiet and sys.stderr.isatty()


def baseline_predictor(name: str, also_known: Sequence[str] = ()) -> Any:
    """The classical baseline ``name`` (``engines.get_baseline``); an unknown name is a ``UsageError`` listing the
    registered baselines and ``also_known`` (other names the subcommand accepts)."""
    from monai_adaptiveclick.engines import BASELINES, get_baseline

    if name not in BASELINES:
        raise UsageError(f"unknown --method {name!r}; known methods: {', '.join([*BASELINES, *also_known])}.")
    return get_baseline(name)


def checkpoint_predictor(path: Path, device: str) -> Any:
    """``Predictor.from_checkpoint(path)``; a missing file or one that does not load is a one-line ``UsageError``."""
    if not path.is_file():
        raise UsageError(f"checkpoint file {str(path)!r} does not exist.")
    from monai_adaptiveclick.inference import Predictor

    try:
        return Predictor.from_checkpoint(path, device=device)
    except (ValueError, RuntimeError, OSError) as err:
        raise UsageError(f"cannot load checkpoint {str(path)!r}: {err}") from err
