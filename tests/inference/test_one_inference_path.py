# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""One inference path: the bundle's ``inference.json``, the MONAI Label app's infer task and the Predictor give the
same mask at the image's own size for the same image, clicks and previous mask, also on a refinement step."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_adaptiveclick.engines import save_deployable_model
from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.networks import create_model

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "apps" / "adaptiveclick"
H, W, K = 37, 45, 1
FIRST = [(12, 20, True)]
SECOND = [(12, 20, True), (30, 8, False)]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("one_path")
    rng = np.random.default_rng(0)
    volume = rng.normal(100.0, 15.0, (H, W, 3)).astype(np.float32)
    volume[6:22, 10:30] += 150.0
    nib.save(nib.Nifti1Image(volume, np.diag([0.7, 0.8, 2.0, 1.0])), str(root / "volume.nii.gz"))
    nib.save(nib.Nifti1Image(volume[:, :, K], np.eye(4)), str(root / "slice.nii.gz"))  # the same slice, 2-D
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = create_model("tiny", in_channels=1, image_size=64)
    checkpoint = save_deployable_model(model, root / "model.pt")
    predictor = Predictor.from_checkpoint(checkpoint)
    first = predictor(volume[None, :, :, K], FIRST)
    second = predictor(volume[None, :, :, K], SECOND, prev_mask=first.prob)
    # an independent check of the mask rule: prob > 0.49 (and not >=), at the image's own size
    assert first.prob.shape == (H, W)
    np.testing.assert_array_equal(second.mask(), second.prob > 0.49)
    return {"root": root, "checkpoint": checkpoint, "volume": volume, "first": first, "second": second}


def _bundle(case):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(REPO / "bundle" / "configs" / "inference.json"))
    parser["checkpoint"] = str(case["checkpoint"])
    parser["device"] = "$torch.device('cpu')"
    return parser.get_parsed_content("inference")


def _points(clicks, positive):
    return [[y, x] for y, x, p in clicks if p == positive]


def test_bundle_inference_equals_the_predictor(case):
    inference = _bundle(case)
    image = str(case["root"] / "slice.nii.gz")
    out = inference({"image": image, "foreground": _points(FIRST, True), "background": _points(FIRST, False)})
    assert tuple(out["pred"].shape) == (1, H, W)
    np.testing.assert_array_equal(np.asarray(out["pred"][0]), case["first"].mask())
    np.testing.assert_allclose(out["prob"][0], case["first"].prob, atol=1e-6)
    refined = inference(
        {
            "image": image,
            "foreground": _points(SECOND, True),
            "background": _points(SECOND, False),
            "prev_mask": case["first"].prob,
        }
    )
    np.testing.assert_array_equal(np.asarray(refined["pred"][0]), case["second"].mask())
    assert not np.array_equal(case["first"].mask(), case["second"].mask())  # the refinement changed the mask


def test_app_infer_task_equals_the_predictor(case):
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    pytest.importorskip("monailabel")
    configs = importlib.import_module("lib.configs")
    infers = importlib.import_module("lib.infers")
    conf = {"checkpoint": str(case["checkpoint"]), "device": "cpu", "respect_clicks": "false"}
    task = infers.AdaptiveClickInfer(configs.parse_settings(str(APP_DIR), conf))
    image = str(case["root"] / "volume.nii.gz")
    masks = []
    for clicks in (FIRST, SECOND):
        request = {
            "image": image,
            "foreground": [[y, x, K] for y, x, p in clicks if p],
            "background": [[y, x, K] for y, x, p in clicks if not p],
            "client_id": "one-path",
        }
        label_file, result = task(request)
        label = np.asarray(nib.load(label_file).dataobj)
        os.unlink(label_file)
        assert label.shape == (H, W, 3) and not label[:, :, [0, 2]].any()
        masks.append((label[:, :, K] > 0, result["mode"]))
    assert masks[0][1] == "new" and masks[1][1] == "refine"  # the second request used the stored previous mask
    np.testing.assert_array_equal(masks[0][0], case["first"].mask())
    np.testing.assert_array_equal(masks[1][0], case["second"].mask())
