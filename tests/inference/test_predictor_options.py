# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Predictor options for the SimpleClick v1.0 protocol (issue 13 item 4): stretch framing, float click disks, flip
averaged on network logits; end to end against the authors' recorded predictor calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from monai_adaptiveclick.engines.tta import wrap_predictor
from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.transforms import Click

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "networks" / "fixtures" / "reference"


class LinearLogits(torch.nn.Module):
    """Logits that depend on the image, the prev map, the disks and the column (so a flip changes them)."""

    in_channels, image_size = 1, 16

    def predict_logits(self, x):
        cols = torch.arange(x.shape[-1], dtype=x.dtype)
        return (3 * x[:, 0:1] - 2 * x[:, 1:2] + 4 * x[:, 2:3] - 5 * x[:, 3:4] + 0.3 * cols - 2.0).contiguous()

    def predict(self, x):
        prob = self.predict_logits(x).sigmoid()
        return prob, prob.new_zeros(x.shape[0], 0, *x.shape[-2:]), prob.new_zeros(x.shape[0], 0)


def _numpy_disks(points, size=16, radius=5):
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    out = np.zeros((size, size), bool)
    for y, x in points:
        out |= (yy - np.float32(y)) ** 2 + (xx - np.float32(x)) ** 2 <= radius**2
    return out.astype(np.float32)


def test_flip_averages_network_logits_before_the_sigmoid():
    rng = np.random.default_rng(0)
    image = rng.random((1, 16, 16), dtype=np.float32)
    prev = rng.random((16, 16), dtype=np.float32)
    clicks = [Click(3, 4, True), Click(12, 9, False)]
    predictor = Predictor(LinearLogits(), intensity="none", framing="stretch", float_clicks=True, flip=True)
    out = predictor(image, clicks, prev)

    def logits(img, prv, pos, neg):
        return 3 * img - 2 * prv + 4 * _numpy_disks(pos) - 5 * _numpy_disks(neg) + 0.3 * np.arange(16) - 2.0

    # at S = H = W the stretch is the identity and the mapping 16 * c / 16 keeps the coordinates
    direct = logits(image[0], prev, [(3, 4)], [(12, 9)])
    flipped = logits(image[0, :, ::-1], prev[:, ::-1], [(3, 16 - 4 - 1)], [(12, 16 - 9 - 1)])
    expected = 1 / (1 + np.exp(-0.5 * (direct + flipped[:, ::-1])))
    np.testing.assert_allclose(out.prob, expected, rtol=0, atol=1e-6)
    averaged_probs = 0.5 * (1 / (1 + np.exp(-direct)) + 1 / (1 + np.exp(-flipped[:, ::-1])))
    assert np.abs(averaged_probs - expected).max() > 1e-3  # probability averaging would be told apart
    assert out.candidates == []


def test_stretch_framing_resizes_with_align_corners_and_no_padding():
    image = np.linspace(0, 1, 8 * 32, dtype=np.float32).reshape(1, 8, 32)
    predictor = Predictor(LinearLogits(), intensity="none", framing="stretch")
    seen = {}
    model = predictor.model
    original = model.predict

    def spy(x):
        seen["x"] = x.clone()
        return original(x)

    model.predict = spy
    out = predictor(image, [])
    x = seen["x"][0, 0].numpy()
    assert x.shape == (16, 16) and x[0, 0] == image[0, 0, 0] and x[-1, -1] == pytest.approx(image[0, -1, -1])
    # align_corners=True along the width: network column j samples source column j * 31 / 15
    np.testing.assert_allclose(x[0], np.interp(np.arange(16) * 31 / 15, np.arange(32), image[0, 0]), atol=1e-6)
    assert out.prob.shape == (8, 32)


def test_with_options_shares_the_model_and_validates():
    predictor = Predictor.from_preset("tiny", in_channels=1)
    paper = predictor.with_options(framing="stretch", float_clicks=True, flip=True)
    assert paper.model is predictor.model and (paper.framing, paper.float_clicks, paper.flip) == ("stretch", True, True)
    assert (predictor.framing, predictor.float_clicks, predictor.flip) == ("pad", False, False)
    assert paper.accepts_outside_clicks and not predictor.accepts_outside_clicks
    with pytest.raises(ValueError, match="unknown Predictor option"):
        predictor.with_options(zoom=True)
    with pytest.raises(ValueError):
        predictor.with_options(framing="crop")


def test_stretch_drops_a_click_that_maps_above_left_of_the_crop():
    predictor = Predictor(LinearLogits(), framing="stretch", float_clicks=True, flip=True)
    coords, signs = predictor.network_clicks([Click(-2, -3, False), Click(-2, 3, False)], (16, 16))
    # (-2, -3) maps to both-negative coordinates: padding for the direct view; its mirror (-2, 18) is kept
    assert signs.tolist() == [[0, -1], [-1, -1]]
    assert coords[1, 0].tolist() == [-2.0, 18.0]


def _load_reference(name: str):
    from monai_adaptiveclick.networks import load_model

    return load_model(FIXTURES / name)


@pytest.mark.parametrize(
    "checkpoint, outputs, calls",
    [
        ("adaptiveclick_small.pth", "adaptiveclick_small_outputs.npz", ("first", "zoom")),
        ("simpleclick_small.pth", "simpleclick_small_outputs.npz", ("zoom",)),
    ],
)
def test_reference_predictor_calls_end_to_end(checkpoint, outputs, calls):
    """The authors' predictor calls (their get_predictor, zoom-in + flip) reproduced within 1e-4."""
    torch.manual_seed(0)
    inputs = np.load(FIXTURES / "reference_inputs.npz")
    recorded = np.load(FIXTURES / outputs)
    predictor = Predictor(_load_reference(checkpoint), intensity="none")
    wrapped = wrap_predictor(predictor, protocol="simpleclick")
    image = inputs["predictor_image"].transpose(2, 0, 1).astype(np.float32) / 255
    first = [Click(int(y), int(x), bool(p)) for y, x, p in inputs["predictor_clicks_first"]]
    out = wrapped(image, first)
    if "first" in calls:
        np.testing.assert_allclose(out.prob, recorded["predictor_first_prob"], rtol=0, atol=1e-4)
    zoom = [Click(int(y), int(x), bool(p)) for y, x, p in inputs["predictor_clicks_zoom"]]
    out = wrapped(image, zoom, inputs["predictor_prev_probs"])
    np.testing.assert_allclose(out.prob, recorded["predictor_zoom_prob"], rtol=0, atol=1e-4)
    rmin, rmax, cmin, cmax = (int(v) for v in recorded["predictor_zoom_roi"])
    assert wrapped.roi == (rmin, rmax + 1, cmin, cmax + 1)
