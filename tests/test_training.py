# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the click-simulation training iteration, the trainer factory, checkpoints and resume (issue 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_adaptiveclick.engines.training import (
    ClickSimulationIteration,
    ClickTrainingCropd,
    create_train_dataset,
    create_train_loader,
    create_trainer,
    find_last_checkpoint,
    load_training_items,
    run_training,
    usable_items,
)
from monai_adaptiveclick.networks import create_model, load_model

SIZE = 64


def make_items(count: int = 4, size: int = 48, seed: int = 0) -> list[dict]:
    """Bright ellipses on a noisy dark background, one object per item (dataset item contract)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    items = []
    for i in range(count):
        cy, cx = rng.integers(size // 3, 2 * size // 3, size=2)
        ry, rx = rng.integers(size // 8, size // 4, size=2)
        label = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0).astype(np.uint8)[None]
        image = rng.normal(0.2, 0.05, size=(3, size, size)).astype(np.float32) + 0.6 * label.astype(np.float32)
        items.append({"image": image, "label": label, "object_id": f"synthetic_{i}", "meta": {"index": i}})
    return items


def fixed_batch(items: list[dict], seed: int = 0) -> dict[str, torch.Tensor]:
    dataset = create_train_dataset(items, image_size=SIZE, in_channels=3, seed=seed)
    loader = create_train_loader(dataset, batch_size=len(items), shuffle=False)
    return next(iter(loader))


def test_dataset_sample_layout():
    batch = fixed_batch(make_items(3))
    assert batch["image"].shape == (3, 3, SIZE, SIZE)
    assert batch["label"].shape == (3, 1, SIZE, SIZE)
    assert batch["click_coords"].shape[:2] == batch["click_signs"].shape
    assert batch["image"].min() >= 0 and batch["image"].max() <= 1
    # every sample has at least one positive click lying on its object
    for b in range(3):
        positives = batch["click_coords"][b][batch["click_signs"][b] > 0].long()
        assert len(positives) >= 1
        assert all(batch["label"][b, 0, y, x] == 1 for y, x in positives.tolist())


def test_crop_keeps_object():
    crop = ClickTrainingCropd(32, p_full=0.0).set_random_state(seed=3)
    item = make_items(1, size=80)[0]
    for _ in range(10):
        out = crop(item)
        assert out["image"].shape == (3, 32, 32) and out["label"].shape == (1, 32, 32)
        assert out["label"].sum() > 0


class _ForwardSpy:
    """Record the inputs of every forward call of a module."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.inputs: list[torch.Tensor] = []
        module.register_forward_pre_hook(lambda _m, args: self.inputs.append(args[0].detach().clone()))


def _trainer(model, batch, iteration, lr=1e-3, steps=1):
    loader = [batch] * steps
    return create_trainer(model, loader, epochs=1, lr=lr, output_dir=None, progress=False, iteration=iteration)


def test_simulated_clicks_and_prev_mask_reach_the_model():
    torch.manual_seed(0)
    model = create_model("tiny", in_channels=3)
    batch = fixed_batch(make_items(2))
    spy = _ForwardSpy(model)
    iteration = ClickSimulationIteration(max_extra_clicks=3, seed=0)
    trainer = _trainer(model, batch, iteration)
    # force three simulated clicks in this iteration
    iteration._rng.randint = lambda a, b: 3
    trainer.run()
    out = trainer.state.output
    assert out["num_extra_clicks"] == 3
    assert len(spy.inputs) == 4  # three no-grad simulation passes + the training forward
    first, last = spy.inputs[0], spy.inputs[-1]
    assert first.shape == last.shape == (2, 6, SIZE, SIZE)
    # the first pass sees no previous mask; the training forward sees the previous prediction (a probability)
    assert torch.count_nonzero(first[:, 3]) == 0
    assert torch.count_nonzero(last[:, 3]) > 0
    assert last[:, 3].min() >= 0 and last[:, 3].max() <= 1
    # the training forward sees more click pixels than the initial clicks alone
    assert torch.count_nonzero(last[:, 4:6]) > torch.count_nonzero(first[:, 4:6])
    # images are untouched by the simulation
    assert torch.equal(first[:, :3], last[:, :3])
    initial_clicks = int((batch["click_signs"] != 0).sum())
    assert initial_clicks < out["num_clicks"] <= initial_clicks + 3 * 2


def test_no_extra_clicks_means_single_forward():
    model = create_model("tiny", in_channels=3)
    spy = _ForwardSpy(model)
    iteration = ClickSimulationIteration(max_extra_clicks=0, seed=0)
    _trainer(model, fixed_batch(make_items(2)), iteration).run()
    assert len(spy.inputs) == 1
    assert torch.count_nonzero(spy.inputs[0][:, 3]) == 0


