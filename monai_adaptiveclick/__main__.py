# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``python -m monai_adaptiveclick``: see :mod:`monai_adaptiveclick.cli`."""

from __future__ import annotations

from monai_adaptiveclick.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
