# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""A second volume data set for ``evaluate-volumes`` (issue 15): INIA19 macaque T1 with NeuroMaps labels.

Source: the Debian package ``mricron-data`` (``/usr/share/mricron/templates/inia19-t1-brain.nii.gz`` and
``inia19-NeuroMaps.nii.gz``, 168 x 206 x 128 at 0.5 mm). The label file has no names file, so structures are chosen
by a rule that looks only at the image and the labels, never at any method's result:

1. label values with at least ``--min-voxels`` (500) voxels;
2. for each, the boundary faces (pairs of 6-neighbour voxels, one inside the label, one outside, along each axis);
   its *edge contrast* is the mean absolute T1 difference across those faces (how visible its border is);
3. the ``--top`` (10) labels with the highest edge contrast, ties by label value.

The script checks that the two files share one grid (shape and affine), then writes an MSD-style folder
``OUT/imagesTr/inia19.nii.gz`` (the T1) and ``OUT/labelsTr/inia19.nii.gz`` (the selected labels relabelled 1..N in
order of decreasing edge contrast, everything else 0) plus ``OUT/selection.json`` (original value, voxels, edge
contrast of each). Run: ``python benchmarks/build_inia19_volumes.py --output DIR``, then
``python -m monai_adaptiveclick evaluate-volumes --dataset-dir DIR ...``. The data is not part of the repository.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

TEMPLATES = Path("/usr/share/mricron/templates")
NAME = "inia19"


def edge_contrast(image: np.ndarray, labels: np.ndarray, values: list[int]) -> dict[int, float]:
    """Mean absolute ``image`` step across the 6-neighbour boundary faces of each label value in ``values``.

    Args:
        image: float ``[H, W, D]`` intensities.
        labels: integer ``[H, W, D]`` label map of the same shape.
        values: the label values to score.

    Returns:
        ``{value: mean |image[a] - image[b]|}`` over faces ``(a, b)`` with exactly one of ``a, b`` in the label.
    """
    if image.shape != labels.shape:
        raise ValueError(f"image {image.shape} and labels {labels.shape} differ in shape.")
    sums = {v: 0.0 for v in values}
    counts = {v: 0 for v in values}
    wanted = np.asarray(values)
    for axis in range(3):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        la, lb = labels[tuple(a)], labels[tuple(b)]
        step = np.abs(image[tuple(a)] - image[tuple(b)])
        border = la != lb
        for side in (la, lb):
            hit = border & np.isin(side, wanted)
            for value, total, count in zip(*_group_sums(side[hit], step[hit]), strict=True):
                sums[int(value)] += float(total)
                counts[int(value)] += int(count)
    return {v: sums[v] / counts[v] if counts[v] else 0.0 for v in values}


def _group_sums(keys: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique ``keys`` with the sum of ``weights`` and the count per key."""
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=weights, minlength=len(unique)), np.bincount(inverse)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Build the folder (module docstring); returns the selection (one dict per kept label)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="folder to write imagesTr/ and labelsTr/ to")
    parser.add_argument("--templates", type=Path, default=TEMPLATES, help="mricron templates folder")
    parser.add_argument("--min-voxels", type=int, default=500, help="smallest label kept (500 voxels)")
    parser.add_argument("--top", type=int, default=10, help="labels kept, by decreasing edge contrast (10)")
    args = parser.parse_args(argv)
    if args.min_voxels < 1 or args.top < 1:
        raise ValueError(f"--min-voxels and --top must be positive, got {args.min_voxels}, {args.top}.")
    image_nii = nib.load(args.templates / "inia19-t1-brain.nii.gz")
    label_nii = nib.load(args.templates / "inia19-NeuroMaps.nii.gz")
    if image_nii.shape != label_nii.shape or not np.allclose(image_nii.affine, label_nii.affine):
        raise ValueError(f"image and labels are not on one grid: shapes {image_nii.shape} vs {label_nii.shape}.")
    image = np.asarray(image_nii.dataobj, dtype=np.float32)
    labels = np.asarray(label_nii.dataobj).astype(np.int32)
    values, counts = np.unique(labels, return_counts=True)
    large = [int(v) for v, c in zip(values, counts, strict=True) if v > 0 and c >= args.min_voxels]
    contrast = edge_contrast(image, labels, large)
    chosen = sorted(large, key=lambda v: (-contrast[v], v))[: args.top]
    out = np.zeros(labels.shape, np.uint8)
    for new, value in enumerate(chosen, start=1):
        out[labels == value] = new
    for sub in ("imagesTr", "labelsTr"):
        (args.output / sub).mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(image, image_nii.affine), args.output / "imagesTr" / f"{NAME}.nii.gz")
    nib.save(nib.Nifti1Image(out, image_nii.affine), args.output / "labelsTr" / f"{NAME}.nii.gz")
    voxels = dict(zip(values.tolist(), counts.tolist(), strict=True))
    selection = [
        {"label": new, "neuromaps_value": v, "voxels": int(voxels[v]), "edge_contrast": round(contrast[v], 3)}
        for new, v in enumerate(chosen, start=1)
    ]
    rule = {"min_voxels": args.min_voxels, "top": args.top, "candidates": len(large)}
    (args.output / "selection.json").write_text(json.dumps({"rule": rule, "selection": selection}, indent=2) + "\n")
    for row in selection:
        print(row)
    return selection


if __name__ == "__main__":
    main()
