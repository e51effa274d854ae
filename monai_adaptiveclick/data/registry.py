# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Name -> dataset loader registry (ARCHITECTURE "Dataset registry" contract, SPEC section 6).

Configs and the CLI name datasets by short strings; :func:`get_dataset` returns a sequence of dataset items (one
object instance per item). Defaults follow SPEC section 6 (e.g. ``brats``: FLAIR, whole tumour, largest slice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import medical, natural, synthetic, volume_datasets
from .items import BadInputError

__all__ = ["get_dataset", "list_datasets", "register_dataset"]


def _load_sample(root: str | Path | None = None, **options: Any) -> Sequence[dict]:
    from .sample import load_sample  # imported lazily: written by the sample-pack module

    return load_sample(root=root, **options)


def _needs_root(loader: Callable[..., Sequence[dict]], name: str) -> Callable[..., Sequence[dict]]:
    def load(root: str | Path | None = None, **options: Any) -> Sequence[dict]:
        if root is None:
            raise BadInputError(f"dataset {name!r} needs root=<folder of the dataset>")
        return loader(root, **options)

    load.__doc__ = loader.__doc__
    return load


_REGISTRY: dict[str, Callable[..., Sequence[dict]]] = {
    "sample": _load_sample,
    "synthetic": synthetic.load_synthetic,
    "brats_png": _needs_root(medical.load_brats_png, "brats_png"),
    "oaizib_png": _needs_root(medical.load_oaizib_png, "oaizib_png"),
    "sstem_png": _needs_root(medical.load_sstem_png, "sstem_png"),
    "brats": _needs_root(volume_datasets.load_brats, "brats"),
    "oaizib": _needs_root(volume_datasets.load_oaizib, "oaizib"),
    "sstem": _needs_root(volume_datasets.load_sstem_stack, "sstem"),
    "volume": volume_datasets.load_volume_pairs,
    "dicom": _needs_root(volume_datasets.load_dicom, "dicom"),
    "sbd": _needs_root(natural.load_sbd, "sbd"),
    "cocolvis": _needs_root(natural.load_cocolvis, "cocolvis"),
    "grabcut": _needs_root(natural.load_grabcut, "grabcut"),
    "berkeley": _needs_root(natural.load_berkeley, "berkeley"),
    "davis": _needs_root(natural.load_davis, "davis"),
    "pascalvoc": _needs_root(natural.load_pascalvoc, "pascalvoc"),
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`get_dataset`, in registration order."""
    return list(_REGISTRY)


def register_dataset(name: str, loader: Callable[..., Sequence[dict]], overwrite: bool = False) -> None:
    """Register ``loader(root=None, **options) -> Sequence[dict]`` under ``name``.

    Raises:
        ValueError: empty name, a non-callable loader, or an existing name without ``overwrite=True``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("dataset name must be a non-empty string")
    if not callable(loader):
        raise ValueError(f"loader for {name!r} is not callable")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"dataset {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = loader


def get_dataset(name: str, root: str | Path | None = None, **options: Any) -> Sequence[dict]:
    """Return the dataset ``name`` (a sequence of dataset items, one object instance each).

    Args:
        name: one of :func:`list_datasets` (``sample``, ``synthetic``, ``brats_png``, ``oaizib_png``, ``sstem_png``,
            ``brats``, ``oaizib``, ``sstem``, ``volume``, ``dicom``, ``sbd``, ``cocolvis``, ``grabcut``, ``berkeley``,
            ``davis``, ``pascalvoc``).
        root: the dataset folder (``sample``: ``None`` = the embedded pack; ``volume``: optional base folder).
        **options: loader options (``split``, ``min_area``, ``skip_bad``, ``slices``, ``sequences``,
            ``transform`` ...; see each loader).

    Raises:
        ValueError: unknown name (the message lists the known ones).
        BadInputError: (a ``ValueError``) missing folder or bad input.

    Example:
        >>> items = get_dataset("sample", split="heldout", modality="mri", max_size=64)
        >>> items[0]["image"].dtype.name, items[0]["label"].shape[0], max(items[0]["image"].shape[1:]) <= 64
        ('float32', 1, True)

        A BraTS 2021 folder, every slice of the whole tumour of at least 100 pixels:
        ``get_dataset("brats", "/data/BraTS2021", slices="all", min_area=100)``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(_REGISTRY)}")
    return _REGISTRY[name](root=root, **options)
