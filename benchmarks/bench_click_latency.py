# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Seconds per click (SPC) of every model preset and every baseline, side by side in one run, on real sample images.

Each method answers the same clicks of the NoC protocol (SPEC section 5, :func:`monai_adaptiveclick.engines.
evaluate_noc`) on the same held-out objects of the embedded sample pack, through the same predictor interface the
MONAI Label app and the CLI use: pre-processing (intensity normalisation, resize), the forward pass and
post-processing (resize back) are inside the timing, the clicker and the IoU are not. Learned models are timed
with random weights (time does not depend on the weights); a method stops early on an object once it reaches
IoU 0.90, so SPC is the mean over the clicks each method actually answered. Every method is timed without TTA and
with the paper's zoom-in + flip TTA (flip doubles the forward passes).

Methods: ``{name} (shipped)`` (a model shipped in the package, e.g. the ``starter``, trained weights),
``{preset}`` (AdaptiveClick, CAMD head), ``{preset}/mask_fixed`` (SimpleClick-style head),
``deepgrow@{size}`` (DeepGrow-2D-style MONAI ``BasicUNet`` on [image, pos, neg] at the given size),
``random_walker`` and ``watershed`` (classical, ``engines.baselines``).

Usage:
    python benchmarks/bench_click_latency.py --threads 2 --presets small_cpu vit_b_448 --objects 6 --max-clicks 5
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import torch

from monai_adaptiveclick.data.sample import load_sample
from monai_adaptiveclick.engines import evaluate_noc, get_baseline
from monai_adaptiveclick.inference import Predictor

__all__ = ["build_methods", "time_methods", "main"]

TTA_SETTINGS = {"none": (False, False), "zoom-in + flip": (True, True)}


def build_methods(
    presets: Sequence[str], deepgrow_sizes: Sequence[int], device: str, pretrained: Sequence[str] = ()
) -> dict[str, Callable[[], Any]]:
    """Factories (built lazily, one model in memory at a time) of every timed method, by display name."""
    methods: dict[str, Callable[[], Any]] = {}
    for name in pretrained:
        methods[f"{name} (shipped)"] = lambda n=name: Predictor.from_pretrained(n, device=device)
    for preset in presets:
        methods[preset] = lambda p=preset: Predictor.from_preset(p, device=device)
        methods[f"{preset}/mask_fixed"] = lambda p=preset: Predictor.from_preset(p, device=device, head="mask_fixed")
    for size in deepgrow_sizes:
        methods[f"deepgrow@{size}"] = lambda s=size: _deepgrow(s, device)
    methods["random_walker"] = lambda: get_baseline("random_walker")
    methods["watershed"] = lambda: get_baseline("watershed")
    return methods


def _deepgrow(size: int, device: str) -> Predictor:
    from monai_adaptiveclick.networks import DeepGrow2D

    torch.manual_seed(0)
    return Predictor(DeepGrow2D(in_channels=3, image_size=size), device=device)


def time_methods(
    methods: dict[str, Callable[[], Any]], items: Sequence[dict], max_clicks: int
) -> list[tuple[str, str, float, int]]:
    """``(method, tta, SPC seconds, clicks answered)`` per method and TTA setting; one warm-up object first."""
    rows = []
    for name, factory in methods.items():
        predictor = factory()
        for tta, (zoom_in, flip) in TTA_SETTINGS.items():
            evaluate_noc(predictor, items[:1], max_clicks=1, zoom_in=zoom_in, flip=flip, progress=False)  # warm-up
            result = evaluate_noc(
                predictor, items, max_clicks=max_clicks, zoom_in=zoom_in, flip=flip, progress=False, method=name
            )
            clicks = sum(len(record.ious) for record in result.records)
            rows.append((name, tta, result.spc, clicks))
            print(f"| {name} | {tta} | {result.spc * 1e3:.0f} | {clicks} |", flush=True)
        del predictor
    return rows


def main(argv: list[str] | None = None) -> str:
    """Print (and return) the markdown table, with the ratio of each SPC to the fastest AdaptiveClick preset."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pretrained", nargs="*", default=["starter"], help="shipped models (Predictor.from_pretrained)"
    )
    parser.add_argument("--presets", nargs="+", default=["small_cpu", "vit_b_448"], help="AdaptiveClick presets")
    parser.add_argument("--deepgrow-sizes", nargs="+", type=int, default=[256], help="DeepGrow-2D input sizes")
    parser.add_argument("--objects", type=int, default=6, help="held-out sample objects (evenly spaced)")
    parser.add_argument("--max-clicks", type=int, default=5, help="clicks per object at most")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="torch device of the learned models")
    args = parser.parse_args(argv)
    if args.objects < 1 or args.max_clicks < 1 or args.threads < 1:
        raise ValueError("--objects, --max-clicks and --threads must be >= 1.")
    torch.set_num_threads(args.threads)
    heldout = load_sample("heldout")
    step = max(1, len(heldout) // args.objects)
    items = heldout[::step][: args.objects]
    start = time.perf_counter()
    print("| method | TTA | ms per click (SPC) | clicks timed |\n|---|---|---:|---:|", flush=True)
    methods = build_methods(args.presets, args.deepgrow_sizes, args.device, args.pretrained)
    rows = time_methods(methods, items, args.max_clicks)
    reference = {tta: spc for name, tta, spc, _ in rows if name == args.presets[0]}
    lines = [
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPU core(s), "
        f"{args.threads} torch thread(s), device {args.device}, torch {torch.__version__}; {len(items)} held-out "
        f"sample objects (sizes {sorted({tuple(item['image'].shape[-2:]) for item in items})}), up to "
        f"{args.max_clicks} clicks; {time.perf_counter() - start:.0f} s in all",
        "",
        f"| method | TTA | ms per click (SPC) | x {args.presets[0]} | clicks timed |",
        "|---|---|---:|---:|---:|",
    ]
    for name, tta, spc, clicks in rows:
        lines.append(f"| {name} | {tta} | {spc * 1e3:.0f} | {spc / reference[tta]:.2f} | {clicks} |")
    table = "\n".join(lines)
    print("\n" + table)
    return table


if __name__ == "__main__":
    main()
