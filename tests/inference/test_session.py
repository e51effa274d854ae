# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The click-by-click session shared by the NoC evaluation and the MONAI Label app."""

from __future__ import annotations

import numpy as np
import pytest

from monai_adaptiveclick.inference import ClickSession, Prediction, plan_clicks
from monai_adaptiveclick.transforms import Click


class RecordingPredictor:
    """Returns ``len(clicks) / 10`` everywhere and records each call's clicks and previous mask."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, np.ndarray | None]] = []

    def __call__(self, image, clicks, prev_mask=None):
        self.calls.append((list(clicks), None if prev_mask is None else prev_mask.copy()))
        return Prediction(np.full(image.shape[1:], len(clicks) / 10, np.float32))


def test_plan_refine_repeat_restart():
    a, b, c = Click(1, 2, True), Click(3, 4, False), Click(5, 6, True)
    plan = plan_clicks([a], [a, c, b])
    assert plan.mode == "refine" and plan.clicks == (a, c, b) and plan.added == 2
    assert plan_clicks([a], [a]).mode == "repeat"
    assert plan_clicks([a], [c]).mode == "new"  # click a was removed
    assert plan_clicks([], [b, a, b]).clicks == (b, a)  # duplicates dropped, order kept
    with pytest.raises(ValueError, match="no clicks"):
        plan_clicks([a], [])


def test_session_feeds_the_previous_probability_back():
    predictor = RecordingPredictor()
    session = ClickSession(predictor, np.zeros((1, 4, 5), np.float32))
    session.add_click((1, 1, True))
    session.add_click((2, 2, False))
    assert predictor.calls[0][1] is None  # first click: no previous mask
    np.testing.assert_allclose(predictor.calls[1][1], 0.1)  # second: the first prediction
    prediction, plan = session.update([(1, 1, True), (2, 2, False), (3, 3, True)])
    assert plan.mode == "refine" and float(prediction.prob[0, 0]) == pytest.approx(0.3)
    np.testing.assert_allclose(predictor.calls[2][1], 0.2)
    _, plan = session.update([(1, 1, True), (2, 2, False), (3, 3, True)])
    assert plan.mode == "repeat" and len(predictor.calls) == 3  # no new prediction
    _, plan = session.update([(0, 0, False)])
    assert plan.mode == "new" and predictor.calls[-1][1] is None
