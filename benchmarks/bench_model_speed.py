# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Per-click forward time, parameters and FLOPs of the model presets on the CPU, beside the paper's Table V.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no computation), which counts
2 FLOPs per multiply-add; the table shows both GFLOPs and GMACs. The paper's Table V figures (taken over from
SimpleClick) appear to count 2 FLOPs per multiply-add as well: a ViT-B at 448 px alone needs about 70-80 GMACs, so
SimpleClick's 169.8 "GFLOPs" cannot be MACs. ``grid_sample`` (deformable attention sampling) is not counted by
FlopCounterMode; it is well under 1 GFLOP for every preset. Time = median (and minimum) wall time of
``model.predict`` on one ``[1, C+3, S, S]`` input (one click's forward, no flip TTA, no pre/post-processing) under
``torch.inference_mode``.

Usage:
    python benchmarks/bench_model_speed.py --threads 1 2 --presets small_cpu vit_b_448 vit_h_448
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from monai_adaptiveclick.networks import create_model

__all__ = ["PAPER_TABLE_V", "count_macs", "time_forward", "main"]

# paper Table V / SPEC section 1 (ViT-B 448, Titan RTX)
PAPER_TABLE_V = {
    ("vit_b_448", "camd"): "AdaptiveClick ViT-B 448: 116.4 M, 269.8 GFLOPs, 74 ms (Titan RTX)",
    ("vit_b_448", "mask_fixed"): "SimpleClick ViT-B 448: 96.5 M, 169.8 GFLOPs",
}


def count_macs(preset: str, head: str, in_channels: int) -> float:
    """Multiply-adds of one forward at the preset's image size, counted on the meta device."""
    with torch.device("meta"):
        model = create_model(preset, in_channels=in_channels, head=head).eval().requires_grad_(False)
        size = model.image_size
        x = torch.zeros(1, in_channels + 3, size, size)
        counter = FlopCounterMode(display=False)
        with counter:
            model(x)
    return counter.get_total_flops() / 2.0


def time_forward(preset: str, head: str, in_channels: int, repeats: int, warmup: int) -> tuple[float, float]:
    """``(median, min)`` seconds of ``model.predict`` on one input at the preset's image size."""
    torch.manual_seed(0)
    model = create_model(preset, in_channels=in_channels, head=head).eval()
    size = model.image_size
    x = torch.rand(1, in_channels + 3, size, size)
    x[:, in_channels:] = 0.0
    x[:, in_channels + 1, size // 2 - 5 : size // 2 + 5, size // 2 - 5 : size // 2 + 5] = 1.0
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model.predict(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> str:
    """Print (and return) the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small_cpu", "vit_b_448", "vit_h_448"])
    parser.add_argument("--heads", nargs="+", default=["camd", "mask_fixed"])
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="torch thread counts to time with")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per preset (vit_h_448: 1)")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    rows = [
        "| preset | head | input | params (M) | GFLOPs | GMACs | threads | CPU ms/click median (min) | paper Table V |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for preset in args.presets:
        for head in args.heads:
            with torch.device("meta"):
                model = create_model(preset, in_channels=args.in_channels, head=head)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            macs = count_macs(preset, head, args.in_channels) / 1e9
            heavy = preset == "vit_h_448"
            size = model.image_size
            note = PAPER_TABLE_V.get((preset, head), "")
            for threads in args.threads:
                torch.set_num_threads(threads)
                median, fastest = time_forward(
                    preset, head, args.in_channels, 1 if heavy else args.repeats, 0 if heavy else args.warmup
                )
                timing = f"{median * 1e3:.0f} ({fastest * 1e3:.0f})"
                rows.append(
                    f"| {preset} | {head} | {size}x{size} | {params:.1f} | {2 * macs:.1f} | {macs:.1f} | {threads} "
                    f"| {timing} | {note} |"
                )
                print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(f"\ntorch {torch.__version__}, {os.cpu_count()} CPU core(s), in_channels={args.in_channels}\n")
    print(table)
    return table


if __name__ == "__main__":
    main()
