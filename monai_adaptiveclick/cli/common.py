# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""What the subcommands share: the user-error type and the progress-bar rule."""

from __future__ import annotations

import sys

__all__ = ["UsageError", "show_progress"]


class UsageError(Exception):
    """A user error reported as ``error: <message>`` with exit status 2, without a traceback."""


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal and without ``--quiet`` (logs and CI stay readable)."""
    return not quiet and sys.stderr.isatty()
