# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Full-state training checkpoints on disk: written atomically, found again for ``resume``, pruned across runs.

* :class:`TrainingCheckpoints` attaches ignite ``Checkpoint`` handlers that write ``checkpoint_epoch=N.pt`` every
  ``interval`` epochs and ``checkpoint_final_iteration=N.pt`` when a run ends, each through a temporary file renamed
  into place (``DiskSaver(atomic=True)``), so a run killed during a write never leaves a truncated checkpoint under a
  checkpoint name; when the run completes, only the newest ``keep`` checkpoints of the folder are kept (older runs'
  files included);
* :func:`find_last_checkpoint` returns the newest checkpoint that loads, skipping (and logging) unreadable ones, so
  ``resume`` falls back to the last good state.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver

__all__ = ["CHECKPOINT_PREFIX", "TrainingCheckpoints", "find_last_checkpoint", "list_checkpoints", "prune_checkpoints"]

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint"
_CKPT_PATTERN = re.compile(rf"^{CHECKPOINT_PREFIX}_(?:final_iteration|epoch)=(\d+)\.pt$")


def list_checkpoints(directory: str | Path) -> list[Path]:
    """The full-state checkpoints (``checkpoint_epoch=N.pt`` / ``checkpoint_final_iteration=N.pt``), newest first.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "checkpoint_epoch=2.pt").write_bytes(b""), (folder / "notes.txt").write_text("")
        >>> [p.name for p in list_checkpoints(folder)]
        ['checkpoint_epoch=2.pt']
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _CKPT_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, int(_CKPT_PATTERN.match(p.name).group(1))), reverse=True)


def find_last_checkpoint(directory: str | Path) -> Path | None:
    """The newest full-state checkpoint in ``directory`` that loads; unreadable ones are skipped with a warning.

    A checkpoint "loads" when ``torch.load(weights_only=True)`` reads it as a dict with a ``trainer`` entry (a file
    truncated by a kill, a zero-byte file or another file under a checkpoint name does not).
    """
    for path in list_checkpoints(directory):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # noqa: BLE001 - any reader failure means this file cannot be resumed from
            logger.warning("skipping unreadable checkpoint %s: %s", path, str(err).splitlines()[0] if str(err) else err)
            continue
        if isinstance(state, Mapping) and "trainer" in state:
            return path
        logger.warning("skipping %s: not a full-state training checkpoint (no 'trainer' entry).", path)
    return None


def prune_checkpoints(directory: str | Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest full-state checkpoints of ``directory``; returns the deleted files."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}.")
    removed = list_checkpoints(directory)[keep:]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


class TrainingCheckpoints:
    """Atomic epoch and final checkpoints of a training run, and the retention rule (module docstring).

    Args:
        save_dir: the run's output folder.
        state: the objects saved and restored (``state_dict`` / ``load_state_dict``).
        interval: epochs between two epoch checkpoints.
        keep: checkpoints kept in ``save_dir`` (within a run and, when it completes, across runs).
    """

    def __init__(self, save_dir: str | Path, state: Mapping[str, Any], interval: int = 1, keep: int = 2) -> None:
        if interval < 1 or keep < 1:
            raise ValueError(f"interval and keep must be >= 1, got {interval} and {keep}.")
        self.save_dir, self.interval, self.keep = Path(save_dir), int(interval), int(keep)
        saver = DiskSaver(self.save_dir, atomic=True, create_dir=True, require_empty=False)
        self.epochs = Checkpoint(
            dict(state),
            saver,
            n_saved=keep,
            filename_pattern=f"{CHECKPOINT_PREFIX}_epoch={{global_step}}.{{ext}}",
            global_step_transform=lambda engine, _: engine.state.epoch,
        )
        self.final = Checkpoint(
            dict(state),
            saver,
            n_saved=1,
            filename_pattern=f"{CHECKPOINT_PREFIX}_final_iteration={{global_step}}.{{ext}}",
            global_step_transform=lambda engine, _: engine.state.iteration,
        )

    def attach(self, engine: Engine) -> None:
        """Save every ``interval`` epochs and when the run ends (completed or terminated early), then prune."""
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self.epochs)
        engine.add_event_handler(Events.COMPLETED, self.final)
        engine.add_event_handler(Events.COMPLETED, lambda _: prune_checkpoints(self.save_dir, self.keep))
