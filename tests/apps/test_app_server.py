# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""MONAI Label app (issue 7): unit checks of the app's helpers, then the real server on 127.0.0.1.

The server (``conftest.py``: ``python -m monailabel.main start_server`` on a free loopback port with a copy of
``apps/adaptiveclick``, small synthetic volumes and an untrained ``tiny`` checkpoint) is shared with the bad-input
tests of ``test_app_hardening.py``; these tests talk to it with ``monailabel.client.MONAILabelClient``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "apps" / "adaptiveclick"

monailabel = pytest.importorskip("monailabel")
from label_server import AFFINES, SHAPES, app_module  # noqa: E402 - tests/apps is on sys.path (conftest.py)
from monailabel.client import MONAILabelClient  # noqa: E402
from monailabel.client.client import MONAILabelClientException  # noqa: E402

from monai_adaptiveclick.inference import Predictor  # noqa: E402
from monai_adaptiveclick.networks import create_model, load_model, save_model  # noqa: E402


def decode_rle(rle: dict) -> np.ndarray:
    """Independent decoder of uncompressed COCO RLE (column-major runs, background first)."""
    height, width = rle["size"]
    flat = np.zeros(height * width, dtype=bool)
    position, value = 0, False
    for run in rle["counts"]:
        flat[position : position + run] = value
        position += run
        value = not value
    assert position == height * width
    return flat.reshape((height, width), order="F")


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(array, affine), str(path))


# ---------------------------------------------------------------------------------------------------------------
# helpers without a server
# ---------------------------------------------------------------------------------------------------------------
def test_encode_rle_round_trip_and_bbox():
    interaction = app_module("interaction")
    rng = np.random.default_rng(0)
    for shape in [(7, 5), (1, 9), (12, 12)]:
        mask = rng.random(shape) > 0.6
        mask[0, 0] = bool(rng.integers(2))
        rle = interaction.encode_rle(mask)
        assert rle["size"] == list(shape)
        np.testing.assert_array_equal(decode_rle(rle), mask)
    mask = np.zeros((6, 8), bool)
    mask[2:4, 3:7] = True
    assert interaction.mask_bbox(mask) == [2, 3, 3, 6]
    assert interaction.mask_bbox(np.zeros((3, 3), bool)) is None


@pytest.mark.parametrize("ext", [".nii.gz", ".nii"])
@pytest.mark.parametrize("shape, k", [((9, 7, 5), 0), ((9, 7, 5), 3), ((9, 7, 5), 4), ((9, 7), 0)])
def test_slice_label_writer_matches_nibabel_and_itk(tmp_path, ext, shape, k):
    sitk = pytest.importorskip("SimpleITK")
    writer = app_module("writer").SliceLabelWriter()
    affine = np.array([[0, -1.5, 0, 3.0], [0.7, 0, 0, -2.0], [0, 0, 2.5, 9.0], [0, 0, 0, 1]])
    mask = np.random.default_rng(k).random(shape[:2]) > 0.5
    expected = np.zeros(shape, np.uint8)
    if len(shape) == 3:
        expected[:, :, k] = mask
    else:
        expected[:] = mask
    path = writer.write(str(tmp_path / f"label{ext}"), mask, k, shape, affine)
    written = nib.load(path)
    np.testing.assert_array_equal(np.asarray(written.dataobj), expected)
    np.testing.assert_allclose(written.affine, affine, atol=1e-6)
    itk_array = sitk.GetArrayFromImage(sitk.ReadImage(path))  # ITK (3D Slicer's reader): axes reversed
    np.testing.assert_array_equal(itk_array, expected.T)
    with pytest.raises(ValueError, match="outside"):
        writer.write(str(tmp_path / f"bad{ext}"), mask, shape[2] if len(shape) == 3 else 1, shape, affine)


def test_slice_choice_and_point_parsing():
    interaction = app_module("interaction")
    error = app_module("common").RequestError
    fg = interaction.parse_points([[1, 2, 3], [4.0, 5, 6], [1, 2, 3]], "foreground")
    assert fg == [(1, 2, 3), (4, 5, 6)]
    assert interaction.parse_points(None, "background") == []
    # OHIF: no 'slice' -> the k of the click not seen before
    assert interaction.select_slice({}, [(1, 1, 2), (1, 1, 7)], [(0, 0, 4)], seen={(1, 1, 7), (0, 0, 4)}) == 2
    assert interaction.select_slice({}, [(1, 1, 2)], [(0, 0, 4)], seen=()) == 4
    assert interaction.select_slice({"slice": 9}, [(1, 1, 2)], []) == 9
    for bad in ([[1, 2]], [["a", 1, 2]], "x", [[1, 2, float("nan")]]):
        with pytest.raises(error):
            interaction.parse_points(bad, "foreground")
    with pytest.raises(error, match="no clicks"):
        interaction.select_slice({}, [], [])


