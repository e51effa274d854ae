# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The real MONAI Label server of the app tests (issues 7, 16): its studies folder and a client-side helper.

``python -m monailabel.main start_server`` runs a copy of ``apps/adaptiveclick`` on a free loopback port, with an
untrained ``tiny`` checkpoint (or none: the app then serves the shipped starter model), from a working directory
``root`` that also holds a NIfTI (``cwd_secret.nii.gz``) and a folder outside the studies (``outside/``). The studies
folder holds good volumes and, on purpose, bad files that are already in the datastore when the server starts: a NaN
volume, a truncated and a zero-byte file, a link to a volume outside the folder, and two good images whose ``final``
labels are bad (another shape, fractional values).
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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests
import torch

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "apps" / "adaptiveclick"

SHAPES = {"img_a": (40, 48, 6), "img_b": (36, 44, 5), "img_free": (32, 30, 4)}
AFFINES = {
    "img_a": np.array([[0.8, 0, 0, 10.0], [0, 0.9, 0, -5.0], [0, 0, 2.0, 3.0], [0, 0, 0, 1]]),
    "img_b": np.array([[0, -1.1, 0, 4.0], [1.2, 0, 0, 0.0], [0, 0, 3.0, -7.0], [0, 0, 0, 1]]),
    "img_free": np.eye(4),
}
#: Stored images that cannot be used, with words the refusal must contain.
BAD_STORED = {
    "bad_nan": (422, "not finite"),
    "bad_trunc": (422, "truncated or corrupt"),
    "bad_zero": (422, "empty file"),
    "escape_link": (403, "outside the studies folder"),
}
#: Good images with bad final labels (the train task must skip them).
BAD_PAIRS = {"pair_shape": "differs from the image shape", "pair_values": "must be integers"}


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(array), np.eye(4) if affine is None else affine), str(path))
    return path


