# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The bad-input corpus of issue 16 against the real server (``conftest.py``), one parametrised case per request.

Every case asserts the HTTP status, that the JSON ``detail`` names the problem (no traceback), that no file outside
the studies folder was written or changed (and, for refused uploads, none inside either), and that the server still
answers a good request afterwards. The facts checked are independent of the app's code: the statuses and words the
README promises, and the file system as ``os.walk`` sees it.
"""

from __future__ import annotations

import gzip
import io
import json
import time

import nibabel as nib
import numpy as np
import pytest
import requests
from label_server import BAD_STORED, SHAPES, volume  # tests/apps is on sys.path (conftest.py)

GOOD = {"foreground": [[10, 12, 3]]}


def nifti_bytes(array: np.ndarray, compressed: bool = True) -> bytes:
    """The bytes of a NIfTI file holding ``array`` (gzip-compressed unless ``compressed`` is false)."""
    raw = nib.Nifti1Image(np.asarray(array), np.eye(4)).to_bytes()
    return gzip.compress(raw) if compressed else raw


def _with(array: np.ndarray, index: tuple, value: float) -> np.ndarray:
    array = array.copy()
    array[index] = value
    return array


GOOD_IMAGE = nifti_bytes(volume((20, 22, 3), 3))
IMAGE_A_SHAPE = SHAPES["img_a"]

# name -> (method, path, query, form fields, files, status, words in the detail)
CASES: dict[str, tuple] = {
    # -- ids that are paths, or not in the datastore ------------------------------------------------------------
    "infer-absolute-path": ("POST", "/infer/adaptiveclick", {"image": "{studies}/img_a.nii.gz"}, GOOD, None, 400,
                            ["not a datastore image name", "paths are not accepted"]),
    "infer-absolute-outside": ("POST", "/infer/adaptiveclick", {"image": "{root}/outside/secret.nii.gz"}, GOOD, None,
                               400, ["not a datastore image name"]),
    "infer-relative-traversal": ("POST", "/infer/adaptiveclick", {"image": "../studies/img_a"}, GOOD, None, 400,
                                 ["not a datastore image name"]),
    "infer-relative-to-cwd": ("POST", "/infer/adaptiveclick", {"image": "cwd_secret.nii.gz"}, GOOD, None, 404,
                              ["unknown image 'cwd_secret.nii.gz'"]),
    "infer-params-image-override": ("POST", "/infer/adaptiveclick", {"image": "img_a"},
                                    {**GOOD, "image": "{root}/outside/secret.nii.gz"}, None, 400,
                                    ["may not set 'image'", "?image= query"]),
    "infer-params-model-override": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, {**GOOD, "model": "x"}, None,
                                    400, ["may not set 'model'"]),
    "infer-empty-id": ("POST", "/infer/adaptiveclick", {"image": ""}, GOOD, None, 400, ["no image given"]),
    "infer-no-id": ("POST", "/infer/adaptiveclick", {}, GOOD, None, 400, ["no image given"]),
    "infer-unknown-model": ("POST", "/infer/nope", {"image": "img_a"}, GOOD, None, 404, ["unknown model 'nope'"]),
    "infer-uploaded-file": ("POST", "/infer/adaptiveclick", {}, GOOD, {"file": ("x.nii.gz", GOOD_IMAGE)}, 400,
                            ["datastore only", "PUT /datastore/image"]),
    # -- writes outside the studies folder ------------------------------------------------------------------------
    "infer-save-label-traversal": ("POST", "/infer/adaptiveclick", {"image": "img_a"},
                                   {**GOOD, "save_label": True, "label_tag": "../../../escape_infer"}, None, 400,
                                   ["label tag '../../../escape_infer' is not a plain word"]),
    "infer-save-label-bad-flag": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, {**GOOD, "save_label": "yes"},
                                  None, 400, ["'save_label' must be true or false"]),
    "put-image-traversal": ("PUT", "/datastore/image", {"image": "../escape_put"}, {},
                            {"file": ("x.nii.gz", GOOD_IMAGE)}, 400, ["image id '../escape_put'", "not a datastore"]),
    "put-image-absolute": ("PUT", "/datastore/image", {"image": "{root}/escape_abs"}, {},
                           {"file": ("x.nii.gz", GOOD_IMAGE)}, 400, ["not a datastore image name"]),
    "put-label-traversal": ("PUT", "/datastore/label", {"image": "img_a", "tag": "../../../escape_label"}, {},
                            {"label": ("l.nii.gz", nifti_bytes(np.zeros(IMAGE_A_SHAPE, np.uint8)))}, 400,
                            ["label tag", "not a plain word"]),
    "put-label-tag-separator": ("PUT", "/datastore/label", {"image": "img_a", "tag": "a/b"}, {},
                                {"label": ("l.nii.gz", nifti_bytes(np.zeros(IMAGE_A_SHAPE, np.uint8)))}, 400,
                                ["label tag 'a/b'"]),
    "put-label-image-traversal": ("PUT", "/datastore/label", {"image": "../img_a", "tag": "final"}, {},
                                  {"label": ("l.nii.gz", nifti_bytes(np.zeros(IMAGE_A_SHAPE, np.uint8)))}, 400,
                                  ["not a datastore image name"]),
    "put-label-unknown-image": ("PUT", "/datastore/label", {"image": "nobody", "tag": "reviewed"}, {},
                                {"label": ("l.nii.gz", nifti_bytes(np.zeros(IMAGE_A_SHAPE, np.uint8)))}, 404,
                                ["unknown image 'nobody'"]),
    "get-image-link-out": ("GET", "/datastore/image", {"image": "escape_link"}, None, None, 403,
                           ["outside the studies folder"]),
    "get-image-traversal": ("GET", "/datastore/image", {"image": "../cwd_secret"}, None, None, 400,
                            ["not a datastore image name"]),
    # -- params and clicks ----------------------------------------------------------------------------------------
    "params-not-json": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, "{foreground: [[1, 2, 3]", None, 400,
                        ["'params' is not valid JSON"]),
    "params-list": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, "[1, 2, 3]", None, 400,
                    ["must be a JSON object", "JSON list"]),
    "params-string": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, '"clicks"', None, 400, ["JSON string"]),
    "params-null": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, "null", None, 400, ["JSON null"]),
    "put-image-params-not-json": ("PUT", "/datastore/image", {"image": "ok_params"}, "{oops",
                                  {"file": ("x.nii.gz", GOOD_IMAGE)}, 400, ["'params' is not valid JSON"]),
    "clicks-not-a-list": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, {"foreground": "10,12,3"}, None, 400,
                          ["'foreground' must be a list"]),
    "clicks-two-indices": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, {"foreground": [[10, 12]]}, None, 400,
                           ["3 voxel indices"]),
    "clicks-text-index": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, {"background": [["a", 1, 2]]}, None,
                          400, ["finite numbers"]),
    "clicks-nan-index": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, '{"foreground": [[NaN, 1, 2]]}', None,
                         400, ["finite numbers"]),
    "clicks-bad-slice": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, {**GOOD, "slice": "top"}, None, 400,
                         ["'slice' must be an integer"]),
    "clicks-contradictory": ("POST", "/infer/adaptiveclick", {"image": "img_a"},
                             {"foreground": [[10, 12, 3], [4, 4, 3]], "background": [[4.2, 4, 3]]}, None, 400,
                             ["voxel [4, 4, 3] is sent as both foreground and background"]),
    "clicks-too-many": ("POST", "/infer/adaptiveclick", {"image": "img_a"},
                        {"foreground": [[i % 40, i % 48, 3] for i in range(31752)]}, None, 400,
                        ["too many clicks: 31752 sent", "at most 300"]),
    "client-id-object": ("POST", "/infer/adaptiveclick", {"image": "img_a"}, {**GOOD, "client_id": {"a": 1}}, None,
                         400, ["'client_id' must be a string"]),
    # -- files refused at the door -------------------------------------------------------------------------------
    "upload-corrupt": ("PUT", "/datastore/image", {"image": "up_corrupt"}, {},
                       {"file": ("c.nii.gz", b"\x00" + np.random.default_rng(0).bytes(4000))}, 422,
                       ["uploaded image 'up_corrupt'", "not a readable image"]),
    "upload-zero-byte": ("PUT", "/datastore/image", {"image": "up_zero"}, {}, {"file": ("z.nii.gz", b"")}, 422,
                         ["uploaded image 'up_zero'", "empty file (0 bytes)"]),
    "upload-truncated": ("PUT", "/datastore/image", {"image": "up_trunc"}, {},
                         {"file": ("t.nii.gz", GOOD_IMAGE[: len(GOOD_IMAGE) // 2])}, 422, ["truncated or corrupt"]),
    "upload-truncated-nii": ("PUT", "/datastore/image", {"image": "up_trunc_nii"}, {},
                             {"file": ("t.nii", nifti_bytes(volume((20, 22, 3)), False)[:-200])}, 422,
                             ["truncated or corrupt"]),
    "upload-nan": ("PUT", "/datastore/image", {"image": "up_nan"}, {},
                   {"file": ("n.nii.gz", nifti_bytes(_with(volume((20, 22, 3)), (1, 2, 0), np.nan)))}, 422,
                   ["1 voxel values are not finite"]),
    "upload-inf": ("PUT", "/datastore/image", {"image": "up_inf"}, {},
                   {"file": ("i.nii.gz", nifti_bytes(_with(volume((20, 22, 3)), (1, 2, 0), -np.inf)))}, 422,
                   ["not finite (NaN or Inf)"]),
    "upload-2d": ("PUT", "/datastore/image", {"image": "up_2d"}, {},
                  {"file": ("f.nii.gz", nifti_bytes(np.zeros((20, 22), np.float32)))}, 422, ["expected a 3-D image"]),
    "upload-many-channels": ("PUT", "/datastore/image", {"image": "up_4d"}, {},
                             {"file": ("f.nii.gz", nifti_bytes(np.zeros((20, 22, 3, 9), np.float32)))}, 422,
                             ["channels last, at most 4"]),
    "upload-text-extension": ("PUT", "/datastore/image", {"image": "up_txt"}, {},
                              {"file": ("notes.txt", b"hello")}, 422, ["must be a .nii.gz / .nii / .nrrd file"]),
    "label-shape-mismatch": ("PUT", "/datastore/label", {"image": "img_a", "tag": "reviewed"}, {},
                             {"label": ("l.nii.gz", nifti_bytes(np.zeros((40, 48, 5), np.uint8)))}, 422,
                             ["label shape (40, 48, 5) differs from the image shape (40, 48, 6)"]),
    "label-fractional": ("PUT", "/datastore/label", {"image": "img_a", "tag": "reviewed"}, {},
                         {"label": ("l.nii.gz", nifti_bytes(np.full(IMAGE_A_SHAPE, 0.5, np.float32)))}, 422,
                         ["must be integers, found 0.5"]),
    "label-negative": ("PUT", "/datastore/label", {"image": "img_a", "tag": "reviewed"}, {},
                       {"label": ("l.nii.gz", nifti_bytes(np.full(IMAGE_A_SHAPE, -2, np.int16)))}, 422,
                       ["must be >= 0, found -2"]),
    "label-too-large": ("PUT", "/datastore/label", {"image": "img_a", "tag": "reviewed"}, {},
                        {"label": ("l.nii.gz", nifti_bytes(np.full(IMAGE_A_SHAPE, 4000, np.int16)))}, 422,
                        ["must be <= 255, found 4000"]),
    "label-nan": ("PUT", "/datastore/label", {"image": "img_a", "tag": "reviewed"}, {},
                  {"label": ("l.nii.gz", nifti_bytes(_with(np.zeros(IMAGE_A_SHAPE, np.float32), (0, 0, 0), np.nan)))},
                  422, ["not finite"]),
    "label-zero-byte": ("PUT", "/datastore/label", {"image": "img_a", "tag": "reviewed"}, {},
                        {"label": ("l.nii.gz", b"")}, 422, ["label for image 'img_a'", "empty file"]),
    "label-for-broken-image": ("PUT", "/datastore/label", {"image": "bad_zero", "tag": "reviewed"}, {},
                               {"label": ("l.nii.gz", nifti_bytes(np.zeros((20, 22, 3), np.uint8)))}, 422,
                               ["image 'bad_zero'", "empty file"]),
}  # fmt: skip
# stored files that cannot be used: inference refuses them, naming the problem
for _name, (_status, _words) in BAD_STORED.items():
    CASES[f"infer-stored-{_name}"] = ("POST", "/infer/adaptiveclick", {"image": _name}, {"foreground": [[2, 2, 1]]},
                                      None, _status, [_words])  # fmt: skip


def _fill(value, server):
    """Put the server's folders into a case's templates."""
    if isinstance(value, str):
        return value.replace("{studies}", str(server.studies)).replace("{root}", str(server.root))
    if isinstance(value, dict):
        return {k: _fill(v, server) for k, v in value.items()}
    return value


def send(server, method: str, path: str, query: dict, params, files) -> requests.Response:
    """One raw request: ``params`` goes in the form field ``params`` (JSON-encoded unless a string)."""
    data = None
    if params is not None:
        data = {"params": params if isinstance(params, str) else json.dumps(_fill(params, server))}
    files = {k: (name, io.BytesIO(content)) for k, (name, content) in (files or {}).items()}
    return requests.request(method, server.url + path, params=_fill(query, server), data=data, files=files or None,
                            timeout=120)  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_with_a_clear_4xx(server, case):
    method, path, query, params, files, status, words = CASES[case]
    outside, stored, ids = server.files_outside_studies(), server.studies_files(), server.datastore_ids()
    started = time.perf_counter()
    response = send(server, method, path, query, params, files)
    elapsed = time.perf_counter() - started
    assert response.status_code == status, response.text[:500]
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, f"{word!r} not in {detail!r}"
    assert "Traceback" not in response.text
    assert server.files_outside_studies() == outside  # nothing written or changed outside the studies folder
    assert server.studies_files() == stored and server.datastore_ids() == ids  # a refused request stores nothing
    if case == "clicks-too-many":
        assert elapsed < 5.0, f"a refused request took {elapsed:.1f} s"
    server.assert_serving()


def test_path_ids_give_no_hint_whether_the_path_exists(server):
    """Existing and missing paths, files and folders, images and non-images: one answer, the id aside."""
    paths = [
        str(server.studies / "img_a.nii.gz"),
        str(server.studies / "missing.nii.gz"),
        str(server.root / "outside"),
        str(server.root / "server.log"),
        "/etc/hostname",
        "/no/such/dir/x.nii.gz",
    ]
    answers = set()
    for path in paths:
        response = server.post_infer(path, GOOD)
        answers.add((response.status_code, response.json()["detail"].replace(repr(path), "<id>")))
    assert len(answers) == 1 and next(iter(answers))[0] == 400
    relative = {name: server.post_infer(name, GOOD) for name in ("cwd_secret.nii.gz", "cwd_missing.nii.gz")}
    details = {(r.status_code, r.json()["detail"].replace(repr(n), "<id>")) for n, r in relative.items()}
    assert len(details) == 1 and next(iter(details))[0] == 404


def test_good_uploads_are_stored_and_served(server):
    response = send(server, "PUT", "/datastore/image", {"image": "uploaded_ok"}, {}, {"file": ("u.nii.gz", GOOD_IMAGE)})
    assert response.status_code == 200, response.text
    assert "uploaded_ok.nii.gz" in server.studies_files()
    label = np.zeros((20, 22, 3), np.uint8)
    label[2:6, 3:9, 1] = 2
    response = send(server, "PUT", "/datastore/label", {"image": "uploaded_ok", "tag": "reviewed"}, {},
                    {"label": ("l.nii.gz", nifti_bytes(label))})  # fmt: skip
    assert response.status_code == 200, response.text
    stored = nib.load(str(server.studies / "labels" / "reviewed" / "uploaded_ok.nii.gz"))
    np.testing.assert_array_equal(np.asarray(stored.dataobj), label)
    labelled, _, result = server.infer("uploaded_ok", {"foreground": [[4, 5, 1]]})
    assert labelled.shape == (20, 22, 3) and result["slice"] == 1
    # infer save_label with a plain tag writes inside the studies folder only
    outside = server.files_outside_studies()
    response = server.post_infer("uploaded_ok", {"foreground": [[4, 5, 1]], "save_label": True, "label_tag": "auto"})
    assert response.status_code == 200
    assert "labels/auto/uploaded_ok.nii.gz" in server.studies_files()
    assert server.files_outside_studies() == outside


def test_requests_without_client_id_never_share_state(server):
    """Two anonymous requests are each a fresh interaction; a named client's state is untouched by them."""
    first, second = {"foreground": [[20, 20, 2]]}, {"foreground": [[20, 20, 2]], "background": [[30, 40, 2]]}
    _, _, anon1 = server.infer("img_a", first, client_id=None)
    label2, _, anon2 = server.infer("img_a", second, client_id=None)
    label_fresh, _, fresh = server.infer("img_a", second, client_id="anon-reference")
    _, _, anon_repeat = server.infer("img_a", second, client_id=None)
    assert (anon1["mode"], anon2["mode"], anon_repeat["mode"]) == ("new", "new", "new")
    assert anon1["client_id"] is None and fresh["client_id"] == "anon-reference"
    np.testing.assert_array_equal(label2, label_fresh)  # exactly what a new client gets: nothing inherited
    # a named interaction interleaved with anonymous requests refines exactly as it does alone
    _, _, named1 = server.infer("img_a", first, client_id="named")
    server.infer("img_a", {"foreground": [[5, 5, 2]]}, client_id=None)
    label_named2, _, named2 = server.infer("img_a", second, client_id="named")
    server.infer("img_a", first, client_id="named-alone")
    label_alone2, _, alone2 = server.infer("img_a", second, client_id="named-alone")
    assert (named1["mode"], named2["mode"], alone2["mode"]) == ("new", "refine", "refine")
    np.testing.assert_array_equal(label_named2, label_alone2)


def test_next_sample_never_hands_out_bad_images(server):
    bad = set(BAD_STORED)
    picked = []
    for _ in range(6):
        response = requests.post(f"{server.url}/activelearning/random", json={"client_id": "al"}, timeout=60)
        assert response.status_code == 200, response.text
        picked.append(response.json().get("id"))
    assert picked and not bad & set(picked), picked
    assert all(p in server.datastore_ids() for p in picked)
    log = server.log_text()
    skipped = [name for name in bad if f"next sample: skipping image '{name}'" in log]
    assert skipped, "no skipped image logged"
    assert "not finite" in log or "empty file" in log or "truncated" in log or "outside the studies" in log
