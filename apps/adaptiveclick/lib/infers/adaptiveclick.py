# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""AdaptiveClick as a 2-D interactive (deepgrow-type) MONAI Label model on 3-D volumes (issues 7, 16).

One request = one click update on one slice:

0. more than ``max_clicks`` clicks are refused before any work;
1. the image (a datastore path) is decoded once and cached by (path, mtime) (``monai_adaptiveclick.data.VolumeCache``),
   with multi-sequence MRI siblings stacked as channels in the model's order; a stored file that cannot be decoded
   or holds non-finite voxels is refused with HTTP 422 and its reason logged;
2. ``foreground`` / ``background`` voxels ``[i, j, k]`` are validated against the volume (a voxel sent with both
   signs is refused); the slice is ``slice`` when sent (3D Slicer) or the ``k`` of the latest click (OHIF); clicks on
   other slices are ignored;
3. the clicks go to the ``monai_adaptiveclick.inference.ClickSession`` kept for (image, client, label, slice): a
   strict extension refines the stored prediction (fed back as the previous-mask channel, paper section III-A), the
   same clicks return the stored result, anything else starts over. A request without ``client_id`` gets a fresh
   session that is not stored: it never sees, nor changes, another request's state;
4. ``monai_adaptiveclick.inference.Predictor`` (the one predictor of the project, with its own channel matching and
   intensity normalisation) segments slice ``volume[:, :, k]``; ``Prediction.mask`` (``prob > threshold``, SPEC
   section 5) is written as label 1 on slice ``k`` of a zero volume with the image's shape and affine, as 3D Slicer
   replaces slice ``k`` of the segment with it (SPEC section 8);
5. the JSON result carries the ranked candidate masks of the CAMD queries (paper Fig. 1) as score, area, bbox and a
   COCO-style RLE on the slice, plus what was done (slice, mode, clicks) and the latencies.

With ``"propagate": true`` (issue 15), or always for the ``adaptiveclick_3d`` model, steps 2-5 are replaced by one
3-D segmentation (``lib/infers/propagation.py``): all clicks on all slices go to
``monai_adaptiveclick.inference.segment_volume``, the label volume holds the structure on every propagated slice,
and the JSON carries ``slice_confidence``, ``slices``, ``seeds``, ``review_first`` and a ``per_slice`` latency.

Bad requests raise :class:`lib.common.RequestError`; the app turns them into HTTP errors naming the problem.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import weakref
from typing import Any

import numpy as np
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from monai_adaptiveclick.data import BadInputError, Volume, VolumeCache
from monai_adaptiveclick.data.validation import check_finite, check_image_file
from monai_adaptiveclick.inference import ClickSession
from monai_adaptiveclick.protocol import is_foreground
from monai_adaptiveclick.transforms import Click

from ..common import LRUCache, RequestError
from ..configs import AppSettings
from ..interaction import (
    check_bounds,
    check_click_count,
    check_contradictions,
    client_key,
    encode_rle,
    mask_bbox,
    parse_points,
    select_slice,
)
from ..models import ModelManager
from ..writer import SliceLabelWriter
from .propagation import parse_propagate, propagate

__all__ = ["AdaptiveClickInfer"]

logger = logging.getLogger(__name__)


