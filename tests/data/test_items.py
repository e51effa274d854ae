# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Dataset items: the item contract, object masks, the bad-input log."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from monai_adaptiveclick.data.items import BadInputError, BadInputLog, make_item, object_mask, validate_item


def test_make_item_contract():
    image = np.arange(12, dtype=np.int16).reshape(1, 3, 4)
    mask = np.array([[0, 3, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
    item = make_item(image, mask, "obj", {"k": 1}, ignore=mask == 1)
    assert item["image"].dtype == np.float32 and item["image"].shape == (1, 3, 4)
    assert item["label"].dtype == np.uint8 and item["label"].shape == (1, 3, 4)
    assert item["label"].sum() == 2 and set(np.unique(item["label"])) == {0, 1}
    assert item["ignore"].dtype == bool and item["ignore"][0, 2, 0]
    assert item["object_id"] == "obj" and item["meta"] == {"k": 1}


def test_validate_item_rejects_bad_items():
    good = make_item(np.zeros((1, 4, 4)), np.ones((4, 4)), "a")
    with pytest.raises(ValueError, match="sizes differ"):
        validate_item({**good, "label": np.ones((1, 4, 5), np.uint8)})
    with pytest.raises(ValueError, match="in \\{0, 1\\}"):
        validate_item({**good, "label": np.full((1, 4, 4), 2, np.uint8)})
    with pytest.raises(ValueError, match="NaN"):
        validate_item({**good, "image": np.full((1, 4, 4), np.nan, np.float32)})
    with pytest.raises(ValueError, match="no 'object_id'"):
        validate_item({k: v for k, v in good.items() if k != "object_id"})


def test_object_mask_specs():
    label = np.array([[1, 1, 0, 2], [0, 0, 0, 2], [3, 0, 0, 0]])
    assert object_mask(label, ("value", 2)).sum() == 2
    assert object_mask(label, ("values", (1, 3))).sum() == 3
    assert object_mask(label, ("nonzero",)).sum() == 5
    assert object_mask(label, ("greater", 1)).sum() == 3
    # 4-connected components of label > 0 in raster order: {(0,0),(0,1)}, {(0,3),(1,3)}, {(2,0)}
    assert np.argwhere(object_mask(label, ("component", 2, 1))).tolist() == [[0, 3], [1, 3]]
    assert np.argwhere(object_mask(label, ("component", 3, 1))).tolist() == [[2, 0]]
    # 8-connectivity joins nothing more here; a diagonal pair is one component only with connectivity 2
    diag = np.array([[1, 0], [0, 1]])
    assert object_mask(diag, ("component", 1, 1)).sum() == 1 and object_mask(diag, ("component", 1, 2)).sum() == 2
    with pytest.raises(ValueError, match="unknown object spec"):
        object_mask(label, ("circle", 1))


def test_bad_input_log():
    log = BadInputLog(skip_bad=False)
    with pytest.raises(BadInputError, match="x.png"):
        log.report(BadInputError("x.png: broken"))
    log = BadInputLog(skip_bad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log.report(BadInputError("y.png: broken"))
    assert log.count == 1 and "y.png" in str(caught[0].message)
