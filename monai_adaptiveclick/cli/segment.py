# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``python -m monai_adaptiveclick segment IMAGE --click i,j,k --output LABEL.nii.gz``: one structure of a volume
from clicks on one or several slices, propagated through the volume (``inference.segment_volume``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import UsageError, checkpoint_predictor, method_predictor, show_progress

__all__ = ["add_segment_parser", "parse_voxel"]


def parse_voxel(text: str) -> tuple[int, int, int]:
    """``"i,j,k"`` -> ``(i, j, k)``; ``argparse.ArgumentTypeError`` for anything else.

    Example:
        >>> parse_voxel("12,30,4")
        (12, 30, 4)
    """
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"a voxel is i,j,k (three integers), got {text!r}.") from err
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"a voxel is i,j,k (three integers), got {text!r}.")
    return values


def add_segment_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``segment`` subcommand."""
    parser = subparsers.add_parser(
        "segment",
        help="Segment one structure of a volume from clicks, propagated slice to slice; writes a 3-D label.",
        description=(
            "Clicks are voxel indices i,j,k of the array MONAI LoadImage returns (slice k). The clicked slices are "
            "segmented with their clicks, the others from their neighbour's mask until the structure ends. The label "
            "is written with the image's affine; a JSON file beside it holds the per-slice confidence and the slices "
            "most worth reviewing first."
        ),
    )
    parser.add_argument("image", type=Path, help="the volume (NIfTI / NRRD / MetaImage / DICOM folder)")
    parser.add_argument("--click", type=parse_voxel, action="append", default=[], help="foreground voxel i,j,k")
    parser.add_argument("--background", type=parse_voxel, action="append", default=[], help="background voxel i,j,k")
    parser.add_argument("--output", type=Path, required=True, help="label file (.nii.gz)")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="model file or pretrained:NAME (default: --method)"
    )
    parser.add_argument(
        "--method",
        default="watershed",
        help="classical baseline (watershed, random_walker) or shipped model (starter) when no --checkpoint is given",
    )
    parser.add_argument("--device", default="cpu", help="torch device for a checkpoint or shipped model")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_segment)
    return parser


def _predictor(args: argparse.Namespace) -> Any:
    if args.checkpoint is None:
        return method_predictor(args.method, args.device)
    return checkpoint_predictor(args.checkpoint, args.device)


def _run_segment(args: argparse.Namespace) -> int:
    """Handler of ``segment``; returns the exit status."""
    import nibabel as nib
    import numpy as np

    from monai_adaptiveclick.data import load_image_volume
    from monai_adaptiveclick.inference import segment_volume

    if not args.click:
        raise UsageError("give at least one --click i,j,k on the structure.")
    if not args.image.exists():
        raise UsageError(f"image {str(args.image)!r} does not exist.")
    if not str(args.output).endswith((".nii.gz", ".nii")):
        raise UsageError(f"--output must be a .nii.gz or .nii file, got {str(args.output)!r}.")
    predictor = _predictor(args)
    try:
        volume = load_image_volume(args.image)
        clicks = [(*v, True) for v in args.click] + [(*v, False) for v in args.background]
        result = segment_volume(predictor, volume.data, clicks, progress=show_progress(args.quiet))
    except ValueError as err:
        raise UsageError(f"cannot segment {str(args.image)!r}: {err}") from err
    label = result.label.reshape(volume.spatial_shape)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(label.astype(np.uint8), np.asarray(volume.affine)), str(args.output))
    slices = [int(k) for k in np.flatnonzero(result.label.any(axis=(0, 1)))]
    report = {
        "label": str(args.output),
        "slices": slices,
        "seeds": result.seeds,
        "review_first": result.review_order[:5],
        "slice_confidence": [round(float(c), 4) for c in result.slice_confidence],
        "seconds_per_slice": round(result.seconds_per_slice, 4),
    }
    sidecar = args.output.with_name(args.output.name.split(".nii")[0] + ".json")
    sidecar.write_text(json.dumps(report, indent=2))
    print(
        f"label written to {args.output}: {int(label.sum())} voxels on {len(slices)} slices "
        f"({report['seconds_per_slice']} s per slice); review first: {report['review_first']}"
    )
    return 0
