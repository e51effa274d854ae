# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``multi_gpu_train.json`` under ``torchrun --nproc_per_node=2`` on CPU (gloo): the run completes and both ranks
hold identical weights after the DDP step (issue 6)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from monai_adaptiveclick.engines.distributed import init_distributed, is_main_process

REPO = Path(__file__).resolve().parents[2]

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
    result = workflow.parser.get_parsed_content("trained")  # train_from_settings' result (cached by the parser)
    state = {k: v.detach().cpu() for k, v in result["model"].state_dict().items()}
    torch.save({"state": state, "iteration": result["iterations"], "world": dist.get_world_size()},
               f"{out}/rank{rank}.pt")
    workflow.finalize()
    """
)


def test_init_distributed_needs_torchrun_environment(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        init_distributed()
    assert is_main_process()


def test_torchrun_two_processes_gloo_agree_on_weights(tmp_path, write_png_dataset, copy_bundle):
    copy_bundle(tmp_path / "bundle")
    data = write_png_dataset(tmp_path / "data", seed=1)
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
