# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The authors' ViT-B 448 models at full size against this project's loader (issue 13, SPEC section 10).

The unit tests compare small configurations; this script runs the same comparison once at the released size. It
reads a folder written by ``scripts/make_reference_fixtures.py --preset full`` (the authors' code builds ViT-B 448
AdaptiveClick and SimpleClick v1.0 models with seeded random weights, saves them in their trainer's format and
stores their outputs; 880 MB, not kept in the repository), loads both checkpoints with ``networks.load_model`` and
prints the largest differences of the class logits, per-query mask logits and final probability, and the number of
mask pixels that differ.

Usage:
    python benchmarks/check_reference_full.py --fixtures /path/to/full_fixtures
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from monai_adaptiveclick.networks import load_model
from monai_adaptiveclick.protocol import PROB_THRESHOLD

__all__ = ["compare", "main"]

SIZE = 448


def _bits(packed: np.ndarray) -> np.ndarray:
    return np.unpackbits(packed, axis=-1)[..., :SIZE].astype(bool)


def compare(fixtures: Path, family: str) -> dict:
    """Max errors of this project's model loaded from the authors' ``family`` checkpoint against their outputs."""
    names = {"adaptiveclick": "adaptiveclick_vitb448", "simpleclick": "simpleclick_vitb448"}
    reference = np.load(fixtures / f"{names[family]}_outputs.npz")
    inputs = np.load(fixtures / "reference_inputs.npz")
    disks = _bits(reference["click_maps_bits"]).astype(np.float32)
    x = torch.from_numpy(np.concatenate([inputs["image"], inputs["prev_mask"], disks], 1)).float()
    start = time.perf_counter()
    model = load_model(fixtures / f"{names[family]}.pth")
    loaded = time.perf_counter() - start
    parameters = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    with torch.no_grad():
        outputs = model(x)
        prob = model.final_probability(outputs, (SIZE, SIZE)).numpy()
    forward = time.perf_counter() - start
    row = {
        "family": family,
        "parameters_M": round(parameters / 1e6, 3),
        "load_s": round(loaded, 1),
        "forward_s": round(forward, 2),
        "prob_max_abs": float(np.abs(prob[..., ::3, ::3] - reference["prob_grid3"]).max()),
        "mask049_pixels_differing": int(((prob > PROB_THRESHOLD) != _bits(reference["mask049_bits"])).sum()),
        "mask050_pixels_differing": int(((prob > 0.5) != _bits(reference["mask050_bits"])).sum()),
    }
    if family == "adaptiveclick":  # the project keeps the object class at index 0: the loader swapped the rows
        row["class_logits_max_abs"] = float(
            np.abs(outputs["pred_logits"].numpy()[..., ::-1] - reference["pred_logits"]).max()
        )
        row["mask_logits_max_abs"] = float(
            np.abs(outputs["pred_masks"].numpy()[..., ::3, ::3] - reference["pred_masks_grid3"]).max()
        )
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    """Compare both families and print one table row each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--fixtures", type=Path, required=True, help="folder of make_reference_fixtures.py --preset full"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [compare(args.fixtures, family) for family in ("adaptiveclick", "simpleclick")]
    keys = sorted({key for row in rows for key in row} - {"family"})
    print("| family | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for row in rows:
        print(f"| {row['family']} | " + " | ".join(str(row.get(key, "-")) for key in keys) + " |")
    return rows


if __name__ == "__main__":
    main()
