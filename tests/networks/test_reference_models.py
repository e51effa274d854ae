# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The authors' AdaptiveClick and SimpleClick v1.0 checkpoints load as they are and reproduce the authors' outputs
(fixtures written by their own code: tests/networks/fixtures/reference/README.md; SPEC section 10)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_adaptiveclick.networks import convert_checkpoint, create_model, load_model
from monai_adaptiveclick.networks.reference import IGNORED_KEYS, build_reference_model, map_state_dict
from monai_adaptiveclick.networks.safe_load import safe_torch_load, to_plain

REF = Path(__file__).parent / "fixtures" / "reference"
AC, SC = REF / "adaptiveclick_small.pth", REF / "simpleclick_small.pth"
TOL = 1e-4


def _bits(a: np.ndarray, width: int = 448) -> np.ndarray:
    return np.unpackbits(a, axis=-1)[..., :width].astype(bool)


@pytest.fixture(scope="module")
def network_input() -> torch.Tensor:
    """``concat(image, prev_mask, their positive / negative disk maps)``: the authors' network input."""
    inputs = np.load(REF / "reference_inputs.npz")
    maps = _bits(np.load(REF / "adaptiveclick_small_outputs.npz")["click_maps_bits"]).astype(np.float32)
    return torch.from_numpy(np.concatenate([inputs["image"], inputs["prev_mask"], maps], 1)).float()


def _run(model, x):
    with torch.no_grad():
        out = model(x)
        return out, model.final_probability(out, (448, 448)).numpy()


def _check_probability(prob: np.ndarray, ref) -> float:
    err = float(np.abs(prob[..., ::3, ::3] - ref["prob_grid3"]).max())
    assert err < TOL
    assert np.array_equal(prob > 0.49, _bits(ref["mask049_bits"]))
    assert np.array_equal(prob > 0.5, _bits(ref["mask050_bits"]))
    return err


def test_adaptiveclick_reproduces_the_authors_outputs(network_input):
    ref = np.load(REF / "adaptiveclick_small_outputs.npz")
    model = load_model(AC)
    assert (
        not model.training
        and model.config["pyramid"] == "released"
        and model.config["global_attn_indexes"]
        == [
            1,
            3,
            5,
            7,
        ]
    )
    out, prob = _run(model, network_input)
    # class rows are swapped at load time: the project's index 0 is their index 1 (object)
    assert np.abs(out["pred_logits"].numpy()[..., ::-1] - ref["pred_logits"]).max() < TOL
    aux = np.stack([a["pred_logits"].numpy()[..., ::-1] for a in out["aux_outputs"]])
    assert np.abs(aux - ref["aux_pred_logits"]).max() < TOL
    assert np.abs(out["pred_masks"].numpy()[..., ::3, ::3] - ref["pred_masks_grid3"]).max() < TOL
    _check_probability(prob, ref)
    # the ViT tokens (no final norm; ImageNet normalisation inside the model)
    x = network_input
    rgb = (x[:, :3] - model.image_mean) / model.image_std
    with torch.no_grad():
        tokens = model.backbone(rgb, x[:, 3:]).flatten(2).transpose(1, 2).numpy()
    assert np.abs(tokens - ref["backbone_tokens"]).max() < TOL


def test_simpleclick_reproduces_the_authors_outputs(network_input):
    ref = np.load(REF / "simpleclick_small_outputs.npz")
    model = load_model(SC)
    assert model.head == "simpleclick" and model.config["pyramid_channels"] == [1, 2, 4, 8]
    out, prob = _run(model, network_input)
    assert np.abs(out["pred_masks"].numpy()[..., ::3, ::3] - ref["head_logits_grid3"]).max() < TOL
    _check_probability(prob, ref)
    assert np.array_equal(_bits(ref["click_maps_bits"]), network_input[:, 4:].numpy() > 0)  # same disks as AC
    with torch.no_grad():
        prob_predict, candidates, _ = model.predict(network_input)
    assert np.array_equal(prob_predict.numpy(), prob) and candidates.shape[1] == 0


