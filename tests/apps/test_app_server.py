# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""MONAI Label app (issue 7): unit checks of the app's helpers, then a real server on 127.0.0.1.

The server tests start ``python -m monailabel.main start_server`` on a free loopback port with a copy of
``apps/adaptiveclick``, a temporary studies folder of small synthetic volumes and an untrained ``tiny`` checkpoint,
talk to it with ``monailabel.client.MONAILabelClient`` and stop it at the end.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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
from monailabel.client import MONAILabelClient  # noqa: E402
from monailabel.client.client import MONAILabelClientException  # noqa: E402

from monai_adaptiveclick.inference import Predictor  # noqa: E402
from monai_adaptiveclick.networks import create_model, load_model, save_model  # noqa: E402


def app_module(name: str):
    """Import ``lib.<name>`` of the app the way the MONAI Label server does (app folder on ``sys.path``)."""
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    return importlib.import_module(f"lib.{name}")


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
SHAPES = {"img_a": (40, 48, 6), "img_b": (36, 44, 5)}
AFFINES = {
    "img_a": np.array([[0.8, 0, 0, 10.0], [0, 0.9, 0, -5.0], [0, 0, 2.0, 3.0], [0, 0, 0, 1]]),
    "img_b": np.array([[0, -1.1, 0, 4.0], [1.2, 0, 0, 0.0], [0, 0, 3.0, -7.0], [0, 0, 0, 1]]),
}


CLIENT_TMP = tempfile.TemporaryDirectory(prefix="adaptiveclick_client_")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("label_server")
    app = root / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("model", "logs", "bin", "__pycache__"))
    studies = root / "studies"
    studies.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in SHAPES.items():
        volume = rng.normal(100.0, 20.0, shape).astype(np.float32)
        volume[8:24, 10:30] += 200.0  # a bright block
        save_nifti(studies / f"{name}.nii.gz", volume, AFFINES[name])
    checkpoint = root / "model.pt"
    torch.manual_seed(0)
    save_model(create_model("tiny", in_channels=1), checkpoint)
    port = _free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MONAI_LABEL_DATASTORE_AUTO_RELOAD": "false"}
    command = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(app), "--studies", str(studies)]
    command += ["--conf", "checkpoint", str(checkpoint), "--conf", "device", "cpu", "--conf", "preset", "tiny"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{(root / 'server.log').read_text()[-3000:]}")
            try:
                MONAILabelClient(url).info()
                break
            except Exception:
                if time.time() > deadline:
                    pytest.fail(f"server not up after 120 s:\n{(root / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield {"url": url, "studies": studies, "checkpoint": checkpoint, "root": root}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _infer(url: str, image: str, params: dict, client_id: str = "tests") -> tuple[np.ndarray, np.ndarray, dict]:
    client = MONAILabelClient(url, tmpdir=CLIENT_TMP.name, client_id=client_id)
    label_file, result = client.infer("adaptiveclick", image, params)
    result = json.loads(result) if isinstance(result, str) else result
    image_nii = nib.load(label_file)
    label = np.asarray(image_nii.dataobj)
    affine = image_nii.affine
    os.unlink(label_file)
    return label, affine, result


def test_info_lists_a_2d_deepgrow_model(server):
    info = MONAILabelClient(server["url"]).info()
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
    label, affine, result = _infer(server["url"], "img_a", params)
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
    url, path = server["url"], server["studies"] / "img_a.nii.gz"
    first = {"foreground": [[20, 20, 2]]}
    second = {"foreground": [[20, 20, 2]], "background": [[30, 40, 2]]}
    _, _, r1 = _infer(url, "img_a", first, client_id="refiner")
    label2, _, r2 = _infer(url, "img_a", second, client_id="refiner")
    _, _, fresh = _infer(url, "img_a", second, client_id="newcomer")
    _, _, repeat = _infer(url, "img_a", second, client_id="refiner")
    assert (r1["mode"], r2["mode"], fresh["mode"], repeat["mode"]) == ("new", "refine", "new", "repeat")
    assert r2["clicks"] == [[20, 20, 1], [30, 40, 0]]
    assert r2["mean_prob"] != fresh["mean_prob"]
    assert repeat["mean_prob"] == r2["mean_prob"]
    assert label2[30, 40, 2] == 0  # the negative click's voxel is background
    # the same two steps computed here with the Predictor: step 2 takes step 1's map as the previous mask
    predictor = Predictor(load_model(server["checkpoint"]), device="cpu")
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
    client = MONAILabelClient(server["url"])
    with pytest.raises(MONAILabelClientException) as info:
        client.infer("adaptiveclick", image, params)
    assert f"Status: {status};" in info.value.msg  # the client keeps the status only in its message
    assert words in info.value.msg
    # the next good request succeeds; a missing 'background' key means no negative clicks
    label, _, result = _infer(server["url"], "img_b", {"foreground": [[5, 6, 0]]})
    assert label.shape == SHAPES["img_b"] and result["slice"] == 0


def test_two_clients_on_two_images_in_parallel_are_independent(server):
    url = server["url"]
    sequences = {
        "img_a": [{"foreground": [[10, 12, 3]]}, {"foreground": [[10, 12, 3]], "background": [[25, 30, 3]]}],
        "img_b": [{"foreground": [[20, 8, 1]]}, {"foreground": [[20, 8, 1], [5, 30, 1]]}],
    }

    def run(image: str, client_id: str, out: dict) -> None:
        out[image] = [_infer(url, image, params, client_id=client_id) for params in sequences[image]]

    parallel: dict = {}
    threads = [threading.Thread(target=run, args=(image, f"par-{image}", parallel)) for image in sequences]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    sequential: dict = {}
    for image in sequences:
        run(image, f"seq-{image}", sequential)
    for image in sequences:
        assert [r[2]["mode"] for r in parallel[image]] == ["new", "refine"]
        for (label_p, _, res_p), (label_s, _, res_s) in zip(parallel[image], sequential[image], strict=True):
            assert label_p.shape == SHAPES[image]
            np.testing.assert_array_equal(label_p, label_s)
            assert abs(res_p["mean_prob"] - res_s["mean_prob"]) < 1e-6


def test_train_on_saved_labels_then_infer_uses_the_new_checkpoint(server, tmp_path):
    url = server["url"]
    client = MONAILabelClient(url)
    _, _, before = _infer(url, "img_a", {"foreground": [[10, 12, 3]]}, client_id="trainer")
    for name, shape in SHAPES.items():
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
    _, _, after = _infer(url, "img_a", {"foreground": [[10, 12, 3]]}, client_id="trainer")
    assert after["model"]["mtime_ns"] == os.stat(server["checkpoint"]).st_mtime_ns
    assert after["model"]["mtime_ns"] != before["model"]["mtime_ns"]
    assert after["mode"] == "new"  # the stored interaction belonged to the old weights
    trained = Predictor(load_model(server["checkpoint"]), device="cpu")
    image = np.asarray(nib.load(str(server["studies"] / "img_a.nii.gz")).dataobj, dtype=np.float32)[None, :, :, 3]
    assert abs(after["mean_prob"] - float(trained(image, [(10, 12, True)]).prob.mean())) < 1e-4
