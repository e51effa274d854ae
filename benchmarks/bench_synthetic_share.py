# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Does the synthetic engine starve training? Data time vs step time of the starter recipe, side by side in one run.

For each ``synthetic_share`` the script builds the training loader of a recipe (default ``starter``: sample pack
training split plus the synthetic engine) and runs ``--steps`` iterations of the real ``SupervisedTrainer`` with
ignite's ``BasicTimeProfiler``, which splits the wall time into the loader's time (``dataflow``: reading, synthesis,
augmentation, click sampling) and the iteration's (``processing``: click simulation, forward, backward, step).
Also times the bare synthesis of one item (``data.synthesize_object``).

Usage:
    python benchmarks/bench_synthetic_share.py --threads 1 --steps 40 --shares 0 0.5 0.8
"""

from __future__ import annotations

import argparse
import time

import torch
from ignite.handlers import BasicTimeProfiler

from monai_adaptiveclick.data import SyntheticObjects
from monai_adaptiveclick.data.sample import load_sample
from monai_adaptiveclick.engines import TrainingSettings, create_train_dataset, create_train_loader, create_trainer
from monai_adaptiveclick.networks import create_model

__all__ = ["main", "profile_share"]


def profile_share(recipe: str, share: float, steps: int) -> dict[str, float]:
    """Seconds per iteration spent in the loader and in the iteration, for one synthetic share."""
    settings = TrainingSettings.from_recipe(recipe, synthetic_share=share, max_steps=steps, epochs=1000)
    model = create_model(settings.preset, in_channels=settings.in_channels, **dict(settings.model_overrides))
    dataset = create_train_dataset(load_sample(split="train"), model.image_size, settings.in_channels, settings)
    loader = create_train_loader(dataset, settings.batch_size)
    trainer = create_trainer(model, loader, settings, progress=False)
    profiler = BasicTimeProfiler()
    profiler.attach(trainer)
    trainer.run()
    results = profiler.get_results()
    data = float(results["dataflow_stats"]["total"]) / steps
    step = float(results["processing_stats"]["total"]) / steps
    return {"share": share, "data_s": data, "step_s": step, "data_fraction": data / (data + step)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="starter")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.5, 0.8])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    objects = SyntheticObjects(length=50, seed=0)
    start = time.perf_counter()
    for index in range(len(objects)):
        objects[index]
    per_item = (time.perf_counter() - start) / len(objects)
    print(f"synthesis alone: {1000 * per_item:.1f} ms per item (mean of {len(objects)})")
    print("| synthetic share | loader s/it | iteration s/it | loader share of wall time |")
    print("|---:|---:|---:|---:|")
    for share in args.shares:
        row = profile_share(args.recipe, share, args.steps)
        print(f"| {share:.1f} | {row['data_s']:.3f} | {row['step_s']:.3f} | {100 * row['data_fraction']:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
