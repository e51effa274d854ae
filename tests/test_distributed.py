# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``multi_gpu_train.json`` under ``torchrun --nproc_per_node=2`` on CPU (gloo): the run completes and both ranks
hold identical weights after the DDP step (issue 6)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_adaptiveclick.engines.distributed import init_distributed, is_main_process

REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent(
    """
    import sys, torch, torch.distributed as dist
    from monai.bundle import ConfigWorkflow

    work, data, out = sys.argv[1:4]
    workflow = ConfigWorkflow(
        config_file=[work + "/bundle/configs/train.json", work + "/bundle/configs/multi_gpu_train.json"],
        meta_file=work + "/bundle/configs/metadata.json",
        logging_file=work + "/bundle/configs/logging.conf",
        workflow_type="train",
        bundle_root=work + "/bundle",
        preset="tiny",
        epochs=1,
        batch_size=1,
        dataset="brats_png",
        dataset_dir=data,
        val_dataset="brats_png",
        val_dataset_dir=data,
        val_max_items=1,
        val_max_clicks=2,
    )
    workflow.initialize()
    workflow.run()
    rank = dist.get_rank()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    state = {k: v.detach().cpu() for k, v in workflow.parser.get_parsed_content("network_def").state_dict().items()}
    torch.save({"state": state, "iteration": trainer.state.iteration, "world": dist.get_world_size()},
               f"{out}/rank{rank}.pt")
    workflow.finalize()
    """
)


def write_png_dataset(root: Path, count: int = 4, size: int = 40) -> Path:
    rng = np.random.default_rng(1)
    (root / "image").mkdir(parents=True)
    (root / "annotation").mkdir()
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        y, x = rng.integers(5, size - 20, size=2)
        mask[y : y + 12, x : x + 14] = 1
        image = np.clip(rng.normal(60, 10, (size, size)) + 120 * mask, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / "image" / f"case{i}.png")
        Image.fromarray(mask * 255).save(root / "annotation" / f"case{i}.png")
    return root


def test_init_distributed_needs_torchrun_environment(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        init_distributed()
    assert is_main_process()


def test_torchrun_two_processes_gloo_agree_on_weights(tmp_path):
    shutil.copytree(REPO / "bundle", tmp_path / "bundle")
    data = write_png_dataset(tmp_path / "data")
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(worker),
            str(tmp_path),
            str(data),
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["world"] == rank1["world"] == 2
    # 4 images, batch 1 per rank, DistributedSampler: 2 iterations on each rank
    assert rank0["iteration"] == rank1["iteration"] == 2
    saved = torch.load(tmp_path / "bundle" / "models" / "checkpoint_epoch=1.pt", weights_only=True)
    assert max(int(s["step"]) for s in saved["optimizer"]["state"].values()) == 2  # two optimizer steps were taken
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), key
        assert torch.equal(value, saved["model"][key]), key  # rank 0's checkpoint holds the same weights
    assert (tmp_path / "bundle" / "models" / "model.pt").is_file()
    assert not (tmp_path / "bundle" / "models" / "checkpoint_epoch=2.pt").exists()
