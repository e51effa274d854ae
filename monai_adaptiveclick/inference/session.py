# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The click-by-click interaction with one object: ordered clicks and the previous probability map.

AdaptiveClick takes its own previous prediction as an input channel (paper section III-A), so an interactive tool
must remember, per object being segmented, the clicks so far (in the order they were made) and the probability map
they produced. :class:`ClickSession` is that memory; the NoC evaluation (one click at a time,
:meth:`ClickSession.add_click`) and the MONAI Label app (a request carries the whole click set,
:meth:`ClickSession.update`) both use it.

A click set is planned against the stored one (:func:`plan_clicks`): a strict superset is a *refinement* (the new
clicks are appended in the given order and the stored map is the previous mask), the same set a *repeat* (the stored
prediction is returned as it is), anything else starts *new* (no previous mask).

Example:
    >>> import numpy as np
    >>> from monai_adaptiveclick.transforms import Click
    >>> session = ClickSession(lambda image, clicks, prev_mask=None: Prediction(np.full((4, 4), len(clicks) / 4)),
    ...                        np.zeros((1, 4, 4), np.float32))
    >>> session.add_click(Click(1, 1, True)).prob[0, 0]
    0.25
    >>> prediction, plan = session.update([Click(1, 1, True), Click(2, 2, False)])
    >>> plan.mode, plan.added, float(prediction.prob[0, 0])
    ('refine', 1, 0.5)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monai_adaptiveclick.transforms import Click, as_clicks

from .predictor import Prediction

__all__ = ["ClickSession", "Plan", "plan_clicks"]

PLAN_MODES = ("new", "refine", "repeat")


@dataclass(frozen=True)
class Plan:
    """How to serve a click set.

    Attributes:
        clicks: the ordered clicks to send to the predictor.
        mode: ``"new"`` (no previous mask), ``"refine"`` (the stored map is the previous mask) or ``"repeat"``.
        added: how many clicks the set adds to the stored ones (all of them for ``"new"``).
    """

    clicks: tuple[Click, ...]
    mode: str
    added: int


def plan_clicks(stored: Sequence[Any], clicks: Sequence[Any]) -> Plan:
    """Plan ``clicks`` against the ``stored`` ordered clicks (module docstring).

    Args:
        stored: the clicks of the stored interaction, oldest first (empty: nothing stored).
        clicks: the requested click set, in request order; duplicates are dropped.

    Raises:
        ValueError: ``clicks`` is empty.

    Example:
        >>> plan_clicks([(1, 1, True)], [(1, 1, True), (3, 3, False)]).mode
        'refine'
        >>> plan_clicks([(1, 1, True)], [(3, 3, False)]).mode
        'new'
    """
    wanted = tuple(dict.fromkeys(as_clicks(clicks)))
    if not wanted:
        raise ValueError("no clicks: give at least one click.")
    previous = tuple(as_clicks(stored))
    if previous:
        if set(previous) == set(wanted):
            return Plan(previous, "repeat", 0)
        if set(previous) < set(wanted):
            added = tuple(c for c in wanted if c not in previous)
            return Plan(previous + added, "refine", len(added))
    return Plan(wanted, "new", len(wanted))


class ClickSession:
    """Clicks and previous prediction of one object on one image (module docstring).

    Args:
        predictor: any callable of the *Predictor* contract (``Predictor``, a TTA wrapper, a classical baseline).
        image: the image ``[C, H, W]`` the clicks are placed on.
        key: what identifies the weights (or anything else) the session was made with; the owner compares it to
            decide whether the session is still valid.
    """

    def __init__(self, predictor: Callable[..., Prediction], image: np.ndarray, key: Hashable = None) -> None:
        if not callable(predictor):
            raise ValueError(f"predictor must be callable, got {type(predictor).__name__}.")
        self.predictor = predictor
        self.image = image
        self.key = key
        self.clicks: tuple[Click, ...] = ()
        self.prediction: Prediction | None = None

    @property
    def prev_mask(self) -> np.ndarray | None:
        """The probability map of the last prediction (the next previous-mask input), ``None`` before any."""
        return None if self.prediction is None else self.prediction.prob

    def _predict(self, clicks: tuple[Click, ...], prev_mask: np.ndarray | None) -> Prediction:
        prediction = self.predictor(self.image, list(clicks), prev_mask)
        self.clicks, self.prediction = clicks, prediction
        return prediction

    def add_click(self, click: Any) -> Prediction:
        """Append one click and predict with the last probability map as the previous mask."""
        return self._predict((*self.clicks, *as_clicks([click])), self.prev_mask)

    def update(self, clicks: Sequence[Any]) -> tuple[Prediction, Plan]:
        """Serve a whole click set: refine, repeat or start over (:func:`plan_clicks`).

        Returns:
            ``(prediction, plan)``.
        """
        plan = plan_clicks(self.clicks, clicks)
        if plan.mode == "repeat" and self.prediction is not None:
            return self.prediction, plan
        previous = self.prev_mask if plan.mode == "refine" else None
        return self._predict(plan.clicks, previous), plan

    def reset(self) -> None:
        """Forget the clicks and the previous prediction."""
        self.clicks, self.prediction = (), None
