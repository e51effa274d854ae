# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""One-command accuracy comparison: AdaptiveClick against its ablations and baselines on the same data (issue 8).

Every learned method is trained with the same harness (:func:`monai_adaptiveclick.engines.run_training`:
click simulation, SPEC section 4), the same number of training steps, batch size, learning rate and seed, on the
same training objects; then every method, learned or classical, is evaluated with the same NoC protocol (SPEC
section 5, :func:`monai_adaptiveclick.engines.evaluate_noc`) on the same held-out objects.

Methods (``--methods``, default all):

============== ======================================================================================================
key            method
============== ======================================================================================================
afl            AdaptiveClick (CAMD head) + adaptive focal loss (the method; paper eq. 10-14)
fl, nfl, bce   AdaptiveClick + focal loss / normalised focal loss / binary cross-entropy (paper Table VI pattern)
mask_fixed_nfl mask-fixed SimpleClick-style head + NFL, CAMD off (paper Table X)
afl_ada_only   AFL with the adaptive difficulty adjustment only (``agr=False``; paper Table XI)
afl_agr_only   AFL with the adaptive gradient representation only (``ada=False``; paper Table XI)
deepgrow       DeepGrow-2D-style MONAI ``BasicUNet`` on [image, positive, negative] (no previous mask), BCE + Dice
random_walker  classical click-seeded random walker (``engines.baselines``; not trained)
watershed      classical click-seeded watershed (``engines.baselines``; not trained)
============== ======================================================================================================

All AdaptiveClick variants use the criterion of SPEC section 3 (mask loss + Dice + click-head CE with Hungarian
matching; the mask-fixed head and DeepGrow: mask loss + Dice, ``losses.MaskFixedCriterion``).

Budgets (``--budget``): ``quick`` is sized for a 2-core CPU (about 30 minutes for all methods, one seed): the
``small_cpu`` architecture at 128 px (DeepGrow: ``BasicUNet`` with MONAI's default widths at 128 px), 250 steps of
batch 8, Adam lr 1e-4 constant, NoC with up to 20 clicks, zoom-in and flip TTA off, all held-out objects. ``full``
is meant for a GPU: ``vit_b_448`` (randomly initialised unless ``--pretrained-backbone`` names a local MAE ViT-B/16
file, as in the paper; nothing is downloaded) at 448 px, 20 000 steps of batch 16, lr 5e-5 x0.1 at 2/3 of the steps,
DeepGrow widths (32, 64, 128, 256, 512, 32), NoC with up to 20 clicks, zoom-in and flip on, seeds 0 1 2.
``--steps``, ``--batch-size``, ``--lr``, ``--max-clicks``, ``--max-eval-objects`` and ``--seeds`` override a
budget's values. The classical baselines are deterministic and are evaluated once whatever the seeds.

Outputs in ``--output``: ``comparison.md`` (settings + table: NoC85, NoC90, fail@85, fail@90, mIoU@1/3/5, SPC,
training steps and seconds), ``miou_vs_clicks.png`` (all methods, paper Fig. 6 style), ``hard_cases/*.png`` (the
held-out objects with the highest NoC90 for the AFL model: image, ground truth and every method's final mask with its
clicks, paper Fig. 5 style), ``results/{method}_seed{s}.json`` (per-object records, summary, settings including the
training record), ``masks/`` (final masks, for the figures) and ``models/`` (trained ``model.pt`` files; the
full-state training checkpoints are deleted after training unless ``--keep-checkpoints``). A method whose result
JSON already exists is loaded instead of re-run, and a model whose training finished is evaluated without
re-training (``--no-resume`` re-runs everything).

``--jobs N`` runs N methods / seeds at the same time in separate processes (on a 2-core CPU ``--jobs 2`` with one
thread each is faster than one job with two threads); the results do not depend on it.

The code is the ``comparison`` package next to this script (``benchmarks/comparison/``: the method registry, the
budgets, training, the process pool, statistics over seeds and the report, one module each); this script is its
command line.

Usage:
    python benchmarks/compare_methods.py --budget quick --jobs 2 --output outputs/compare_quick
    python benchmarks/compare_methods.py --budget full --device cuda --dataset brats_png --dataset-dir /data/brats \
        --output outputs/compare_full
"""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path rather than run: find ``comparison``
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from comparison.cli import build_parser, main, resolve_budget, run_comparison  # noqa: E402
from comparison.methods import METHODS, MethodSpec  # noqa: E402
from comparison.settings import BUDGETS, Budget, RunOptions  # noqa: E402

__all__ = [
    "BUDGETS",
    "METHODS",
    "Budget",
    "MethodSpec",
    "RunOptions",
    "build_parser",
    "resolve_budget",
    "run_comparison",
    "main",
]

if __name__ == "__main__":
    main()
