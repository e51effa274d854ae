# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The CLI tests' dataset: two synthetic disks, registered for one test at a time."""

from __future__ import annotations

import numpy as np
import pytest

from monai_adaptiveclick.data import register_dataset, registry

DISKS = "cli_test_disks"


def _disks(root=None, **options):
    """Two synthetic disk objects (the CLI test dataset)."""
    items = []
    yy, xx = np.mgrid[:48, :48]
    for i, (cy, cx) in enumerate([(20, 24), (28, 20)]):
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= 10**2
        image = mask[None] * 1.0 + np.random.default_rng(i).normal(0, 0.05, (1, 48, 48))
        items.append({"image": image.astype(np.float32), "label": mask[None].astype(np.uint8), "object_id": f"d/{i}"})
    return items


@pytest.fixture()
def disks_dataset(monkeypatch) -> str:
    """Register the disk dataset for one test only (the global registry is left as it was); returns its name."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_dataset(DISKS, _disks)
    return DISKS
