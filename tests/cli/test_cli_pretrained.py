# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``evaluate --method starter`` and ``--checkpoint pretrained:NAME``: the model shipped inside the package."""

from __future__ import annotations

import json

import pytest
import torch

from monai_adaptiveclick.cli import main
from monai_adaptiveclick.data import get_dataset
from monai_adaptiveclick.networks import create_model, list_pretrained

DATASET = "cli_test_disks"  # conftest.DISKS
FAST = ["--dataset", DATASET, "--max-clicks", "2", "--no-zoom-in", "--no-flip", "--quiet"]


@pytest.fixture()
def shipped(disks_dataset, ship_model):
    """The disk dataset registered for one test (conftest.py), and a seeded tiny model shipped as ``starter``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ship_model(create_model("tiny", in_channels=1))


def _records(path):
    return [(r["object_id"], r["clicks"], r["ious"]) for r in json.loads(path.read_text())["records"]]


def test_evaluate_method_starter_evaluates_the_shipped_model(shipped, tmp_path, capsys):
    from monai_adaptiveclick.engines import evaluate_noc
    from monai_adaptiveclick.inference import Predictor

    assert main(["evaluate", "--method", "starter", *FAST, "--output", str(tmp_path / "out")]) == 0
    assert "| starter |" in capsys.readouterr().out
    records = _records(tmp_path / "out" / "results_starter.json")
    starter, items = Predictor.from_pretrained("starter"), get_dataset(DATASET)
    expected = evaluate_noc(starter, items, max_clicks=2, zoom_in=False, flip=False)
    assert records == [(r.object_id, [list(c) for c in r.clicks], list(r.ious)) for r in expected.records]
    assert len(records) == 2


def test_checkpoint_pretrained_name_is_the_same_model(shipped, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["evaluate", "--method", "starter", "--checkpoint", "pretrained:starter", *FAST, "--output", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| starter |" in printed and "| checkpoint:pretrained:starter |" in printed
    assert _records(out / "results_checkpoint_pretrained_starter.json") == _records(out / "results_starter.json")


def test_unknown_shipped_names_are_one_line_usage_errors(shipped, tmp_path, capsys):
    assert main(["evaluate", "--method", "nope", *FAST, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown --method 'nope'") and "starter" in err and "watershed" in err
    assert main(["evaluate", "--checkpoint", "pretrained:nope", *FAST, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot load the shipped model 'nope'") and "starter" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_help_names_the_shipped_models(capsys):
    """Needs the shipped ``monai_adaptiveclick/pretrained/starter.*`` (``list_pretrained()`` reads the package)."""
    from monai_adaptiveclick.cli.evaluate import SHIPPED_NAMES

    assert list(SHIPPED_NAMES) == list_pretrained()
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    assert "starter" in text and "pretrained:NAME" in text
