# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The SimpleClick v1.0 evaluation protocol (issue 13 item 4, SPEC section 5): box rules on hand-made cases, the
zoom-in crop and click mapping against the authors' recorded predictor calls (tests/networks/fixtures/reference)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monai_adaptiveclick.engines.evaluation import evaluate_noc
from monai_adaptiveclick.engines.tta import PROTOCOLS, FlipTTA, ZoomIn, wrap_predictor
from monai_adaptiveclick.inference import Prediction, Predictor
from monai_adaptiveclick.transforms import Click
from monai_adaptiveclick.transforms.zoom_boxes import (
    box_iou,
    expand_box,
    expand_box_clamped,
    outside_box_simpleclick,
    simpleclick_box_iou,
    simpleclick_object_roi,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "networks" / "fixtures" / "reference"


class Spy:
    """Predictor double recording what it gets; returns a constant map."""

    accepts_outside_clicks = True

    def __init__(self, value: float = 0.25) -> None:
        self.calls: list[tuple[tuple[int, ...], list[Click], np.ndarray]] = []
        self.value = value

    def __call__(self, image, clicks, prev_mask=None):
        self.calls.append((image.shape, list(clicks), None if prev_mask is None else np.array(prev_mask)))
        return Prediction(prob=np.full(image.shape[1:], self.value, np.float32))


# --- box rules, hand-made -------------------------------------------------------------------------------------


def test_expanded_box_is_clamped_not_shifted():
    # inclusive rows 5..14: centre 9.5, side max(14, 200) = 200 -> rows round(-90.5) .. round(109.5) = -90 .. 110
    # -> clamped to 0 .. 63 on a 64-row image; cols 100..109: centre 104.5 -> round(4.5) = 4 .. round(204.5) = 204
    assert expand_box_clamped((5, 15, 100, 110), (64, 300)) == (0, 64, 4, 205)
    # the project's rule shifts a box that sticks out back inside, keeping its 200 px side
    assert expand_box((5, 15, 180, 190), (64, 300)) == (0, 64, 85, 285)
    # clamped: cols 180..189: centre 184.5 -> round(84.5) = 84 .. round(284.5) = 284 -> fits, 201 px wide
    assert expand_box_clamped((5, 15, 180, 190), (64, 300)) == (0, 64, 84, 285)
    # near the right border the clamp shrinks the box (shift would keep 200 px): cols 280..289 -> 184 .. 384 -> 299
    assert expand_box_clamped((5, 15, 280, 290), (64, 300)) == (0, 64, 184, 300)
    assert expand_box((5, 15, 280, 290), (64, 300))[2:] == (100, 300)


def test_box_rounding_is_python_round_half_to_even():
    # inclusive rows 400..401: centre 400.5, side 200 -> 300.5 and 500.5 round to 300 and 500 (even), not 301 / 501
    # inclusive cols 401..402: centre 401.5 -> 301.5 and 501.5 round to 302 and 502
    assert expand_box_clamped((400, 402, 401, 403), (1000, 1000)) == (300, 501, 302, 503)
    # expansion 1.4 of 200 rows (100..299): side 280, centre 199.5 -> 59.5 -> 60 (even), 339.5 -> 340
    assert expand_box_clamped((100, 300, 100, 300), (1000, 1000), min_size=1) == (60, 341, 60, 341)


def test_box_iou_is_the_product_of_axis_ious():
    kept, candidate = (0, 100, 0, 100), (18, 118, 18, 118)
    assert simpleclick_box_iou(kept, candidate) == pytest.approx((82 / 118) ** 2)  # 0.483 < 0.5
    assert box_iou(kept, candidate) == pytest.approx(82 * 82 / (2 * 100 * 100 - 82 * 82))  # 0.506 >= 0.5
    assert simpleclick_box_iou((0, 10, 0, 10), (20, 30, 0, 10)) == 0.0


def test_outside_test_is_half_open_on_the_inclusive_box():
    box = (10, 20, 30, 40)  # inclusive rows 10..19, cols 30..39
    assert not outside_box_simpleclick(box, Click(10, 30, True))
    assert not outside_box_simpleclick(box, Click(18, 38, True))
    assert outside_box_simpleclick(box, Click(19, 35, True))  # last row: their r >= rmax
    assert outside_box_simpleclick(box, Click(15, 39, True))  # last column
    assert outside_box_simpleclick(box, Click(9, 35, True))


def test_object_roi_needs_a_predicted_pixel_and_adds_positive_clicks():
    prev = np.zeros((600, 600), np.float32)
    assert simpleclick_object_roi(prev, [Click(5, 5, True)]) is None
    prev[300:310, 300:310] = 0.6
    # the positive click pixel (250, 320) extends the bbox to rows 250..309, cols 300..320 (inclusive); the negative
    # click is ignored. Even at expansion 1 their formula ends at round(last + 0.5): rows 249.5 -> 250,
    # 309.5 -> 310; cols 299.5 -> 300, 320.5 -> 320 (halves to even)
    box = simpleclick_object_roi(prev, [Click(250, 320, True), Click(400, 400, False)], expansion=1.0, min_size=1)
    assert box == (250, 311, 300, 321)
    prev[300, 300] = 0.5  # the threshold is strict: rows / cols 301..309 -> 300.5 -> 300, 309.5 -> 310
    assert simpleclick_object_roi(prev, [], expansion=1.0, min_size=1) == (300, 311, 300, 311)


def _square(size: int, lo: int, hi: int) -> np.ndarray:
    prev = np.zeros((size, size), np.float32)
    prev[lo:hi, lo:hi] = 0.9
    return prev


def test_zoom_in_keeps_the_old_box_unless_a_click_leaves_it_or_the_iou_drops():
    spy = Spy()
    zoom = ZoomIn(spy, expansion=1.0, min_crop_size=1, skip_clicks=-1, box_rule="simpleclick")
    image = np.zeros((1, 600, 600), np.float32)
    clicks = [Click(50, 50, True)]
    zoom(image, clicks, _square(600, 0, 100))  # first click: whole image whatever the previous map
    assert zoom.roi == (0, 600, 0, 600) and spy.calls[-1][0] == (1, 600, 600)
    clicks.append(Click(60, 60, False))
    # (expansion 1: a square [lo, hi) gives the box [lo, hi + 1), see the test above)
    zoom(image, clicks, _square(600, 0, 100))  # IoU with the whole image < 0.5 -> replaced
    assert zoom.roi == (0, 101, 0, 101)
    clicks.append(Click(70, 70, True))
    # candidate (18, 119): axis IoU 83 / 119, product 0.486 < 0.5 -> replaced (the area IoU, 0.510, would keep)
    assert box_iou((0, 101, 0, 101), (18, 119, 18, 119)) > 0.5
    zoom(image, clicks, _square(600, 18, 118))
    assert zoom.roi == (18, 119, 18, 119)
    clicks.append(Click(80, 80, False))
    zoom(image, clicks, _square(600, 20, 120))  # candidate (20, 121): IoU 0.92, positives inside -> OLD box kept
    assert zoom.roi == (18, 119, 18, 119)
    clicks.append(Click(117, 60, True))  # second-to-last row of the kept box (inclusive 18..118): inside
    zoom(image, clicks, _square(600, 20, 120))
    assert zoom.roi == (18, 119, 18, 119)
    clicks.append(Click(118, 60, True))  # last row: outside by their test (r >= rmax) -> replaced
    zoom(image, clicks, _square(600, 20, 120))
    assert zoom.roi == (20, 121, 20, 121)
    # every click reaches the wrapped predictor, shifted into the crop (negatives outside it too)
    assert spy.calls[-1][1][0] == Click(30, 30, True) and len(spy.calls[-1][1]) == len(clicks)
    # outside the crop the probability is 0
    out = zoom(image, clicks, _square(600, 20, 120))
    assert out.prob[20:121, 20:121].min() == 0.25 and out.prob.sum() == pytest.approx(0.25 * 101 * 101)


def test_zoom_in_whole_image_until_something_is_predicted():
    spy = Spy()
    zoom = ZoomIn(spy, skip_clicks=-1, box_rule="simpleclick")
    image = np.zeros((1, 300, 300), np.float32)
    zoom(image, [Click(5, 5, True)])
    zoom(image, [Click(5, 5, True), Click(250, 250, True)], np.zeros((300, 300), np.float32))
    assert zoom.roi == (0, 300, 0, 300) and [c[0] for c in spy.calls] == [(1, 300, 300)] * 2
    with pytest.raises(ValueError, match="skip_clicks"):
        ZoomIn(spy, skip_clicks=-1)


# --- against the authors' recorded predictor calls -------------------------------------------------------------


def _fixtures():
    inputs = np.load(FIXTURES / "reference_inputs.npz")
    outputs = np.load(FIXTURES / "adaptiveclick_small_outputs.npz")
    image = inputs["predictor_image"].transpose(2, 0, 1).astype(np.float32) / 255  # their ToTensor
    first = [Click(int(y), int(x), bool(p)) for y, x, p in inputs["predictor_clicks_first"]]
    zoom = [Click(int(y), int(x), bool(p)) for y, x, p in inputs["predictor_clicks_zoom"]]
    return inputs, outputs, image, first, zoom


def _as_half_open(roi) -> tuple[int, int, int, int]:
    rmin, rmax, cmin, cmax = (int(v) for v in roi)
    return rmin, rmax + 1, cmin, cmax + 1


def test_zoom_box_and_crop_clicks_match_the_reference_calls():
    inputs, outputs, image, first, zoom_clicks = _fixtures()
    spy = Spy()
    zoom = wrap_predictor(spy, flip=False, protocol="simpleclick")
    zoom(image, first)
    assert zoom.roi == _as_half_open(outputs["predictor_first_roi"]) == (0, 64, 0, 240)
    zoom(image, zoom_clicks, inputs["predictor_prev_probs"])
    assert zoom.roi == _as_half_open(outputs["predictor_zoom_roi"]) == (0, 64, 123, 240)
    shape, clicks, prev = spy.calls[-1]
    assert shape == (3, 64, 117)
    assert clicks == [Click(32, 102, True), Click(46, 89, True), Click(10, 113, False)]
    assert np.array_equal(prev, inputs["predictor_prev_probs"][:, 123:])


class RecordingNet:
    """A stand-in network of the released input size that records its input and returns zero logits."""

    in_channels, image_size = 3, 448

    def __init__(self) -> None:
        self.inputs = []

    def to(self, device):
        return self

    def eval(self):
        return self

    def predict_logits(self, x):
        import torch

        self.inputs.append(x.clone())
        return torch.zeros(x.shape[0], 1, *x.shape[-2:])

    def predict(self, x):
        raise AssertionError("flip=True must use the logits")


@pytest.mark.parametrize("call", ["first", "zoom"])
def test_network_points_and_input_match_the_reference_calls(call):
    inputs, outputs, image, first, zoom_clicks = _fixtures()
    net = RecordingNet()
    zoom = wrap_predictor(Predictor(net, intensity="none"), protocol="simpleclick")
    zoom(image, first)
    if call == "zoom":
        zoom(image, zoom_clicks, inputs["predictor_prev_probs"])
    y0, y1, x0, x1 = zoom.roi
    clicks = first if call == "first" else zoom_clicks
    shifted = [Click(c.y - y0, c.x - x0, c.is_positive) for c in clicks]
    coords, signs = zoom.predictor.network_clicks(shifted, (y1 - y0, x1 - x0))
    recorded = outputs[f"predictor_{call}_net_points"]  # (2, 2M, 3): M positive slots then M negative slots
    half = recorded.shape[1] // 2
    for view in range(2):
        pos = coords[view][signs[view] > 0].float().numpy()
        neg = coords[view][signs[view] < 0].float().numpy()
        assert np.array_equal(pos, recorded[view, : len(pos), :2])
        assert np.array_equal(neg, recorded[view, half : half + len(neg), :2])
        assert (recorded[view, len(pos) : half] == -1).all() and (recorded[view, half + len(neg) :] == -1).all()
    if call == "zoom":  # REPORT section 4: row 224.0, col 390.564..., flipped 56.436... = 447 - 390.564...
        assert recorded[0, 0, 0] == 224.0 and coords[0, 0, 1].item() == pytest.approx(390.5641025641026)
        assert coords[1, 0, 1].item() == pytest.approx(447 - 390.5641025641026)
    x = net.inputs[-1]
    assert x.shape == (2, 6, 448, 448)
    np.testing.assert_allclose(
        x[0, :4, ::16, ::16].numpy(), outputs[f"predictor_{call}_net_input_grid16"], rtol=0, atol=1e-6
    )
    assert np.array_equal(x[1, :4].numpy(), x[0, :4].flip(-1).numpy())  # the flipped view


# --- selection in evaluate_noc, the CLI and the bundle ---------------------------------------------------------


def test_evaluate_noc_protocol_option():
    image = np.zeros((1, 40, 40), np.float32)
    image[0, 10:30, 12:28] = 1.0
    item = {"image": image, "label": (image[0] > 0).astype(np.uint8), "object_id": "box"}
    predictor = Predictor.from_preset("tiny", in_channels=1)
    default = evaluate_noc(predictor, [item], max_clicks=2, progress=False)
    again = evaluate_noc(predictor, [item], max_clicks=2, progress=False, protocol="default")
    assert default.records[0].ious == again.records[0].ious and default.settings["protocol"] == "default"
    paper = evaluate_noc(predictor, [item], max_clicks=2, progress=False, protocol="simpleclick")
    assert paper.settings["protocol"] == "simpleclick" and len(paper.records) == 1
    with pytest.raises(ValueError, match="protocol"):
        evaluate_noc(predictor, [item], progress=False, protocol="ritm")
    from monai_adaptiveclick.engines import get_baseline

    baseline = wrap_predictor(get_baseline("watershed"), protocol="simpleclick")
    assert isinstance(baseline, ZoomIn) and isinstance(baseline.predictor, FlipTTA)


def test_protocol_is_selectable_in_the_cli_and_the_bundle():
    from monai_adaptiveclick.cli import evaluate as cli_evaluate

    assert cli_evaluate.PROTOCOLS == PROTOCOLS
    config = json.loads((ROOT / "bundle" / "configs" / "evaluate.json").read_text())
    assert config["protocol"] == "default" and config["evaluator"]["protocol"] == "@protocol"
