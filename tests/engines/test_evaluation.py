# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""NoC protocol (SPEC section 5): accounting with scripted predictors, IoU/ignore rules, reports, zoom-in and flip."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_adaptiveclick.engines import (
    FlipTTA,
    NoCResult,
    ZoomIn,
    box_iou,
    compute_iou,
    display_image,
    evaluate_noc,
    expand_box,
    format_table,
    object_roi,
    plot_miou_curves,
    save_overlay,
)

SIZE = 48
TOP, LEFT, SIDE = 10, 10, 20  # the ground-truth square: 400 pixels


@dataclass
class Out:
    """Minimal predictor output (the contract only needs .prob and .candidates)."""

    prob: np.ndarray
    candidates: list = field(default_factory=list)


def make_item(object_id: str = "obj", ignore: np.ndarray | None = None) -> dict:
    label = np.zeros((1, SIZE, SIZE), np.uint8)
    label[0, TOP : TOP + SIDE, LEFT : LEFT + SIDE] = 1
    image = np.random.default_rng(0).normal(size=(1, SIZE, SIZE)).astype(np.float32)
    item = {"image": image, "label": label, "object_id": object_id, "meta": {}}
    if ignore is not None:
        item["ignore"] = ignore[None]
    return item


def mask_with_iou(percent: int) -> np.ndarray:
    """Subset of the gt square with IoU exactly percent/100: drop the first 4*(100-percent) pixels (raster order)."""
    mask = np.zeros((SIZE, SIZE), bool)
    mask[TOP : TOP + SIDE, LEFT : LEFT + SIDE] = True
    rows, cols = np.nonzero(mask)
    drop = 4 * (100 - percent)
    mask[rows[:drop], cols[:drop]] = False
    return mask


class Scripted:
    """Predictor whose IoU after k clicks is schedule[k-1] / 100 (last value repeated)."""

    def __init__(self, schedule: list[int]) -> None:
        self.schedule = schedule
        self.calls: list[tuple[list, np.ndarray]] = []

    def __call__(self, image, clicks, prev_mask=None):
        self.calls.append((list(clicks), np.array(prev_mask)))
        percent = self.schedule[min(len(clicks), len(self.schedule)) - 1]
        return Out(mask_with_iou(percent).astype(np.float32))


def expected_noc(ious: list[float], threshold: float, max_clicks: int) -> int:
    hits = [k for k, v in enumerate(ious, start=1) if v >= threshold]
    return hits[0] if hits else max_clicks


def run(schedule: list[int], max_clicks: int = 20, items=None) -> NoCResult:
    return evaluate_noc(
        Scripted(schedule), items or [make_item()], max_clicks=max_clicks, zoom_in=False, flip=False, progress=False
    )


def test_perfect_from_first_click():
    result = run([100])
    assert result.noc == {0.85: 1.0, 0.9: 1.0}
    assert result.failures == {0.85: 0, 0.9: 0}
    assert result.records[0].ious == [1.0]
    assert result.miou_at_k == [1.0] * 20
    # first click at the centre of the square, positive
    y, x, positive = result.records[0].clicks[0]
    assert positive and TOP <= y < TOP + SIDE and LEFT <= x < LEFT + SIDE


@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_noc90_is_first_click_reaching_090(k):
    schedule = [50] * (k - 1) + [90]
    result = run(schedule)
    assert result.noc[0.9] == k
    assert result.noc[0.85] == k
    assert len(result.records[0].ious) == k  # the loop stops at IoU 0.90
    assert result.failures[0.9] == (1 if k == 20 else 0)  # SPEC: failures = NoC >= 20


def test_never_reaching_gives_max_and_failure():
    result = run([70])
    assert result.noc == {0.85: 20.0, 0.9: 20.0}
    assert result.failures == {0.85: 1, 0.9: 1}
    assert len(result.records[0].ious) == 20
    assert result.total_clicks == 20


def test_noc85_and_noc90_reached_at_different_clicks():
    result = run([40, 60, 86, 88, 89, 93, 99])
    assert result.noc[0.85] == 3
    assert result.noc[0.9] == 6
    assert result.records[0].ious == [0.40, 0.60, 0.86, 0.88, 0.89, 0.93]
    assert result.miou_at_k[:6] == pytest.approx([0.40, 0.60, 0.86, 0.88, 0.89, 0.93])
    assert result.miou_at_k[6:] == pytest.approx([0.93] * 14)  # carried forward after stopping


