# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Models shipped inside the package (issue 14): export to float16 safetensors + model card, reload, every error."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from monai_adaptiveclick.networks import (
    CARD_FIELDS,
    build_model,
    create_model,
    export_pretrained,
    list_pretrained,
    load_pretrained,
    pretrained_name,
    read_model_card,
    save_model,
)

CARD = {"description": "unit test", "steps": 2, "figures": {"noc85": 3.5}, "seed": 7}


def _model():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return create_model("tiny", in_channels=3).eval()


def _input(model, batch: int = 2, seed: int = 1) -> torch.Tensor:
    size = model.image_size
    x = torch.rand(batch, model.in_channels + 3, size, size, generator=torch.Generator().manual_seed(seed))
    x[:, -2:] = (x[:, -2:] > 0.97).float()
    return x


@pytest.fixture()
def exported(tmp_path):
    """``(folder, source model, weights path)`` of a seeded tiny model exported as ``mine``."""
    model = _model()
    checkpoint = save_model(model, tmp_path / "run" / "model.pt")
    folder = tmp_path / "shipped"
    return folder, model, export_pretrained(checkpoint, "mine", card=CARD, folder=folder)


def test_export_writes_weights_and_card_and_nothing_else(exported):
    folder, model, weights = exported
    assert weights == folder / "mine.safetensors"
    assert sorted(p.name for p in folder.iterdir()) == ["mine.json", "mine.safetensors"]  # no staging file left
    card = json.loads((folder / "mine.json").read_text())
    assert card["architecture"] == model.config
    assert card["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert card["dtype"] == "float16" and card["weights"] == "mine.safetensors" and card["name"] == "mine"
    assert card["parameters"] == sum(p.numel() for p in model.parameters())
    assert {k: card[k] for k in CARD} == CARD
    assert all(card[k] is None for k in CARD_FIELDS if k not in CARD)
    tensors = load_file(str(weights))
    assert tensors.keys() == model.state_dict().keys()
    assert {str(v.dtype) for v in tensors.values() if v.is_floating_point()} == {"torch.float16"}
    assert list_pretrained(folder) == ["mine"] and read_model_card("mine", folder) == card


def test_reload_equals_the_fp16_rounded_model_and_is_close_to_fp32(exported):
    folder, model, _ = exported
    rng_before = torch.get_rng_state()
    loaded = load_pretrained("mine", folder=folder)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global random state is left alone
    assert not loaded.training and all(p.dtype == torch.float32 for p in loaded.parameters())
    # the expected weights, computed here: the source state dict cast to float16 and back
    rounded = {k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, rounded[key]), key
    reference = build_model(model.config).eval()
    reference.load_state_dict(rounded)
    x = _input(model)
    with torch.inference_mode():
        prob, candidates, scores = loaded.predict(x)
        expected = reference.predict(x)
        original = model.predict(x)[0]
    torch.testing.assert_close(prob, expected[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(candidates, expected[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(scores, expected[2], atol=1e-6, rtol=0)
    assert float((prob - original).abs().max()) < 1e-2


def test_float32_export_is_exact_and_a_second_export_replaces_the_first(exported, tmp_path):
    folder, model, _ = exported
    checkpoint = tmp_path / "run" / "model.pt"
    export_pretrained(checkpoint, "mine", folder=folder, dtype=torch.float32)
    assert read_model_card("mine", folder)["dtype"] == "float32"
    assert read_model_card("mine", folder)["description"] is None  # the old card's fields are gone
    loaded = load_pretrained("mine", folder=folder)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key


def test_export_check_failure_writes_nothing(tmp_path, monkeypatch):
    checkpoint = save_model(_model(), tmp_path / "model.pt")
    monkeypatch.setitem(export_pretrained.__globals__, "EXPORT_TOLERANCE", -1.0)  # every difference is too large
    with pytest.raises(ValueError, match="differ from the source model's"):
        export_pretrained(checkpoint, "mine", folder=tmp_path / "shipped")
    assert list((tmp_path / "shipped").iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"name": "../escape"}, "letters, digits"),
        ({"name": "-x"}, "letters, digits"),
        ({"dtype": torch.int8}, "dtype must be one of"),
        ({"card": {"sha256": "0" * 64}}, "written by export_pretrained"),
        ({"card": {"architecture": {}}}, "written by export_pretrained"),
        ({"card": {"figures": object()}}, "JSON data only"),
    ],
)
def test_export_arguments_are_checked_first(tmp_path, kwargs, words):
    options = {"name": "mine", "folder": tmp_path / "shipped", **kwargs}
    with pytest.raises(ValueError, match=words):
        export_pretrained(tmp_path / "not_read.pt", **options)
    assert not (tmp_path / "shipped").exists()


def test_export_of_a_missing_checkpoint_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="absent.pt"):
        export_pretrained(tmp_path / "absent.pt", "mine", folder=tmp_path)


def test_unknown_name_lists_the_available_models(exported):
    folder, _, _ = exported
    with pytest.raises(ValueError, match=r"unknown pretrained model 'other'.*mine"):
        load_pretrained("other", folder=folder)
    with pytest.raises(ValueError, match="none"):
        load_pretrained("mine", folder=folder / "empty")


def test_missing_weights_file_is_named(exported):
    folder, _, weights = exported
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="mine.safetensors"):
        load_pretrained("mine", folder=folder)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_truncated_or_corrupt_weights_are_named(exported, damage):
    folder, _, weights = exported
    data = weights.read_bytes()
    weights.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"\x00not safetensors" * 9, "empty": b""}[damage]
    )
    with pytest.raises(ValueError, match=r"mine\.safetensors.*(truncated or corrupt|sha256)"):
        load_pretrained("mine", folder=folder)


