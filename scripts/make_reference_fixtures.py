# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Write test fixtures produced by the AUTHORS' code (AdaptiveClick and SimpleClick v1.0), not by this project.

The project's loader and released-architecture models are checked against these files: a checkpoint saved exactly the
way the authors' trainer saves one, and the outputs of the authors' own model and predictor on fixed inputs.

Nothing of the authors' code is copied here: this script is given the folders of their code and imports their classes
from there. Get the code (a plain work tree of each repository)::

    # github:lab206/AdaptiveClick at 543c897 and github:uncbiag/SimpleClick branch v1.0 (f33112e)
    git --git-dir=<mirror of lab206/AdaptiveClick> archive 543c897 | tar -x -C /work/scratch/ref/AdaptiveClick
    git --git-dir=<mirror of uncbiag/SimpleClick> archive v1.0 | tar -x -C /work/scratch/ref/SimpleClick

Their imports need, on ``PYTHONPATH`` for this process only (a scratch ``--target`` folder, never the project's venv)::

    pip install --no-deps --target DEPS fvcore yacs easydict addict iopath tabulate portalocker yapf platformdirs \
        opencv-python-headless==4.10.0.84
    pip download --no-deps mmcv==1.6.2   # the pure-Python sdist; copy its ``mmcv/`` folder into DEPS (no build)

tensorboard (their logger imports it) comes from the project's venv. mmcv is only needed by SimpleClick's
segmentation head (``ConvModule``). Without it the AdaptiveClick part still runs: ``isegm.model.modeling.
swin_transformer`` is then replaced by a stub (AdaptiveClick never builds anything from it).
No detectron2, no compiled op and no GPU are used: their MSDeformAttn runs its pure-PyTorch path.

Run (``OMP_NUM_THREADS=1`` keeps it on one core)::

    OMP_NUM_THREADS=1 PYTHONPATH=DEPS .venv/bin/python scripts/make_reference_fixtures.py \
        --adaptiveclick /work/scratch/ref/AdaptiveClick --simpleclick /work/scratch/ref/SimpleClick \
        --output tests/networks/fixtures/reference

``--preset full`` builds the released ViT-B 448 sizes instead (hundreds of MB: write it outside the repository);
``--keys-dir DIR`` also writes the ViT-B 448 state_dict key lists with shapes. What each file holds is written to
``README.md`` in the output folder.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch

# Sizes of the small fixtures. Everything not listed is the authors' ViT-B 448 setting (their YAML / model script).
# The input stays 448 px: their ViT windows are fixed at 224 px (224 // patch tokens), so 448 px gives 2 x 2 windows;
# depth 8 makes every second block global (their rule: a global block every depth // 4 blocks, 6 for depth 12).
ADAPTIVECLICK_SMALL = {
    "BACKBONE": {"PATCH_SIZE": [16, 16], "EMBED_DIM": 8, "DEPTH": 8, "NUM_HEADS": 2},
    # widths chosen so that the same branch of each max() in SimpleFPN wins as at ViT-B (2*out0, out1, out3)
    "SIMPLE_FEATURE_PYRAMID": {"IN_DIM": 8, "OUT_DIMS": [4, 8, 16, 32]},
    # 32 is the least width their GroupNorm(32, C) allows
    "SEM_SEG_HEAD": {"CONVS_DIM": 32, "MASK_DIM": 32},
    # DEC_LAYERS - 1 decoder layers: 3, one per feature level
    "MASK_FORMER": {"HIDDEN_DIM": 32, "NUM_OBJECT_QUERIES": 4, "NHEADS": 2, "DIM_FEEDFORWARD": 16, "DEC_LAYERS": 4},
}
SIMPLECLICK_SMALL = {
    "backbone": {"patch_size": (16, 16), "embed_dim": 8, "depth": 8, "num_heads": 2},
    # widths chosen so that the same branch of each max() in SimpleFPN wins as at ViT-B (in/2, in/2, 2*in)
    "out_dims": [1, 2, 4, 8],
    "channels": 16,
}
CROP = 448
ADAPTIVECLICK_SCRIPT = "models/iter_mask/adaptiveclick_base448_sbd_itermask.py"
ADAPTIVECLICK_YAML = "configs/adaptiveclick_plainvit_base448.yaml"
# their README's training command: python train.py <script> --batch-size=48 --ngpus=4
ADAPTIVECLICK_TRAIN_ARGV = [ADAPTIVECLICK_SCRIPT, "--batch-size=48", "--ngpus=4"]
SAVED_DEVICE = "cuda:0"  # where their trainer's tensors (and cfg.device) live when a checkpoint is written

README_TEMPLATE = """\
# Reference fixtures made by the authors' code

Written by `scripts/make_reference_fixtures.py` (preset `{preset}`, seed {seed}); do not edit by hand. Every number
here comes from the authors' own classes, imported from their code folders, never from this project's code:

* AdaptiveClick: github.com/lab206/AdaptiveClick, commit {adaptiveclick_rev}
* SimpleClick v1.0: github.com/uncbiag/SimpleClick, commit {simpleclick_rev}

Command (their code extracted to /work/scratch/ref, their import dependencies in a scratch folder on PYTHONPATH;
see the script's docstring):

```
{command}
```

Their models are built through the constructor arguments of their ViT-B 448 SBD training scripts
(`models/iter_mask/adaptiveclick_base448_sbd_itermask.py` with `configs/adaptiveclick_plainvit_base448.yaml`, and
SimpleClick's `models/iter_mask/plainvit_base448_sbd_itermask.py`) with only sizes shrunk (see Small
configurations), initialised by their own code under `torch.manual_seed({seed})`, then every floating-point
parameter and buffer gets seeded Gaussian noise (sigma = 0.05 + 0.25 * rms of the tensor), so a dropped bias, an
unswapped class row or an unused norm weight cannot match by accident. SimpleClick's last conv bias is then shifted by
{simpleclick_conv_seg_bias_shift:.4f} so that about half of the fixture's pixels are positive.

## Files

* `adaptiveclick_{tag}.pth` ({adaptiveclick_pth} bytes): `torch.save({{'state_dict': net.state_dict(),
  'config': net._config}})` as their trainer writes it. {adaptiveclick_keys} keys, with the duplicates
  `pixel_decoder.adapter_1.*` (= `lateral_convs.0.*`) and `pixel_decoder.layer_1.*` (= `output_convs.0.*`) and the
  buffer `criterion.empty_weight`. `config = {{'class': 'isegm.model.is_adaptiveclick_model.AdaptiveClickModel',
  'params': {{...}}}}`; `params['cfg']['value']` is an `easydict.EasyDict` (their YAML, the training arguments,
  `pathlib.PosixPath`s and `torch.device('cuda:0')`). Every storage is recorded at `cuda:0`, as in a file written
  from a GPU: load with `map_location='cpu'`. Pickled globals: `torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`,
  `collections.OrderedDict`, `torch.device`, `easydict.EasyDict`, `pathlib.PosixPath`.
* `simpleclick_{tag}.pth` ({simpleclick_pth} bytes): the same format for
  `isegm.model.is_plainvit_model.PlainVitModel` ({simpleclick_keys} keys), storages at `cuda:0`.
  `params['head_params']['value']['loss_decode']` is a pickled module
  `isegm.model.modeling.transformer_helper.cross_entropy_loss.CrossEntropyLoss`; its state holds the function
  `isegm.model.modeling.transformer_helper.cross_entropy_loss.cross_entropy` and a `set` (pickled by torch 2.14 here,
  so its `nn.Module` attributes are those of 2.14; a file written by their torch 1.9 has fewer).
* `reference_inputs.npz` ({inputs_npz} bytes): inputs shared by both models (below).
* `adaptiveclick_{tag}_outputs.npz` ({adaptiveclick_npz} bytes), `simpleclick_{tag}_outputs.npz`
  ({simpleclick_npz} bytes): their models' outputs (below).
* `manifest.json`: seeds, commits, sizes, sha256 prefixes, the small configurations, the command.

## Small configurations

AdaptiveClick: their YAML with `MODEL.BACKBONE` {ac_backbone}, `MODEL.SIMPLE_FEATURE_PYRAMID` {ac_fpn},
`MODEL.SEM_SEG_HEAD` {ac_head}, `MODEL.MASK_FORMER` {ac_mf} ({ac_dec} decoder layers);
everything else as released (4 deformable encoder layers, 4 sampling points, 3 levels, post-norm, ReLU FFNs,
num_classes 1 -> 2 class logits, `crop_size (448, 448)`, `with_prev_mask=True, use_disks=True, norm_radius=5`).
SimpleClick: `backbone_params` {sc_backbone} (plus `img_size (448, 448), in_chans 3, mlp_ratio 4, qkv_bias True`),
`neck_params` `in_dim {sc_in}, out_dims {sc_out}`, `head_params` `in_channels {sc_out}, in_index [0, 1, 2, 3],
dropout_ratio 0.1, num_classes 1, loss_decode CrossEntropyLoss(), align_corners False, upsample 'x1',
channels {sc_ch}`, `random_split False, use_disks True, norm_radius 5, with_prev_mask True`.
The input stays 448 x 448: their ViT windows are 224 px (14 tokens at patch 16), so the grid of 28 x 28 tokens has
2 x 2 windows; with depth 8 their rule (a global block every depth // 4 blocks) makes blocks 2, 4, 6, 8 (1-based)
global and 1, 3, 5, 7 windowed.

## Arrays

Conventions: `*_grid3` = the map at every 3rd pixel in both directions (`x[..., ::3, ::3]`; 448 = 3 * 149 + 1 and
112 = 3 * 37 + 1, so the first and last rows and columns are included). `*_bits` = `np.packbits(mask, axis=-1)`;
read with `np.unpackbits(a, axis=-1)[..., :W].astype(bool)`. Points are their click layout `(B, 2N, 3)`: `N`
positives then `N` negatives, each `(row, col, click index)` in pixels of the network input, padded with
`(-1, -1, -1)`; coordinates are floats.

`reference_inputs.npz`:
* `image (1, 3, 448, 448)` RGB in [0, 1]; `prev_mask (1, 1, 448, 448)` in [0, 1] (steps of 1/32);
  `points (1, 6, 3)` float32: 3 positive slots (one disk cut by the image border), 3 negative slots (one padding).
  The network input is `concat(image, prev_mask)` and `points`; their model normalises the RGB channels itself.
* `predictor_image (64, 240, 3)` uint8; `predictor_clicks_first (1, 3)`, `predictor_clicks_zoom (3, 3)`:
  `(row, col, is_positive)` integer pixels, in click order; `predictor_prev_probs (64, 240)` float32: the previous
  probability the `zoom` call starts from (an object near the right edge).

`adaptiveclick_{tag}_outputs.npz` (one forward of their model on `reference_inputs`, under `torch.no_grad`):
* `click_maps_bits (1, 2, 448, 56)`: their disk maps (positive, negative) at 448 x 448.
* `backbone_tokens (1, 784, C)`: ViT output tokens (no final norm), row-major over the 28 x 28 grid.
* `pred_logits (1, Q, 2)`: class logits of the last layer (index 1 = object);
  `aux_pred_logits (L, 1, Q, 2)`: the same before the decoder layers and after each but the last.
* `pred_masks_grid3 (1, Q, 38, 38)`: per-query mask logits (112 x 112 at 1/4) on the grid.
* `prob_grid3 (1, 1, 150, 150)`: their final probability `sigmoid(sum_q sigmoid(class_q[1]) * up(mask_q))`
  (`up`: bilinear, align_corners=True, to 448) on the grid; `mask049_bits`, `mask050_bits (1, 1, 448, 56)`: the full
  448 x 448 masks `prob > 0.49` (their evaluation threshold) and `prob > 0.5`. Preset `full` only:
  `instances_grid3 (1, 1, 150, 150)`, the logits of that probability.
* predictor calls (their `get_predictor(net, 'NoBRS', 'cpu', prob_thresh=0.49, zoom_in_params={{'skip_clicks': -1,
  'target_size': (448, 448)}})`, flip on, as `scripts/evaluate_model.py` for the paper's tables):
  `predictor_first_*`: a fresh predictor, one click (no previous probability: the box is the whole image);
  `predictor_zoom_*`: the state a first call leaves (box = whole image) but with `predictor_prev_probs` as the
  previous probability (also fed as the prev-mask channel), three clicks. `*_prob (64, 240)` float32: the returned
  probability; `*_roi (4,)`: the crop box `(rmin, rmax, cmin, cmax)`, inclusive; `*_net_points (2, 2M, 3)`: the
  points the network got (batch 2 = the crop and its horizontal flip), fractional after the crop stretch;
  `*_net_input_grid16 (4, 28, 28)`: the network's input (RGB in [0, 1] + prev mask) for the unflipped crop at every
  16th pixel; `*_net_logits_grid16 (2, 1, 28, 28)`: the network's `instances` logits for both, every 16th pixel.

`simpleclick_{tag}_outputs.npz`: `click_maps_bits`, `backbone_tokens`, `prob_grid3`, `mask049_bits`, `mask050_bits`
as above (their final probability: sigmoid of the head logits upsampled bilinear align_corners=True to 448);
`head_logits_grid3 (1, 1, 38, 38)`: the head's logits at 112 x 112 before that upsampling; `predictor_zoom_*` as
above (the `first` call is recorded for AdaptiveClick only).

Measured when written: {summary}
"""


# ----------------------------------------------------------------------------------------------------------------------
# importing one of the two code bases (both are a package called ``isegm``)
# ----------------------------------------------------------------------------------------------------------------------
def _forget_isegm() -> None:
    """Drop ``isegm`` (and mmcv, whose registry remembers the scope ``isegm``) from the imported modules."""
    for name in [n for n in sys.modules if n.split(".")[0] in ("isegm", "mmcv")]:
        del sys.modules[name]


@contextlib.contextmanager
def _codebase(root: Path, stub_swin_if_needed: bool):
    """Make ``isegm`` mean the package under ``root`` for the duration of the block."""
    _forget_isegm()
    sys.path.insert(0, str(root))
    try:
        if stub_swin_if_needed and importlib.util.find_spec("mmcv") is None:
            stub = types.ModuleType("isegm.model.modeling.swin_transformer")

            class SwinTransfomerSegHead:  # noqa: N801 - the name their module exports
                def __init__(self, *args, **kwargs):
                    raise RuntimeError("stub: SimpleClick's head needs mmcv")

            stub.SwinTransfomerSegHead = SwinTransfomerSegHead
            sys.modules[stub.__name__] = stub
        yield
    finally:
        sys.path.remove(str(root))
        _forget_isegm()


@contextlib.contextmanager
def _cwd(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def _argv(argv: list[str]):
    old = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = old


@contextlib.contextmanager
def _storages_tagged(location: str):
    """``torch.save`` records every storage at ``location`` (a checkpoint written from a GPU), on a CPU machine."""
    entry = (-100, lambda storage: location if storage.device.type == "cpu" else None, lambda obj, loc: None)
    registry = torch.serialization._package_registry
    registry.append(entry)
    registry.sort(key=lambda e: e[0])
    try:
        yield
    finally:
        registry.remove(entry)


def _module_constant(path: Path, name: str):
    """A top-level constant of a Python file, read without executing it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"{name} not in {path}")


# ----------------------------------------------------------------------------------------------------------------------
# building their models the way their training scripts do
# ----------------------------------------------------------------------------------------------------------------------
def _adaptiveclick_train_cfg(root: Path):
    """The ``cfg`` their ``train.py`` hands to the model script (their argparse + config loading, no side effects)."""
    exp = importlib.import_module("isegm.utils.exp")
    spec = importlib.util.spec_from_file_location("adaptiveclick_train_py", root / "train.py")
    train_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_py)
    with _cwd(root), _argv(["train.py", *ADAPTIVECLICK_TRAIN_ARGV]):
        args = train_py.parse_args()
        args.distributed = "WORLD_SIZE" in os.environ
        model_path = Path(args.model_path)
        cfg = exp.load_config(model_path)
        exp.update_config(cfg, args)
    # what init_experiment adds (it would also create folders, log files and copy the script: skipped here)
    model_name = _module_constant(root / ADAPTIVECLICK_SCRIPT, "MODEL_NAME")
    ftree = exp.get_model_family_tree(model_path, model_name=model_name)
    cfg.distributed = args.distributed
    cfg.local_rank = args.local_rank
    cfg.EXP_PATH = Path(cfg.EXPS_PATH) / "/".join(ftree) / "000"
    cfg.CHECKPOINTS_PATH = cfg.EXP_PATH / "checkpoints"
    cfg.VIS_PATH = cfg.EXP_PATH / "vis"
    cfg.LOGS_PATH = cfg.EXP_PATH / "logs"
    cfg.gpu_ids = list(range(cfg.ngpus))
    cfg.gpus = ",".join(str(i) for i in cfg.gpu_ids)
    cfg.ngpus = len(cfg.gpu_ids)
    cfg.multi_gpu = cfg.ngpus > 1
    cfg.device = torch.device(SAVED_DEVICE)
    return cfg


def build_adaptiveclick(root: Path, small: bool):
    """Their ``init_model`` of the ViT-B 448 SBD script, sizes shrunk when ``small``; built on CPU."""
    from easydict import EasyDict as edict
    from fvcore.common.config import CfgNode

    model_mod = importlib.import_module("isegm.model.is_adaptiveclick_model")
    cfg = _adaptiveclick_train_cfg(root)
    with _cwd(root):
        model_cfg = CfgNode.load_yaml_with_base(ADAPTIVECLICK_YAML, allow_unsafe=True)
    if small:
        for section, values in ADAPTIVECLICK_SMALL.items():
            model_cfg["MODEL"][section].update(copy.deepcopy(values))
    for k, v in cfg.__dict__.items():
        model_cfg[k] = v
    model_cfg = edict(d=model_cfg)
    model_cfg.crop_size = (CROP, CROP)
    model_cfg.num_max_points = 24
    # built on the CPU (their criterion puts a buffer on cfg.device); the saved config says cuda:0 as theirs do
    model_cfg.device = torch.device("cpu")
    model = model_mod.AdaptiveClickModel(model_cfg, with_prev_mask=True, use_disks=True, norm_radius=5)
    model_cfg.device = torch.device(SAVED_DEVICE)
    return model


def build_simpleclick(root: Path, small: bool):
    """Their ``init_model`` of ``plainvit_base448_sbd_itermask.py`` (upsample 'x1'), sizes shrunk when ``small``."""
    model_mod = importlib.import_module("isegm.model.is_plainvit_model")
    ce_mod = importlib.import_module("isegm.model.modeling.transformer_helper.cross_entropy_loss")
    backbone = dict(
        img_size=(CROP, CROP),
        patch_size=(16, 16),
        in_chans=3,
        embed_dim=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4,
        qkv_bias=True,
    )
    out_dims, channels = [128, 256, 512, 1024], 256
    if small:
        backbone.update(SIMPLECLICK_SMALL["backbone"])
        out_dims, channels = list(SIMPLECLICK_SMALL["out_dims"]), SIMPLECLICK_SMALL["channels"]
    neck = dict(in_dim=backbone["embed_dim"], out_dims=out_dims)
    head = dict(
        in_channels=list(out_dims),
        in_index=[0, 1, 2, 3],
        dropout_ratio=0.1,
        num_classes=1,
        loss_decode=ce_mod.CrossEntropyLoss(),
        align_corners=False,
        upsample="x1",
        channels=channels,
    )
    return model_mod.PlainVitModel(
        use_disks=True,
        norm_radius=5,
        with_prev_mask=True,
        backbone_params=backbone,
        neck_params=neck,
        head_params=head,
        random_split=False,
    )


def perturb(model: torch.nn.Module, seed: int) -> list[str]:
    """Add seeded Gaussian noise to every floating-point parameter and buffer (shared tensors once).

    sigma = 0.05 + 0.25 * rms(tensor): zero biases get +-0.05, LayerNorm / GroupNorm weights 1 +- 0.3.
    """
    gen = torch.Generator().manual_seed(seed)
    seen, names = set(), []
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if not tensor.is_floating_point() or id(tensor) in seen:
                continue
            seen.add(id(tensor))
            sigma = 0.05 + 0.25 * float(tensor.float().pow(2).mean().sqrt())
            tensor.add_(torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype) * sigma)
            names.append(name)
    return names


def recentre_simpleclick(model, inputs) -> float:
    """Shift the last conv's bias so that about half of the fixture's pixels are positive (a mask with an edge)."""
    captured = {}
    hook = model.head.register_forward_hook(lambda m, a, out: captured.__setitem__("head", out))
    x = torch.from_numpy(np.concatenate([inputs["image"], inputs["prev_mask"]], axis=1))
    with torch.no_grad():
        model(x, torch.from_numpy(inputs["points"]))
        shift = -float(captured["head"].median())
        model.head.conv_seg.bias.add_(shift)
    hook.remove()
    return shift


def save_like_their_trainer(model: torch.nn.Module, path: Path) -> None:
    """``isegm/utils/misc.py save_checkpoint``: ``torch.save({'state_dict': ..., 'config': net._config})``."""
    with _storages_tagged(SAVED_DEVICE):
        torch.save({"state_dict": model.state_dict(), "config": model._config}, str(path))


# ----------------------------------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------------------------------
def make_inputs(seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs (blocky, so that they compress), shared by both models."""
    rng = np.random.default_rng(seed)
    image = np.kron(rng.integers(0, 256, (3, CROP // 8, CROP // 8)), np.ones((1, 8, 8))).astype(np.float32) / 255.0
    # previous mask: a probability-like map, an elliptic object of high values on low background, steps of 1/32
    yy, xx = np.mgrid[0:CROP, 0:CROP]
    blob = ((yy - 180.0) / 110.0) ** 2 + ((xx - 250.0) / 140.0) ** 2 < 1.0
    noise = np.kron(rng.integers(0, 9, (CROP // 16, CROP // 16)), np.ones((16, 16)))
    prev = np.where(blob, 24 + noise, noise) / 32.0
    # clicks (row, col, index) in their layout: positives first, then negatives, padded with (-1, -1, -1);
    # fractional coordinates as after a zoom-in, one disk cut by the border
    points = np.array(
        [
            [
                [120.0, 200.0, 0],
                [300.25, 260.5, 2],
                [445.5, 3.75, 4],
                [60.75, 380.0, 1],
                [250.5, 100.25, 3],
                [-1, -1, -1],
            ]
        ],
        dtype=np.float32,
    )
    # predictor input: a 64 x 240 RGB uint8 image (wide, so that the expanded box is clamped at the right edge)
    pimage = np.kron(rng.integers(0, 256, (16, 60, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    # the probability the previous click left: an object near the right edge
    py, px = np.mgrid[0:64, 0:240]
    pobj = ((py - 32.0) / 14.0) ** 2 + ((px - 225.0) / 10.0) ** 2 < 1.0
    pprev = np.where(pobj, 0.875, 0.0625).astype(np.float32)
    return {
        "image": image[None],
        "prev_mask": prev[None, None].astype(np.float32),
        "points": points,
        "predictor_image": pimage,
        "predictor_prev_probs": pprev,
        # (row, col, is_positive): integer pixels, as their Clicker makes them
        "predictor_clicks_first": np.array([[30, 120, 1]], dtype=np.int64),
        "predictor_clicks_zoom": np.array([[32, 225, 1], [46, 212, 1], [10, 236, 0]], dtype=np.int64),
    }


# ----------------------------------------------------------------------------------------------------------------------
# running their code
# ----------------------------------------------------------------------------------------------------------------------
def _grid(x: torch.Tensor, step: int = 3) -> np.ndarray:
    """Every ``step``-th pixel in both directions; 448 = 3 * 149 + 1 keeps the first and the last row and column."""
    return x[..., ::step, ::step].detach().cpu().numpy().astype(np.float32)


def _bits(mask: torch.Tensor) -> np.ndarray:
    return np.packbits(mask.detach().cpu().numpy().astype(bool), axis=-1)


def run_adaptiveclick_network(model, inputs) -> dict[str, np.ndarray]:
    captured = {}
    hooks = [
        model.dist_maps.register_forward_hook(lambda m, a, out: captured.__setitem__("click_maps", out)),
        model.pixel_decoder.register_forward_pre_hook(lambda m, a: captured.__setitem__("tokens", a[0].clone())),
    ]
    x = torch.from_numpy(np.concatenate([inputs["image"], inputs["prev_mask"]], axis=1))
    with torch.no_grad():
        out = model(x, torch.from_numpy(inputs["points"]))
    for h in hooks:
        h.remove()
    pred = out["predictions"]
    prob = torch.sigmoid(out["instances"])
    return {
        "click_maps_bits": _bits(captured["click_maps"] > 0.5),
        "backbone_tokens": captured["tokens"].numpy(),
        "pred_logits": pred["pred_logits"].numpy(),
        "pred_masks_grid3": _grid(pred["pred_masks"]),
        "aux_pred_logits": torch.stack([a["pred_logits"] for a in pred["aux_outputs"]]).numpy(),
        "prob_grid3": _grid(prob),
        "instances_grid3": _grid(out["instances"]),
        "mask049_bits": _bits(prob > 0.49),
        "mask050_bits": _bits(prob > 0.5),
    }


def run_simpleclick_network(model, inputs) -> dict[str, np.ndarray]:
    captured = {}
    hooks = [
        model.dist_maps.register_forward_hook(lambda m, a, out: captured.__setitem__("click_maps", out)),
        model.neck.register_forward_pre_hook(lambda m, a: captured.__setitem__("tokens", a[0].clone())),
        model.head.register_forward_hook(lambda m, a, out: captured.__setitem__("head", out)),
    ]
    x = torch.from_numpy(np.concatenate([inputs["image"], inputs["prev_mask"]], axis=1))
    with torch.no_grad():
        out = model(x, torch.from_numpy(inputs["points"]))
    for h in hooks:
        h.remove()
    prob = torch.sigmoid(out["instances"])
    tokens = captured["tokens"]  # (B, C, h, w) -> the (B, N, C) token layout of the backbone
    return {
        "click_maps_bits": _bits(captured["click_maps"] > 0.5),
        "backbone_tokens": tokens.flatten(2).transpose(1, 2).numpy(),
        "head_logits_grid3": _grid(captured["head"]),
        "prob_grid3": _grid(prob),
        "instances_grid3": _grid(out["instances"]),
        "mask049_bits": _bits(prob > 0.49),
        "mask050_bits": _bits(prob > 0.5),
    }


def run_predictor(model, inputs, calls: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Their evaluation predictor, as ``scripts/evaluate_model.py`` sets it up for the paper's tables (NoBRS, 'cvpr'
    mode: zoom-in with skip_clicks=-1 and target (448, 448), horizontal flip), under ``torch.no_grad`` as in
    ``isegm/inference/evaluation.py``. Two single calls:

    * ``first``: a fresh predictor and one click (no previous probability: the box is the whole image);
    * ``zoom``: the state a first call leaves (box = whole image) with ``predictor_prev_probs`` as the previous
      probability, and three clicks: the box comes from the previous probability, expanded and clamped.
    """
    predictors = importlib.import_module("isegm.inference.predictors")
    clicker_mod = importlib.import_module("isegm.inference.clicker")
    pos_embed = importlib.import_module("isegm.model.modeling.pos_embed")
    target = (CROP, CROP)
    pos_embed.interpolate_pos_embed_inference(model.backbone, target, "cpu")
    results = {}
    for call in calls:
        predictor = predictors.get_predictor(
            model,
            "NoBRS",
            "cpu",
            prob_thresh=0.49,
            predictor_params={},
            zoom_in_params={"skip_clicks": -1, "target_size": target},
        )
        captured = {}
        hooks = [
            model.register_forward_pre_hook(lambda m, a, store=captured: store.update(image=a[0], points=a[1].clone())),
            model.register_forward_hook(lambda m, a, out, store=captured: store.update(logits=out["instances"])),
        ]
        image = inputs["predictor_image"]
        clicks = inputs[f"predictor_clicks_{call}"]
        clicker = clicker_mod.Clicker(
            init_clicks=[clicker_mod.Click(is_positive=bool(p), coords=(int(r), int(c))) for r, c, p in clicks]
        )
        with torch.no_grad():
            predictor.set_input_image(image)
            if call == "zoom":
                h, w = image.shape[:2]
                prev = inputs["predictor_prev_probs"][None, None]
                zoom_state = (torch.Size([1, 4, h, w]), (0, h - 1, 0, w - 1), prev.copy(), None, False)
                states = predictor.get_states()
                states["transform_states"][0] = zoom_state
                states["prev_prediction"] = torch.from_numpy(prev.copy())
                predictor.set_states(states)
            prob = predictor.get_prediction(clicker)
        for h in hooks:
            h.remove()
        results[f"predictor_{call}_prob"] = prob.astype(np.float32)
        results[f"predictor_{call}_roi"] = np.array(predictor.zoom_in._object_roi, dtype=np.int64)
        results[f"predictor_{call}_net_points"] = captured["points"].numpy()
        results[f"predictor_{call}_net_input_grid16"] = captured["image"][0, :, ::16, ::16].numpy().astype(np.float32)
        results[f"predictor_{call}_net_logits_grid16"] = captured["logits"][:, :, ::16, ::16].numpy().astype(np.float32)
    return results


# ----------------------------------------------------------------------------------------------------------------------
def _reload_check(path: Path, model, inputs, runner) -> float:
    """Load the written file the way their evaluation does (state_dict into a model from ``config``) and compare."""
    ser = importlib.import_module("isegm.utils.serialization")
    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    config = copy.deepcopy(ckpt["config"])
    cfg_param = config["params"].get("cfg")
    if cfg_param is not None:  # their criterion would put a buffer on cuda:0
        cfg_param["value"].device = torch.device("cpu")
    twin = ser.load_model(config, eval_ritm=False)
    twin.load_state_dict(ckpt["state_dict"], strict=True)
    twin.eval()
    a, b = runner(model, inputs), runner(twin, inputs)
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a if a[k].dtype.kind == "f")


def _key_lines(model) -> list[str]:
    sd = model.state_dict()
    lines = [f"{k}\t{tuple(v.shape)}\t{str(v.dtype).replace('torch.', '')}" for k, v in sd.items()]
    n_unique = sum(p.numel() for p in model.parameters())
    lines.append(
        f"# {len(sd)} keys; {sum(v.numel() for v in sd.values())} state_dict elements (duplicates counted "
        f"twice); {n_unique} parameters ({n_unique / 1e6:.2f} M)"
    )
    return lines


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adaptiveclick", type=Path, required=True, help="folder of lab206/AdaptiveClick's code")
    parser.add_argument("--simpleclick", type=Path, required=True, help="folder of uncbiag/SimpleClick v1.0's code")
    parser.add_argument("--output", type=Path, required=True, help="folder for the fixtures")
    parser.add_argument("--preset", choices=["small", "full"], default="small", help="small fixtures or ViT-B 448")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--adaptiveclick-rev", default="543c897713d2bb30a3079ae69ee43ca3dcccde31")
    parser.add_argument("--simpleclick-rev", default="f33112e5a37ac97b9adfb9cda0106830e77b5b7d (branch v1.0)")
    parser.add_argument("--keys-dir", type=Path, help="also write the ViT-B 448 state_dict keys of both models here")
    args = parser.parse_args(argv)
    small = args.preset == "small"
    tag = "small" if small else "vitb448"
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(args.seed + 2)
    np.savez_compressed(out / "reference_inputs.npz", **inputs)
    report = {
        "preset": args.preset,
        "seed": args.seed,
        "adaptiveclick_rev": args.adaptiveclick_rev,
        "simpleclick_rev": args.simpleclick_rev,
        "crop": CROP,
    }

    with _codebase(args.adaptiveclick.resolve(), stub_swin_if_needed=True):
        if args.keys_dir:
            torch.manual_seed(args.seed)
            args.keys_dir.mkdir(parents=True, exist_ok=True)
            (args.keys_dir / "adaptiveclick_vitb_keys.txt").write_text(
                "\n".join(_key_lines(build_adaptiveclick(args.adaptiveclick.resolve(), small=False))) + "\n"
            )
        torch.manual_seed(args.seed)
        model = build_adaptiveclick(args.adaptiveclick.resolve(), small).eval()
        report["adaptiveclick_perturbed"] = len(perturb(model, args.seed + 1))
        report["adaptiveclick_training_flag_after_eval"] = model.training
        path = out / f"adaptiveclick_{tag}.pth"
        save_like_their_trainer(model, path)
        results = run_adaptiveclick_network(model, inputs)
        results.update(run_predictor(model, inputs, ("first", "zoom")))
        if small:  # the logits only in the full preset (size); the small fixtures keep the probability
            results.pop("instances_grid3")
        np.savez_compressed(out / f"adaptiveclick_{tag}_outputs.npz", **results)
        report["adaptiveclick_reload_max_abs_diff"] = _reload_check(path, model, inputs, run_adaptiveclick_network)
        report["adaptiveclick_keys"] = len(model.state_dict())
        report["adaptiveclick_parameters"] = sum(p.numel() for p in model.parameters())
        report["adaptiveclick_object_queries"] = int((results["pred_logits"].argmax(-1) == 1).sum())
        report["adaptiveclick_mask049_fraction"] = float(np.unpackbits(results["mask049_bits"]).mean())
        del model

    with _codebase(args.simpleclick.resolve(), stub_swin_if_needed=False):
        if importlib.util.find_spec("mmcv") is None:
            raise SystemExit("SimpleClick's head (mmcv ConvModule) needs mmcv 1.x on PYTHONPATH; see the docstring")
        if args.keys_dir:
            torch.manual_seed(args.seed)
            (args.keys_dir / "simpleclick_vitb_keys.txt").write_text(
                "\n".join(_key_lines(build_simpleclick(args.simpleclick.resolve(), small=False))) + "\n"
            )
        torch.manual_seed(args.seed)
        model = build_simpleclick(args.simpleclick.resolve(), small).eval()
        report["simpleclick_perturbed"] = len(perturb(model, args.seed + 1))
        report["simpleclick_conv_seg_bias_shift"] = recentre_simpleclick(model, inputs)
        path = out / f"simpleclick_{tag}.pth"
        save_like_their_trainer(model, path)
        results = run_simpleclick_network(model, inputs)
        results.update(run_predictor(model, inputs, ("zoom",)))
        if small:  # the logits only in the full preset (size); the small fixtures keep the probability
            results.pop("instances_grid3")
        np.savez_compressed(out / f"simpleclick_{tag}_outputs.npz", **results)
        report["simpleclick_reload_max_abs_diff"] = _reload_check(path, model, inputs, run_simpleclick_network)
        report["simpleclick_keys"] = len(model.state_dict())
        report["simpleclick_parameters"] = sum(p.numel() for p in model.parameters())
        report["simpleclick_mask049_fraction"] = float(np.unpackbits(results["mask049_bits"]).mean())
        del model

    report["files"] = {
        p.name: {"bytes": p.stat().st_size, "sha256_16": _sha(p)}
        for p in sorted(out.iterdir())
        if p.suffix in (".pth", ".npz")
    }
    report["small_configs"] = {"adaptiveclick_yaml_overrides": ADAPTIVECLICK_SMALL, "simpleclick": SIMPLECLICK_SMALL}
    report["command"] = " ".join(
        [
            "OMP_NUM_THREADS=1",
            f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}",
            "python",
            "scripts/make_reference_fixtures.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    (out / "manifest.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "README.md").write_text(_readme(report, tag))
    print(json.dumps(report, indent=2))


def _readme(report: dict, tag: str) -> str:
    files = report["files"]
    reload = max(report["adaptiveclick_reload_max_abs_diff"], report["simpleclick_reload_max_abs_diff"])
    summary = (
        f"AdaptiveClick {report['adaptiveclick_parameters']} parameters, {report['adaptiveclick_object_queries']} of "
        f"the last layer's queries classed object, {report['adaptiveclick_mask049_fraction']:.1%} of the pixels > 0.49;"
        f" SimpleClick {report['simpleclick_parameters']} parameters, {report['simpleclick_mask049_fraction']:.1%} "
        f"> 0.49. Reloading each written file into a model built by their code from the file's own `config` gave the "
        f"same outputs (max abs difference {reload})."
    )
    if report["preset"] == "full":
        summary += " Preset `full`: the released ViT-B 448 sizes, not the small configurations above."
    mf = ADAPTIVECLICK_SMALL["MASK_FORMER"]
    return README_TEMPLATE.format(
        tag=tag,
        summary=summary,
        adaptiveclick_pth=files[f"adaptiveclick_{tag}.pth"]["bytes"],
        simpleclick_pth=files[f"simpleclick_{tag}.pth"]["bytes"],
        inputs_npz=files["reference_inputs.npz"]["bytes"],
        adaptiveclick_npz=files[f"adaptiveclick_{tag}_outputs.npz"]["bytes"],
        simpleclick_npz=files[f"simpleclick_{tag}_outputs.npz"]["bytes"],
        ac_backbone=ADAPTIVECLICK_SMALL["BACKBONE"],
        ac_fpn=ADAPTIVECLICK_SMALL["SIMPLE_FEATURE_PYRAMID"],
        ac_head=ADAPTIVECLICK_SMALL["SEM_SEG_HEAD"],
        ac_mf=mf,
        ac_dec=mf["DEC_LAYERS"] - 1,
        sc_backbone=SIMPLECLICK_SMALL["backbone"],
        sc_in=SIMPLECLICK_SMALL["backbone"]["embed_dim"],
        sc_out=SIMPLECLICK_SMALL["out_dims"],
        sc_ch=SIMPLECLICK_SMALL["channels"],
        **report,
    )


if __name__ == "__main__":
    main()
