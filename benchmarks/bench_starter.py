# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The shipped starter model against the classical baselines on held-out objects, overall and per source.

Every method answers the NoC protocol (SPEC section 5: clicker on the larger error region, up to ``--max-clicks``
clicks, zoom-in and flip TTA on, as the issue-14 bar asks) on the same held-out objects of the embedded sample, in one
run. Control rows show what the model's ``focus`` (the protocol's zoom-in scaled to its input size,
``protocol.FOCUS_MAGNIFICATION``) is worth and that it is not all the baselines lack: the model with ``focus=None``,
and each baseline inside a zoom-in whose minimum crop is as small as the model's focus region
(``--baseline-min-crop``, default ``ceil(image_size / FOCUS_MAGNIFICATION)`` of the model). The table is split by
source so that where a method loses is visible: brain structures (Colin27 + AAL), tissue (MNI152 grey / white
matter / CSF), lesion (pyradiomics brain1), nuclei (DSB 2018) and photo (PASCAL VOC).

Usage:
    python benchmarks/bench_starter.py --threads 2 --output benchmarks/results/starter
    python benchmarks/bench_starter.py --checkpoint runs/starter/model.pt   # a model file instead of the shipped one
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import torch

from monai_adaptiveclick.data.sample import load_sample
from monai_adaptiveclick.engines import (
    FlipTTA,
    NoCResult,
    ZoomIn,
    evaluate_noc,
    format_table,
    get_baseline,
    plot_miou_curves,
)
from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.protocol import FOCUS_MAGNIFICATION

__all__ = ["SOURCES", "main", "split_by_source"]

SOURCES = {
    "colin27": "brain structures",
    "mni152_2009a": "tissue",
    "pyradiomics_brain1": "lesion",
    "nuclei_dsb2018": "nuclei",
    "voc2012": "photo",
}


def split_by_source(result: NoCResult, sources: dict[str, str]) -> dict[str, NoCResult]:
    """The result restricted to the objects of each source (``sources``: object id -> source name); the wall time
    of each part is the sum of its objects' times, so its seconds per click are its own."""
    groups: dict[str, NoCResult] = {}
    for name in dict.fromkeys(sources.values()):
        records = [r for r in result.records if sources.get(r.object_id) == name]
        if records:
            groups[name] = dataclasses.replace(result, records=records, total_seconds=sum(r.seconds for r in records))
    return groups


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model file to evaluate instead of the shipped starter")
    parser.add_argument("--split", default="heldout", help="sample pack split")
    parser.add_argument("--max-clicks", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baselines", nargs="*", default=["random_walker", "watershed"])
    parser.add_argument(
        "--baseline-min-crop", type=int, default=None, help="min zoom crop of the control baseline rows (0: none)"
    )
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/starter"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    items = load_sample(split=args.split)
    sources = {item["object_id"]: SOURCES.get(item["meta"]["dataset"], item["meta"]["dataset"]) for item in items}
    if args.checkpoint:
        model = Predictor.from_checkpoint(args.checkpoint)
        name = f"model {Path(args.checkpoint).name}"
    else:
        model, name = Predictor.from_pretrained("starter"), "starter (shipped)"
    protocol = {name: model, f"{name}, focus off": model.with_options(focus=None)}
    protocol.update({baseline: get_baseline(baseline) for baseline in args.baselines})
    results = [
        evaluate_noc(p, items, max_clicks=args.max_clicks, zoom_in=True, flip=True, method=m, progress=False)
        for m, p in protocol.items()
    ]
    min_crop = args.baseline_min_crop
    if min_crop is None:
        min_crop = math.ceil(model.model.image_size / FOCUS_MAGNIFICATION)
    for baseline in args.baselines if min_crop else []:
        zoomed = ZoomIn(FlipTTA(get_baseline(baseline)), min_crop_size=min_crop)
        method = f"{baseline}, zoom crop >= {min_crop} px"
        results.append(
            evaluate_noc(
                zoomed, items, max_clicks=args.max_clicks, zoom_in=False, flip=False, method=method, progress=False
            )
        )
    args.output.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Starter vs classical baselines ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {_commit()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads)",
        "",
        f"Sample `{args.split}` split, {len(items)} objects, up to {args.max_clicks} clicks, zoom-in (>= 200 px) and "
        f"flip on; the control rows: the model without focus, the baselines with a zoom crop >= {min_crop} px.",
        "",
        "## All objects",
        "",
        format_table(results),
    ]
    per_source = {r.method: split_by_source(r, sources) for r in results}
    for name in dict.fromkeys(sources.values()):
        group = [per_source[r.method][name] for r in results if name in per_source[r.method]]
        lines += ["", f"## {name} ({group[0].num_objects} objects)", "", format_table(group)]
    text = "\n".join(lines) + "\n"
    (args.output / "table.md").write_text(text)
    plot_miou_curves(results, args.output / "miou_vs_clicks.png", title=f"Sample {args.split} objects")
    summary = {r.method: r.summary() for r in results}
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