def test_miou_and_noc_means_over_objects():
    items = [make_item("a"), make_item("b")]
    predictors = {"a": [60, 95], "b": [80, 85, 87, 91]}

    class PerObject:
        def __call__(self, image, clicks, prev_mask=None):
            key = "a" if image[0, 0, 0] == items[0]["image"][0, 0, 0] else "b"
            return Scripted(predictors[key])(image, clicks, prev_mask)

    items[1]["image"] = items[1]["image"] + 1.0
    result = evaluate_noc(PerObject(), items, max_clicks=5, zoom_in=False, flip=False, progress=False)
    curve_a = [0.60, 0.95, 0.95, 0.95, 0.95]
    curve_b = [0.80, 0.85, 0.87, 0.91, 0.91]
    assert result.miou_at_k == pytest.approx([(a + b) / 2 for a, b in zip(curve_a, curve_b, strict=True)])
    assert result.noc[0.9] == pytest.approx((2 + 4) / 2)
    assert result.noc[0.85] == pytest.approx((2 + 2) / 2)
    assert result.num_objects == 2


@settings(max_examples=30, deadline=None)
@given(
    schedule=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=12),
    max_clicks=st.integers(min_value=1, max_value=12),
)
def test_noc_accounting_property(schedule, max_clicks):
    result = run(schedule, max_clicks=max_clicks)
    full = [schedule[min(k, len(schedule)) - 1] / 100 for k in range(1, max_clicks + 1)]
    stop = next((k for k, v in enumerate(full, start=1) if v >= 0.9), max_clicks)
    assert result.records[0].ious == full[:stop]
    for t in (0.85, 0.9):
        assert result.noc[t] == expected_noc(full, t, max_clicks)
        assert result.failures[t] == int(expected_noc(full, t, max_clicks) >= max_clicks)
    assert result.miou_at_k == pytest.approx(full[:stop] + [full[stop - 1]] * (max_clicks - stop))


def test_prev_mask_is_last_prob_and_clicks_accumulate():
    predictor = Scripted([30, 50, 70])
    evaluate_noc(predictor, [make_item()], max_clicks=3, zoom_in=False, flip=False, progress=False)
    (c1, p1), (c2, p2), (c3, p3) = predictor.calls
    assert len(c1) == 1 and len(c2) == 2 and len(c3) == 3
    assert c2[:1] == c1 and c3[:2] == c2
    assert not p1.any()
    np.testing.assert_array_equal(p2, mask_with_iou(30).astype(np.float32))
    np.testing.assert_array_equal(p3, mask_with_iou(50).astype(np.float32))
    assert len({(y, x) for y, x, _ in c3}) == 3  # never the same pixel twice


def test_spc_positive_and_consistent():
    result = run([20, 40, 95])
    assert result.spc > 0
    assert result.spc == pytest.approx(result.total_seconds / 3)


def test_compute_iou_matches_definition_with_ignore():
    rng = np.random.default_rng(3)
    pred, gt, ignore = (rng.random((3, 20, 20)) > 0.5).astype(bool)
    valid = ~ignore
    inter = sum(1 for i in range(20) for j in range(20) if valid[i, j] and pred[i, j] and gt[i, j])
    union = sum(1 for i in range(20) for j in range(20) if valid[i, j] and (pred[i, j] or gt[i, j]))
    assert compute_iou(pred, gt, ignore) == pytest.approx(inter / union)
    assert compute_iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        compute_iou(pred, gt[:10])


def test_ignore_pixels_neither_fn_nor_fp_and_never_clicked():
    ignore = np.zeros((SIZE, SIZE), bool)
    ignore[TOP + SIDE : TOP + SIDE + 6, :] = True  # band below the square
    ignore[TOP : TOP + 3, LEFT : LEFT + SIDE] = True  # top rows of the square itself

    class Leaky:
        def __init__(self):
            self.clicks = []

        def __call__(self, image, clicks, prev_mask=None):
            self.clicks = list(clicks)
            # the gt square (minus its ignored rows) plus all ignored pixels, except the first two rows of the
            # square proper; IoU over the valid pixels: (17*20 - 2*20) / (17*20) < 0.9
            mask = mask_with_iou(100) | ignore
            mask[TOP + 3 : TOP + 5, LEFT : LEFT + SIDE] = len(clicks) >= 3
            return Out(mask.astype(np.float32))

    predictor = Leaky()
    result = evaluate_noc(
        predictor, [make_item(ignore=ignore)], max_clicks=6, zoom_in=False, flip=False, progress=False
    )
    assert result.records[0].ious[:2] == pytest.approx([300 / 340, 300 / 340])
    assert result.records[0].ious[-1] == 1.0
    assert result.noc[0.9] == 3
    assert not any(ignore[y, x] for y, x, _ in predictor.clicks)


