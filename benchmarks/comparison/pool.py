# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The ``--jobs`` process pool: every ``(method, seed)`` run, in order, in one process or in several.

The results do not depend on the number of jobs: each run seeds its own training, and the results come back in
the order of the tasks.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from comparison.methods import MethodSpec
from comparison.runner import run_method
from comparison.settings import Budget, RunOptions
from monai_adaptiveclick.engines import NoCResult

__all__ = ["run_tasks"]


def _set_worker_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def run_tasks(
    tasks: Sequence[tuple[MethodSpec, int]],
    budget: Budget,
    train_items: Sequence[Mapping[str, Any]],
    eval_items: Sequence[Mapping[str, Any]],
    output: Path,
    options: RunOptions,
    jobs: int,
    threads: int,
) -> list[NoCResult]:
    """:func:`~comparison.runner.run_method` for every ``(method, seed)``, in order; ``jobs > 1`` runs them in that
    many processes.

    Each process is a fresh interpreter (``spawn``) with ``threads`` torch threads and no progress bars; the results
    come back in the order of ``tasks`` whatever the order in which they finish. On a CPU, several single-thread
    jobs use the cores better than one job with several threads (the small models scale poorly across threads).

    Args:
        tasks: ``(method, seed)`` pairs.
        budget: settings shared by every method.
        train_items: the training objects.
        eval_items: the evaluation objects.
        output: the comparison's output folder.
        options: how the methods run.
        jobs: number of processes (1: run in this process).
        threads: torch CPU threads of each worker process.

    Returns:
        One NoC result per task, in the order of ``tasks``.
    """
    if jobs == 1:
        return [run_method(spec, seed, budget, train_items, eval_items, output, options) for spec, seed in tasks]
    quiet = dataclasses.replace(options, progress=False)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_set_worker_threads, initargs=(threads,)) as pool:
        futures = [
            pool.submit(run_method, spec, seed, budget, train_items, eval_items, output, quiet) for spec, seed in tasks
        ]
        return [future.result() for future in futures]
