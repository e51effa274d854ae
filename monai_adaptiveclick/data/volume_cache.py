# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The one cache of decoded image volumes, shared by the MONAI Label app and the slice-wise volume datasets.

Entries are :class:`~monai_adaptiveclick.data.image_volumes.Volume` objects from
:func:`~monai_adaptiveclick.data.image_volumes.load_image_volume`, keyed by the real path and the modification time
(and size) of every file involved (the opened file, its multi-sequence siblings, the files of a DICOM series
folder), with their per-channel intensity percentile ranges computed on demand.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .image_volumes import Volume, check_sequences, load_image_volume, volume_source_files
from .intensity import intensity_range

__all__ = ["VolumeCache"]


@dataclass
class _Entry:
    """One cached volume: the (mtime_ns, size) of each source file, the volume, its ranges per (lower, upper)."""

    stamps: tuple[tuple[int, int], ...]
    volume: Volume
    ranges: dict[tuple[float, float], tuple[tuple[float, float], ...]]


def _stamp(path: str) -> tuple[int, int]:
    """``(mtime in ns, size)`` of ``path``: what changes when the file is rewritten."""
    st = os.stat(path)
    return int(st.st_mtime_ns), int(st.st_size)


class VolumeCache:
    """Decoded volumes kept between uses, keyed by the real path and modification time of every file involved.

    One cache for the MONAI Label app (a volume decoded once per image, not per click) and the dataset slice
    loaders (one volume per case, sliced many times). A file that changes on disk (new mtime or size) is decoded
    again; beyond ``max_items`` the least recently used volume is dropped. Per-channel intensity percentile ranges
    (:func:`~monai_adaptiveclick.data.intensity.intensity_range`) are cached with their volume. Safe to share
    between threads: concurrent requests for one volume decode it once. Pickled copies (DataLoader workers) start
    empty.

    Args:
        max_items: the most volumes kept in memory.

    Raises:
        ValueError: ``max_items < 1``.

    Example:
        >>> import tempfile, pathlib, nibabel as nib, numpy as np
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "scan.nii.gz"
        >>> nib.save(nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.eye(4)), path)
        >>> cache = VolumeCache(max_items=2)
        >>> cache.get(path) is cache.get(str(path)), len(cache)
        (True, 1)
        >>> cache.intensity_ranges(path, lower=0.0, upper=100.0)
        ((0.0, 23.0),)
    """

    def __init__(self, max_items: int = 4) -> None:
        if isinstance(max_items, bool) or int(max_items) < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.max_items = int(max_items)
        self._init_state()

    def _init_state(self) -> None:
        self._items: OrderedDict[tuple, _Entry] = OrderedDict()
        self._loading: dict[tuple, threading.Lock] = {}
        self._lock = threading.RLock()

    def _lookup(self, source: tuple, stamps: tuple) -> _Entry | None:
        with self._lock:
            entry = self._items.get(source)
            if entry is None or entry.stamps != stamps:
                return None
            self._items.move_to_end(source)
            return entry

    def _entry(self, path: str | Path, sequences: Sequence[str] | None) -> _Entry:
        sequences = check_sequences(sequences)
        files = volume_source_files(path, sequences)
        source = (tuple(os.path.realpath(f) for f in files), sequences or ())
        stamps = tuple(_stamp(f) for f in files)
        entry = self._lookup(source, stamps)
        if entry is not None:
            return entry
        with self._lock:
            loading = self._loading.setdefault(source, threading.Lock())
        try:
            with loading:
                entry = self._lookup(source, stamps)
                if entry is None:
                    entry = _Entry(stamps, load_image_volume(path, sequences), {})
                    with self._lock:
                        self._items[source] = entry  # replaces a stale version of the same files
                        self._items.move_to_end(source)
                        while len(self._items) > self.max_items:
                            self._items.popitem(last=False)
        finally:
            with self._lock:
                self._loading.pop(source, None)
        return entry

    def get(self, path: str | Path, sequences: Sequence[str] | None = None) -> Volume:
        """The volume of ``path`` (see :func:`.load_image_volume`), decoded only when not cached or changed on disk.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: as :func:`.load_image_volume`.
        """
        return self._entry(path, sequences).volume

    def intensity_ranges(
        self, path: str | Path, sequences: Sequence[str] | None = None, lower: float = 0.5, upper: float = 99.5
    ) -> tuple[tuple[float, float], ...]:
        """The ``(lower, upper)`` percentiles of each channel of the volume of ``path``, computed once per volume.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: percentiles not in ``0 <= lower < upper <= 100``, non-finite voxels, or as :meth:`get`.
        """
        entry = self._entry(path, sequences)
        key = (float(lower), float(upper))
        with self._lock:
            ranges = entry.ranges.get(key)
        if ranges is None:
            ranges = tuple(intensity_range(channel, lower, upper) for channel in entry.volume.data)
            with self._lock:
                entry.ranges[key] = ranges
        return ranges

    def clear(self) -> None:
        """Drop every cached volume."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        """Number of cached volumes."""
        with self._lock:
            return len(self._items)

    def __getstate__(self) -> dict:
        return {"max_items": self.max_items}

    def __setstate__(self, state: dict) -> None:
        self.max_items = int(state["max_items"])
        self._init_state()
