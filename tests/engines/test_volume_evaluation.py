# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Clicks per structure (engines.volume_evaluation) and the ``evaluate-volumes`` CLI."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from monai_adaptiveclick.cli import main
from monai_adaptiveclick.engines import get_baseline
from monai_adaptiveclick.engines.volume_evaluation import VolumeCase, clicks_to_dice, evaluate_volumes
from monai_adaptiveclick.engines.volume_reporting import format_volume_table
from monai_adaptiveclick.inference import segment_volume


def _numpy_dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def ellipsoid() -> VolumeCase:
    """A bright ellipsoid in noise, 48 x 48 x 16; its largest cross-section is slice 8."""
    rng = np.random.default_rng(0)
    y, x, z = np.mgrid[:48, :48, :16]
    mask = ((y - 24) / 14) ** 2 + ((x - 22) / 11) ** 2 + ((z - 8) / 6) ** 2 <= 1
    volume = (mask + rng.normal(0.0, 0.15, mask.shape)).astype(np.float32)[None]
    return VolumeCase("ellipsoid", volume, mask)


@pytest.fixture(scope="module")
def watershed_result(ellipsoid):
    return evaluate_volumes(get_baseline("watershed"), [ellipsoid], max_clicks=5)


def test_dice_recomputed_from_the_returned_labels(ellipsoid, watershed_result):
    record = watershed_result.records[0]
    assert len(record.dices) == len(record.clicks) >= 1
    for n in range(1, len(record.clicks) + 1):  # replay the propagation with the first n clicks
        label = segment_volume(get_baseline("watershed"), ellipsoid.volume, record.clicks[:n]).label
        assert record.dices[n - 1] == pytest.approx(_numpy_dice(label, ellipsoid.mask))


def test_clicks_to_threshold_from_the_per_click_dice(watershed_result):
    record = watershed_result.records[0]
    for t, needed in record.clicks_to_dice.items():
        reached = [k for k, d in enumerate(record.dices, start=1) if d >= t]
        assert needed == (reached[0] if reached else 5)
    assert clicks_to_dice([0.1, 0.79, 0.8], 0.8, 9) == 3
    assert clicks_to_dice([0.1, 0.79], 0.8, 9) == 9


def test_first_click_on_the_largest_area_slice(ellipsoid, watershed_result):
    i, j, k, positive = watershed_result.records[0].clicks[0]
    assert positive and k == int(np.argmax(ellipsoid.mask.sum(axis=(0, 1))))
    assert ellipsoid.mask[i, j, k]


def test_propagation_needs_fewer_clicks_than_slice_by_slice(ellipsoid, watershed_result):
    record = watershed_result.records[0]
    slices = int(ellipsoid.mask.any(axis=(0, 1)).sum())
    assert record.slices == slices
    for t in (0.80, 0.85, 0.90):
        assert record.clicks_to_dice[t] < record.slice_clicks_to_dice[t]
        assert record.slice_clicks_to_dice[t] >= slices  # at least one click on every slice
        assert record.slice_dice[t] >= t  # the slice-by-slice labels do reach the Dice in 3-D
    assert record.dices[-1] >= 0.90


def test_next_clicks_go_to_the_slice_with_the_largest_error():
    """A predictor that reproduces the truth on a clicked slice only (propagation stops at once): each click fills
    the slice with the largest remaining area, so the Dice after n clicks is that of the n largest slices."""
    mask = np.zeros((20, 20, 6), bool)
    areas = [0, 9, 36, 16, 25, 4]
    for k, a in enumerate(areas):
        side = int(np.sqrt(a))
        mask[2 : 2 + side, 3 : 3 + side, k] = True
    volume = np.stack([np.zeros(mask.shape), np.broadcast_to(np.arange(6.0), mask.shape)]).astype(np.float32)

    def predictor(image, clicks, prev_mask=None):
        k = int(round(float(image[1, 0, 0])))
        seeded = prev_mask is None or not np.any(prev_mask)
        prob = mask[..., k].astype(np.float32) if seeded and any(c[2] for c in clicks) else np.zeros((20, 20))
        return SimpleNamespace(prob=prob.astype(np.float32))

    case = VolumeCase("squares", volume, mask)
    # clicked slices start from nothing: this predictor tells propagation from seeding by the previous mask
    result = evaluate_volumes(
        predictor, [case], max_clicks=6, dice_thresholds=(0.9, 1.0), slice_by_slice=False, refine_previous=False
    )
    record = result.records[0]
    assert [k for _, _, k, _ in record.clicks] == [2, 4, 3, 1, 5]  # stops once the Dice is 1.0
    order = sorted(areas, reverse=True)
    expected = [2 * sum(order[:n]) / (sum(order[:n]) + sum(areas)) for n in range(1, 6)]
    assert record.dices == pytest.approx(expected)
    assert record.clicks_to_dice == {0.9: 3, 1.0: 5}