@pytest.mark.parametrize("path", [AC, SC])
def test_every_authors_key_is_loaded_or_on_the_ignore_list(path):
    checkpoint = safe_torch_load(path)
    model, report = build_reference_model(checkpoint)
    mapped, ignored = map_state_dict(report["family"], checkpoint["state_dict"])
    authors = set(checkpoint["state_dict"])
    assert set(mapped) == set(model.state_dict())
    assert authors - {k for k in ignored if k in authors} - IGNORED_KEYS == {
        k for k in authors if k not in ignored
    }  # nothing dropped silently
    assert len(mapped) + len([k for k in ignored if k in authors]) == len(authors)
    expected = {"backbone.cls_token", "backbone.fc_norm.weight", "backbone.fc_norm.bias", "backbone.head.weight"}
    assert expected <= set(ignored)
    if report["family"] == "adaptiveclick":
        assert "criterion.empty_weight" in ignored and len(authors) == 301
        assert sum(k.startswith("pixel_decoder.lateral_convs.0.") for k in ignored) == 4
    else:
        assert sum(k.startswith("head.up_conv") for k in ignored) == 16 and len(authors) == 166


def test_loads_without_easydict_and_on_cpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "easydict", None)  # importing easydict now fails
    model = load_model(AC)  # their storages are tagged cuda:0
    assert next(model.parameters()).device.type == "cpu"


def test_forbidden_global_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "config": os.system}, path)
    with pytest.raises(ValueError, match=r"refusing to unpickle the global '(posix|nt)\.system'"):
        load_model(path)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "cut.pth"
    path.write_bytes(AC.read_bytes()[: AC.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(path)


def _rewrite(tmp_path, edit) -> Path:
    checkpoint = safe_torch_load(AC)
    state = dict(checkpoint["state_dict"])
    config = to_plain(checkpoint["config"])
    edit(state, config)
    path = tmp_path / "edited.pth"
    torch.save({"state_dict": state, "config": config}, path)
    return path


def test_other_family_unknown_size_extra_and_missing_keys_are_refused(tmp_path):
    path = _rewrite(tmp_path, lambda s, c: c.update({"class": "isegm.model.is_hrnet_model.HRNetModel"}))
    with pytest.raises(ValueError, match="HRNetModel"):
        load_model(path)
    path = _rewrite(tmp_path, lambda s, c: [s.pop(k) for k in list(s) if k.startswith("backbone.blocks.7.")])
    with pytest.raises(ValueError, match="multiple of 4"):
        load_model(path)
    path = _rewrite(tmp_path, lambda s, c: s.update({"pixel_decoder.extra.weight": torch.zeros(1)}))
    with pytest.raises(ValueError, match=r"unexpected keys .*pixel_decoder\.extra\.weight"):
        load_model(path)
    path = _rewrite(tmp_path, lambda s, c: s.pop("click_aware_decoder.mask_embed.layers.1.bias"))
    with pytest.raises(ValueError, match=r"missing keys .*decoder\.mask_embed\.layers\.1\.bias"):
        load_model(path)
    path = _rewrite(tmp_path, lambda s, c: s.update({"pixel_decoder.adapter_1.0.bias": torch.zeros(32)}))
    with pytest.raises(ValueError, match="duplicate key"):
        load_model(path)


def test_convert_checkpoint_writes_the_projects_format(tmp_path, network_input):
    report = convert_checkpoint(AC, tmp_path / "converted.pt")
    assert report["family"] == "adaptiveclick" and "criterion.empty_weight" in report["ignored"]
    raw = torch.load(report["path"], weights_only=True)  # plain: no pickled objects left
    assert raw["format"] == "monai_adaptiveclick" and raw["extra"]["source_family"] == "adaptiveclick"
    a, b = load_model(AC), load_model(report["path"])
    assert torch.equal(_run(a, network_input)[0]["pred_masks"], _run(b, network_input)[0]["pred_masks"])
    copy = tmp_path / "sc.pth"
    shutil.copy(SC, copy)
    assert convert_checkpoint(copy, tmp_path / "sc.pt")["family"] == "simpleclick"


def test_released_vit_b_448_is_the_authors_size():
    with torch.device("meta"):
        model = create_model("vit_b_448")
    # REPORT: 121 114 242 = the released 121.89 M without cls token, fc_norm, classifier and the pos_embed cls row
    assert sum(p.numel() for p in model.parameters()) == 121_114_242
    assert "backbone.norm.weight" not in model.state_dict() and model.config["pmmd_layers"] == 4
