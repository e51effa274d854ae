# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Small-scale convergence comparison of mask losses (the pattern of paper Fig. 6 and Table VI), CPU-runnable.

The same model preset is trained from the same seed on the embedded sample pack's ``train`` split with each mask
loss of the criterion (AFL, FL, NFL, BCE by default; every name of ``monai_adaptiveclick.losses.LOSSES`` works),
for a fixed number of epochs (optionally capped by ``--max-steps``). Each trained model is then evaluated with the
NoC protocol (SPEC section 5; zoom-in and flip off by default to keep it quick) on the ``heldout`` split.

Reported per loss: the per-epoch mean training loss (its scale differs between losses, so the plot shows it
relative to the first epoch), NoC@85 / NoC@90, failures and mIoU@k. Results go to ``--out`` as ``results.json``
and ``loss_comparison.png``, and a table is printed. Whatever loss wins is what was measured: at this scale (a tiny
model trained for minutes) differences are small and noisy, unlike the paper's 60-epoch ViT-B runs.

Usage:
    python benchmarks/bench_loss_comparison.py --losses afl fl nfl bce --epochs 4 --out benchmarks/results/losses
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from monai_adaptiveclick.data.sample import load_sample  # noqa: E402
from monai_adaptiveclick.engines import (
    evaluate_noc,  # noqa: E402
    run_training,  # noqa: E402
)
from monai_adaptiveclick.inference import Predictor  # noqa: E402
from monai_adaptiveclick.losses import LOSSES  # noqa: E402

__all__ = ["run_one", "plot", "main"]


def run_one(loss: str, args: argparse.Namespace, train_items: list, eval_items: list) -> dict[str, Any]:
    """Train with one mask loss and evaluate the result; returns a JSON-serialisable summary."""
    start = time.perf_counter()
    trained = run_training(
        train_items,
        Path(args.out) / loss,
        preset=args.preset,
        in_channels=args.in_channels,
        loss=loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_steps=args.max_steps,
        device=args.device,
        seed=args.seed,
        progress=False,
    )
    train_seconds = time.perf_counter() - start
    predictor = Predictor.from_checkpoint(trained["checkpoint"], device=args.device)
    result = evaluate_noc(
        predictor,
        eval_items,
        max_clicks=args.max_clicks,
        zoom_in=args.zoom_in,
        flip=args.flip,
        progress=False,
        method=f"{args.preset}-{loss}",
    )
    return {
        "loss": loss,
        "iterations": trained["iterations"],
        "train_seconds": train_seconds,
        "history": [{"epoch": h["epoch"], "loss": h["loss"]} for h in trained["history"]],
        "noc": {str(k): v for k, v in result.noc.items()},
        "failures": {str(k): v for k, v in result.failures.items()},
        "miou_at_k": [float(v) for v in result.miou_at_k],
        "objects": result.num_objects,
    }


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """Relative training-loss curves and mIoU@k curves side by side."""
    fig, (ax_loss, ax_iou) = plt.subplots(1, 2, figsize=(10, 4))
    for run in runs:
        losses = [h["loss"] for h in run["history"]]
        if losses:
            ax_loss.plot(range(1, len(losses) + 1), [v / losses[0] for v in losses], marker="o", label=run["loss"])
        ax_iou.plot(range(1, len(run["miou_at_k"]) + 1), run["miou_at_k"], marker=".", label=run["loss"])
    ax_loss.set(xlabel="epoch", ylabel="training loss / first epoch", title="convergence")
    ax_iou.set(xlabel="clicks k", ylabel="mIoU@k", title="held-out sample pack")
    for ax in (ax_loss, ax_iou):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse arguments, run every loss, write ``results.json`` + the plot, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=["afl", "fl", "nfl", "bce"], choices=sorted(LOSSES))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3, help="higher than the paper's 5e-5: training from scratch")
    parser.add_argument("--max-clicks", type=int, default=10)
    parser.add_argument("--eval-items", type=int, default=None, help="evaluate only the first N held-out objects")
    parser.add_argument("--zoom-in", action="store_true")
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/loss_comparison")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    train_items = load_sample("train")
    eval_items = load_sample("heldout")[: args.eval_items]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [run_one(loss, args, train_items, eval_items) for loss in args.losses]
    settings = {k: v for k, v in vars(args).items() if k != "losses"}
    (out / "results.json").write_text(json.dumps({"settings": settings, "runs": runs}, indent=2))
    plot(runs, out / "loss_comparison.png")

    print(f"| loss | iterations | train s | NoC@85 | NoC@90 | failures@90 | mIoU@1 | mIoU@{args.max_clicks} |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        miou = run["miou_at_k"]
        print(
            f"| {run['loss']} | {run['iterations']} | {run['train_seconds']:.0f} | {run['noc']['0.85']:.2f} "
            f"| {run['noc']['0.9']:.2f} | {run['failures']['0.9']} | {miou[0]:.3f} | {miou[-1]:.3f} |"
        )
    return runs


if __name__ == "__main__":
    main()
