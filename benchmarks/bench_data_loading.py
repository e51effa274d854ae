# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Data-loading throughput for BraTS-sized volumes (issue 5): slices per second of the ``brats`` loader.

Writes synthetic BraTS 2021 case folders (240 x 240 x 155, four int16 sequences + a uint8 seg with labels 1/2/4,
gzip NIfTI as the real ones) to a temporary folder, then times:

* indexing (reading each seg, checking the four image headers),
* ``slices="largest"`` items (one per case: every item decompresses its case's volumes; the cold-cache case),
* ``slices="all"`` items read in order (volumes cached across the slices of a case),
* the same plus the training augmentation (448 x 448 crop, MRI intensity transforms),

for 1 and 4 sequences, and prints a table. Run: ``python benchmarks/bench_data_loading.py [--cases 3]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from monai_adaptiveclick.data import get_dataset
from monai_adaptiveclick.transforms import training_augmentation

SHAPE = (240, 240, 155)
SEQUENCES = ("flair", "t1", "t1ce", "t2")


def write_cases(root: Path, n_cases: int, seed: int = 0) -> None:
    """Write ``n_cases`` synthetic BraTS 2021 case folders under ``root``."""
    rng = np.random.default_rng(seed)
    ii, jj, kk = np.meshgrid(*(np.arange(s, dtype=np.float32) for s in SHAPE), indexing="ij")
    brain = ((ii - 120) / 90) ** 2 + ((jj - 120) / 105) ** 2 + ((kk - 77) / 70) ** 2 <= 1.0
    for c in range(n_cases):
        case = f"BraTS2021_{c:05d}"
        folder = root / case
        folder.mkdir(parents=True)
        centre = rng.uniform([90, 90, 60], [150, 150, 95])
        r = ((ii - centre[0]) / 30) ** 2 + ((jj - centre[1]) / 25) ** 2 + ((kk - centre[2]) / 20) ** 2
        seg = np.zeros(SHAPE, np.uint8)
        seg[r <= 1.0] = 2
        seg[r <= 0.4] = 4
        seg[r <= 0.15] = 1
        for s, seq in enumerate(SEQUENCES):
            vol = np.where(brain, rng.normal(400 + 100 * s, 60, SHAPE), 0) + 300 * (seg > 0)
            nib.save(nib.Nifti1Image(vol.astype(np.int16), np.eye(4)), folder / f"{case}_{seq}.nii.gz")
        nib.save(nib.Nifti1Image(seg, np.eye(4)), folder / f"{case}_seg.nii.gz")


def _time_items(ds, transform=None) -> tuple[int, float]:
    start = time.perf_counter()
    for i in range(len(ds)):
        item = ds[i]
        if transform is not None:
            transform(item)
    return len(ds), time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3, help="number of synthetic cases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_cases(root, args.cases)
        print(f"wrote {args.cases} cases of {SHAPE} x (4 sequences + seg) in {time.perf_counter() - t0:.1f} s")
        rows = []
        aug = training_augmentation(448).set_random_state(0)
        for seqs in (("flair",), SEQUENCES):
            t0 = time.perf_counter()
            get_dataset("brats", root, sequences=seqs)
            rows.append((len(seqs), "index (per case)", args.cases, time.perf_counter() - t0))
            ds = get_dataset("brats", root, sequences=seqs, slices="largest")
            rows.append((len(seqs), "largest, cold volumes", *_time_items(ds)))
            ds = get_dataset("brats", root, sequences=seqs, slices="all", min_area=10)
            rows.append((len(seqs), "all slices, cached", *_time_items(ds)))
            ds = get_dataset("brats", root, sequences=seqs, slices="all", min_area=10)
            rows.append((len(seqs), "all slices + aug 448", *_time_items(ds, aug)))
        print("\n| sequences | mode | count | seconds | per second |\n|---|---|---|---|---|")
        for n_seq, mode, count, secs in rows:
            print(f"| {n_seq} | {mode} | {count} | {secs:.2f} | {count / secs:.1f} |")


if __name__ == "__main__":
    main()
