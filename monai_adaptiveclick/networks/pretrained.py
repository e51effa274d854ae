# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Models shipped inside the package (issue 14): half-precision safetensors weights beside a JSON model card.

``monai_adaptiveclick/pretrained/<name>.safetensors`` holds the model's state dict (floating tensors as float16, the
others as they are) and ``<name>.json`` its card:

- ``architecture``: the record :func:`~.checkpoint.save_model` stores as ``config``
  (:func:`~.checkpoint.model_architecture`), which :func:`~.factory.build_model` turns back into the same model;
- ``sha256`` of the weights file, ``dtype`` of its floating tensors, ``parameters`` (count), ``name``, ``weights``
  (the file name);
- the free-form fields of :data:`CARD_FIELDS` (description, data, recipe, command, steps, training time, figures,
  licence), ``null`` when not given, plus any other field the exporter adds.

Nothing is downloaded. :func:`load_pretrained` reads the two files, checks the checksum and that the tensors fit the
architecture, and returns the float32 model. Wherever the Predictor takes a checkpoint path, ``pretrained:NAME``
names a shipped model (:func:`pretrained_name`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError

from .adaptiveclick import AdaptiveClick
from .checkpoint import check_state_dict, load_model, model_architecture
from .deepgrow import DeepGrow2D
from .factory import build_model

__all__ = [
    "CARD_FIELDS",
    "EXPORT_TOLERANCE",
    "PRETRAINED_DIR",
    "PRETRAINED_PREFIX",
    "export_pretrained",
    "list_pretrained",
    "load_pretrained",
    "pretrained_name",
    "read_model_card",
]

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
"""The package-data folder of the shipped models (``monai_adaptiveclick/pretrained``)."""
PRETRAINED_PREFIX = "pretrained:"
"""``pretrained:NAME`` in place of a checkpoint path names the shipped model ``NAME``."""
CARD_FIELDS = ("description", "data", "recipe", "command", "steps", "training_time", "figures", "licence")
"""Free-form fields every card has (``null`` when the exporter does not give them)."""
EXPORT_TOLERANCE = 1e-2
"""Largest absolute probability difference :func:`export_pretrained` accepts between the exported and source model."""

_COMPUTED = ("name", "weights", "dtype", "parameters", "architecture", "sha256")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}


def _folder(folder: str | os.PathLike | None) -> Path:
    return Path(PRETRAINED_DIR if folder is None else folder)


def pretrained_name(source: object) -> str | None:
    """``NAME`` when ``source`` is the reference ``"pretrained:NAME"`` to a shipped model, else ``None``.

    Example:
        >>> pretrained_name("pretrained:starter"), pretrained_name(Path("pretrained:starter")), pretrained_name("m.pt")
        ('starter', 'starter', None)
    """
    if not isinstance(source, (str, os.PathLike)):
        return None
    text = os.fspath(source)
    return text[len(PRETRAINED_PREFIX) :] if isinstance(text, str) and text.startswith(PRETRAINED_PREFIX) else None


def list_pretrained(folder: str | os.PathLike | None = None) -> list[str]:
    """Names of the models in ``folder`` (default :data:`PRETRAINED_DIR`): one per ``<name>.json`` card, sorted.

    Example:
        >>> import tempfile
        >>> list_pretrained(tempfile.mkdtemp())
        []
    """
    folder = _folder(folder)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if _NAME.match(p.stem))


def read_model_card(name: str = "starter", folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """The card of the shipped model ``name`` (see the module docstring), without reading the weights.

    Args:
        name: the model's name (:func:`list_pretrained`).
        folder: where the models are (default :data:`PRETRAINED_DIR`).

    Raises:
        ValueError: an unknown name (the available ones are listed), an unreadable card or one without an
            ``architecture`` object and a ``sha256`` string.
    """
    folder = _folder(folder)
    available = list_pretrained(folder)
    if name not in available:
        raise ValueError(f"unknown pretrained model {name!r}; available in {folder}: {', '.join(available) or 'none'}.")
    path = folder / f"{name}.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read the model card {path}: {err}") from err
    if not isinstance(card, dict) or not isinstance(card.get("architecture"), dict):
        raise ValueError(f"model card {path} has no 'architecture' object.")
    if not isinstance(card.get("sha256"), str):
        raise ValueError(f"model card {path} has no 'sha256' string for its weights file.")
    return card


def load_pretrained(
    name: str = "starter", folder: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> AdaptiveClick | DeepGrow2D:
    """The shipped model ``name`` in float32 and eval mode (nothing is downloaded).

    The global random state is left untouched (the model is built inside a forked generator before its weights are
    loaded).

    Args:
        name: the model's name (:func:`list_pretrained`; the package ships ``"starter"``).
        folder: where the models are (default :data:`PRETRAINED_DIR`).
        device: where the model goes.

    Returns:
        the model, its weights those of ``<name>.safetensors`` cast to float32.

    Raises:
        ValueError: an unknown name (the available ones are listed); an unreadable card; a truncated or corrupt
            weights file, or one whose sha256 differs from the card's (the file is named); tensors that do not fit
            the card's architecture ("architecture mismatch", with the differing keys and shapes).
        FileNotFoundError: the card is there but its weights file is not.
    """
    card = read_model_card(name, folder)
    folder = _folder(folder)
    return _restore(folder / f"{name}.safetensors", folder / f"{name}.json", card).to(device).eval()


def _restore(weights: Path, card_path: Path, card: Mapping[str, Any]) -> AdaptiveClick | DeepGrow2D:
    """The float32 model of ``card`` with the tensors of ``weights`` (see :func:`load_pretrained`)."""
    tensors = _read_weights(weights, str(card["sha256"]))
    try:
        with torch.random.fork_rng(devices=[]):
            model = build_model(card["architecture"])
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"model card {card_path}: its architecture cannot be built: {err}") from err
    state = {key: value.float() if value.is_floating_point() else value for key, value in tensors.items()}
    try:
        check_state_dict(model, state)
    except ValueError as err:
        raise ValueError(
            f"{weights}: architecture mismatch between its tensors and the card {card_path}: {err}"
        ) from err
    return model.eval()


