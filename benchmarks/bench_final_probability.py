# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""How the CAMD query masks combine into the final probability: confidence-weighted mean against SPEC's clamped sum.

Evaluates one trained AdaptiveClick checkpoint twice with the NoC protocol (SPEC section 5) on the sample's held-out
split, once per ``AdaptiveClick.final_combination``, and prints one markdown table (same model, same objects, same
clicker, in one run).

Usage:
    python benchmarks/bench_final_probability.py --checkpoint outputs/demo/finetune/model.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from monai_adaptiveclick.data.sample import load_sample
from monai_adaptiveclick.engines import evaluate_noc, format_table
from monai_adaptiveclick.inference import Predictor
from monai_adaptiveclick.networks import FINAL_COMBINATIONS, load_model


def main() -> None:
    """Parse the arguments, evaluate every combination, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("outputs/demo/finetune/model.pt"))
    parser.add_argument("--max-clicks", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(f"error: checkpoint {args.checkpoint} not found (run `make demo` first).")
    torch.set_num_threads(args.threads)
    items = load_sample(split="heldout")
    results = []
    for combination in FINAL_COMBINATIONS:
        model = load_model(args.checkpoint)
        model.set_final_combination(combination)
        predictor = Predictor(model)
        results.append(
            evaluate_noc(
                predictor,
                items,
                max_clicks=args.max_clicks,
                zoom_in=False,
                flip=False,
                progress=False,
                method=combination,
            )
        )
    print(
        f"checkpoint {args.checkpoint}, sample held-out split ({len(items)} objects), {args.max_clicks} clicks, no TTA"
    )
    print(format_table(results))


if __name__ == "__main__":
    main()
