# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Saving / loading whole AdaptiveClick models and loading MAE / timm ViT weights into the backbone (SPEC section 1;
the paper initialises the ViT from MAE). Everything reads local files; nothing is ever downloaded.

:func:`load_model` also opens the authors' AdaptiveClick and SimpleClick v1.0 checkpoints as they are (SPEC section
10; :mod:`.reference` detects the family and size and maps the keys, :mod:`.safe_load` unpickles them without running
code); :func:`convert_checkpoint` rewrites such a file in this project's format.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .adaptiveclick import AdaptiveClick
from .deepgrow import DeepGrow2D
from .factory import build_model, create_model
from .reference import build_reference_model
from .safe_load import safe_torch_load

__all__ = [
    "atomic_save",
    "check_state_dict",
    "convert_checkpoint",
    "load_model",
    "load_pretrained_backbone",
    "model_architecture",
    "read_checkpoint_extra",
    "read_state_dict",
    "save_model",
]

FORMAT = "monai_adaptiveclick"
_WRAPPER_PREFIXES = ("module.", "encoder.", "backbone.", "model.", "visual.", "image_encoder.")
# pretrained-checkpoint entries that are not part of the backbone: classifier heads, MAE decoder, tokens, necks
_IGNORED = re.compile(r"^(cls_token|mask_token|dist_token|reg_token|head|fc_norm|decoder|neck|pre_logits|norm_pre)")
_NEVER_PRETRAINED = ("guidance_embed.",)


def save_model(model: AdaptiveClick | DeepGrow2D, path: str | os.PathLike, **extra) -> Path:
    """Save ``{"format", "config", "state_dict", "extra"}`` so that ``load_model`` can rebuild the model.

    Args:
        model: an ``AdaptiveClick`` or ``DeepGrow2D`` (it has ``.config``).
        path: output file (parent folders are created).
        extra: plain data stored beside (epoch, metrics, notes ...): str / int / float / bool / None, lists, tuples,
            dicts and tensors only, so that the file loads with ``torch.load(weights_only=True)``.

    Returns:
        the path written.
    """
    payload = {"format": FORMAT, "config": model_architecture(model), "state_dict": model.state_dict(), "extra": extra}
    return atomic_save(payload, path)


def model_architecture(model: nn.Module) -> dict:
    """The architecture record of a model, as :func:`save_model` stores it (``"config"``) and the shipped models'
    cards hold it (``"architecture"``): a copy of ``model.config``, plain JSON data that ``build_model`` turns back
    into the same architecture.

    Raises:
        ValueError: the model has no ``.config`` (not an ``AdaptiveClick`` / ``DeepGrow2D``).

    Example:
        >>> config = model_architecture(create_model("tiny", in_channels=1))
        >>> build_model(config).config == config
        True
    """
    if not hasattr(model, "config"):
        raise ValueError(f"{type(model).__name__} has no .config; expected an AdaptiveClick or DeepGrow2D model.")
    return dict(model.config)


