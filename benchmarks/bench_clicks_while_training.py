# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Click latency of the MONAI Label server while its train task runs (issue 16, "clicks stay interactive").

Starts the app on 127.0.0.1 (``bench_server_latency``'s BraTS-sized volume plus a second volume with a ``final``
label for the train task to learn from), measures the per-click latency of HTTP requests while the server is idle,
then starts a fine-tuning round (``POST /train/adaptiveclick``, long enough to outlast the clicks) and measures the
same clicks again while it trains. It does this twice, in one run: with the app's training share
(``--conf train_threads`` = half the cores, ``train_nice`` 19: the defaults) and without (``train_threads`` = all
cores, ``train_nice`` 0), and prints p50 / p95 for each, with the ratio to idle (target: p95 during training within 2x
of idle).

Usage:
    python benchmarks/bench_clicks_while_training.py [--clicks 24] [--threads 2]
        [--output outputs/bench/train_clicks.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from bench_server_latency import (
    _click_plan,
    _free_port,
    _wait_up,
    copy_app,
    make_volume,
    percentiles,
    server_command,
    stop_server,
)

from monai_adaptiveclick.networks import create_model, save_model

__all__ = ["main", "measure"]


def _make_training_study(studies: Path) -> None:
    """A second volume with a final label (a bright ellipsoid) for the train task."""
    rng = np.random.default_rng(1)
    shape = (96, 96, 24)
    i, j, k = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in shape), indexing="ij")
    blob = ((i - 48) / 20) ** 2 + ((j - 40) / 16) ** 2 + ((k - 12) / 8) ** 2 <= 1
    image = (rng.normal(100, 10, shape) + 300 * blob).astype(np.int16)
    nib.save(nib.Nifti1Image(image, np.eye(4)), str(studies / "train_case.nii.gz"))
    (studies / "labels" / "final").mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(blob.astype(np.uint8), np.eye(4)), str(studies / "labels" / "final" / "train_case.nii.gz"))


def _clicks(client, plan: list[dict]) -> list[float]:
    """Seconds of each HTTP click of ``plan``."""
    seconds = []
    for params in plan:
        start = time.perf_counter()
        label_file, _ = client.infer("adaptiveclick", "brats_like", params)
        seconds.append(time.perf_counter() - start)
        os.unlink(label_file)
    return seconds


def measure(checkpoint: Path, clicks: int, threads: int, share: dict[str, str]) -> dict:
    """Idle and during-training click latencies of one server started with the ``share`` confs."""
    from monailabel.client import MONAILabelClient

    with tempfile.TemporaryDirectory(prefix="bench_train_clicks_") as tmp:
        root = Path(tmp)
        app = copy_app(root)
        studies = root / "studies"
        studies.mkdir()
        make_volume(studies / "brats_like.nii.gz")
        _make_training_study(studies)
        port = _free_port()
        log = root / "server.log"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MONAI_LABEL_DATASTORE_AUTO_RELOAD": "false"}
        confs = {"bundle_checkpoint": checkpoint, "device": "cpu", "checkpoint": root / "served.pt", **share}
        command = server_command(app, studies, port, confs)
        client_tmp = root / "client"
        client_tmp.mkdir()
        client = MONAILabelClient(f"http://127.0.0.1:{port}", tmpdir=str(client_tmp), client_id="bench")
        with open(log, "w") as handle:
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=root, env=env)
            try:
                _wait_up(client, process, log)
                plan = _click_plan(clicks + 1)
                _clicks(client, plan[:1])  # model load + volume decode
                idle = _clicks(client, plan[1:])
                client.train_start("adaptiveclick", {"epochs": 200, "batch_size": 4, "max_train_items": 40})
                time.sleep(8.0)  # the train process starts, loads its data and begins iterating
                if client.train_status().get("status") != "RUNNING":
                    raise RuntimeError(f"the train task is not running: {client.train_status()}")
                training = _clicks(client, plan[1:])
                still = client.train_status().get("status") == "RUNNING"
                client.train_stop()
            finally:
                stop_server(process)
    return {"idle": percentiles(idle), "training": percentiles(training), "trained_throughout": still}


def main(argv: list[str] | None = None) -> dict:
    """Run both settings, print the table and write the JSON report; returns the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small_cpu", help="untrained model preset served and trained")
    parser.add_argument("--clicks", type=int, default=24, help="measured clicks per phase")
    parser.add_argument("--threads", type=int, default=2, help="torch / OpenMP threads of the server")
    parser.add_argument("--output", default="outputs/bench/train_clicks.json")
    args = parser.parse_args(argv)
    if args.clicks < 4:
        raise ValueError(f"--clicks must be >= 4, got {args.clicks}.")
    cores = os.cpu_count() or 2
    settings = {
        "app default share": {},
        "no share limit": {"train_threads": str(cores), "train_nice": "0"},
    }
    with tempfile.TemporaryDirectory(prefix="bench_model_") as tmp:
        torch.manual_seed(0)
        checkpoint = save_model(create_model(args.preset, in_channels=3), Path(tmp) / "model.pt")
        report = {name: measure(checkpoint, args.clicks, args.threads, share) for name, share in settings.items()}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(f"{args.clicks} clicks per phase, server threads {args.threads}, {cores} cores, preset {args.preset}")
    print("| setting | idle p50 / p95 ms | training p50 / p95 ms | p95 ratio |")
    print("|---|---|---|---:|")
    for name, row in report.items():
        idle, busy = row["idle"], row["training"]
        ratio = busy["p95_ms"] / idle["p95_ms"]
        print(f"| {name} | {idle['p50_ms']} / {idle['p95_ms']} | {busy['p50_ms']} / {busy['p95_ms']} | {ratio:.2f} |")
    print(f"report written to {output}")
    return report


if __name__ == "__main__":
    main()
