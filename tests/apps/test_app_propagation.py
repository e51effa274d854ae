# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""3-D answers of the MONAI Label app (issue 15, item 2): ``"propagate": true`` and the ``adaptiveclick_3d`` model.

Two real servers on 127.0.0.1 (``label_server.py``), both talked to with ``monailabel.client.MONAILabelClient``:

- the shared server of the app tests (untrained ``tiny`` network): the 3-D answer's geometry and JSON, with the
  served network;
- a server of this module started with ``--conf baseline watershed``: a deterministic segmenter that finds the bright
  block of the synthetic volumes (rows 8..23, columns 10..29 on every slice), so that the propagation through
  several slices, and "nothing found at the clicks" (422), can be asserted. An untrained network's masks are noise.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests

monailabel = pytest.importorskip("monailabel")
from label_server import AFFINES, SHAPES, running_server  # noqa: E402 - tests/apps is on sys.path
from monailabel.client.client import MONAILabelClientException  # noqa: E402

#: Generous bound on one 3-D request of a 40 x 48 x 6 volume on a shared CPU (measured: well under a second).
MAX_SECONDS_3D = 60.0


@pytest.fixture(scope="module")
def baseline_server(tmp_path_factory):
    """A server of this module serving the ``watershed`` baseline instead of a network."""
    with running_server(tmp_path_factory.mktemp("label_server_3d"), {"baseline": "watershed"}) as running:
        yield running


def _check_json(result: dict, depth: int) -> None:
    assert result["propagated"] is True
    assert len(result["slice_confidence"]) == depth
    assert all(0.0 <= c <= 1.0 for c in result["slice_confidence"])
    assert 0 < len(result["slices"]) <= depth and len(result["review_first"]) <= 5
    assert set(result["review_first"]) <= set(result["slices"]) - set(result["seeds"])
    latencies = result["latencies"]
    assert latencies["per_slice"] >= 0 and latencies["total"] >= latencies["predict"] >= 0


def test_propagate_returns_the_3d_label_with_the_image_geometry(baseline_server):
    params = {"foreground": [[15, 20, 2]], "background": [[35, 40, 2]], "propagate": True}
    start = time.perf_counter()
    label, affine, result = baseline_server.infer("img_a", params)
    seconds = time.perf_counter() - start
    print(f"3-D request (img_a {SHAPES['img_a']}): {seconds:.3f} s, latencies {result['latencies']}")
    assert seconds < MAX_SECONDS_3D
    assert label.shape == SHAPES["img_a"] and label.dtype == np.uint8
    np.testing.assert_allclose(affine, AFFINES["img_a"], atol=1e-5)
    assert set(np.unique(label)) == {0, 1}
    filled = np.flatnonzero(label.any(axis=(0, 1))).tolist()
    assert len(filled) > 1 and result["slices"] == filled == list(range(SHAPES["img_a"][2]))
    block = np.zeros(SHAPES["img_a"], bool)
    block[8:24, 10:30] = True
    assert (label.astype(bool) & block).sum() / (label.astype(bool) | block).sum() > 0.8
    assert result["seeds"] == [2] and result["model"]["baseline"] == "watershed"
    _check_json(result, SHAPES["img_a"][2])


def test_adaptiveclick_3d_model_and_clicks_on_two_slices(baseline_server):
    params = {"foreground": [[12, 15, 0], [20, 25, 4]]}
    label, affine, result = baseline_server.infer("img_b", params, model="adaptiveclick_3d")
    assert label.shape == SHAPES["img_b"]
    np.testing.assert_allclose(affine, AFFINES["img_b"], atol=1e-5)
    assert result["seeds"] == [0, 4] and len(result["slices"]) > 2
    _check_json(result, SHAPES["img_b"][2])
    info = requests.get(f"{baseline_server.url}/info/", timeout=30).json()
    assert info["models"]["adaptiveclick_3d"]["dimension"] == 3
    assert info["models"]["adaptiveclick"]["config"]["propagate"] is False


@pytest.mark.parametrize(
    "params, status, words",
    [
        ({"foreground": [[15, 20, 6]], "propagate": True}, 400, "outside the image"),
        ({"foreground": [[15, 48, 2]], "propagate": True}, 400, "outside the image"),
        ({"foreground": [[15, 20, 2]], "propagate": 1}, 400, "'propagate' must be true or false"),
        ({"foreground": [[15, 20, 2]], "propagate": "yes"}, 400, "'propagate' must be true or false"),
        ({"background": [[35, 40, 2]], "propagate": True}, 422, "structure is not found at the clicks"),
    ],
)
def test_propagate_errors_are_4xx_naming_the_problem(baseline_server, params, status, words):
    response = baseline_server.post_infer("img_a", params)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    baseline_server.assert_serving()


def test_not_found_through_the_client_then_still_serving(baseline_server):
    from monailabel.client import MONAILabelClient

    client = MONAILabelClient(baseline_server.url, tmpdir=baseline_server.client_tmp, client_id="tests")
    with pytest.raises(MONAILabelClientException) as caught:
        client.infer("adaptiveclick_3d", "img_a", {"background": [[35, 40, 3]]})
    assert "Status: 422" in caught.value.msg and "not found at the clicks" in caught.value.msg
    label, _, result = baseline_server.infer("img_a", {"foreground": [[15, 20, 3]], "propagate": True})
    assert len(result["slices"]) > 1 and label[15, 20, 3] == 1


def test_propagate_with_the_served_network(server):
    """The shared server's network (untrained: its masks are noise): geometry and JSON of the 3-D answer."""
    params = {"foreground": [[15, 20, 2]], "propagate": "true"}
    try:
        label, affine, result = server.infer("img_a", params)
    except MONAILabelClientException as err:  # an untrained network may find nothing at the click
        assert "Status: 422" in err.msg and "not found at the clicks" in err.msg
        return
    assert label.shape == SHAPES["img_a"]
    np.testing.assert_allclose(affine, AFFINES["img_a"], atol=1e-5)
    assert label[15, 20, 2] == 1 and 2 in result["slices"]
    _check_json(result, SHAPES["img_a"][2])
    default = server.infer("img_a", {"foreground": [[15, 20, 2]]})[2]
    assert "propagated" not in default and default["slice"] == 2  # the 2-D answer is unchanged
    server.assert_serving()


@pytest.mark.parametrize("ext", [".nii.gz", ".nii"])
def test_write_volume_matches_nibabel(tmp_path, ext):
    import importlib
    import sys

    import nibabel as nib
    from label_server import APP_DIR

    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    writer = importlib.import_module("lib.writer").SliceLabelWriter()
    label = (np.random.default_rng(0).random((9, 7, 5)) > 0.5).astype(np.uint8)
    path = writer.write_volume(str(tmp_path / f"label{ext}"), label, AFFINES["img_b"])
    written = nib.load(path)
    np.testing.assert_array_equal(np.asarray(written.dataobj), label)
    np.testing.assert_allclose(written.affine, AFFINES["img_b"], atol=1e-6)
    with pytest.raises(ValueError, match="must end with"):
        writer.write_volume(str(tmp_path / "label.png"), label, AFFINES["img_b"])
    parse = importlib.import_module("lib.configs").parse_settings
    assert parse(str(APP_DIR), {"baseline": "watershed"}).baseline == "watershed"
    with pytest.raises(ValueError, match="baseline"):
        parse(str(APP_DIR), {"baseline": "magic"})