def atomic_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file in the same folder renamed into place: a reader (or a crash) never
    sees a half-written file under ``path``.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "sub" / "weights.pt"
        >>> atomic_save({"w": torch.ones(2)}, target).name, sorted(p.name for p in target.parent.iterdir())
        ('weights.pt', ['weights.pt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def _torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> object:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device=str(map_location))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors carry no common base class
        raise ValueError(
            f"could not read {path} with torch.load(weights_only=True): {err}. Re-save the plain state dict "
            "(torch.save(obj['model'], new_path)) if the file holds pickled objects such as argparse namespaces."
        ) from err


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load ``state_dict`` strictly into ``model`` or raise one ``ValueError`` listing every problem.

    Raises:
        ValueError: listing keys whose shapes differ (checkpoint vs model), missing keys and unexpected keys.
    """
    own = model.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if mismatched or missing or unexpected:
        raise ValueError(
            "checkpoint does not fit the architecture:\n"
            + (f"  shape mismatches ({len(mismatched)}): {mismatched}\n" if mismatched else "")
            + (f"  missing keys ({len(missing)}): {missing}\n" if missing else "")
            + (f"  unexpected keys ({len(unexpected)}): {unexpected}\n" if unexpected else "")
        )
    model.load_state_dict(state_dict, strict=True)


def load_model(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    preset: str | None = None,
    in_channels: int = 3,
    head: str = "camd",
    **overrides,
) -> AdaptiveClick | DeepGrow2D:
    """Rebuild a model from a checkpoint file and load its weights.

    Recognised files:

    - this project's format (``save_model``: ``{"format", "config", "state_dict", "extra"}``);
    - an AdaptiveClick checkpoint written by the authors' trainer, or a SimpleClick v1.0 ``PlainVitModel`` one
      (``{"state_dict", "config"}`` with pickled ``easydict`` / ``pathlib`` / ``torch.device`` objects; SPEC section
      10): family and size are detected, the architecture derived from the shapes, every key mapped or on the
      documented ignore list (:mod:`.reference`); the file is unpickled by a restricted unpickler (:mod:`.safe_load`);
    - a plain state dict (e.g. a MONAI bundle's ``models/model.pt``) when ``preset`` (plus ``in_channels``,
      ``head``, ``overrides``) describes the architecture.

    Args:
        path: checkpoint file (``.safetensors`` for plain state dicts too).
        map_location: device for the model.
        preset, in_channels, head, overrides: architecture, only for files without a stored config.

    Returns:
        the model in eval mode, on ``map_location``'s device.

    Raises:
        ValueError: missing, truncated or corrupt file; a forbidden pickled global; a model of another family; an
            unsupported size; no config and no preset; weights that do not fit (keys and shapes listed).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
        >>> _ = save_model(create_model("tiny", in_channels=1), path)
        >>> load_model(path).config["embed_dim"]
        64
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        obj = _torch_load(path, "cpu")
    else:
        obj = safe_torch_load(path)
    if _is_own_format(obj):
        model = build_model(obj["config"])
        state = obj["state_dict"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping) and _looks_like_reference(obj):
        try:
            model, _ = build_reference_model(obj)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
        return model.to(map_location).eval()
    elif isinstance(obj, Mapping) and preset is not None:
        model = create_model(preset, in_channels=in_channels, head=head, **overrides)
        state = obj.get("state_dict", obj.get("model", obj))
    else:
        raise ValueError(
            f"{path} has no stored model config (not written by save_model, nor an AdaptiveClick / SimpleClick "
            "checkpoint of the authors); pass preset=... to describe the architecture."
        )
    try:
        check_state_dict(model, state)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return model.to(map_location).eval()


def _is_own_format(obj: object) -> bool:
    if not isinstance(obj, Mapping) or "config" not in obj or "state_dict" not in obj:
        return False
    config = obj["config"]
    return obj.get("format") == FORMAT or (isinstance(config, Mapping) and "class" not in config)


def _looks_like_reference(obj: Mapping) -> bool:
    config = obj.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("class"), str):
        return True
    keys = obj["state_dict"].keys()
    return any(str(k).startswith(("click_aware_decoder.", "neck.down_4.", "patch_embed_coords.")) for k in keys)


def convert_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> dict:
    """Convert an authors' AdaptiveClick / SimpleClick v1.0 checkpoint into this project's format.

    The output is written atomically by :func:`save_model` and loads with ``torch.load(weights_only=True)`` and
    :func:`load_model` like any model of this project; ``extra`` records where it came from.

    Args:
        src: the authors' file.
        dst: the output file.

    Returns:
        ``{"family", "size", "ignored", "path"}``: the detected family and size, the authors' keys that were not
        loaded (all on the ignore list of :mod:`.reference`), and the path written.

    Raises:
        ValueError: as :func:`load_model` (the file is refused, not partly converted).
    """
    src = Path(src)
    obj = safe_torch_load(src)
    try:
        model, report = build_reference_model(obj)
    except ValueError as err:
        raise ValueError(f"{src}: {err}") from err
    written = save_model(
        model,
        dst,
        source=str(src.name),
        source_family=report["family"],
        source_size=report["size"],
        ignored_keys=list(report["ignored"]),
    )
    return {"family": report["family"], "size": report["size"], "ignored": report["ignored"], "path": written}


def read_checkpoint_extra(path: str | os.PathLike) -> dict:
    """The plain data stored beside the weights by :func:`save_model` (its ``extra`` keywords), without the weights.

    The file is memory-mapped, so no tensor is read. A file without that entry (or one that cannot be mapped, such
    as a plain state dict in the legacy format) gives ``{}``.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
        >>> _ = save_model(create_model("tiny", in_channels=1), path, sequences=["t1"])
        >>> read_checkpoint_extra(path)
        {'sequences': ['t1']}
    """
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - unmappable legacy files simply carry no extra data
        return {}
    extra = stored.get("extra") if isinstance(stored, Mapping) else None
    return dict(extra) if isinstance(extra, Mapping) else {}


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a pretrained ViT state dict from a local file: the ``"model"`` or ``"state_dict"`` entry or the raw
    mapping, with wrapper prefixes (``module.``, ``encoder.``, ``backbone.`` ...) stripped."""
    obj = _torch_load(path)
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} does not hold a state dict (got {type(obj).__name__}).")
    for key in ("model", "state_dict"):
        if key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if k.startswith(prefix):
                    k, changed = k[len(prefix) :], True
        out[k] = v
    return out


def _pos_embed_to_grid(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """timm / MAE ``[1, prefix + g*g, D]`` or SAM-style ``[1, g, g, D]`` -> ``[1, grid_h, grid_w, D]`` (bicubic)."""
    if pos.ndim == 3:
        tokens = pos.shape[1]
        side = math.isqrt(tokens)
        if tokens - side * side > 8:  # more than a few prefix tokens means it is not square
            raise ValueError(f"cannot read a square position-embedding grid from {tuple(pos.shape)}.")
        pos = pos[:, tokens - side * side :].reshape(1, side, side, -1)
    if pos.ndim != 4:
        raise ValueError(f"unsupported position embedding shape {tuple(pos.shape)}.")
    if tuple(pos.shape[1:3]) == tuple(grid):
        return pos
    nchw = pos.permute(0, 3, 1, 2).float()
    return F.interpolate(nchw, size=grid, mode="bicubic", align_corners=False).permute(0, 2, 3, 1).to(pos.dtype)


def load_pretrained_backbone(model: AdaptiveClick, path: str | os.PathLike) -> dict:
    """Load MAE / timm ViT weights from a local file into ``model.backbone``.

    - the file may hold ``{"model": sd}``, ``{"state_dict": sd}`` or ``sd`` (``.pth``/``.pt`` or ``.safetensors``);
      prefixes ``module.``, ``encoder.``, ``backbone.`` ... are stripped;
    - timm / MAE names (``patch_embed.proj``, ``pos_embed``, ``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
      mlp.fc2}``, ``norm``) are the backbone's own names;
    - the position embedding loses its class-token entry and is resampled bicubically to the model's grid;
    - classifier heads, ``fc_norm``, tokens, the MAE decoder and SAM necks are ignored;
    - image patch embedding for ``in_channels != 3``: the RGB kernels are averaged over the colour axis, repeated
      ``in_channels`` times and scaled by ``3 / in_channels`` (an image whose channels are equal then gives the same
      tokens as the RGB model on the equal-channel RGB image); ``in_channels == 3`` copies them;
    - the guidance embedding is never pretrained and keeps its initialisation.

    Args:
        model: the AdaptiveClick model.
        path: local checkpoint file.

    Returns:
        ``{"loaded": [keys], "ignored": [keys], "pos_embed": (old_shape, new_shape)}``.

    Raises:
        ValueError: a shape mismatch (other than the handled ones), a missing backbone key or an unexpected one,
            listed together.
    """
    source = read_state_dict(path)
    own = model.backbone.state_dict()
    ignored = sorted(k for k in source if _IGNORED.match(k) and k not in own)
    source = {k: v for k, v in source.items() if k not in ignored}
    report_pos = None
    if "pos_embed" in source:
        old = tuple(source["pos_embed"].shape)
        source["pos_embed"] = _pos_embed_to_grid(source["pos_embed"], tuple(own["pos_embed"].shape[1:3]))
        report_pos = (old, tuple(source["pos_embed"].shape))
    key = "patch_embed.proj.weight"
    if key in source and source[key].ndim == 4 and source[key].shape[1] != own[key].shape[1]:
        weight = source[key]
        channels = own[key].shape[1]
        source[key] = weight.mean(1, keepdim=True).repeat(1, channels, 1, 1) * (weight.shape[1] / channels)
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in source.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = sorted(k for k in own if k not in source and not k.startswith(_NEVER_PRETRAINED))
    unexpected = sorted(k for k in source if k not in own)
    if mismatched or missing or unexpected:
        raise ValueError(
            f"pretrained backbone {path} does not fit the model backbone:\n"
            + (f"  shape mismatches ({len(mismatched)}): {mismatched}\n" if mismatched else "")
            + (f"  missing keys ({len(missing)}): {missing}\n" if missing else "")
            + (f"  unexpected keys ({len(unexpected)}): {unexpected}\n" if unexpected else "")
        )
    model.backbone.load_state_dict(source, strict=False)
    return {"loaded": sorted(source), "ignored": ignored, "pos_embed": report_pos}
