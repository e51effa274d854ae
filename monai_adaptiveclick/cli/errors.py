# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The user-error type of the command line."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A user error reported as ``error: <message>`` with exit status 2, without a traceback."""
