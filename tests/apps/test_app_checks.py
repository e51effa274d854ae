# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The app's request checks, confined datastore, next-sample strategy and training skips, in process (issue 16).

The server tests (``test_app_hardening.py``) check the same rules over HTTP; these cover what a request cannot
reach: links placed in the studies folder for writes, the strategy's skip loop, the guards' installation.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("monailabel")

from label_server import APP_DIR, app_module  # noqa: E402 - tests/apps is on sys.path (conftest.py)


def _nifti(path: Path, array: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(array), np.eye(4)), str(path))
    return path


def _status(call) -> tuple[int, str]:
    error = app_module("common").RequestError
    with pytest.raises(error) as info:
        call()
    return info.value.status_code, info.value.detail


@pytest.fixture()
def store(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    _nifti(studies / "case_1.nii.gz", np.random.default_rng(0).random((8, 9, 3)).astype(np.float32))
    datastore = app_module("datastore").ConfinedLocalDatastore(str(studies), auto_reload=False)
    return datastore, studies, tmp_path


def test_request_error_is_an_http_exception_and_a_value_error():
    from fastapi import HTTPException

    error = app_module("common").RequestError("slice 9 is outside", 404)
    assert isinstance(error, HTTPException) and isinstance(error, ValueError)
    assert (error.status_code, error.detail, str(error)) == (404, "slice 9 is outside", "slice 9 is outside")
    with pytest.raises(ValueError, match="HTTP error code"):
        app_module("common").RequestError("x", 200)


@pytest.mark.parametrize(
    "bad", ["", "   ", None, 7, "../x", "a/b", "a\\b", "/etc/passwd", ".", "..", "a\x00b", "x" * 201]
)
def test_image_ids_must_be_plain_names(bad):
    status, detail = _status(lambda: app_module("datastore").check_image_id(bad))
    assert status == 400 and ("no image id given" in detail or "not a datastore image name" in detail)


@pytest.mark.parametrize("good", ["case_001", "BraTS2021_00000_flair", "patient 7", "a..b", "ünï"])
def test_plain_image_ids_pass(good):
    assert app_module("datastore").check_image_id(good) == good


@pytest.mark.parametrize("bad", ["", "../final", "a/b", ".hidden", "x" * 65, "tag with space", None])
def test_label_tags_must_be_plain_words(bad):
    status, _ = _status(lambda: app_module("datastore").check_label_tag(bad))
    assert status == 400


def test_datastore_confines_reads_to_the_studies_folder(store):
    datastore, studies, root = store
    assert datastore.resolve_image("case_1") == str((studies / "case_1.nii.gz").resolve())
    assert _status(lambda: datastore.resolve_image("nobody"))[0] == 404
    assert _status(lambda: datastore.resolve_image("../studies/case_1"))[0] == 400
    _nifti(root / "secret.nii.gz", np.zeros((4, 4, 4), np.float32))
    os.symlink(root / "secret.nii.gz", studies / "linked.nii.gz")
    datastore.refresh()
    status, detail = _status(lambda: datastore.get_image_uri("linked"))
    assert status == 403 and "outside the studies folder" in detail
    assert "outside the studies folder" in datastore.image_problem("linked")
    assert datastore.image_problem("case_1") is None


def test_datastore_writes_never_follow_links_out_of_the_folder(store, tmp_path):
    datastore, studies, root = store
    target = _nifti(root / "victim.nii.gz", np.zeros((8, 9, 3), np.float32))
    before = target.read_bytes()
    os.symlink(target, studies / "evil.nii.gz")
    upload = _nifti(tmp_path / "upload.nii.gz", np.ones((8, 9, 3), np.float32))
    assert _status(lambda: datastore.add_image("evil", str(upload), {}))[0] == 403
    outside_labels = root / "outside_labels"
    outside_labels.mkdir()
    os.symlink(outside_labels, studies / "labels" / "linked", target_is_directory=True)
    label = _nifti(tmp_path / "label.nii.gz", np.ones((8, 9, 3), np.uint8))
    assert _status(lambda: datastore.save_label("case_1", str(label), "linked", {}))[0] == 403
    assert target.read_bytes() == before and not list(outside_labels.iterdir())
    # the same files through plain names are stored inside
    assert datastore.add_image("fresh", str(upload), {}) == "fresh"
    assert datastore.save_label("fresh", str(label), "final", {}) == "fresh"
    assert (studies / "labels" / "final" / "fresh.nii.gz").is_file()


def test_datastore_refuses_bad_files_before_storing(store, tmp_path):
    datastore, studies, _ = store
    nan = np.ones((8, 9, 3), np.float32)
    nan[1, 1, 1] = np.nan
    status, detail = _status(lambda: datastore.add_image("nan", str(_nifti(tmp_path / "n.nii.gz", nan)), {}))
    assert status == 422 and "not finite" in detail and "was not stored" in detail
    wrong = _nifti(tmp_path / "w.nii.gz", np.ones((8, 9, 4), np.uint8))
    status, detail = _status(lambda: datastore.save_label("case_1", str(wrong), "final", {}))
    assert status == 422 and "label shape (8, 9, 4) differs from the image shape (8, 9, 3)" in detail
    assert _status(lambda: datastore.add_image("p", str(tmp_path / "w.nii.gz"), ["not", "a", "dict"]))[0] == 400
    assert not (studies / "nan.nii.gz").exists() and not (studies / "labels" / "final" / "case_1.nii.gz").exists()
    assert set(datastore.list_images()) == {"case_1"}


class _FakeStore:
    def __init__(self, problems: dict[str, str | None]) -> None:
        self.problems = problems
        self.checked: list[str] = []

    def get_unlabeled_images(self, *_):
        return list(self.problems)

    def get_image_info(self, image):
        return {"strategy": {"random": {"ts": 0}}}

    def image_problem(self, image):
        self.checked.append(image)
        return self.problems[image]


def test_next_sample_skips_bad_images_and_logs_why(caplog):
    strategy = app_module("activelearning").UsableRandom(random.Random(0))
    problems = {f"bad_{n}": f"bad_{n}: empty file (0 bytes)" for n in range(5)} | {"good": None}
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            fake = _FakeStore(problems)
            picked = strategy({"strategy": "random"}, fake)
            assert picked["id"] == "good" and picked["weight"] > 0 and fake.checked[-1] == "good"
    assert all(f"skipping image 'bad_{n}'" in caplog.text for n in range(5))
    assert strategy({"strategy": "random"}, _FakeStore({"bad": "bad: truncated"})) is None


def test_guards_parse_params_and_refuse_what_the_app_cannot_see():
    guards = app_module("guards")
    assert guards.parse_params('{"a": 1}') == {"a": 1} and guards.parse_params("") == {}
    for bad, words in [("{a", "not valid JSON"), ("[1]", "JSON list"), ("3", "JSON number"), ("true", "JSON boolean")]:
        assert words in _status(lambda bad=bad: guards.parse_params(bad))[1]
    ok = {"image": "case_1", "params": "{}", "file": None, "label": None, "session_id": ""}
    guards.check_infer_call(ok)
    guards.check_infer_call({**ok, "params": '{"image": "case_1"}'})  # the same image: nothing overridden
    for change, words in [
        ({"image": ""}, "no image given"),
        ({"params": '{"image": "/etc/passwd"}'}, "may not set 'image'"),
        ({"session_id": "abc"}, "datastore only"),
        ({"file": object()}, "datastore only"),
        ({"label": object()}, "no label file"),
    ]:
        assert words in _status(lambda change=change: guards.check_infer_call({**ok, **change}))[1]


def test_guards_wrap_monai_label_endpoints_once():
    import monailabel.endpoints.datastore as datastore_endpoints
    import monailabel.endpoints.infer as infer_endpoints

    guards = app_module("guards")
    originals = (infer_endpoints.run_inference, datastore_endpoints.add_image)
    try:
        guards.install_request_guards()
        assert guards.install_request_guards() == []  # idempotent
        status, detail = _status(lambda: infer_endpoints.run_inference(None, "adaptiveclick", "", "", "{}", None))
        assert status == 400 and "no image given" in detail
        status, _ = _status(lambda: datastore_endpoints.add_image(None, "x", "{bad", None))
        assert status == 400
    finally:
        infer_endpoints.run_inference, datastore_endpoints.add_image = originals


def test_click_count_contradictions_and_client_ids():
    interaction = app_module("interaction")
    assert interaction.check_click_count({"foreground": [[1, 2, 3]] * 3, "background": [[0, 0, 0]]}, 4) == 4
    status, detail = _status(lambda: interaction.check_click_count({"foreground": [[1, 2, 3]] * 5}, 4))
    assert status == 400 and "too many clicks: 5 sent (5 foreground, 0 background); at most 4" in detail
    interaction.check_contradictions([(1, 2, 3)], [(1, 2, 4)])
    assert "voxel [1, 2, 3]" in _status(lambda: interaction.check_contradictions([(1, 2, 3)], [(1, 2, 3)]))[1]
    assert interaction.client_key(None) is None and interaction.client_key("") is None
    assert interaction.client_key(7) == "7" and interaction.client_key("slicer-1") == "slicer-1"
    for bad in ({"a": 1}, [1], True, "x" * 257):
        assert _status(lambda bad=bad: interaction.client_key(bad))[0] == 400


def test_build_training_items_skips_bad_pairs_with_a_reason(tmp_path, caplog):
    trainers = app_module("trainers")
    image = np.random.default_rng(0).random((16, 12, 3)).astype(np.float32)
    label = np.zeros((16, 12, 3), np.uint8)
    label[2:8, 2:6, 1] = 1
    good = (str(_nifti(tmp_path / "good.nii.gz", image)), str(_nifti(tmp_path / "good_label.nii.gz", label)))
    nan_image = image.copy()
    nan_image[0, 0, 0] = np.nan
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    pairs = [
        (str(_nifti(tmp_path / "nan.nii.gz", nan_image)), good[1]),
        (good[0], str(_nifti(tmp_path / "deep.nii.gz", np.zeros((16, 12, 4), np.uint8)))),
        (good[0], str(_nifti(tmp_path / "neg.nii.gz", np.full((16, 12, 3), -1, np.int16)))),
        (good[0], str(tmp_path / "empty.nii.gz")),
        good,
    ]
    skipped: list[str] = []
    with caplog.at_level(logging.WARNING):
        items = trainers.build_training_items(pairs, skipped=skipped)
    assert [item["object_id"] for item in items] == ["good.nii.gz:k1:v1"]
    assert len(skipped) == 4
    for name, words in [("nan", "not finite"), ("deep", "differs from the image shape"), ("neg", "must be >= 0")]:
        assert any(name in line and words in line for line in skipped), (name, skipped)
    assert any("empty.nii.gz" in line for line in skipped)
    assert caplog.text.count("AdaptiveClick train: skipping") == 4


def test_a_checkpoint_that_does_not_load_answers_422_and_names_the_problem(tmp_path):

    import nibabel as nib
    import numpy as np

    configs, infers, common = (app_module(m) for m in ("configs", "infers", "common"))
    nib.save(nib.Nifti1Image(np.random.rand(20, 24, 3).astype("float32"), np.eye(4)), str(tmp_path / "v.nii.gz"))
    for content in (b"", b"not a checkpoint"):
        (tmp_path / "bad.pt").write_bytes(content)
        settings = configs.parse_settings(str(APP_DIR), {"checkpoint": str(tmp_path / "bad.pt"), "device": "cpu"})
        task = infers.AdaptiveClickInfer(settings)
        with pytest.raises(common.RequestError, match="checkpoint cannot be loaded") as info:
            task({"image": str(tmp_path / "v.nii.gz"), "foreground": [[5, 6, 1]]})
        assert info.value.status_code == 422