def test_bad_input_refused(ellipsoid):
    empty = VolumeCase("empty", ellipsoid.volume, np.zeros_like(ellipsoid.mask))
    with pytest.raises(ValueError, match="empty mask"):
        evaluate_volumes(get_baseline("watershed"), [empty])
    wrong = VolumeCase("wrong", ellipsoid.volume, ellipsoid.mask[:-1])
    with pytest.raises(ValueError, match="does not match"):
        evaluate_volumes(get_baseline("watershed"), [wrong])
    with pytest.raises(ValueError, match="max_clicks"):
        evaluate_volumes(get_baseline("watershed"), [ellipsoid], max_clicks=0)


def test_table_row(watershed_result):
    line = format_volume_table([watershed_result]).splitlines()[-1]
    cells = [c.strip() for c in line.strip("|").split("|")]
    record = watershed_result.records[0]
    assert cells[0] == "watershed" and cells[1] == "1"
    assert float(cells[4]) == record.clicks_to_dice[0.9]
    assert float(cells[7]) == record.slice_clicks_to_dice[0.9]


def test_cli_smoke(tmp_path, capsys):
    out = tmp_path / "volumes"
    assert main(["evaluate-volumes", "--limit", "1", "--max-clicks", "2", "--output", str(out), "--quiet"]) == 0
    assert (out / "dice_vs_clicks.png").stat().st_size > 0
    table = (out / "table.md").read_text().splitlines()
    assert table[0].startswith("| method | objects |") and table[2].startswith("| watershed |")
    (result,) = json.loads((out / "records.json").read_text())
    assert result["method"] == "watershed" and result["max_clicks"] == 2
    assert len(result["records"]) == result["summary"]["objects"] >= 1
    for record in result["records"]:
        assert 1 <= len(record["clicks"]) <= 2 and len(record["dices"]) == len(record["clicks"])
        assert all(0.0 <= d <= 1.0 for d in record["dices"])
        assert record["slice_clicks_to_dice"]["0.85"] >= record["slices"]


def test_cli_bad_paths(tmp_path, capsys):
    assert main(["evaluate-volumes", "--dataset-dir", str(tmp_path / "nope"), "--output", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error:")
    assert main(["evaluate-volumes", "--checkpoint", str(tmp_path / "x.pt"), "--output", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_text("these are not weights\n")
    assert main(["evaluate-volumes", "--checkpoint", str(tmp_path / "bad.pt"), "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "bad.pt" in err and err.count("\n") == 1


def test_corrections_refine_the_previous_result():
    """A correction on a propagated slice is sent with the last result there as the previous mask (and without it
    when ``refine_previous=False``)."""
    from monai_adaptiveclick.inference import Prediction

    calls = []

    def keep_and_add(image, clicks, prev_mask=None):
        yy, xx = np.mgrid[: image.shape[-2], : image.shape[-1]]
        prob = np.zeros(image.shape[-2:], np.float32) if prev_mask is None else (prev_mask > 0.5).astype(np.float32)
        for y, x, positive in clicks:
            prob[(yy - y) ** 2 + (xx - x) ** 2 <= 16] = float(positive)
        calls.append(([tuple(c) for c in clicks], prev_mask))
        return Prediction(prob=prob)

    yy, xx = np.mgrid[:32, :32]
    disk = lambda y, x, r: (yy - y) ** 2 + (xx - x) ** 2 <= r * r  # noqa: E731
    truth = np.stack([disk(8, 8, 4) | disk(22, 22, 4), disk(22, 8, 5)], axis=-1)  # click 2 goes to slice 1
    case = VolumeCase("disks", np.ones(truth.shape, np.float32), truth)  # flat: the propagation runs on
    for refine in (True, False):
        calls.clear()
        record = evaluate_volumes(keep_and_add, [case], 2, slice_by_slice=False, refine_previous=refine).records[0]
        y, x, k, positive = record.clicks[1]
        assert k == 1 and positive
        prev = next(prev for clicks, prev in calls if (y, x, True) in clicks)
        if refine:  # the propagated disk of slice 0 (the first click's) is the previous mask there
            assert prev is not None and np.array_equal(prev > 0.5, disk(8, 8, 4))
        else:
            assert prev is None


def test_cli_no_refine_previous_reaches_the_evaluation(tmp_path, monkeypatch):
    import monai_adaptiveclick.engines.volume_evaluation as module

    seen = []
    real = module.evaluate_volumes

    def spy(*args, **kwargs):
        seen.append(kwargs["refine_previous"])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "evaluate_volumes", spy)
    for flags in ([], ["--no-refine-previous"]):
        out = tmp_path / f"run{len(flags)}"
        args = ["evaluate-volumes", "--limit", "1", "--max-clicks", "1", "--output", str(out), "--quiet"]
        assert main([*args, *flags]) == 0
    assert seen == [True, False]