def test_loss_decreases_on_fixed_batch():
    torch.manual_seed(0)
    model = create_model("tiny", in_channels=3)
    batch = fixed_batch(make_items(2))
    iteration = ClickSimulationIteration(max_extra_clicks=0, seed=0)
    trainer = _trainer(model, batch, iteration, lr=2e-3, steps=12)
    losses = []
    trainer.add_event_handler(
        __import__("ignite").engine.Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output["loss"])
    )
    trainer.run()
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_run_training_resume_continues_iteration_optimizer_and_schedule(tmp_path):
    items = make_items(4)
    common = {"preset": "tiny", "epochs": 3, "batch_size": 2, "lr": 1e-3, "progress": False, "seed": 0}
    first = run_training(items, tmp_path, max_steps=3, **common)
    assert first["iterations"] == 3
    state = torch.load(find_last_checkpoint(tmp_path), map_location="cpu", weights_only=True)
    assert state["trainer"]["iteration"] == 3
    steps_before = max(int(s["step"]) for s in state["optimizer"]["state"].values())
    assert steps_before == 3

    second = run_training(items, tmp_path, resume=True, **common)
    assert second["iterations"] == 6  # 3 epochs x 2 iterations: continued, not restarted
    assert [h["epoch"] for h in second["history"]] == [2, 3]
    state = torch.load(find_last_checkpoint(tmp_path), map_location="cpu", weights_only=True)
    assert max(int(s["step"]) for s in state["optimizer"]["state"].values()) == 6
    assert state["lr_scheduler"]["last_epoch"] == 3
    # lr x0.1 at epoch round(2/3 * 3) = 2 (paper schedule scaled)
    assert second["history"][-1]["lr"] == pytest.approx(1e-4)
    model = load_model(second["checkpoint"])
    assert model.config["image_size"] == create_model("tiny").config["image_size"]


def test_resume_with_changed_architecture_fails_before_training(tmp_path):
    items = make_items(2)
    run_training(items, tmp_path, preset="tiny", epochs=1, batch_size=2, progress=False)
    with pytest.raises(ValueError, match="config differs"):
        run_training(items, tmp_path, preset="tiny", head="mask_fixed", epochs=2, batch_size=2, resume=True)
    with pytest.raises(ValueError, match="config differs"):
        run_training(
            items,
            tmp_path / "other",
            preset="tiny",
            epochs=1,
            init_checkpoint=tmp_path / "model.pt",
            model_overrides={"num_queries": 3},
        )


def test_bad_inputs_raise_clear_errors(tmp_path):
    empty = make_items(2)
    for item in empty:
        item["label"] = np.zeros_like(item["label"])
    with pytest.raises(ValueError, match="zero usable objects"):
        run_training(empty, tmp_path, preset="tiny", epochs=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_training_items("brats_png", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run_training(make_items(2), tmp_path / "fresh", preset="tiny", epochs=1, resume=True)
    with pytest.raises(ValueError, match="same size"):
        usable_items([{"image": np.zeros((1, 8, 8)), "label": np.zeros((1, 9, 8))}])


def _mae_style_file(path, model) -> dict[str, torch.Tensor]:
    """An MAE-style ``{"model": state}`` file for ``model``'s backbone (fresh random weights, not the model's)."""
    state = {k: torch.randn_like(v) for k, v in model.backbone.state_dict().items() if not k.startswith("guidance")}
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, path)
    return state


def test_pretrained_backbone_initialises_training(tmp_path):
    items = make_items(2)
    reference = create_model("tiny")
    expected = _mae_style_file(tmp_path / "mae.pth", reference)
    result = run_training(
        items,
        tmp_path / "run",
        preset="tiny",
        epochs=1,
        batch_size=2,
        lr=1e-12,  # one Adam step of 1e-12: the weights stay the loaded ones to within 1e-9
        progress=False,
        pretrained_backbone=tmp_path / "mae.pth",
    )
    trained = load_model(result["checkpoint"]).backbone.state_dict()
    for key in ("blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.bias", "patch_embed.proj.weight"):
        torch.testing.assert_close(trained[key], expected[key], atol=1e-9, rtol=0)
    assert not torch.allclose(
        trained["blocks.0.attn.qkv.weight"], reference.backbone.state_dict()["blocks.0.attn.qkv.weight"]
    )


def test_pretrained_backbone_errors(tmp_path):
    items = make_items(2)
    with pytest.raises(FileNotFoundError, match="pretrained_backbone"):
        run_training(items, tmp_path, preset="tiny", epochs=1, pretrained_backbone=tmp_path / "absent.pth")
    _mae_style_file(tmp_path / "mae.pth", create_model("tiny"))
    with pytest.raises(ValueError, match="no ViT"):
        run_training(items, tmp_path, preset="tiny", head="deepgrow_unet", pretrained_backbone=tmp_path / "mae.pth")
    with pytest.raises(ValueError, match="not both"):
        run_training(
            items,
            tmp_path,
            preset="tiny",
            init_checkpoint=tmp_path / "mae.pth",
            pretrained_backbone=tmp_path / "mae.pth",
        )
    # a backbone of another width is refused before training, naming the mismatching keys
    wide = create_model("tiny", embed_dim=32)
    _mae_style_file(tmp_path / "wide.pth", wide)
    with pytest.raises(ValueError, match="pos_embed"):
        run_training(items, tmp_path / "w", preset="tiny", epochs=1, pretrained_backbone=tmp_path / "wide.pth")