def _read_weights(path: Path, sha256: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file whose checksum must be ``sha256``."""
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights file {path} is missing (its model card is there): reinstall the package or export "
            "the model again."
        )
    data = path.read_bytes()
    try:
        tensors = safetensors.torch.load(data)
    except (SafetensorError, ValueError) as err:
        raise ValueError(f"{path} is not a readable safetensors file (truncated or corrupt): {err}") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.lower():
        raise ValueError(
            f"{path}: sha256 {digest} differs from the model card's {sha256}: the file is corrupt or is not the one "
            "its card describes."
        )
    return tensors


def export_pretrained(
    checkpoint: str | os.PathLike,
    name: str,
    card: Mapping[str, Any] | None = None,
    folder: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Write a model as a shipped model: ``<name>.safetensors`` and its card ``<name>.json`` in ``folder``.

    Both files are written to temporary files in ``folder`` first; the model is restored from them as
    :func:`load_pretrained` would and its final probabilities (``model.predict`` on a seeded random input: image,
    previous mask and sparse click maps, batch 2, at the model's ``image_size``) are compared with those of the
    float32 source model; only then are the files renamed into place (the weights first, so that a name is listed
    only once both files are there). Existing files of that name are replaced.

    Args:
        checkpoint: any file :func:`~.checkpoint.load_model` reads without further arguments (this project's
            format, the authors' AdaptiveClick / SimpleClick v1.0 checkpoints).
        name: the model's name: letters, digits, ``_`` and ``-``, not starting with ``_`` or ``-``.
        card: the card's free-form fields (:data:`CARD_FIELDS` and any other JSON-ready ones); the computed fields
            (``name``, ``weights``, ``dtype``, ``parameters``, ``architecture``, ``sha256``) may not be given.
        folder: where to write (default :data:`PRETRAINED_DIR`, the package's own folder); created when missing.
        dtype: the floating tensors' type: ``torch.float16`` (default), ``torch.bfloat16`` or ``torch.float32``.

    Returns:
        the path of the weights file.

    Raises:
        ValueError: a bad name, dtype or card; a checkpoint :func:`~.checkpoint.load_model` refuses; a tensor that is
            not finite in ``dtype``; probabilities of the exported model differing by more than
            :data:`EXPORT_TOLERANCE` (nothing is written then).

    Example:
        >>> from monai_adaptiveclick.networks import create_model, save_model
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = save_model(create_model("tiny", in_channels=1), folder / "model.pt")
        >>> export_pretrained(folder / "model.pt", "mine", card={"description": "a test"}, folder=folder).name
        'mine.safetensors'
        >>> list_pretrained(folder), read_model_card("mine", folder)["dtype"], load_pretrained("mine", folder).training
        (['mine'], 'float16', False)
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"a pretrained model name is letters, digits, '_' and '-' (not first), got {name!r}.")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES.values())} (torch dtypes), got {dtype}.")
    card = dict(card or {})
    reserved = sorted(set(card) & set(_COMPUTED))
    if reserved:
        raise ValueError(f"card fields {reserved} are written by export_pretrained; leave them out.")
    try:
        json.dumps(card)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the card must hold JSON data only: {err}") from err
    model = load_model(checkpoint, map_location="cpu")
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        tensors[key] = (value.to(dtype) if value.is_floating_point() else value).contiguous().clone()
    not_finite = sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if not_finite:
        raise ValueError(
            f"{checkpoint}: {not_finite[:5]} are not finite in {_DTYPES[dtype]} (NaN, or beyond its range)."
        )
    blob = safetensors.torch.save(tensors)
    record = {
        "name": name,
        "weights": f"{name}.safetensors",
        "dtype": _DTYPES[dtype],
        "parameters": sum(p.numel() for p in model.parameters()),
        "architecture": model_architecture(model),
        **dict.fromkeys(CARD_FIELDS),
        **card,
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    folder = _folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights_path, card_path = folder / f"{name}.safetensors", folder / f"{name}.json"
    with _staged(card_path) as card_staging, _staged(weights_path) as weights_staging:
        _write(weights_staging, blob)
        _write(card_staging, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
        _compare_outputs(model, _restore(weights_staging, card_staging, record), f"{checkpoint} exported as {name!r}")
    return weights_path


@contextmanager
def _staged(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path``, renamed to ``path`` when the block succeeds, removed otherwise."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _compare_outputs(reference: torch.nn.Module, restored: torch.nn.Module, what: str) -> None:
    """Raise ``ValueError`` when the final probabilities of the two models differ by more than
    :data:`EXPORT_TOLERANCE` on a seeded random input."""
    size, channels = int(reference.image_size), int(reference.in_channels) + 3
    x = torch.rand(2, channels, size, size, generator=torch.Generator().manual_seed(0))
    x[:, -2:] = (x[:, -2:] > 0.98).float()  # sparse positive / negative click maps
    with torch.inference_mode():
        difference = float((reference.eval().predict(x)[0] - restored.predict(x)[0]).abs().max())
    if not difference <= EXPORT_TOLERANCE:
        raise ValueError(
            f"{what}: the exported model's probabilities differ from the source model's by {difference:.3g} "
            f"(more than {EXPORT_TOLERANCE}); nothing was written."
        )
