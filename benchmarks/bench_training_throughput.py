# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Training throughput of the click-simulation trainer (issue 6 benchmark).

Trains the ``small_cpu`` preset on the embedded sample's ``train`` split for a few iterations and reports images
per second and the share of wall time spent in data loading (waiting for the next batch) and in click simulation
of ``engines.ClickSimulation``, split into its no-gradient model forwards and the rest (error-click
sampling with the batched distance transform, click rasterisation). The rest is the gradient step (forward, loss,
backward, optimizer).

Example:
    OMP_NUM_THREADS=1 python benchmarks/bench_training_throughput.py --iterations 20 --image-size 256
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from ignite.engine import Events

from monai_adaptiveclick.data.sample import load_sample
from monai_adaptiveclick.engines import TrainingSettings, create_train_dataset, create_train_loader, create_trainer
from monai_adaptiveclick.networks import create_model

__all__ = ["measure_throughput"]


def measure_throughput(
    preset: str = "small_cpu",
    image_size: int | None = None,
    batch_size: int = 8,
    iterations: int = 20,
    warmup: int = 2,
    max_extra_clicks: int = 3,
    device: str = "cpu",
    num_workers: int = 0,
    seed: int = 0,
) -> dict[str, float]:
    """Run ``warmup + iterations`` training iterations and time them.

    Returns:
        images/s, seconds per iteration and the data-loading / click-simulation / gradient-step shares (measured
        iterations only).
    """
    if iterations < 1 or warmup < 0:
        raise ValueError(f"need iterations >= 1 and warmup >= 0, got {iterations}, {warmup}.")
    torch.manual_seed(seed)
    overrides = {} if image_size is None else {"image_size": image_size}
    model = create_model(preset, in_channels=3, **overrides).to(device)
    settings = TrainingSettings.from_recipe(
        preset=preset, batch_size=batch_size, max_extra_clicks=max_extra_clicks, seed=seed, num_workers=num_workers
    )
    dataset = create_train_dataset(load_sample(split="train"), model.image_size, 3, settings)
    loader = create_train_loader(dataset, batch_size=batch_size, num_workers=num_workers, drop_last=True)
    settings = settings.replace(epochs=-(-(warmup + iterations) // len(loader)))
    trainer = create_trainer(model, loader, settings, device=device, progress=False)
    iteration = trainer.click_iteration
    timing = {"data": 0.0, "simulation": 0.0, "start": 0.0, "images": 0}
    marks: dict[str, float] = {}

    def batch_started(engine) -> None:
        marks["batch"] = time.perf_counter()

    def batch_completed(engine) -> None:
        if engine.state.iteration >= warmup:  # the iteration counter is incremented after this event
            timing["data"] += time.perf_counter() - marks["batch"]

    def iteration_started(engine) -> None:
        if engine.state.iteration == warmup + 1:
            timing["start"] = marks["batch"]  # wall time counts from fetching the first measured batch
            timing["sim0"] = iteration.simulation_seconds
            timing["fwd0"] = iteration.simulation_forward_seconds

    def iteration_completed(engine) -> None:
        if engine.state.iteration > warmup:
            timing["images"] += int(engine.state.output["image"].shape[0])
        if engine.state.iteration == warmup + iterations:
            timing["end"] = time.perf_counter()
            timing["simulation"] = iteration.simulation_seconds - timing["sim0"]
            timing["sim_forward"] = iteration.simulation_forward_seconds - timing["fwd0"]
            engine.terminate()

    trainer.add_event_handler(Events.GET_BATCH_STARTED, batch_started)
    trainer.add_event_handler(Events.GET_BATCH_COMPLETED, batch_completed)
    trainer.add_event_handler(Events.ITERATION_STARTED, iteration_started)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, iteration_completed)
    trainer.run()
    wall = timing["end"] - timing["start"]
    return {
        "preset": preset,
        "image_size": model.image_size,
        "batch_size": batch_size,
        "iterations": iterations,
        "max_extra_clicks": max_extra_clicks,
        "threads": torch.get_num_threads(),
        "images_per_s": timing["images"] / wall,
        "seconds_per_iteration": wall / iterations,
        "data_share": timing["data"] / wall,
        "simulation_share": timing["simulation"] / wall,
        "click_sampling_share": (timing["simulation"] - timing["sim_forward"]) / wall,
        "simulation_forward_share": timing["sim_forward"] / wall,
        "gradient_step_share": 1.0 - (timing["data"] + timing["simulation"]) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small_cpu")
    parser.add_argument("--image-size", type=int, default=None, help="override the preset's input size")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--max-extra-clicks", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    result = measure_throughput(
        preset=args.preset,
        image_size=args.image_size,
        batch_size=args.batch_size,
        iterations=args.iterations,
        warmup=args.warmup,
        max_extra_clicks=args.max_extra_clicks,
        device=args.device,
    )
    print(
        "| preset | px | batch | N extra | threads | images/s | s/iter | data loading | click sampling + rasterising "
        "| no-grad simulation forwards | gradient step |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {result['preset']} | {result['image_size']} | {result['batch_size']} | {result['max_extra_clicks']} | "
        f"{result['threads']} | {result['images_per_s']:.2f} | {result['seconds_per_iteration']:.2f} | "
        f"{100 * result['data_share']:.1f}% | {100 * result['click_sampling_share']:.1f}% | "
        f"{100 * result['simulation_forward_share']:.1f}% | "
        f"{100 * result['gradient_step_share']:.1f}% |"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