def test_infer_task_feeds_stored_sequences_as_channels(tmp_path):
    """A 4-channel checkpoint that records its sequences gets the siblings in that order (in-process task)."""
    configs, infers = app_module("configs"), app_module("infers")
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    for sequence in ("t1", "t2", "flair", "t1ce"):
        save_nifti(tmp_path / f"BraTS_7_{sequence}.nii.gz", np.random.rand(24, 20, 3).astype(np.float32), affine)
    torch.manual_seed(0)
    save_model(create_model("tiny", in_channels=4), tmp_path / "m4.pt", sequences=["t2", "t1", "flair", "t1ce"])
    settings = configs.parse_settings(str(APP_DIR), {"checkpoint": str(tmp_path / "m4.pt"), "device": "cpu"})
    task = infers.AdaptiveClickInfer(settings)
    label_file, result = task({"image": str(tmp_path / "BraTS_7_flair.nii.gz"), "foreground": [[5, 6, 1]]})
    os.unlink(label_file)
    assert result["channels"] == [f"BraTS_7_{s}.nii.gz" for s in ("t2", "t1", "flair", "t1ce")]
    assert result["model"]["sequences"] == ["t2", "t1", "flair", "t1ce"]


def test_build_training_items_one_object_per_value_and_slice(tmp_path):
    trainers = app_module("trainers")
    affine = np.eye(4)
    image = np.random.rand(16, 12, 4).astype(np.float32)
    label = np.zeros((16, 12, 4), np.uint8)
    label[2:8, 2:6, 1] = 1
    label[9:14, 3:9, 1] = 2
    label[4:10, 4:10, 3] = 1
    label[0, 0, 2] = 1  # 1 px: below min_area
    save_nifti(tmp_path / "img.nii.gz", image, affine)
    save_nifti(tmp_path / "lab.nii.gz", label, affine)
    items = trainers.build_training_items([(str(tmp_path / "img.nii.gz"), str(tmp_path / "lab.nii.gz"))])
    assert [item["object_id"] for item in items] == ["img.nii.gz:k1:v1", "img.nii.gz:k1:v2", "img.nii.gz:k3:v1"]
    for item in items:
        k, value = item["meta"]["slice"], item["meta"]["value"]
        assert item["image"].shape == (1, 16, 12) and item["label"].dtype == np.uint8
        np.testing.assert_allclose(item["image"][0], image[:, :, k], rtol=1e-6)
        np.testing.assert_array_equal(item["label"][0], label[:, :, k] == value)
    assert (
        len(trainers.build_training_items([(str(tmp_path / "img.nii.gz"), str(tmp_path / "lab.nii.gz"))], max_items=2))
        == 2
    )


# ---------------------------------------------------------------------------------------------------------------
# the real server
# ---------------------------------------------------------------------------------------------------------------
def test_info_lists_a_2d_deepgrow_model(server):
    info = MONAILabelClient(server.url).info()
    model = info["models"]["adaptiveclick"]
    assert model["type"] == "deepgrow" and model["dimension"] == 2
    assert "adaptiveclick" in info["trainers"]


@pytest.mark.parametrize("slicer_style", [False, True])
def test_infer_returns_slice_label_with_image_geometry(server, slicer_style):
    point = [12, 15, 4]
    params = {"foreground": [point, [3, 3, 1]], "label": f"geometry{slicer_style}"}
    if slicer_style:
        params["slice"] = 4  # Slicer sends the slice; the click on slice 1 is ignored
    else:
        params["foreground"] = [point]  # OHIF: the slice is the latest click's k
    label, affine, result = server.infer("img_a", params)
    assert label.shape == SHAPES["img_a"]
    np.testing.assert_allclose(affine, AFFINES["img_a"], atol=1e-5)
    assert result["slice"] == 4 and result["clicks"] == [[12, 15, 1]]
    assert set(np.nonzero(label)[2].tolist()) == {4}
    assert label[12, 15, 4] == 1
    assert int((label > 0).sum()) == result["area"]
    assert 1 <= len(result["candidates"]) <= 3
    scores = [c["score"] for c in result["candidates"]]
    assert scores == sorted(scores, reverse=True)
    for candidate in result["candidates"]:
        mask = decode_rle(candidate["rle"])
        assert mask.shape == SHAPES["img_a"][:2] and int(mask.sum()) == candidate["area"]
        if candidate["area"]:
            rows, cols = np.nonzero(mask)
            assert candidate["bbox"] == [rows.min(), cols.min(), rows.max(), cols.max()]