class AdaptiveClickInfer(InferTask):
    """MONAI Label infer task serving AdaptiveClick click by click on slices of 3-D volumes.

    Args:
        settings: parsed app settings (:func:`lib.configs.parse_settings`).
        models: the model manager (shared with the train task's app instance); built from ``settings`` if ``None``.
        description: shown by clients.
        always_propagate: every request is a 3-D propagation (the ``adaptiveclick_3d`` model, dimension 3).
        volumes: a volume cache to share with another infer task (a new one when ``None``).

    Request keys: ``image`` (path, filled in by the app from the image id), ``foreground``, ``background``,
    optional ``slice``, ``label`` (segment name), ``client_id``, ``num_candidates`` (overrides the setting) and
    ``propagate`` (boolean, default false): segment the structure through the volume from all the clicks, on any
    slices, and answer the 3-D label with ``slice_confidence``, ``slices``, ``seeds``, ``review_first`` (slices most
    worth reviewing) and ``latencies.per_slice``; a request whose clicked slices all come back empty is refused with
    HTTP 422. ``slice``, ``client_id`` and ``num_candidates`` are ignored by a propagation.
    """

    def __init__(
        self,
        settings: AppSettings,
        models: ModelManager | None = None,
        description: str = "AdaptiveClick: click-aware transformer, 2-D interactive segmentation slice by slice",
        always_propagate: bool = False,
        volumes: VolumeCache | None = None,
    ) -> None:
        super().__init__(
            type=InferType.DEEPGROW,
            labels=list(settings.labels),
            dimension=3 if always_propagate else 2,
            description=description,
            config={"num_candidates": settings.num_candidates, "propagate": always_propagate},
        )
        self.settings = settings
        self.always_propagate = always_propagate
        self.models = models if models is not None else ModelManager(settings)
        self.volumes = volumes if volumes is not None else VolumeCache(settings.max_volumes)
        self.sessions: LRUCache[ClickSession] = LRUCache(settings.max_sessions)
        self.seen: LRUCache[frozenset] = LRUCache(settings.max_sessions)
        self._lock = threading.Lock()
        self._problems: weakref.WeakKeyDictionary[Volume, str] = weakref.WeakKeyDictionary()
        self._output_dir: str | None = None
        self.writer = SliceLabelWriter()

    def is_valid(self) -> bool:
        """Always servable: without a checkpoint file the shipped starter (or, asked for, an untrained) model is
        served."""
        return True

    def get_path(self, validate: bool = True) -> str | None:
        """The checkpoint file served now (``None`` when serving the shipped or the untrained model)."""
        return self.models.current_file()

    def __call__(self, request: dict) -> tuple[str, dict]:
        """Serve one click update; returns ``(label file, result JSON)`` (see the module docstring)."""
        start = time.perf_counter()
        check_click_count(request, self.settings.max_clicks)
        three_d = parse_propagate(request.get("propagate")) or self.always_propagate
        image_path = request.get("image")
        if not isinstance(image_path, str) or not image_path or not os.path.isfile(image_path):
            raise RequestError(f"unknown image: {request.get('image')!r} is not an image of this datastore.", 404)
        name = str(request.get("image_id") or os.path.basename(image_path))
        num_candidates = self._num_candidates(request)
        client = client_key(request.get("client_id"))
        label = request.get("label") or ""
        if not isinstance(label, str):
            raise RequestError(f"'label' must be a segment name (a string), got {label!r:.80}.")
        try:
            loaded = self.models.get()
        except (ValueError, RuntimeError, OSError) as err:  # a truncated / foreign / unsafe checkpoint file
            raise RequestError(f"the served checkpoint cannot be loaded: {err}", 422) from err
        t_model = time.perf_counter()
        volume = self._volume(image_path, name, loaded.sequences)
        t_volume = time.perf_counter()

        ndim = len(volume.spatial_shape)
        foreground = parse_points(request.get("foreground"), "foreground", ndim)
        background = parse_points(request.get("background"), "background", ndim)
        check_contradictions(foreground, background)
        shape = tuple(volume.data.shape[1:])
        check_bounds(foreground, shape, "foreground")
        check_bounds(background, shape, "background")
        if three_d:
            return self._propagate(volume, foreground, background, name, label, loaded, [start, t_model, t_volume])
        session = (image_path, client, label)
        seen = self.seen.get(session) if client is not None else None
        k = select_slice(request, foreground, background, seen or ())
        if not 0 <= k < volume.depth:
            raise RequestError(f"slice {k} is outside the image: valid slices are 0..{volume.depth - 1}.")
        if client is not None:
            self.seen.put(session, frozenset(foreground + background))
        clicks = [Click(i, j, True) for i, j, kk in foreground if kk == k]
        clicks += [Click(i, j, False) for i, j, kk in background if kk == k]
        if not clicks:
            raise RequestError(f"no clicks on slice {k}: all {len(foreground) + len(background)} clicks lie elsewhere.")

        with self._lock:
            # a request without client_id gets a session of its own that is never stored (issue 16)
            stored = self.sessions.get(session + (k,)) if client is not None else None
            key = (loaded.key, id(volume))  # other weights or a re-decoded (changed) image: start over
            if stored is None or stored.key != key:
                stored = ClickSession(loaded.predictor, volume.data[..., k], key=key)
                if client is not None:
                    self.sessions.put(session + (k,), stored)
            try:
                prediction, plan = stored.update(clicks)
            except ValueError as err:  # channel mismatch and the like: the image does not suit the model
                raise RequestError(f"cannot segment {name}: {err}") from err
            prob = np.asarray(prediction.prob, dtype=np.float32)
            summary = {"candidates": self._candidates(prediction.candidates, num_candidates)}
        t_predict = time.perf_counter()

        mask = prediction.mask(self.settings.threshold, clicks=plan.clicks if self.settings.respect_clicks else None)
        label_file = self._write_label(volume, mask, k)
        end = time.perf_counter()

        label_name = label or self.settings.labels[0]
        result: dict[str, Any] = {
            "slice": k,
            "mode": plan.mode,
            "refined": plan.mode == "refine",
            "clicks": [[c.y, c.x, int(c.is_positive)] for c in plan.clicks],
            "label_names": {label_name: 1},
            "area": int(mask.sum()),
            "mean_prob": float(prob.mean()),
            "candidates": summary["candidates"],
            "channels": list(volume.channels),
            "client_id": client,
            "model": loaded.describe(),
            "latencies": {
                "model": round(t_model - start, 4),
                "volume": round(t_volume - t_model, 4),
                "predict": round(t_predict - t_volume, 4),
                "write": round(end - t_predict, 4),
                "total": round(end - start, 4),
            },
        }
        if loaded.warning:
            result["warning"] = loaded.warning
        return label_file, result

    def _propagate(
        self,
        volume: Volume,
        foreground: list,
        background: list,
        name: str,
        label: str,
        loaded: Any,
        times: list[float],
    ) -> tuple[str, dict]:
        """Answer a ``propagate`` request: the 3-D label file and its JSON (``lib/infers/propagation.py``)."""
        if not foreground and not background:
            raise RequestError("no clicks: send at least one 'foreground' or 'background' voxel [i, j, k].")
        with self._lock:  # one predictor serves every request
            done = propagate(
                loaded.predictor,
                volume.data,
                foreground,
                background,
                name=name,
                respect_clicks=self.settings.respect_clicks,
            )
        t_predict = time.perf_counter()
        label_file = self.writer.write_volume(self._label_path(), done.label, volume.affine)
        end = time.perf_counter()
        start, t_model, t_volume = times
        seconds = done.summary.pop("seconds")
        result: dict[str, Any] = {
            **done.summary,
            "label_names": {label or self.settings.labels[0]: 1},
            "channels": list(volume.channels),
            "model": loaded.describe(),
            "latencies": {
                "model": round(t_model - start, 4),
                "volume": round(t_volume - t_model, 4),
                "predict": round(t_predict - t_volume, 4),
                "per_slice": seconds["per_slice"],
                "write": round(end - t_predict, 4),
                "total": round(end - start, 4),
            },
        }
        if loaded.warning:
            result["warning"] = loaded.warning
        return label_file, result

    def _volume(self, image_path: str, name: str, sequences: tuple[str, ...] | None) -> Volume:
        """The decoded volume, refused with 422 (reason logged) when the stored file cannot be used (issue 16)."""
        try:
            volume = self.volumes.get(image_path, sequences)
        except FileNotFoundError as err:
            raise RequestError(f"unknown image {name!r}: its file is gone from the datastore.", 404) from err
        except ValueError as err:  # BadInputError: unreadable, truncated, wrong layout
            try:  # the file checks' wording (the app's and the trainer's); rare, so a second read costs nothing
                check_image_file(image_path, name=f"image {name!r}", max_channels=self.settings.max_channels)
                problem = f"image {name!r}: {str(err).replace(os.path.dirname(image_path) + os.sep, '')}"
            except BadInputError as checked:
                problem = str(checked)
            logger.warning(f"AdaptiveClick: skipping {problem}")
            raise RequestError(f"{problem}; the image cannot be segmented.", 422) from err
        with self._lock:
            problem = self._problems.get(volume)
            if problem is None:
                try:
                    check_finite(volume.data, f"image {name!r}")
                    problem = ""
                except BadInputError as err:
                    problem = str(err)
                self._problems[volume] = problem
        if problem:
            logger.warning(f"AdaptiveClick: skipping {problem}")
            raise RequestError(f"{problem}; the image cannot be segmented.", 422)
        return volume

    def _num_candidates(self, request: dict) -> int:
        value = request.get("num_candidates", self.settings.num_candidates)
        try:
            number = int(value)
        except (TypeError, ValueError) as err:
            raise RequestError(f"'num_candidates' must be an integer >= 0, got {value!r}.") from err
        if number < 0 or isinstance(value, bool):
            raise RequestError(f"'num_candidates' must be an integer >= 0, got {value!r}.")
        return number

    def _candidates(self, candidates: list, limit: int) -> list[dict]:
        """Score, area, bbox and RLE of the best ``limit`` candidate masks (ranked best first by the predictor)."""
        out = []
        for rank, (candidate, score) in enumerate(candidates[:limit]):
            mask = is_foreground(np.asarray(candidate), self.settings.threshold)
            out.append(
                {
                    "rank": rank,
                    "score": round(float(score), 6),
                    "area": int(mask.sum()),
                    "bbox": mask_bbox(mask),
                    "rle": encode_rle(mask),
                }
            )
        return out

    def _write_label(self, volume: Volume, mask: np.ndarray, k: int) -> str:
        """Write ``mask`` as label 1 on slice ``k`` of a zero volume with the image's shape and affine."""
        return self.writer.write(self._label_path(), mask, k, volume.spatial_shape, volume.affine)

    def _label_path(self) -> str:
        """A new, empty label file in this task's private output folder."""
        # a private folder: a client on this machine saves the answer under the same base name in its own tmpdir
        if self._output_dir is None or not os.path.isdir(self._output_dir):
            self._output_dir = tempfile.mkdtemp(prefix="adaptiveclick_labels_")
        handle, path = tempfile.mkstemp(suffix=self.settings.output_ext, prefix="label_", dir=self._output_dir)
        os.close(handle)
        return path