def volume(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Noise with a bright block: the synthetic image of every test."""
    array = np.random.default_rng(seed).normal(100.0, 20.0, shape).astype(np.float32)
    array[8:24, 10:30] += 200.0
    return array


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fill_studies(root: Path, studies: Path) -> None:
    for n, (name, shape) in enumerate(SHAPES.items()):
        save_nifti(studies / f"{name}.nii.gz", volume(shape, n), AFFINES[name])
    nan = volume((20, 22, 3), 7)
    nan[3, 4, 1] = np.nan
    save_nifti(studies / "bad_nan.nii.gz", nan)
    raw = save_nifti(root / "whole.nii.gz", volume((20, 22, 3), 8)).read_bytes()
    (studies / "bad_trunc.nii.gz").write_bytes(raw[: len(raw) // 2])
    (studies / "bad_zero.nii.gz").write_bytes(b"")
    (root / "outside").mkdir()
    save_nifti(root / "outside" / "secret.nii.gz", volume((20, 22, 3), 9))
    os.symlink(root / "outside" / "secret.nii.gz", studies / "escape_link.nii.gz")
    save_nifti(root / "cwd_secret.nii.gz", volume((20, 22, 3), 10))
    final = studies / "labels" / "final"
    final.mkdir(parents=True)
    for name in BAD_PAIRS:
        save_nifti(studies / f"{name}.nii.gz", volume((24, 20, 3), 11))
    save_nifti(final / "pair_shape.nii.gz", np.ones((24, 20, 4), np.uint8))
    save_nifti(final / "pair_values.nii.gz", np.full((24, 20, 3), 0.5, np.float32))


class LabelServer:
    """The running server: its address and folders, and helpers to talk to it."""

    def __init__(self, url: str, root: Path, studies: Path, checkpoint: Path, log: Path) -> None:
        self.url, self.root, self.studies, self.checkpoint, self.log = url, root, studies, checkpoint, log
        self.client_tmp = tempfile.mkdtemp(prefix="adaptiveclick_client_")

    def infer(
        self, image: str, params: dict, client_id: str | None = "tests", model: str = "adaptiveclick"
    ) -> tuple[np.ndarray, np.ndarray, dict]:
        """``(label array, affine, result JSON)`` of a good infer request (MONAI Label's own client)."""
        from monailabel.client import MONAILabelClient

        client = MONAILabelClient(self.url, tmpdir=self.client_tmp, client_id=client_id)
        label_file, result = client.infer(model, image, params)
        result = json.loads(result) if isinstance(result, str) else result
        label_nii = nib.load(label_file)
        label, affine = np.asarray(label_nii.dataobj), label_nii.affine
        os.unlink(label_file)
        return label, affine, result

    def post_infer(self, image: str | None, params, model: str = "adaptiveclick", **kwargs) -> requests.Response:
        """Raw ``POST /infer/<model>`` (``params`` sent as given when a string, else as JSON)."""
        query = {} if image is None else {"image": image}
        data = {"params": params if isinstance(params, str) else json.dumps(params)}
        return requests.post(f"{self.url}/infer/{model}", params=query, data=data, timeout=120, **kwargs)

    def files_outside_studies(self) -> dict[str, tuple[int, int]]:
        """Every file under ``root`` except the studies folder and logs, ``{path: (size, mtime)}``, plus the names in
        the two folders above ``root`` (where ``../`` ids and tags would lead).

        Only the server writes there while a test runs, so a difference before / after a request is a write outside
        the studies folder.
        """
        found: dict[str, tuple[int, int]] = {}
        for folder, dirs, files in os.walk(self.root):
            if Path(folder) == self.studies:
                dirs[:] = []
                continue
            dirs[:] = [d for d in dirs if d not in ("logs", "__pycache__")]
            for name in files:
                if not name.endswith(".log"):
                    stat = os.lstat(os.path.join(folder, name))
                    found[os.path.join(folder, name)] = (stat.st_size, stat.st_mtime_ns)
        for above in (self.root.parent, self.root.parent.parent):
            for name in os.listdir(above):
                stat = os.lstat(above / name)
                found[str(above / name)] = (0 if stat.st_mode & 0o040000 else stat.st_size, 0)
        return found

    def studies_files(self) -> set[str]:
        """Relative paths of the volume files in the studies folder."""
        return {
            str(p.relative_to(self.studies))
            for p in self.studies.rglob("*")
            if p.name.endswith((".nii.gz", ".nii", ".nrrd"))
        }

    def datastore_ids(self) -> set[str]:
        return set(requests.get(f"{self.url}/datastore/", params={"output": "all"}, timeout=30).json()["objects"])

    def assert_serving(self) -> None:
        """A good request still gets a good answer."""
        label, _, result = self.infer("img_b", {"foreground": [[5, 6, 0]]}, client_id="health")
        assert label.shape == SHAPES["img_b"] and result["slice"] == 0 and label[5, 6, 0] == 1

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    root: Path, extra_conf: dict[str, str] | None = None, checkpoint: bool = True
) -> tuple[subprocess.Popen, LabelServer]:
    """Write the app copy, studies and checkpoint under ``root`` and start the server; return it once it answers.

    ``extra_conf`` adds ``--conf key value`` pairs (e.g. ``{"baseline": "watershed"}``). ``checkpoint=False`` writes
    no checkpoint: ``checkpoint`` and ``bundle_checkpoint`` name absent files, so the app serves its default model
    (the shipped starter) until the train task writes ``checkpoint``.

    Raises:
        RuntimeError: the server exited or did not answer within 120 s (with the end of its log).
    """
    from monai_adaptiveclick.networks import create_model, save_model

    app = root / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("model", "logs", "bin", "__pycache__"))
    studies = root / "studies"
    studies.mkdir()
    _fill_studies(root, studies)
    checkpoint_path = root / "model.pt"
    if checkpoint:
        torch.manual_seed(0)
        save_model(create_model("tiny", in_channels=1), checkpoint_path)
    port = _free_port()
    log_path = root / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MONAI_LABEL_DATASTORE_AUTO_RELOAD": "false"}
    command = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(app), "--studies", str(studies)]
    command += ["--conf", "checkpoint", str(checkpoint_path), "--conf", "device", "cpu", "--conf", "preset", "tiny"]
    if not checkpoint:
        command += ["--conf", "bundle_checkpoint", str(root / "absent_bundle_model.pt")]
    command += ["--conf", "max_clicks", "300", "--host", "127.0.0.1", "--port", str(port)]
    for key, value in (extra_conf or {}).items():
        command += ["--conf", key, value]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            requests.get(f"{url}/info/", timeout=5).raise_for_status()
            return process, LabelServer(url, root, studies, checkpoint_path, log_path)
        except requests.RequestException:
            if time.time() > deadline:
                stop_server(process)
                raise RuntimeError(f"server not up after 120 s:\n{log_path.read_text()[-3000:]}") from None
            time.sleep(0.5)


def stop_server(process: subprocess.Popen) -> None:
    """Terminate the server (kill it after 20 s)."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_server(
    root: Path, extra_conf: dict[str, str] | None = None, checkpoint: bool = True
) -> Iterator[LabelServer]:
    """:func:`start_server` for the length of a ``with`` block (a test fails, with the log, if it cannot start)."""
    try:
        process, running = start_server(root, extra_conf, checkpoint)
    except RuntimeError as err:
        pytest.fail(str(err))
    try:
        yield running
    finally:
        stop_server(process)


def app_module(name: str):
    """Import ``lib.<name>`` of the app the way the MONAI Label server does (app folder on ``sys.path``)."""
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    return importlib.import_module(f"lib.{name}")