def test_second_click_refines_with_the_stored_previous_mask(server):
    path = server.studies / "img_a.nii.gz"
    first = {"foreground": [[20, 20, 2]]}
    second = {"foreground": [[20, 20, 2]], "background": [[30, 40, 2]]}
    _, _, r1 = server.infer("img_a", first, client_id="refiner")
    label2, _, r2 = server.infer("img_a", second, client_id="refiner")
    _, _, fresh = server.infer("img_a", second, client_id="newcomer")
    _, _, repeat = server.infer("img_a", second, client_id="refiner")
    assert (r1["mode"], r2["mode"], fresh["mode"], repeat["mode"]) == ("new", "refine", "new", "repeat")
    assert r2["clicks"] == [[20, 20, 1], [30, 40, 0]]
    assert r2["mean_prob"] != fresh["mean_prob"]
    assert repeat["mean_prob"] == r2["mean_prob"]
    assert label2[30, 40, 2] == 0  # the negative click's voxel is background
    # the same two steps computed here with the Predictor: step 2 takes step 1's map as the previous mask
    predictor = Predictor(load_model(server.checkpoint), device="cpu")
    image = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)[None, :, :, 2]
    step1 = predictor(image, [(20, 20, True)])
    step2 = predictor(image, [(20, 20, True), (30, 40, False)], prev_mask=step1.prob)
    assert abs(r1["mean_prob"] - float(step1.prob.mean())) < 1e-4
    assert abs(r2["mean_prob"] - float(step2.prob.mean())) < 1e-4
    np.testing.assert_array_equal(label2[:, :, 2] > 0, _with_clicks(step2.prob >= 0.49, r2["clicks"]))


def _with_clicks(mask: np.ndarray, clicks: list) -> np.ndarray:
    mask = mask.copy()
    for i, j, positive in clicks:
        mask[i, j] = bool(positive)
    return mask


@pytest.mark.parametrize(
    "image, params, status, words",
    [
        ("img_a", {}, 400, "no clicks"),
        ("img_a", {"foreground": [], "background": []}, 400, "no clicks"),
        ("img_a", {"foreground": [[40, 0, 0]]}, 400, "outside the image"),
        ("img_a", {"background": [[-1, 2, 3]]}, 400, "outside the image"),
        ("img_a", {"foreground": [[1, 2]]}, 400, "3 voxel indices"),
        ("img_a", {"foreground": [[1, 2, 3]], "slice": 9}, 400, "slice 9"),
        ("img_a", {"foreground": [[1, 2, 3]], "slice": 2}, 400, "no clicks on slice 2"),
        ("no_such_image", {"foreground": [[1, 2, 3]]}, 404, "unknown image"),
    ],
)
def test_bad_request_gets_an_error_and_the_server_keeps_serving(server, image, params, status, words):
    client = MONAILabelClient(server.url)
    with pytest.raises(MONAILabelClientException) as info:
        client.infer("adaptiveclick", image, params)
    assert f"Status: {status};" in info.value.msg  # the client keeps the status only in its message
    assert words in info.value.msg
    # the next good request succeeds; a missing 'background' key means no negative clicks
    label, _, result = server.infer("img_b", {"foreground": [[5, 6, 0]]})
    assert label.shape == SHAPES["img_b"] and result["slice"] == 0


# (image, client id or None = no client_id) -> (click sequence, expected modes); c1 and c2 share slice 3 of img_a,
# c4's second request drops a click (starts over), the anonymous client never refines
CONCURRENT = {
    ("img_a", "c1"): (
        [{"foreground": [[10, 12, 3]]}, {"foreground": [[10, 12, 3]], "background": [[25, 30, 3]]}],
        ["new", "refine"],
    ),
    ("img_a", "c2"): ([{"foreground": [[20, 22, 3]]}, {"foreground": [[20, 22, 3], [12, 40, 3]]}], ["new", "refine"]),
    ("img_b", "c3"): ([{"foreground": [[20, 8, 1]]}, {"foreground": [[20, 8, 1], [5, 30, 1]]}], ["new", "refine"]),
    ("img_b", "c4"): (
        [{"background": [[3, 3, 1]], "foreground": [[15, 15, 1]]}, {"foreground": [[15, 15, 1]]}],
        ["new", "new"],
    ),
    ("img_free", None): (
        [{"foreground": [[9, 12, 2]]}, {"foreground": [[9, 12, 2]], "background": [[20, 2, 2]]}],
        ["new", "new"],
    ),
}


def _run_sequence(server, image: str, client_id: str | None, sequence: list[dict]) -> list[tuple]:
    return [server.infer(image, params, client_id=client_id) for params in sequence]


