# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Natural-image interactive segmentation datasets in their original layouts (SPEC section 6).

* SBD: ``img/{id}.jpg``, ``inst/{id}.mat`` (``GTinst.Segmentation``: 0 background, 1..N instances), split lists
  ``train.txt`` / ``val.txt``. Each instance is an object.
* COCO+LVIS in the RITM layout: ``{split}/images/{id}.jpg``, ``{split}/masks/{id}.pickle`` (a pickled
  ``(encoded_layers, objs_mapping)``: PNG-encoded uint8 layers and, per object, ``(layer, value)``) and
  ``{split}/hannotation.pickle`` (``{id: {"num_instance_masks": n, "hierarchy": ...}}``). The first ``n`` entries
  of ``objs_mapping`` are instances (the rest are "stuff" regions, not used); object ``i`` is
  ``layers[..., layer] == value``. Pickle files can run code when loaded: read only trusted copies.
* GrabCut and Berkeley: ``images/`` + ``masks/`` (GrabCut's original ``data_GT/`` + ``boundary_GT/`` is found too);
  one object per image, mask > 128 = object, mask == 128 = ignore.
* DAVIS (the interactive-segmentation version): ``img/*.jpg`` + ``gt/*.png``; one object: mask > 127.
* PascalVOC: ``JPEGImages/{id}.jpg``, ``SegmentationObject/{id}.png`` (palette indices: 1..N instances, 255 =
  ignore), ``ImageSets/Segmentation/{split}.txt``. Each instance is an object.

Images are RGB ``[3, H, W]`` scaled to [0, 1] (``intensity="auto"``: 8-bit / 255). Ignore regions go to
``item["ignore"]``.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .image_io import IMAGE_EXTENSIONS, image_size_2d, load_object_2d, pair_by_stem
from .items import BadInputError, BadInputLog, ObjectDataset, build_object_dataset, check_dir
from .medical import label_objects_2d, paired_2d_dataset

__all__ = [
    "load_berkeley",
    "load_cocolvis",
    "load_davis",
    "load_grabcut",
    "load_pascalvoc",
    "load_sbd",
    "read_cocolvis_layers",
    "read_sbd_instances",
]


def read_sbd_instances(path: str | Path) -> np.ndarray:
    """Read ``GTinst.Segmentation`` (instance ids, ``[H, W]``) from an SBD ``inst/*.mat`` file.

    Raises:
        BadInputError: missing / unreadable file or no ``GTinst.Segmentation`` field.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"file not found: {path}")
    try:
        seg = loadmat(str(path), squeeze_me=True, struct_as_record=False)["GTinst"].Segmentation
    except Exception as e:  # noqa: BLE001 - any parse failure means an unusable file
        raise BadInputError(f"unreadable SBD instance file {path} (expected GTinst.Segmentation): {e}") from e
    seg = np.asarray(seg)
    if seg.ndim != 2:
        raise BadInputError(f"{path}: GTinst.Segmentation must be 2-D, got shape {seg.shape}")
    return seg.astype(np.int32)


def _decode_png(buffer: object) -> np.ndarray:
    from PIL import Image

    data = buffer if isinstance(buffer, (bytes, bytearray)) else np.asarray(buffer, dtype=np.uint8).tobytes()
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def _load_cocolvis_pickle(path: Path) -> tuple[list, list]:
    if not path.is_file():
        raise BadInputError(f"file not found: {path}")
    try:
        with open(path, "rb") as f:
            encoded_layers, objs_mapping = pickle.load(f)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise BadInputError(f"unreadable COCO+LVIS mask file {path}: {e}") from e
    return list(encoded_layers), [tuple(int(v) for v in m) for m in objs_mapping]


def read_cocolvis_layers(path: str | Path) -> np.ndarray:
    """Decode a RITM COCO+LVIS ``masks/{id}.pickle`` file into its layers ``[H, W, L]`` (uint8).

    Raises:
        BadInputError: missing / unreadable file or layers of different sizes.
    """
    path = Path(path)
    layers, _ = _load_cocolvis_pickle(path)
    try:
        decoded = [_decode_png(x) for x in layers]
        return np.stack(decoded, axis=2)
    except Exception as e:  # noqa: BLE001
        raise BadInputError(f"{path}: cannot decode the PNG mask layers: {e}") from e


def _ids_pairs(
    ids: Sequence[str], image_dir: Path, image_ext: str, mask_dir: Path, mask_ext: str, log: BadInputLog
) -> list[tuple[str, Path, Path]]:
    pairs = []
    for i in ids:
        img, msk = image_dir / f"{i}{image_ext}", mask_dir / f"{i}{mask_ext}"
        if not img.is_file():
            log.report(BadInputError(f"listed image not found: {img}"))
        elif not msk.is_file():
            log.report(BadInputError(f"image without a mask: {img} (no {msk})"))
        else:
            pairs.append((i, img, msk))
    return pairs


def _read_id_list(path: Path) -> list[str]:
    if not path.is_file():
        raise BadInputError(f"split list not found: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _instances(label: np.ndarray, ignore_value: int | None = None) -> list[tuple[tuple, int, str]]:
    if ignore_value is not None:
        label = np.where(label == ignore_value, 0, label)
    return label_objects_2d(label, "values")


def _voc_instances(label: np.ndarray) -> list[tuple[tuple, int, str]]:
    return _instances(label, 255)


def _single_object(threshold: int) -> Callable[[np.ndarray], list[tuple[tuple, int, str]]]:
    def objects(label: np.ndarray) -> list[tuple[tuple, int, str]]:
        return [(("greater", threshold), int(np.count_nonzero(label > threshold)), "object")]

    return objects


def load_sbd(
    root: str | Path,
    split: str | None = "val",
    min_area: int = 0,
    skip_bad: bool = False,
    transform: Callable | None = None,
) -> ObjectDataset:
    """SBD: ``{root}/img/{id}.jpg`` + ``{root}/inst/{id}.mat``, ids from ``{root}/{split}.txt``.

    Args:
        root: the SBD ``dataset`` folder.
        split: ``"train"`` or ``"val"`` (reads ``{split}.txt``), or ``None`` for every ``inst/*.mat``.
        min_area, skip_bad, transform: as the other loaders.

    Raises:
        BadInputError: missing folders / split list, listed ids without files, unreadable ``.mat`` files.
    """
    root = check_dir(root, "SBD folder")
    log = BadInputLog(skip_bad)
    image_dir, inst_dir = check_dir(root / "img", "SBD image folder"), check_dir(root / "inst", "SBD inst folder")
    if split is None:
        ids = sorted(p.stem for p in inst_dir.glob("*.mat"))
    else:
        ids = _read_id_list(root / f"{split}.txt")
    pairs = _ids_pairs(ids, image_dir, ".jpg", inst_dir, ".mat", log)
    return paired_2d_dataset(
        "sbd", pairs, _instances, log, min_area=min_area, transform=transform, label_reader=read_sbd_instances
    )


def load_cocolvis(
    root: str | Path,
    split: str = "train",
    min_area: int = 0,
    skip_bad: bool = False,
    transform: Callable | None = None,
    anno_file: str = "hannotation.pickle",
) -> ObjectDataset:
    """COCO+LVIS in the RITM layout: ``{root}/{split}/{images,masks}`` + ``{root}/{split}/hannotation.pickle``.

    Every instance (the first ``num_instance_masks`` entries of the image's ``objs_mapping``) is an object; its mask
    is ``layers[..., layer] == value``. Indexing decodes each image's mask layers once (for areas and
    ``min_area``), which takes a while on the full 100k-image training split.

    Raises:
        BadInputError: missing folders or annotation file, images / masks missing, unreadable pickles.
    """
    base = check_dir(check_dir(root, "COCO+LVIS folder") / split, f"COCO+LVIS {split} folder")
    anno_path = base / anno_file
    if not anno_path.is_file():
        raise BadInputError(f"COCO+LVIS annotation file not found: {anno_path}")
    try:
        with open(anno_path, "rb") as f:
            annotations = pickle.load(f)
    except Exception as e:  # noqa: BLE001
        raise BadInputError(f"unreadable COCO+LVIS annotation file {anno_path}: {e}") from e
    log = BadInputLog(skip_bad)
    image_dir = check_dir(base / "images", "COCO+LVIS image folder")
    mask_dir = check_dir(base / "masks", "COCO+LVIS mask folder")
    ids = sorted(str(k) for k in annotations)
    n_instances = {str(k): int(v["num_instance_masks"]) for k, v in annotations.items()}
    cases = [
        {
            "key": key,
            "image_path": img,
            "label_path": msk,
            "dataset": "cocolvis",
            "intensity": "auto",
            "label_reader": read_cocolvis_layers,
        }
        for key, img, msk in _ids_pairs(ids, image_dir, ".jpg", mask_dir, ".pickle", log)
    ]

    def objects(case: dict) -> list[tuple[tuple, int, str]]:
        path = case["label_path"]
        _, mapping = _load_cocolvis_pickle(path)
        n = n_instances[case["key"]]
        if n > len(mapping):
            raise BadInputError(f"{path}: {n} instances announced but only {len(mapping)} in objs_mapping")
        layers = read_cocolvis_layers(path)
        size = image_size_2d(case["image_path"])
        if layers.shape[:2] != size:
            raise BadInputError(f"{path}: mask size {layers.shape[:2]} differs from image {case['image_path']} {size}")
        return [
            (("layer", layer, value), int(np.count_nonzero(layers[..., layer] == value)), f"instance{i}")
            for i, (layer, value) in enumerate(mapping[:n])
        ]

    return build_object_dataset(
        cases, objects, load_object_2d, name="cocolvis", min_area=min_area, transform=transform, log=log
    )


def _grabcut_like(
    name: str, root: str | Path, dirs: Sequence[tuple[str, str]], min_area: int, skip_bad: bool, transform
) -> ObjectDataset:
    root = check_dir(root, f"{name} folder")
    found = [(img, msk) for img, msk in dirs if (root / img).is_dir()]
    if not found:
        raise BadInputError(f"{name} image folder not found in {root} (looked for {[d[0] for d in dirs]})")
    image_dir, mask_dir = found[0]
    log = BadInputLog(skip_bad)
    pairs = pair_by_stem(root / image_dir, root / mask_dir, log, IMAGE_EXTENSIONS)
    return paired_2d_dataset(
        name, pairs, _single_object(128), log, min_area=min_area, transform=transform, ignore_values=(128,)
    )


def load_grabcut(
    root: str | Path, min_area: int = 0, skip_bad: bool = False, transform: Callable | None = None
) -> ObjectDataset:
    """GrabCut: ``images/`` + ``masks/`` (or the original ``data_GT/`` + ``boundary_GT/``); mask 128 = ignore."""
    return _grabcut_like(
        "grabcut", root, (("images", "masks"), ("data_GT", "boundary_GT")), min_area, skip_bad, transform
    )


def load_berkeley(
    root: str | Path, min_area: int = 0, skip_bad: bool = False, transform: Callable | None = None
) -> ObjectDataset:
    """Berkeley: ``images/`` + ``masks/``; mask > 128 = object, 128 = ignore."""
    return _grabcut_like("berkeley", root, (("images", "masks"),), min_area, skip_bad, transform)


def load_davis(
    root: str | Path, min_area: int = 0, skip_bad: bool = False, transform: Callable | None = None
) -> ObjectDataset:
    """DAVIS (interactive version): ``img/*.jpg`` + ``gt/*.png``; one object per image, mask > 127."""
    root = check_dir(root, "DAVIS folder")
    log = BadInputLog(skip_bad)
    pairs = pair_by_stem(root / "img", root / "gt", log)
    return paired_2d_dataset("davis", pairs, _single_object(127), log, min_area=min_area, transform=transform)


def load_pascalvoc(
    root: str | Path,
    split: str = "val",
    min_area: int = 0,
    skip_bad: bool = False,
    transform: Callable | None = None,
) -> ObjectDataset:
    """PascalVOC: ``JPEGImages`` + ``SegmentationObject`` palette PNGs + ``ImageSets/Segmentation/{split}.txt``.

    Each instance index 1..254 is an object; 255 (object borders / difficult) goes to ``item["ignore"]``.
    """
    root = check_dir(root, "PascalVOC folder")
    log = BadInputLog(skip_bad)
    ids = _read_id_list(root / "ImageSets" / "Segmentation" / f"{split}.txt")
    image_dir = check_dir(root / "JPEGImages", "PascalVOC image folder")
    mask_dir = check_dir(root / "SegmentationObject", "PascalVOC SegmentationObject folder")
    pairs = _ids_pairs(ids, image_dir, ".jpg", mask_dir, ".png", log)
    return paired_2d_dataset(
        "pascalvoc", pairs, _voc_instances, log, min_area=min_area, transform=transform, ignore_values=(255,)
    )
