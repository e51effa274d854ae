# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The training wiring: click simulation before ``SupervisedTrainer._iteration`` (events, PRED, AMP path), ignore
masks, gradient clipping, checkpoints and resume, settings errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.engines import IterationEvents

from monai_adaptiveclick.engines import (
    TrainingSettings,
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


def settings(**overrides) -> TrainingSettings:
    """The default recipe on the tiny preset, without validation."""
    return TrainingSettings.from_recipe(preset="tiny", val_max_items=0, **overrides)


def fixed_batch(items: list[dict], seed: int = 0) -> dict[str, torch.Tensor]:
    dataset = create_train_dataset(items, SIZE, 3, settings(seed=seed))
    return next(iter(create_train_loader(dataset, batch_size=len(items))))


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


class _ForwardSpy:
    """Record the inputs of every forward call of a module."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.inputs: list[torch.Tensor] = []
        module.register_forward_pre_hook(lambda _m, args: self.inputs.append(args[0].detach().clone()))


def _trainer(model, batch, lr=1e-3, steps=1, **overrides):
    return create_trainer(model, [batch] * steps, settings(epochs=1, lr=lr, **overrides), progress=False)


def test_simulated_clicks_and_prev_mask_reach_the_model():
    torch.manual_seed(0)
    model = create_model("tiny", in_channels=3)
    batch = fixed_batch(make_items(2))
    spy = _ForwardSpy(model)
    trainer = _trainer(model, batch, max_extra_clicks=3)
    # force three simulated clicks in this iteration
    trainer.click_iteration._rng.randint = lambda a, b: 3
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
    _trainer(model, fixed_batch(make_items(2)), max_extra_clicks=0).run()
    assert len(spy.inputs) == 1
    assert torch.count_nonzero(spy.inputs[0][:, 3]) == 0


def test_loss_decreases_on_fixed_batch():
    torch.manual_seed(0)
    model = create_model("tiny", in_channels=3)
    batch = fixed_batch(make_items(2))
    trainer = _trainer(model, batch, lr=2e-3, steps=12, max_extra_clicks=0)
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output["loss"].item()))
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
    with pytest.raises(FileNotFoundError, match="no loadable checkpoint"):
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
    with pytest.raises(ValueError, match="no ViT|has none"):
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


def test_supervised_trainer_step_fires_iteration_events_and_outputs_pred():
    torch.manual_seed(0)
    model = create_model("tiny", in_channels=3)
    trainer = _trainer(model, fixed_batch(make_items(2)), steps=2, max_extra_clicks=1)
    fired = []
    for event in (
        IterationEvents.FORWARD_COMPLETED,
        IterationEvents.LOSS_COMPLETED,
        IterationEvents.BACKWARD_COMPLETED,
    ):
        trainer.add_event_handler(event, lambda _e, name=event.name: fired.append(name))
    trainer.run()
    assert fired == ["FORWARD_COMPLETED", "LOSS_COMPLETED", "BACKWARD_COMPLETED"] * 2
    out = trainer.state.output
    assert set(out) >= {"image", "label", "pred", "loss", "num_extra_clicks", "loss_parts"}
    assert out["pred"]["pred_masks"].shape[0] == 2 and out["image"].shape == (2, 6, SIZE, SIZE)
    # the target carries the ignore mask as its second channel
    assert out["label"].shape == (2, 2, SIZE, SIZE)
    assert set(out["loss_parts"]) == {"loss_click", "loss_mask", "loss_dice"}


def test_gradient_clipping_bounds_the_global_norm_before_the_step():
    torch.manual_seed(0)
    model = create_model("tiny", in_channels=3)
    trainer = _trainer(model, fixed_batch(make_items(2)), max_extra_clicks=0, grad_clip=1e-3)
    norms = []

    def global_norm(engine):  # attached after the clipping handler: sees the clipped gradients
        grads = [p.grad.detach().flatten() for p in engine.network.parameters() if p.grad is not None]
        norms.append(float(torch.cat(grads).norm()))

    trainer.add_event_handler(IterationEvents.BACKWARD_COMPLETED, global_norm)
    trainer.run()
    assert norms and norms[0] <= 1e-3 * (1 + 1e-4)


def test_ignore_pixels_are_never_clicked_by_the_simulation():
    items = make_items(2)
    for item in items:  # ignore the whole object but a 3 x 3 core, and a band of background
        ignore = item["label"].astype(bool)
        ys, xs = np.nonzero(item["label"][0])
        cy, cx = int(np.median(ys)), int(np.median(xs))
        ignore[0, cy - 1 : cy + 2, cx - 1 : cx + 2] = False
        ignore[0, :6] = True
        item["ignore"] = ignore
    batch = fixed_batch(items)
    assert batch["ignore"].shape == batch["label"].shape and batch["ignore"].sum() > 0
    torch.manual_seed(0)
    model = create_model("tiny", in_channels=3)
    trainer = _trainer(model, batch, steps=3, max_extra_clicks=3)
    trainer.click_iteration._rng.randint = lambda a, b: 3
    seen = []
    original = trainer.click_iteration.simulate_clicks

    def record(*args):
        coords, signs, prev = original(*args)
        seen.append((coords, signs))
        return coords, signs, prev

    trainer.click_iteration.simulate_clicks = record
    trainer.run()
    ignore = batch["ignore"][:, 0] > 0.5
    for coords, signs in seen:
        for b in range(coords.shape[0]):
            for (y, x), sign in zip(coords[b].round().long().tolist(), signs[b].tolist(), strict=True):
                if sign != 0:
                    assert not ignore[b, y, x], f"click ({y}, {x}) lies on an ignored pixel"


def test_recipes_are_complete_and_bad_settings_name_the_problem(tmp_path):
    assert TrainingSettings.from_recipe().lr == 5e-05  # configs/train_defaults.json
    assert TrainingSettings.from_recipe("demo").model_overrides == {"image_size": 128}
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainingSettings.from_recipe(learning_rate=1.0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TrainingSettings.from_recipe(batch_size=0)
    with pytest.raises(FileNotFoundError, match="known recipes"):
        TrainingSettings.from_recipe("no_such_recipe")
    custom = tmp_path / "mine.json"
    custom.write_text('{"_description_": "x", "epochs": 7}')
    assert TrainingSettings.from_recipe(custom).epochs == 7


def test_loss_settings_reach_the_criterion_and_ignore_reaches_the_loss():
    model = create_model("tiny", in_channels=3)
    batch = fixed_batch(make_items(2))
    trainer = _trainer(model, batch, loss="afl", loss_kwargs={"agr": False})
    criterion = trainer.loss_function.criterion
    assert type(criterion.mask_loss).__name__ == "AdaptiveFocalLoss" and criterion.mask_loss.agr is False
    # the [label, ignore] target: logits changed only on ignored pixels leave the loss unchanged
    torch.manual_seed(1)
    outputs = {"pred_logits": torch.randn(2, 4, 2), "pred_masks": torch.randn(2, 4, 16, 16)}
    label = torch.zeros(2, 1, 64, 64)
    label[:, :, 16:48, 16:48] = 1
    ignore = torch.zeros_like(label)
    ignore[:, :, :, :32] = 1
    target = torch.cat([label, ignore], 1)
    changed = {**outputs, "pred_masks": outputs["pred_masks"].clone()}
    changed["pred_masks"][..., :8] += 5.0  # the left half at mask resolution: all ignored
    loss = trainer.loss_function
    assert float(loss(changed, target)) == pytest.approx(float(loss(outputs, target)), abs=1e-6)
    assert float(loss(changed, target[:, :1])) != pytest.approx(float(loss(outputs, target[:, :1])), abs=1e-3)


def test_synthetic_share_adds_fresh_synthetic_samples_to_each_epoch():
    items = make_items(4)
    mixed = create_train_dataset(
        items, SIZE, 3, settings(synthetic_share=0.6, synthetic_options={"size_range": [48, 64]})
    )
    # 4 real items at a share of 0.6 synthetic: round(4 * 0.6 / 0.4) = 6 synthetic samples per epoch
    assert len(mixed) == 10
    synthetic = [mixed[i] for i in range(4, 10)]
    for sample in synthetic:
        assert tuple(sample["image"].shape) == (3, SIZE, SIZE) and sample["label"].sum() > 0
        assert set(sample) == {"image", "label", "ignore", "click_coords", "click_signs"}
    # a new epoch draws new synthetic samples; the same seed draws the same ones
    again = mixed[4]
    assert not torch.equal(again["label"], synthetic[0]["label"]) or not torch.equal(
        again["image"], synthetic[0]["image"]
    )
    replay = create_train_dataset(
        items, SIZE, 3, settings(synthetic_share=0.6, synthetic_options={"size_range": [48, 64]})
    )
    assert torch.equal(replay[4]["image"], synthetic[0]["image"])
    with pytest.raises(ValueError, match="synthetic_share"):
        settings(synthetic_share=1.0)
    with pytest.raises(ValueError, match="unknown synthetic options"):
        create_train_dataset(items, SIZE, 3, settings(synthetic_share=0.5, synthetic_options={"colour": 1}))