def _assert_same_answer(together: tuple, alone: tuple) -> None:
    """The label volume, every candidate mask and the summary numbers of two answers are identical."""
    (label_t, affine_t, result_t), (label_a, affine_a, result_a) = together, alone
    np.testing.assert_array_equal(label_t, label_a)
    np.testing.assert_array_equal(affine_t, affine_a)
    assert (result_t["mode"], result_t["slice"], result_t["clicks"]) == (
        result_a["mode"],
        result_a["slice"],
        result_a["clicks"],
    )
    assert abs(result_t["mean_prob"] - result_a["mean_prob"]) < 1e-6
    assert len(result_t["candidates"]) == len(result_a["candidates"])
    for cand_t, cand_a in zip(result_t["candidates"], result_a["candidates"], strict=True):
        np.testing.assert_array_equal(decode_rle(cand_t["rle"]), decode_rle(cand_a["rle"]))
        assert abs(cand_t["score"] - cand_a["score"]) < 1e-5


def test_concurrent_clients_get_the_answers_they_get_alone(server):
    """Five clients at once (two on one slice of one image, one without client_id) plus a client sending bad
    requests: every answer equals, mask by mask, the same request sequence served alone afterwards."""
    together: dict = {}
    refused: list = []
    barrier = threading.Barrier(len(CONCURRENT) + 1)

    def client(key: tuple) -> None:
        barrier.wait(timeout=60)
        together[key] = _run_sequence(server, key[0], key[1], CONCURRENT[key][0])

    def bad_client() -> None:
        barrier.wait(timeout=60)
        for _ in range(3):
            refused.append(server.post_infer("img_a", {"foreground": [[1, 2, 3]], "background": [[1, 2, 3]]}))
            refused.append(server.post_infer("../studies/img_a", {"foreground": [[1, 2, 3]]}))

    threads = [threading.Thread(target=client, args=(key,)) for key in CONCURRENT]
    threads.append(threading.Thread(target=bad_client))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert set(together) == set(CONCURRENT)
    assert [r.status_code for r in refused] == [400] * 6
    for n, (key, (sequence, modes)) in enumerate(CONCURRENT.items()):
        alone = _run_sequence(server, key[0], None if key[1] is None else f"alone-{n}", sequence)
        assert [answer[2]["mode"] for answer in together[key]] == modes
        for answer_together, answer_alone in zip(together[key], alone, strict=True):
            assert answer_together[0].shape == SHAPES[key[0]]
            _assert_same_answer(answer_together, answer_alone)


def test_train_on_saved_labels_then_infer_uses_the_new_checkpoint(server, tmp_path):
    """Training on the two good labelled images; the two stored pairs with bad labels are skipped, not fatal."""
    client = MONAILabelClient(server.url)
    _, _, before = server.infer("img_a", {"foreground": [[10, 12, 3]]}, client_id="trainer")
    for name in ("img_a", "img_b"):
        shape = SHAPES[name]
        label = np.zeros(shape, np.uint8)
        label[8:24, 10:30, 1:4] = 1
        label[28:34, 32:40, 2] = 2
        save_nifti(tmp_path / f"{name}_label.nii.gz", label, AFFINES[name])
        client.save_label(name, str(tmp_path / f"{name}_label.nii.gz"), tag="final")
    task = client.train_start("adaptiveclick", {"max_steps": 2, "batch_size": 2, "epochs": 1})
    assert task["status"] in ("SUBMITTED", "RUNNING")
    deadline = time.time() + 180
    while True:
        status = client.train_status()
        if status["status"] not in ("SUBMITTED", "RUNNING"):
            break
        assert time.time() < deadline, f"training still {status['status']} after 180 s"
        time.sleep(1)
    assert status["status"] == "DONE", status.get("details")
    stats = client.info()["train_stats"]["adaptiveclick"]
    assert stats["images"] == 2 and stats["items"] == 2 * 3 + 2 and stats["iterations"] == 2
    assert len(stats["skipped"]) == 2
    assert any("pair_shape" in line and "differs from the image shape" in line for line in stats["skipped"])
    assert any("pair_values" in line and "must be integers" in line for line in stats["skipped"])
    _, _, after = server.infer("img_a", {"foreground": [[10, 12, 3]]}, client_id="trainer")
    assert after["model"]["mtime_ns"] == os.stat(server.checkpoint).st_mtime_ns
    assert after["model"]["mtime_ns"] != before["model"]["mtime_ns"]
    assert after["mode"] == "new"  # the stored interaction belonged to the old weights
    trained = Predictor(load_model(server.checkpoint), device="cpu")
    image = np.asarray(nib.load(str(server.studies / "img_a.nii.gz")).dataobj, dtype=np.float32)[None, :, :, 3]
    assert abs(after["mean_prob"] - float(trained(image, [(10, 12, True)]).prob.mean())) < 1e-4
