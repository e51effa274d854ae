# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``Predictor.from_pretrained`` (ARCHITECTURE "Shipped model") and ``pretrained:NAME`` as a checkpoint path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.networks import build_model, create_model

IMAGE = np.random.default_rng(0).random((1, 40, 52)).astype(np.float32)
CLICKS = [(20, 25, True), (5, 5, False)]


@pytest.fixture()
def shipped(ship_model):
    """A seeded tiny model shipped as ``mine`` (``ship_model``: a stand-in for the package's ``pretrained/``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model("tiny", in_channels=1).eval()
    ship_model(model, "mine")
    return model


def _rounded_predictor(model, **options) -> Predictor:
    """A Predictor around ``model`` with its weights cast to float16 and back (what a shipped model holds)."""
    rounded = build_model(model.config)
    rounded.load_state_dict(
        {k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    )
    return Predictor(rounded, **options)


def test_from_pretrained_serves_the_shipped_weights(shipped, tmp_path):
    expected = _rounded_predictor(shipped)(IMAGE, CLICKS)
    for predictor in (
        Predictor.from_pretrained("mine"),
        Predictor.from_pretrained("mine", folder=tmp_path / "shipped_models"),
        Predictor.from_checkpoint("pretrained:mine"),
    ):
        result = predictor(IMAGE, CLICKS)
        np.testing.assert_allclose(result.prob, expected.prob, atol=1e-6)
        assert len(result.candidates) == len(expected.candidates) == shipped.num_queries


def test_from_pretrained_takes_the_constructor_options(shipped):
    predictor = Predictor.from_pretrained("mine", radius=3, flip=True, intensity="none")
    assert (predictor.radius, predictor.flip, predictor.intensity) == (3, True, "none")
    expected = _rounded_predictor(shipped, radius=3, flip=True, intensity="none")(IMAGE, CLICKS)
    np.testing.assert_allclose(predictor(IMAGE, CLICKS).prob, expected.prob, atol=1e-6)


def test_unknown_shipped_model_is_a_value_error(shipped):
    with pytest.raises(ValueError, match=r"unknown pretrained model 'nope'.*mine"):
        Predictor.from_pretrained("nope")
    with pytest.raises(ValueError, match="unknown pretrained model 'nope'"):
        Predictor.from_checkpoint("pretrained:nope")


def test_the_shipped_starter_predictor():
    """Needs the shipped ``monai_adaptiveclick/pretrained/starter.*``."""
    predictor = Predictor.from_pretrained("starter")
    assert predictor.model.image_size == 128 and predictor.model.in_channels == 3
    result = predictor(IMAGE, CLICKS)
    assert result.prob.shape == IMAGE.shape[1:] and np.isfinite(result.prob).all()
    assert len(result.candidates) == predictor.model.num_queries
