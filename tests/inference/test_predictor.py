# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the Predictor (ARCHITECTURE "Predictor" contract): size, range, candidates, errors, channel handling,
intensity normalisation and the click / previous-mask geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_adaptiveclick.data.intensity import normalize_image
from monai_adaptiveclick.inference import Prediction, Predictor
from monai_adaptiveclick.networks import save_model


class _GuidanceEcho(torch.nn.Module):
    """Stand-in model whose probability is one guidance channel, to check the geometry independently of a network."""

    def __init__(self, in_channels: int, image_size: int, channel: str) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.offset = {"prev": 0, "pos": 1, "neg": 2}[channel]
        self.seen: list[torch.Tensor] = []

    def predict(self, x: torch.Tensor):
        self.seen.append(x.clone())
        prob = x[:, self.in_channels + self.offset : self.in_channels + self.offset + 1]
        return prob, prob.new_zeros(x.shape[0], 0, *x.shape[-2:]), prob.new_zeros(x.shape[0], 0)


@pytest.fixture(scope="module")
def tiny_predictor() -> Predictor:
    return Predictor.from_preset("tiny", in_channels=1, seed=0)


def test_output_size_range_and_candidates(tiny_predictor):
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 20.0, size=(1, 37, 90)).astype(np.float32)
    out = tiny_predictor(image, [(10, 80, True), (30, 5, False)])
    assert isinstance(out, Prediction)
    assert out.prob.shape == (37, 90) and out.prob.dtype == np.float32
    assert 0.0 <= out.prob.min() and out.prob.max() <= 1.0
    assert len(out.candidates) == tiny_predictor.model.num_queries
    scores = [s for _, s in out.candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(c.shape == (37, 90) and 0 <= c.min() and c.max() <= 1 for c, _ in out.candidates)
    assert out.mask().dtype == bool and np.array_equal(out.mask(0.3), out.prob > 0.3)
    # no click at all is valid input
    assert tiny_predictor(image, []).prob.shape == (37, 90)


def test_input_errors(tiny_predictor):
    image = np.random.default_rng(1).random((1, 20, 30)).astype(np.float32)
    with pytest.raises(ValueError, match="outside"):
        tiny_predictor(image, [(20, 3, True)])
    with pytest.raises(ValueError, match="outside"):
        tiny_predictor(image, [(3, -1, False)])
    with pytest.raises(ValueError, match=r"expects 1 image channel\(s\), the image has 2"):
        tiny_predictor(np.zeros((2, 20, 30), np.float32), [])
    bad = image.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny_predictor(bad, [])
    with pytest.raises(ValueError, match="prev_mask shape"):
        tiny_predictor(image, [], prev_mask=np.zeros((30, 20)))
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        tiny_predictor(np.zeros((1, 1, 20, 30)), [])
    with pytest.raises(ValueError):
        Predictor(tiny_predictor.model, intensity="zscore")


def test_channel_handling():
    rgb_model = Predictor.from_preset("tiny", in_channels=3, seed=1)
    grey = np.random.default_rng(2).random((1, 32, 48)).astype(np.float32)
    clicks = [(16, 20, True)]
    np.testing.assert_allclose(rgb_model(grey, clicks).prob, rgb_model(np.repeat(grey, 3, 0), clicks).prob, atol=1e-6)
    grey_model = Predictor.from_preset("tiny", in_channels=1, seed=1)
    rgb = np.random.default_rng(3).random((3, 32, 48)).astype(np.float32)
    np.testing.assert_allclose(
        grey_model(rgb, clicks).prob, grey_model(rgb.mean(0, keepdims=True), clicks).prob, atol=1e-6
    )


def test_intensity_normalisation():
    rng = np.random.default_rng(4)
    image = np.stack([rng.normal(0, 1, (20, 20)), rng.uniform(500, 900, (20, 20))]).astype(np.float32)
    out = normalize_image(image, "percentile")
    for c in range(2):
        lo, hi = np.percentile(image[c], [0.5, 99.5])
        np.testing.assert_allclose(out[c], (np.clip(image[c], lo, hi) - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    constant = normalize_image(np.full((1, 8, 8), 7.0, np.float32), "percentile")
    assert np.isfinite(constant).all() and (constant == 0).all()
    np.testing.assert_array_equal(normalize_image(image, "none"), image)


def test_constant_image_gives_finite_output(tiny_predictor):
    out = tiny_predictor(np.full((1, 24, 24), 3.0, np.float32), [(12, 12, True)])
    assert np.isfinite(out.prob).all()


@pytest.mark.parametrize("shape, click", [((40, 100), (31, 77)), ((90, 30), (5, 22)), ((64, 64), (40, 10))])
def test_click_lands_at_its_original_position(shape, click):
    """The positive-click disk, rasterised in the network frame and mapped back, is centred on the click."""
    echo = _GuidanceEcho(in_channels=1, image_size=64, channel="pos")
    predictor = Predictor(echo, intensity="none", radius=3)
    out = predictor(np.zeros((1, *shape), np.float32), [(*click, True)])
    assert out.prob.shape == shape and out.candidates == []
    assert out.prob[click] > 0.5
    ys, xs = np.nonzero(out.prob > 0.5)
    scale = max(shape) / 64
    assert abs(ys.mean() - click[0]) <= scale + 0.5 and abs(xs.mean() - click[1]) <= scale + 0.5
    # the network input is the image_size square, the padding region is empty
    x = echo.seen[-1]
    assert x.shape == (1, 4, 64, 64)
    frame_h, frame_w = round(shape[0] * 64 / max(shape)), round(shape[1] * 64 / max(shape))
    assert x[0, :, frame_h:, :].abs().sum() == 0 and x[0, :, :, frame_w:].abs().sum() == 0


def test_prev_mask_round_trip():
    echo = _GuidanceEcho(in_channels=1, image_size=64, channel="prev")
    predictor = Predictor(echo, intensity="none")
    yy, xx = np.mgrid[:48, :96]
    prev = ((yy - 20) ** 2 / 15**2 + (xx - 50) ** 2 / 30**2 <= 1).astype(np.float32)
    out = predictor(np.zeros((1, 48, 96), np.float32), [], prev_mask=prev)
    assert np.mean((out.prob > 0.5) == (prev > 0.5)) > 0.97


def test_from_checkpoint_matches(tmp_path, tiny_predictor):
    path = save_model(tiny_predictor.model, tmp_path / "m.pt")
    again = Predictor.from_checkpoint(path, radius=5)
    image = np.random.default_rng(5).random((1, 30, 30)).astype(np.float32)
    clicks = [(15, 15, True)]
    np.testing.assert_allclose(again(image, clicks).prob, tiny_predictor(image, clicks).prob, atol=1e-6)