def test_damaged_tensor_data_fails_the_checksum(exported):
    folder, _, weights = exported
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # a byte of the last tensor: the header still parses
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"mine\.safetensors: sha256 .* differs from the model card"):
        load_pretrained("mine", folder=folder)


def _edit_card(folder, **changes):
    path = folder / "mine.json"
    card = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "architecture":
            card["architecture"].update(value)
        else:
            card[key] = value
    path.write_text(json.dumps(card))


def test_card_of_another_architecture_is_an_architecture_mismatch(exported):
    folder, _, _ = exported
    _edit_card(folder, architecture={"embed_dim": 96})
    with pytest.raises(ValueError, match="architecture mismatch") as info:
        load_pretrained("mine", folder=folder)
    assert "backbone.pos_embed" in str(info.value) and "64" in str(info.value) and "96" in str(info.value)
    _edit_card(folder, architecture={"embed_dim": 64, "depth": 3})
    with pytest.raises(ValueError, match=r"architecture mismatch(.|\n)*missing keys(.|\n)*blocks\.2\."):
        load_pretrained("mine", folder=folder)


def test_card_problems_are_value_errors_naming_the_card(exported):
    folder, _, _ = exported
    _edit_card(folder, architecture={"no_such_option": 1})
    with pytest.raises(ValueError, match=r"mine\.json: its architecture cannot be built"):
        load_pretrained("mine", folder=folder)
    _edit_card(folder, sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        load_pretrained("mine", folder=folder)
    _edit_card(folder, sha256=None)
    with pytest.raises(ValueError, match=r"mine\.json has no 'sha256'"):
        read_model_card("mine", folder)
    (folder / "mine.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"cannot read the model card .*mine\.json"):
        load_pretrained("mine", folder=folder)


def test_pretrained_references():
    assert pretrained_name("pretrained:starter") == "starter"
    assert pretrained_name("outputs/model.pt") is None and pretrained_name(None) is None


def test_the_shipped_starter_model():
    """Needs the shipped ``monai_adaptiveclick/pretrained/starter.*``: small_cpu at 128 px, CAMD, 3 channels, fp16."""
    card = read_model_card("starter")
    model = load_pretrained("starter")
    expected = create_model("small_cpu", in_channels=3, head="camd", image_size=128)
    assert model.config == expected.config == card["architecture"]
    assert card["parameters"] == sum(p.numel() for p in expected.parameters())
    assert card["dtype"] == "float16" and set(CARD_FIELDS) <= set(card)
    assert "starter" in list_pretrained()