def test_empty_ground_truth_is_skipped_with_warning_and_counted():
    empty = make_item("empty")
    empty["label"][:] = 0
    with pytest.warns(UserWarning, match="empty"):
        result = evaluate_noc(
            Scripted([95]), [empty, make_item("ok")], max_clicks=3, zoom_in=False, flip=False, progress=False
        )
    assert result.skipped == 1 and result.skipped_ids == ["empty"]
    assert result.num_objects == 1 and result.records[0].object_id == "ok"


def test_bad_inputs_raise_clear_errors():
    nan_item = make_item()
    nan_item["image"][0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run([90], items=[nan_item])
    bad_label = make_item()
    bad_label["label"] = bad_label["label"][:, :10]
    with pytest.raises(ValueError, match="label shape"):
        run([90], items=[bad_label])

    def wrong_shape(image, clicks, prev_mask=None):
        return Out(np.zeros((5, 5), np.float32))

    with pytest.raises(ValueError, match="shape"):
        evaluate_noc(wrong_shape, [make_item()], zoom_in=False, flip=False, progress=False)
    with pytest.raises(ValueError, match="max_clicks"):
        evaluate_noc(Scripted([90]), [make_item()], max_clicks=0)
    with pytest.raises(ValueError, match="iou_thresholds"):
        evaluate_noc(Scripted([90]), [make_item()], iou_thresholds=(1.5,))


def test_constant_image_is_evaluated():
    item = make_item()
    item["image"][:] = 7.0
    result = run([92], items=[item])
    assert result.noc[0.9] == 1


def test_reports_json_csv_plot_table(tmp_path):
    result = run([40, 60, 86, 88, 89, 93])
    path = result.to_json(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["summary"]["noc"] == {"0.85": 3.0, "0.90": 6.0}
    assert data["records"][0]["ious"] == pytest.approx([0.40, 0.60, 0.86, 0.88, 0.89, 0.93])
    back = NoCResult.from_json(path)
    assert back.noc == result.noc and back.miou_at_k == pytest.approx(result.miou_at_k)
    with result.to_csv(tmp_path / "r.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["noc85"] == "3" and rows[0]["noc90"] == "6" and rows[0]["num_clicks"] == "6"
    assert len(rows[0]["clicks"].split(";")) == 6
    png = plot_miou_curves([result, back], tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = format_table([result])
    assert "NoC@85" in table and "NoC@90" in table and "| 3.00 | 6.00 |" in table
    assert result.table() == table


# --- zoom-in ---------------------------------------------------------------------------------------------------------


def test_expand_box_rules():
    assert expand_box((100, 110, 100, 110), (400, 400)) == (5, 205, 5, 205)  # min 200, centred
    assert expand_box((100, 300, 100, 200), (1000, 1000)) == (60, 340, 50, 250)  # x1.4: 280 x 140 -> 280 x 200
    y0, y1, x0, x1 = expand_box((0, 10, 390, 400), (400, 400))  # at a corner: shifted inside, size kept
    assert (y0, y1, x0, x1) == (0, 200, 200, 400)
    assert expand_box((10, 20, 10, 20), (150, 300))[:2] == (0, 150)  # image smaller than 200: whole side
    with pytest.raises(ValueError, match="outside"):
        expand_box((0, 10, 0, 500), (400, 400))


@settings(max_examples=30, deadline=None)
@given(
    height=st.integers(20, 600),
    width=st.integers(20, 600),
    data=st.data(),
)
def test_expand_box_property(height, width, data):
    y0 = data.draw(st.integers(0, height - 1))
    y1 = data.draw(st.integers(y0 + 1, height))
    x0 = data.draw(st.integers(0, width - 1))
    x1 = data.draw(st.integers(x0 + 1, width))
    b = expand_box((y0, y1, x0, x1), (height, width))
    for lo, hi, tlo, thi, limit in ((b[0], b[1], y0, y1, height), (b[2], b[3], x0, x1, width)):
        assert 0 <= lo < hi <= limit
        assert hi - lo >= min(200, limit)  # at least 200 px or the whole image side
        assert hi - lo >= min(limit, 1.4 * (thi - tlo) - 1e-9)
        assert lo <= tlo and thi <= hi  # contains the original box


def test_box_iou():
    assert box_iou((0, 10, 0, 10), (0, 10, 0, 10)) == 1.0
    assert box_iou((0, 10, 0, 10), (0, 10, 5, 15)) == pytest.approx(50 / 150)
    assert box_iou((0, 10, 0, 10), (20, 30, 20, 30)) == 0.0


def test_object_roi_uses_prediction_and_positive_clicks():
    prev = np.zeros((500, 500), np.float32)
    prev[100:110, 100:110] = 0.9
    prev[300, 300] = 0.4  # below 0.5: not part of the box
    roi = object_roi(prev, [(105, 105, True), (400, 400, False)])
    assert roi == expand_box((100, 110, 100, 110), (500, 500))
    roi = object_roi(prev, [(105, 105, True), (250, 120, True)])
    assert roi == expand_box((100, 251, 100, 121), (500, 500))
    assert object_roi(np.zeros((50, 50)), [(3, 3, False)]) is None


class Recorder:
    """Inner predictor recording what it is given; predicts 0.8 everywhere in what it sees."""

    def __init__(self):
        self.seen = []

    def __call__(self, image, clicks, prev_mask=None):
        self.seen.append((image.shape, list(clicks), prev_mask.shape))
        return Out(np.full(image.shape[1:], 0.8, np.float32), [(np.full(image.shape[1:], 0.3, np.float32), 0.7)])


def test_zoom_in_crop_rules():
    image = np.zeros((1, 600, 600), np.float32)
    inner = Recorder()
    zoom = ZoomIn(inner)
    prev = np.zeros((600, 600), np.float32)
    # click 1: whole image
    out = zoom(image, [(300, 300, True)], prev)
    assert inner.seen[-1][0] == (1, 600, 600) and zoom.roi is None
    assert out.prob.shape == (600, 600)
    # click 2: crop = bbox(prev > 0.5 + positive clicks) x1.4, >= 200 px
    prev[280:320, 260:340] = 0.9
    clicks = [(300, 300, True), (100, 100, False)]
    out = zoom(image, clicks, prev)
    expected = expand_box((280, 320, 260, 340), (600, 600))
    assert zoom.roi == expected == (200, 400, 200, 400)
    assert inner.seen[-1][0] == (1, 200, 200) and inner.seen[-1][2] == (200, 200)
    assert inner.seen[-1][1] == [(100, 100, True)]  # shifted; the negative click outside the crop is dropped
    assert (out.prob[200:400, 200:400] == np.float32(0.8)).all()
    assert out.prob.sum() == pytest.approx(0.8 * 200 * 200, rel=1e-5)  # outside the crop: 0
    assert out.candidates[0][0].shape == (600, 600) and out.candidates[0][1] == pytest.approx(0.7)
    # click 3: candidate box changes a little (box IoU >= 0.5) and positives inside -> crop kept
    prev[:] = 0
    prev[280:330, 250:340] = 0.9
    candidate = expand_box((280, 330, 250, 340), (600, 600))
    assert candidate != expected and box_iou(candidate, expected) >= 0.5
    zoom(image, [*clicks, (320, 255, True)], prev)
    assert zoom.roi == expected
    # click 4: a positive click outside the crop -> recomputed
    clicks4 = [*clicks, (320, 255, True), (450, 300, True)]
    zoom(image, clicks4, prev)
    assert zoom.roi == expand_box((280, 451, 250, 340), (600, 600))
    # click 5: the predicted region moves away (box IoU < 0.5) -> recomputed
    prev[:] = 0
    prev[20:60, 500:590] = 0.9
    clicks5 = [(30, 550, True), (40, 520, True)]
    zoom(image, [*clicks5, (50, 560, False)], prev)
    assert zoom.roi == expand_box((20, 60, 500, 590), (600, 600))
    # a new object (1 click) resets
    zoom(image, [(10, 10, True)], prev)
    assert zoom.roi is None and inner.seen[-1][0] == (1, 600, 600)


def test_zoom_in_small_image_uses_whole_image():
    image = np.zeros((2, 120, 150), np.float32)
    prev = np.zeros((120, 150), np.float32)
    prev[50:60, 50:60] = 1.0
    inner = Recorder()
    ZoomIn(inner)(image, [(55, 55, True), (5, 5, False)], prev)
    assert inner.seen[-1][0] == (2, 120, 150) and inner.seen[-1][1] == [(55, 55, True), (5, 5, False)]


def test_zoom_in_empty_prediction_without_positive_click_uses_whole_image():
    inner = Recorder()
    zoom = ZoomIn(inner)
    zoom(np.zeros((1, 400, 400), np.float32), [(5, 5, False), (7, 9, False)], np.zeros((400, 400), np.float32))
    assert zoom.roi is None and inner.seen[-1][0] == (1, 400, 400)


# --- flip ------------------------------------------------------------------------------------------------------------


def equivariant(image, clicks, prev_mask=None):
    """A flip-equivariant predictor: intensity plus closeness to the positive clicks, pixel-wise."""
    yy, xx = np.mgrid[: image.shape[1], : image.shape[2]]
    score = image[0].astype(np.float64)
    for y, x, positive in clicks:
        score = score + (1.0 if positive else -1.0) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 50.0)
    return Out((1 / (1 + np.exp(-score))).astype(np.float32))


def test_flip_of_equivariant_predictor_is_identity():
    image = np.random.default_rng(1).normal(size=(1, 24, 31)).astype(np.float32)
    clicks = [(5, 7, True), (20, 30, False), (12, 0, True)]
    direct = equivariant(image, clicks).prob
    flipped = FlipTTA(equivariant)(image, clicks).prob
    np.testing.assert_allclose(flipped, direct, atol=1e-5)


def test_flip_averages_logits():
    ramp = np.linspace(0.1, 0.9, 16, dtype=np.float64)[None].repeat(4, 0)

    def fixed(image, clicks, prev_mask=None):
        return Out(ramp.astype(np.float32))

    out = FlipTTA(fixed)(np.zeros((1, 4, 16), np.float32), [(1, 2, True)]).prob
    logit = np.log(ramp / (1 - ramp))
    expected = 1 / (1 + np.exp(-(logit + logit[:, ::-1]) / 2))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(out, 0.5, atol=1e-6)  # an antisymmetric ramp averages to 0.5


def test_flip_passes_flipped_clicks_and_prev_mask():
    seen = []

    def spy(image, clicks, prev_mask=None):
        seen.append((image.copy(), list(clicks), prev_mask.copy()))
        return Out(np.full(image.shape[1:], 0.5, np.float32))

    image = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    prev = np.arange(12, dtype=np.float32).reshape(3, 4) / 12
    FlipTTA(spy)(image, [(1, 0, True), (2, 3, False)], prev)
    np.testing.assert_array_equal(seen[1][0], image[:, :, ::-1])
    assert seen[1][1] == [(1, 3, True), (2, 0, False)]
    np.testing.assert_array_equal(seen[1][2], prev[:, ::-1])


def test_evaluate_noc_with_tta_composes_wrappers():
    result = evaluate_noc(equivariant, [make_item()], max_clicks=3, zoom_in=True, flip=True, progress=False)
    assert result.settings["zoom_in"] and result.settings["flip"]
    assert 1 <= len(result.records[0].ious) <= 3


def test_tta_rejects_clicks_outside_image():
    with pytest.raises(ValueError, match="outside the image"):
        FlipTTA(equivariant)(np.zeros((1, 8, 8), np.float32), [(8, 0, True)])
    with pytest.raises(ValueError, match="outside the image"):
        ZoomIn(equivariant)(np.zeros((1, 8, 8), np.float32), [(0, -1, True)])


def test_overlay_and_display_image(tmp_path):
    item = make_item()
    pred = mask_with_iou(80)
    path = save_overlay(item["image"], item["label"], pred, [(20, 20, True), (5, 5, False)], tmp_path / "o.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="pred shape"):
        save_overlay(item["image"], item["label"], pred[:5], [], tmp_path / "bad.png")
    rgb = np.stack([np.arange(100.0).reshape(10, 10)] * 3)
    shown = display_image(rgb)
    assert shown.shape == (10, 10, 3) and shown.min() == 0.0 and shown.max() == 1.0
    assert np.allclose(shown[..., 0], np.clip((rgb[0] - 0.99) / (98.01 - 0.99), 0, 1))  # 1st / 99th percentiles
    assert (display_image(np.full((2, 4, 4), 5.0)) == 0).all()
