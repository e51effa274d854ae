# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Shared test fixtures: a tiny BraTS-export-like PNG dataset, a clean copy of the MONAI bundle, and a stand-in
folder for the models shipped inside the package."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _write_png_dataset(root: Path, count: int = 4, size: int = 40, seed: int = 0) -> Path:
    """A BraTS-export-like folder (image/*.png + annotation/*.png) of bright rectangles on noise."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True)
    (root / "annotation").mkdir()
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        y, x = rng.integers(5, size - 20, size=2)
        mask[y : y + 12, x : x + 14] = 1
        image = np.clip(rng.normal(60, 10, (size, size)) + 120 * mask, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / "image" / f"case{i}.png")
        Image.fromarray(mask * 255).save(root / "annotation" / f"case{i}.png")
    return root


def _copy_bundle(target: Path) -> Path:
    """The bundle's configs and docs, without weights, runs or results a user may have in the checkout."""
    shutil.copytree(REPO / "bundle", target, ignore=shutil.ignore_patterns("*.pt", "*.ts", "runs", "eval"))
    return target


@pytest.fixture(scope="session")
def write_png_dataset() -> Callable[..., Path]:
    """``write_png_dataset(root, count=4, size=40, seed=0) -> root``."""
    return _write_png_dataset


@pytest.fixture(scope="session")
def copy_bundle() -> Callable[[Path], Path]:
    """``copy_bundle(target) -> target``."""
    return _copy_bundle


@pytest.fixture()
def ship_model(tmp_path, monkeypatch) -> Callable[..., Path]:
    """``ship_model(model, name="starter") -> folder``: export ``model`` (``networks.export_pretrained``) into a
    temporary folder that stands in for the package's ``pretrained/`` during the test, so that ``name`` loads it."""
    from monai_adaptiveclick.networks import export_pretrained, load_pretrained, save_model

    folder = tmp_path / "shipped_models"
    # patch the namespace the loaders read: with --doctest-modules a module given by path may be imported twice
    monkeypatch.setitem(load_pretrained.__globals__, "PRETRAINED_DIR", folder)

    def ship(model, name: str = "starter") -> Path:
        export_pretrained(save_model(model, tmp_path / f"{name}_source.pt"), name, folder=folder)
        return folder

    return ship
