# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The app's default weights (issue 14): the starter model shipped inside the package, ``--conf model untrained``
for a fresh network, and fine-tuning that starts from the served weights.

In process, a seeded ``tiny`` model shipped as ``starter`` into a temporary folder (``ship_model``) stands in for the
package's own file; the real-server test at the end serves the package's shipped ``starter``.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from label_server import app_module, running_server  # tests/apps is on sys.path (conftest.py)

from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.networks import create_model, load_model, load_pretrained, save_model

pytest.importorskip("monailabel")

APP_DIR = Path(__file__).resolve().parents[2] / "apps" / "adaptiveclick"


@pytest.fixture()
def shipped(tmp_path, ship_model):
    """A seeded tiny model shipped as ``starter`` (``ship_model``); returns the app's conf without any checkpoint
    file."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ship_model(create_model("tiny", in_channels=1))
    return {
        "checkpoint": str(tmp_path / "app_model" / "served.pt"),
        "bundle_checkpoint": str(tmp_path / "absent.pt"),
        "device": "cpu",
        "preset": "tiny",
        "in_channels": "1",
    }


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_the_model_conf_key(shipped):
    configs = app_module("configs")
    assert configs.parse_settings(str(APP_DIR), shipped).model == "starter"
    settings = configs.parse_settings(str(APP_DIR), {**shipped, "model": "untrained"})
    assert settings.model == "untrained" and "model" not in settings.extra
    with pytest.raises(ValueError, match=r"--conf model must be 'untrained' or a model shipped .*starter.*'nope'"):
        configs.parse_settings(str(APP_DIR), {**shipped, "model": "nope"})


def test_without_a_checkpoint_the_shipped_starter_is_served(shipped):
    configs, models = app_module("configs"), app_module("models")
    loaded = models.ModelManager(configs.parse_settings(str(APP_DIR), shipped)).get()
    assert _same_weights(loaded.predictor.model, load_pretrained("starter"))
    assert loaded.warning == "" and loaded.source == "pretrained:starter"
    description = loaded.describe()
    assert description["pretrained"] == "starter" and description["untrained"] is False
    assert description["checkpoint"] is None


def test_model_untrained_serves_a_fresh_network_with_a_warning(shipped):
    configs, models = app_module("configs"), app_module("models")
    loaded = models.ModelManager(configs.parse_settings(str(APP_DIR), {**shipped, "model": "untrained"})).get()
    assert "UNTRAINED" in loaded.warning and loaded.source is None
    assert loaded.describe()["untrained"] is True and loaded.describe()["pretrained"] is None
    assert not _same_weights(loaded.predictor.model, load_pretrained("starter"))


def test_a_checkpoint_file_is_served_before_the_starter(shipped, tmp_path):
    configs, models = app_module("configs"), app_module("models")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        own = save_model(create_model("tiny", in_channels=1), tmp_path / "own.pt")
    loaded = models.ModelManager(configs.parse_settings(str(APP_DIR), {**shipped, "checkpoint": str(own)})).get()
    assert loaded.path == str(own) and loaded.pretrained == "" and loaded.source == str(own)
    assert _same_weights(loaded.predictor.model, load_model(own))


def test_fine_tuning_starts_from_the_served_starter(shipped, tmp_path, monkeypatch):
    """One training step on a labelled volume: the published weights are the starter's moved by one small step."""
    configs, models, trainers = app_module("configs"), app_module("models"), app_module("trainers.adaptiveclick")
    monkeypatch.setattr(trainers, "limit_training_share", lambda threads, nice: None)  # keep this process's priority
    studies = tmp_path / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    image = np.random.default_rng(0).normal(100.0, 20.0, (32, 30, 3)).astype(np.float32)
    label = np.zeros((32, 30, 3), np.uint8)
    label[8:20, 6:18, 1] = 1
    image[label > 0] += 200.0
    nib.save(nib.Nifti1Image(image, np.eye(4)), str(studies / "case.nii.gz"))
    nib.save(nib.Nifti1Image(label, np.eye(4)), str(studies / "labels" / "final" / "case.nii.gz"))
    datastore = app_module("datastore").ConfinedLocalDatastore(str(studies), auto_reload=False)
    settings = configs.parse_settings(str(APP_DIR), shipped)
    task = trainers.AdaptiveClickTrain(settings, models.ModelManager(settings))
    stats = task({"max_steps": 1, "batch_size": 1, "epochs": 1}, datastore)
    assert stats["started_from"] == "pretrained:starter" and stats["iterations"] == 1
    tuned, starter = load_model(settings.checkpoint), load_pretrained("starter")
    moved = max(float((v - starter.state_dict()[k]).abs().max()) for k, v in tuned.state_dict().items())
    assert 0.0 < moved < 1e-3  # one Adam step of lr ~5e-5 from the starter, not a fresh network
    fresh = create_model("tiny", in_channels=1)
    assert max(float((v - starter.state_dict()[k]).abs().max()) for k, v in fresh.state_dict().items()) > 1e-2


# ---------------------------------------------------------------------------------------------------------------
# the real server, with the package's shipped starter
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def starter_server(tmp_path_factory):
    """A server started without any checkpoint file."""
    with running_server(tmp_path_factory.mktemp("label_server_starter"), checkpoint=False) as running:
        yield running


def test_the_server_serves_the_shipped_starter_by_default(starter_server):
    """Needs the shipped ``monai_adaptiveclick/pretrained/starter.*``: a served answer equals the Predictor's."""
    k, clicks = 2, [(14, 18, True), (34, 40, False)]
    params = {"foreground": [[14, 18, k]], "background": [[34, 40, k]]}
    label, _, result = starter_server.infer("img_a", params, client_id=None)
    assert result["model"]["pretrained"] == "starter" and result["model"]["untrained"] is False
    assert result["model"]["image_size"] == 128 and "warning" not in result
    volume = np.asarray(nib.load(str(starter_server.studies / "img_a.nii.gz")).dataobj, dtype=np.float32)
    expected = Predictor.from_pretrained("starter")(volume[None, :, :, k], clicks)
    assert abs(result["mean_prob"] - float(expected.prob.mean())) < 1e-4
    borderline = np.abs(expected.prob - 0.49) < 1e-3  # thread counts may move a probability a hair
    served, mask = label[:, :, k] > 0, expected.mask(clicks=clicks)
    np.testing.assert_array_equal(served[~borderline], mask[~borderline])
