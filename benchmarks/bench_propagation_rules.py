# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Where slice-to-slice propagation loses, and which stop thresholds to use (issue 15, item 1).

For every structure (``evaluate-volumes``' objects: the sample's volumes or an MSD-style ``--dataset-dir``) the
volume evaluation's first click is made (``next_click`` on the slice of largest area) and the seed slice is
propagated in both directions *without* any stop rule, to ``--margin`` slices past the structure's extent, once per
automatic-click mode:

* ``interior``: one positive click at the previous mask's distance-transform maximum (``segment_volume``'s rule);
* ``none``: the previous probability map alone;
* ``spread3``: up to three positive clicks at successive distance maxima, each suppressing a disk of twice its
  distance (more of the previous mask's extent as clicks).

Per propagated slice it records the mask area, its Dice with the previous slice's mask, the mean intensity inside it
and its Dice with the truth. Since a stop rule only truncates this sequence, the 3-D Dice of any thresholds follows
from these records; the script grids ``min_area_ratio`` x ``min_overlap`` x ``max_contrast_change`` and prints the
mean 3-D Dice on the development structures (``--dev`` prefixes of the object ids) and, separately, on the others
(held out: never used to choose). It also prints, per structure, the best cut (the oracle: the Dice any stop rule
could reach), which rule stops it with the defaults, and the mean slice Dice over the first 3 slices of each side
(the drift). Run: ``python benchmarks/bench_propagation_rules.py --checkpoint MODEL.pt [--dataset-dir DIR]``.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from monai_adaptiveclick.engines.volume_evaluation import dice_score, volume_cases
from monai_adaptiveclick.inference import ClickSession, Predictor, segment_volume
from monai_adaptiveclick.protocol import is_foreground
from monai_adaptiveclick.transforms import Click, next_click

MODES = ("interior", "none", "spread3")
RATIOS = (0.2, 0.35, 0.5, 0.65)
OVERLAPS = (0.0, 0.3, 0.5, 0.7)
CONTRASTS = (None, 0.25, 0.35, 0.5, 0.75, 1.0)
DEFAULTS = (10, 0.2, 0.3, 0.5)  # segment_volume's min_area, min_area_ratio, min_overlap, max_contrast_change


def auto_clicks(mask: np.ndarray, mode: str) -> list[Click]:
    """The automatic positive clicks of ``mode`` (module docstring) for the previous slice's ``mask``."""
    if mode == "none" or not mask.any():
        return []
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    rows, cols = np.indices(mask.shape)
    clicks = []
    for _ in range(1 if mode == "interior" else 3):
        if distance.max() <= 0:
            break
        y, x = np.unravel_index(int(np.argmax(distance)), mask.shape)
        clicks.append(Click(int(y), int(x), True))
        distance[(rows - y) ** 2 + (cols - x) ** 2 <= (2 * distance[y, x]) ** 2] = 0
    return clicks


def trace(predictor, volume: np.ndarray, truth: np.ndarray, mode: str, margin: int) -> dict:
    """Unstopped propagation from the first click: per-slice records of each side (module docstring)."""
    k0 = int(np.argmax(truth.sum(axis=(0, 1))))
    y, x, positive = next_click(np.zeros(truth.shape[:2], bool), truth[..., k0], [])
    seed = ClickSession(predictor, volume[..., k0]).update([Click(int(y), int(x), bool(positive))])[0]
    seed_mask = is_foreground(seed.prob)
    plane = volume[..., k0].mean(axis=0)
    inside = float(plane[seed_mask].mean()) if seed_mask.any() else 0.0
    outside = float(plane[~seed_mask].mean())
    present = np.flatnonzero(truth.any(axis=(0, 1)))
    sides = {}
    for step in (-1, 1):
        rows, mask, prob, k = [], seed_mask, seed.prob, k0 + step
        while 0 <= k < truth.shape[2] and present.min() - margin <= k <= present.max() + margin and mask.any():
            prediction = predictor(volume[..., k], auto_clicks(mask, mode), prob)
            new = is_foreground(prediction.prob)
            plane = volume[..., k].mean(axis=0)
            rows.append(
                {
                    "k": k,
                    "area": int(new.sum()),
                    "previous_area": int(mask.sum()),
                    "overlap": dice_score(new, mask),
                    "inside": float(plane[new].mean()) if new.any() else 0.0,
                    "hit": int((new & truth[..., k]).sum()),
                }
            )
            mask, prob, k = new, prediction.prob, k + step
        sides[step] = rows
    hit0 = int((seed_mask & truth[..., k0]).sum())
    return {"k0": k0, "seed": (int(seed_mask.sum()), hit0), "look": (inside, abs(inside - outside)), "sides": sides}


def stops(row: dict, look: tuple[float, float], rule: tuple) -> str | None:
    """Which rule of ``segment_volume`` (thresholds ``rule``) stops at this slice record, ``None`` if none."""
    min_area, ratio, overlap, contrast = rule
    if contrast is not None and abs(row["inside"] - look[0]) > contrast * look[1]:
        return "appearance"
    area, previous = row["area"], row["previous_area"]
    if area < max(min_area, 1):
        return "area"
    if not ratio * previous <= area <= previous / ratio:
        return "ratio"
    return "overlap" if row["overlap"] < overlap else None


def dice_3d(record: dict, truth_voxels: int, cuts: dict[int, int]) -> float:
    """3-D Dice of the seed plus the first ``cuts[step]`` slices of each side."""
    area, hit = record["seed"]
    for step, n in cuts.items():
        area += sum(r["area"] for r in record["sides"][step][:n])
        hit += sum(r["hit"] for r in record["sides"][step][:n])
    return 2.0 * hit / (area + truth_voxels)


def cut_of(record: dict, rule: tuple) -> dict[int, int]:
    """Slices kept on each side before ``rule`` stops the propagation."""
    return {
        step: next((n for n, r in enumerate(rows) if stops(r, record["look"], rule)), len(rows))
        for step, rows in record["sides"].items()
    }


def main(argv: Sequence[str] | None = None) -> str:
    """Run the measurement and return the printed report (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="model for Predictor.from_checkpoint")
    parser.add_argument("--dataset-dir", type=Path, default=None, help="imagesTr/ + labelsTr/ (default: the sample)")
    parser.add_argument("--dev", nargs="+", default=["colin27", "mni152"], help="object-id prefixes to tune on")
    parser.add_argument("--margin", type=int, default=12, help="slices traced past the structure's extent")
    args = parser.parse_args(argv)
    if args.margin < 0:
        raise ValueError(f"--margin must be >= 0, got {args.margin}.")
    pairs = None
    if args.dataset_dir is not None:
        from monai_adaptiveclick.cli.evaluate_volumes import volume_pairs

        pairs = volume_pairs(args.dataset_dir)
    predictor = Predictor.from_checkpoint(args.checkpoint)
    records, lines = {}, []
    lines.append("| object | mode | seed Dice | defaults | oracle | stop (-/+ side, slices) | slice Dice 1-3 |")
    lines.append("|---|---|---:|---:|---:|---|---:|")
    for case in volume_cases(pairs):
        volume = np.asarray(case.volume, np.float32)
        volume = volume[None] if volume.ndim == 3 else volume
        truth, voxels = case.mask, int(case.mask.sum())
        for mode in MODES:
            record = records[case.object_id, mode] = trace(predictor, volume, truth, mode, args.margin)
            sides = record["sides"]
            lengths = {s: len(sides[s]) for s in sides}
            cut = cut_of(record, DEFAULTS)
            if mode == "interior" and all(cut[s] < lengths[s] for s in sides):  # stopped inside the traced range:
                label = segment_volume(predictor, volume, [(*_first_click(truth), True)]).label
                kept = int(label.any(axis=(0, 1)).sum()) - 1  # the offline rule stops where segment_volume does
                assert kept == sum(cut.values()), f"{case.object_id}: offline rule differs from segment_volume"
            oracle = max(
                dice_3d(record, voxels, {-1: a, 1: b})
                for a, b in itertools.product(range(lengths[-1] + 1), range(lengths[1] + 1))
            )
            why = [
                f"{stops(sides[s][cut[s]], record['look'], DEFAULTS)}@{cut[s]}" if cut[s] < lengths[s] else "end"
                for s in (-1, 1)
            ]
            near = [r["hit"] * 2 / (r["area"] + int(truth[..., r["k"]].sum())) for s in sides for r in sides[s][:3]]
            seed_area, seed_hit = record["seed"]
            seed_dice = 2 * seed_hit / (seed_area + int(truth[..., record["k0"]].sum()))
            lines.append(
                f"| {case.object_id} | {mode} | {seed_dice:.3f} | {dice_3d(record, voxels, cut):.3f} | {oracle:.3f} "
                f"| {' / '.join(why)} | {np.mean(near) if near else 0.0:.3f} |"
            )
        records[case.object_id, "voxels"] = voxels
    lines += ["", "| min_area_ratio | min_overlap | max_contrast_change | dev 3-D Dice | held-out 3-D Dice |"]
    lines.append("|---:|---:|---:|---:|---:|")
    ids = sorted({key[0] for key in records})
    dev = [i for i in ids if i.startswith(tuple(args.dev))]
    held = [i for i in ids if i not in dev]
    grid = []
    for ratio, overlap, contrast in itertools.product(RATIOS, OVERLAPS, CONTRASTS):
        rule = (DEFAULTS[0], ratio, overlap, contrast)
        scores = [
            float(
                np.mean(
                    [
                        dice_3d(records[i, "interior"], records[i, "voxels"], cut_of(records[i, "interior"], rule))
                        for i in group
                    ]
                )
            )
            if group
            else float("nan")
            for group in (dev, held)
        ]
        grid.append((scores[0], rule, scores[1]))
    for dev_score, rule, held_score in sorted(grid, key=lambda g: -g[0])[:10]:
        lines.append(f"| {rule[1]} | {rule[2]} | {rule[3]} | {dev_score:.3f} | {held_score:.3f} |")
    report = "\n".join(lines)
    print(report)
    return report


def _first_click(truth: np.ndarray) -> tuple[int, int, int]:
    """The evaluation's first click (``next_click`` on the slice of largest area) as ``(i, j, k)``."""
    k0 = int(np.argmax(truth.sum(axis=(0, 1))))
    y, x, _ = next_click(np.zeros(truth.shape[:2], bool), truth[..., k0], [])
    return int(y), int(x), k0


if __name__ == "__main__":
    main()
