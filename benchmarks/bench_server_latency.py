# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Per-click latency of the AdaptiveClick MONAI Label server over HTTP (issue 7, "Benchmark").

Starts ``monailabel start_server`` on 127.0.0.1 with a copy of ``apps/adaptiveclick`` and a BraTS-sized synthetic
volume (240 x 240 x 155, int16), then measures with ``monailabel.client.MONAILabelClient``:

- start-up time (process launch -> ``/info/`` answers) and the first click after start (model load + volume decode);
- per-click latency of the whole request (client send -> label file saved and JSON parsed), p50 / p95, over clicks
  that refine slices click by click as a user does;
- the bare ``model.predict`` forward on a network-size input and the full ``Predictor`` call (pre/post-processing
  included) on the same slices.

Each HTTP click is followed, in this process and with the same thread count, by the bare forward and the Predictor
call on the same input, so the per-click differences are paired under the same machine load. The server's overhead
per click is the paired request - bare forward difference (target: < 50 ms on the 2-core CPU); request - server
predict isolates HTTP + app work from the Predictor.

Usage:
    python benchmarks/bench_server_latency.py [--preset small_cpu] [--checkpoint model.pt] [--clicks 20]
        [--threads 2] [--output outputs/bench/server_latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.networks import create_model, load_model, save_model

__all__ = ["main", "make_volume", "percentiles"]

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "apps" / "adaptiveclick"
SHAPE = (240, 240, 155)


def make_volume(path: Path, seed: int = 0) -> np.ndarray:
    """Write a BraTS-sized int16 volume (noisy head-like ellipsoid with a bright lesion) and return the array."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in SHAPE), indexing="ij")
    head = ((i - 120) / 90) ** 2 + ((j - 120) / 75) ** 2 + ((k - 77) / 65) ** 2 <= 1
    lesion = ((i - 100) / 22) ** 2 + ((j - 140) / 18) ** 2 + ((k - 77) / 20) ** 2 <= 1
    volume = rng.normal(0, 15, SHAPE) + 400 * head + 500 * lesion
    volume = np.clip(volume, 0, 32767).astype(np.int16)
    nib.save(nib.Nifti1Image(volume, np.diag([1.0, 1.0, 1.0, 1.0])), str(path))
    return volume


def percentiles(values: list[float]) -> dict:
    """p50 / p95 / mean / n of a list of seconds, in milliseconds."""
    array = np.asarray(values, dtype=np.float64) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 1),
        "p95_ms": round(float(np.percentile(array, 95)), 1),
        "mean_ms": round(float(array.mean()), 1),
        "n": int(array.size),
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _click_plan(clicks: int) -> list[dict]:
    """Requests of a user refining 4 slices through the lesion, click by click (positive first, then alternating)."""
    slices = [77, 70, 84, 65]
    per_slice = max(1, -(-clicks // len(slices)))
    plan = []
    for k in slices:
        foreground, background = [], []
        for n in range(per_slice):  # distinct points: every request adds one click (refinement, never a repeat)
            di, dj = (7 * n) % 31 - 15, (11 * n) % 29 - 14
            point = [100 + di, 140 + dj, k] if n % 2 == 0 else [100 + 2 * di + 40, 140 + 2 * dj + 40, k]
            (foreground if n % 2 == 0 else background).append(point)
            plan.append({"foreground": list(foreground), "background": list(background)})
    return plan[:clicks]


def server_command(app: Path, studies: Path, port: int, confs: dict[str, str]) -> list[str]:
    """``monailabel start_server`` on 127.0.0.1 for ``app`` / ``studies`` with ``--conf`` pairs."""
    command = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(app)]
    command += ["--studies", str(studies), "--host", "127.0.0.1", "--port", str(port)]
    for key, value in confs.items():
        command += ["--conf", key, str(value)]
    return command


def copy_app(root: Path) -> Path:
    """A copy of ``apps/adaptiveclick`` under ``root`` without local models and logs."""
    app = root / "app"
    shutil.copytree(APP_DIR, app, ignore=shutil.ignore_patterns("model", "logs", "bin", "__pycache__"))
    return app


def stop_server(process: subprocess.Popen) -> None:
    """Terminate the server, killing it when it does not stop within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait_up(client, process: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            client.info()
            return
        except Exception:
            if time.time() > deadline:
                raise RuntimeError(f"server not up after {timeout} s:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)


class _BareRunner:
    """Bare ``model.predict`` forward and full ``Predictor`` call in this process, on the benchmark's requests."""

    def __init__(self, checkpoint: Path, volume: np.ndarray) -> None:
        self.model = load_model(checkpoint)
        self.predictor = Predictor(self.model, device="cpu")
        self.volume = volume
        self.prev: np.ndarray | None = None
        size = self.model.image_size
        self.x = torch.rand(1, self.model.in_channels + 3, size, size)
        with torch.inference_mode():
            self.model.predict(self.x)  # warm-up

    def forward(self) -> float:
        """Seconds of one ``model.predict`` on a network-size input."""
        with torch.inference_mode():
            start = time.perf_counter()
            self.model.predict(self.x)
            return time.perf_counter() - start

    def predictor_call(self, request: dict) -> float:
        """Seconds of one ``Predictor`` call for ``request`` (previous map fed back within a slice, as the server)."""
        k = (request["foreground"] or request["background"])[0][2]
        clicks = [(i, j, True) for i, j, _ in request["foreground"]]
        clicks += [(i, j, False) for i, j, _ in request["background"]]
        previous = None if len(clicks) == 1 else self.prev  # the first click of a slice has no previous mask
        start = time.perf_counter()
        self.prev = self.predictor(self.volume[None, :, :, k].astype(np.float32), clicks, prev_mask=previous).prob
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table and write the JSON report; returns the report."""
    from monailabel.client import MONAILabelClient

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small_cpu", help="untrained model preset when --checkpoint is not given")
    parser.add_argument("--checkpoint", default=None, help="a networks.save_model file to serve")
    parser.add_argument("--clicks", type=int, default=20, help="measured clicks (after the first one)")
    parser.add_argument("--threads", type=int, default=2, help="torch / OpenMP threads, server and bare forward")
    parser.add_argument("--output", default="outputs/bench/server_latency.json")
    parser.add_argument("--output-ext", default=".nii.gz", choices=[".nii.gz", ".nii"], help="label file format")
    args = parser.parse_args(argv)
    if args.clicks < 4:
        raise ValueError(f"--clicks must be >= 4, got {args.clicks}.")

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_label_") as tmp:
        root = Path(tmp)
        app = copy_app(root)
        studies = root / "studies"
        studies.mkdir()
        volume = make_volume(studies / "brats_like.nii.gz")
        if args.checkpoint:
            checkpoint = Path(args.checkpoint).resolve()
        else:
            torch.manual_seed(0)
            checkpoint = root / "model.pt"
            save_model(create_model(args.preset, in_channels=3), checkpoint)
        port = _free_port()
        log = root / "server.log"
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MONAI_LABEL_DATASTORE_AUTO_RELOAD": "false"}
        confs = {"checkpoint": checkpoint, "device": "cpu", "output_ext": args.output_ext}
        command = server_command(app, studies, port, confs)
        client_tmp = root / "client"
        client_tmp.mkdir()
        client = MONAILabelClient(f"http://127.0.0.1:{port}", tmpdir=str(client_tmp), client_id="bench")
        launched = time.perf_counter()
        with open(log, "w") as handle:
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=root, env=env)
            try:
                _wait_up(client, process, log)
                startup = time.perf_counter() - launched
                plan = _click_plan(args.clicks + 1)
                start = time.perf_counter()
                label_file, first = client.infer("adaptiveclick", "brats_like", plan[0])
                first_click = time.perf_counter() - start
                os.unlink(label_file)
                bare = _BareRunner(checkpoint, volume)
                requests, server_side = [], {key: [] for key in ("volume", "predict", "write", "total")}
                forwards, calls, modes = [], [], {}
                for params in plan[1:]:
                    # each HTTP click is followed by the bare forward and the Predictor call on the same input, so
                    # the three are measured under the same machine load (the server is idle meanwhile)
                    start = time.perf_counter()
                    label_file, result = client.infer("adaptiveclick", "brats_like", params)
                    requests.append(time.perf_counter() - start)
                    forwards.append(bare.forward())
                    calls.append(bare.predictor_call(params))
                    result = json.loads(result) if isinstance(result, str) else result
                    modes[result["mode"]] = modes.get(result["mode"], 0) + 1
                    for key in server_side:
                        server_side[key].append(result["latencies"][key])
                    size = os.path.getsize(label_file)
                    os.unlink(label_file)
            finally:
                stop_server(process)

    report = {
        "volume_shape": list(SHAPE),
        "model": {
            "checkpoint": args.checkpoint or f"untrained {args.preset}",
            "image_size": first["model"]["image_size"],
        },
        "threads": args.threads,
        "label_format": args.output_ext,
        "label_file_bytes": size,
        "startup_s": round(startup, 2),
        "first_click_s": round(first_click, 3),
        "request_modes": modes,
        "request": percentiles(requests),
        "server_side": {key: percentiles(values) for key, values in server_side.items()},
        "bare_forward": percentiles(forwards),
        "predictor_call": percentiles(calls),
        "paired_request_minus_forward": percentiles([r - f for r, f in zip(requests, forwards, strict=True)]),
        "paired_request_minus_predictor": percentiles([r - c for r, c in zip(requests, calls, strict=True)]),
        "paired_request_minus_server_predict": percentiles(
            [r - p for r, p in zip(requests, server_side["predict"], strict=True)]
        ),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))

    rows = [
        ("HTTP request (whole click)", report["request"]),
        ("  server: predict (Predictor)", report["server_side"]["predict"]),
        ("  server: volume (cached)", report["server_side"]["volume"]),
        ("  server: write label", report["server_side"]["write"]),
        ("  server: task total", report["server_side"]["total"]),
        ("bare model.predict forward", report["bare_forward"]),
        ("Predictor call (pre/post incl.)", report["predictor_call"]),
        ("paired: request - bare forward", report["paired_request_minus_forward"]),
        ("paired: request - Predictor call", report["paired_request_minus_predictor"]),
        ("paired: request - server predict", report["paired_request_minus_server_predict"]),
    ]
    print(f"volume {SHAPE}, model {report['model']}, {args.threads} threads, label {args.output_ext} ({size} B)")
    print(f"start-up {report['startup_s']} s, first click after start {report['first_click_s']} s")
    print(f"| {'what':34s} | p50 ms | p95 ms |  n |")
    print(f"|{'-' * 36}|--------|--------|----|")
    for name, stats in rows:
        print(f"| {name:34s} | {stats['p50_ms']:6.1f} | {stats['p95_ms']:6.1f} | {stats['n']:2d} |")
    print(f"report written to {output}")
    return report


if __name__ == "__main__":
    main()
