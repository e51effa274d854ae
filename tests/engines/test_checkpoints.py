# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Crash-safe training checkpoints: a kill during a write leaves no truncated checkpoint, resume falls back to the
newest checkpoint that loads (and says so), and old checkpoints are pruned across runs."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pytest
import torch

from monai_adaptiveclick.engines import find_last_checkpoint, prune_checkpoints, run_training
from monai_adaptiveclick.networks import atomic_save

COMMON = {"preset": "tiny", "batch_size": 2, "lr": 1e-3, "progress": False, "seed": 0, "max_extra_clicks": 0}


def _items(count: int = 2, size: int = 40) -> list[dict]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(count):
        label = np.zeros((1, size, size), np.uint8)
        label[0, 10 + i : 25 + i, 12:28] = 1
        image = (rng.normal(0.2, 0.05, (3, size, size)) + 0.6 * label).astype(np.float32)
        items.append({"image": image, "label": label, "object_id": f"o{i}"})
    return items


class SimulatedKill(BaseException):
    """Stands for SIGKILL arriving in the middle of a write (not an Exception: nothing catches it)."""


def test_kill_during_a_checkpoint_write_leaves_no_truncated_checkpoint_and_resume_continues(tmp_path, monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def dying_save(obj, target, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint: half the bytes, then the process dies
            real_save(obj, target, *args, **kwargs)
            if hasattr(target, "truncate"):
                target.truncate(100)
            raise SimulatedKill
        return real_save(obj, target, *args, **kwargs)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(SimulatedKill):
        run_training(_items(), tmp_path, epochs=3, **COMMON)
    monkeypatch.setattr(torch, "save", real_save)
    names = sorted(p.name for p in tmp_path.glob("checkpoint_*.pt"))
    assert names == ["checkpoint_epoch=1.pt"]  # the interrupted epoch-2 write left nothing under a checkpoint name
    state = torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)
    assert state["trainer"]["iteration"] == 1  # 2 items, batch 2: one iteration per epoch
    resumed = run_training(_items(), tmp_path, epochs=3, resume=True, **COMMON)
    assert resumed["iterations"] == 3 and [h["epoch"] for h in resumed["history"]] == [2, 3]


def test_resume_skips_unreadable_checkpoints_and_says_so(tmp_path, caplog):
    run_training(_items(), tmp_path, epochs=1, **COMMON)
    good = find_last_checkpoint(tmp_path)
    time.sleep(0.01)
    for name, content in (("checkpoint_epoch=7.pt", b""), ("checkpoint_final_iteration=9.pt", b"PK\x03\x04 truncated")):
        (tmp_path / name).write_bytes(content)
        os.utime(tmp_path / name)
    with caplog.at_level(logging.WARNING):
        assert find_last_checkpoint(tmp_path) == good
    assert "checkpoint_epoch=7.pt" in caplog.text and "checkpoint_final_iteration=9.pt" in caplog.text
    result = run_training(_items(), tmp_path, epochs=2, resume=True, **COMMON)
    assert [h["epoch"] for h in result["history"]] == [2]


def test_no_loadable_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint_epoch=1.pt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no loadable checkpoint.*unreadable"):
        run_training(_items(), tmp_path, epochs=1, resume=True, **COMMON)


def test_old_checkpoints_are_pruned_across_runs(tmp_path):
    run_training(_items(), tmp_path, epochs=3, checkpoints_kept=2, **COMMON)
    first = sorted(p.name for p in tmp_path.glob("checkpoint_*.pt"))
    assert first == ["checkpoint_epoch=3.pt", "checkpoint_final_iteration=3.pt"]
    run_training(_items(), tmp_path, epochs=5, resume=True, checkpoints_kept=2, **COMMON)
    assert sorted(p.name for p in tmp_path.glob("checkpoint_*.pt")) == [
        "checkpoint_epoch=5.pt",
        "checkpoint_final_iteration=5.pt",
    ]
    with pytest.raises(ValueError, match="keep"):
        prune_checkpoints(tmp_path, 0)


def test_atomic_save_never_exposes_a_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "model.pt"
    atomic_save({"w": torch.ones(3)}, target)
    real_save = torch.save

    def dying_save(obj, stream, *args, **kwargs):
        stream.write(b"partial")
        raise SimulatedKill

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(SimulatedKill):
        atomic_save({"w": torch.zeros(3)}, target)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no staging file left behind
