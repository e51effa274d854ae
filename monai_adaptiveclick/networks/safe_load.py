# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Opening checkpoint files safely (SPEC section 10): a restricted unpickler for the authors' files.

The authors' trainers (AdaptiveClick, SimpleClick v1.0) save ``{"state_dict": ..., "config": ...}`` where the config
holds pickled objects: an ``easydict.EasyDict``, ``pathlib.PosixPath`` paths, a ``torch.device('cuda:N')`` and, in
SimpleClick files, a pickled ``CrossEntropyLoss`` module referencing a ``cross_entropy`` function. ``torch.load(...,
weights_only=True)`` refuses them and ``weights_only=False`` would run any code a file names. :func:`safe_torch_load`
first tries ``weights_only=True`` (the project's own files) and otherwise unpickles with :data:`restricted_pickle`,
which resolves only:

- torch's tensor rebuild functions and storage classes (``torch._utils._rebuild_tensor_v2`` ...),
- ``collections.OrderedDict``, ``builtins.set`` / ``frozenset``,
- stand-ins (plain inert classes of this module) for ``easydict.EasyDict`` (a dict), ``pathlib.PosixPath`` /
  ``WindowsPath`` (pure paths, never touching the file system), ``torch.device`` (a record of the name, so a CUDA
  device in the config loads on a CPU-only machine), SimpleClick's ``CrossEntropyLoss`` (state kept as a dict) and its
  ``cross_entropy`` function (a placeholder that refuses to be called).

Any other global raises ``ValueError`` naming it, before anything is constructed. ``easydict`` and the authors'
``isegm`` package need not be installed. Tensors are always mapped to the CPU first (``map_location="cpu"``).

Example:
    >>> import pickle, subprocess
    >>> payload = pickle.dumps(subprocess.Popen)
    >>> try:
    ...     restricted_pickle.loads(payload)
    ... except ValueError as err:
    ...     print(str(err)[:50])
    refusing to unpickle the global 'subprocess.Popen'
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import types
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch

__all__ = [
    "ALLOWED_GLOBALS",
    "DeviceStandIn",
    "EasyDictStandIn",
    "ModuleStandIn",
    "restricted_pickle",
    "safe_torch_load",
    "to_plain",
]


class EasyDictStandIn(dict):
    """Stand-in for ``easydict.EasyDict``: a dict whose items are also readable as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            for key, value in state.items():
                self.setdefault(key, value)


class DeviceStandIn:
    """Stand-in for ``torch.device``: keeps the pickled arguments (``"cuda:0"`` ...) without creating a device."""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __repr__(self) -> str:
        return f"device{self.args!r}"


class ModuleStandIn:
    """Stand-in for a pickled object of the authors' code (SimpleClick's ``CrossEntropyLoss``): its state as a dict."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _function_stand_in(*args: Any, **kwargs: Any) -> None:
    """Stand-in for a pickled function of the authors' code; never meant to run."""
    raise RuntimeError("a stand-in for a function of the authors' code was called")


def _path_stand_in(cls: type) -> Any:
    def build(*parts: Any) -> Any:
        return cls(*[str(p) for p in parts])

    build.__name__ = cls.__name__
    return build


_SC_LOSS = "isegm.model.modeling.transformer_helper.cross_entropy_loss"
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "device"): DeviceStandIn,
    ("easydict", "EasyDict"): EasyDictStandIn,
    ("pathlib", "PosixPath"): _path_stand_in(PurePosixPath),
    ("pathlib", "WindowsPath"): _path_stand_in(PureWindowsPath),
    ("pathlib", "PurePosixPath"): _path_stand_in(PurePosixPath),
    ("pathlib", "PureWindowsPath"): _path_stand_in(PureWindowsPath),
    (_SC_LOSS, "CrossEntropyLoss"): ModuleStandIn,
    (_SC_LOSS, "cross_entropy"): _function_stand_in,
}
"""``(module, name)`` -> the object the restricted unpickler returns for it (see the module docstring)."""

_STORAGES = {
    name
    for name in dir(torch)
    if name.endswith("Storage") and isinstance(getattr(torch, name), type) and not name.startswith("_")
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":
            module = "builtins"
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        if module in ("torch", "torch.storage") and name in _STORAGES | {"UntypedStorage", "TypedStorage"}:
            return getattr(torch, name)
        raise ValueError(
            f"refusing to unpickle the global '{module}.{name}' (only tensors, dicts and the stand-ins of "
            "monai_adaptiveclick.networks.safe_load.ALLOWED_GLOBALS are allowed): the file is not an AdaptiveClick / "
            "SimpleClick checkpoint or it holds code."
        )


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


def _restricted_loads(data: bytes, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


restricted_pickle = types.ModuleType("monai_adaptiveclick_restricted_pickle")
"""A ``pickle_module`` for ``torch.load`` whose unpickler only resolves :data:`ALLOWED_GLOBALS`."""
restricted_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle.load = _restricted_load  # type: ignore[attr-defined]
restricted_pickle.loads = _restricted_loads  # type: ignore[attr-defined]
restricted_pickle.Pickler = pickle.Pickler  # type: ignore[attr-defined]
restricted_pickle.__version__ = "1.0"  # type: ignore[attr-defined]


def safe_torch_load(path: str | os.PathLike) -> Any:
    """Load a ``torch.save`` file on the CPU without running code from it.

    ``torch.load(weights_only=True)`` first; a file it refuses for a pickled global is read again with
    :data:`restricted_pickle`.

    Args:
        path: the file.

    Returns:
        the unpickled object, every tensor on the CPU.

    Raises:
        ValueError: missing file, a truncated / corrupt file, or a forbidden global (named in the message).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # a pickled global weights_only does not know: try the restricted unpickler
    except Exception as err:  # noqa: BLE001 - zip / EOF errors have no common base class
        raise ValueError(_unreadable(path, err)) from err
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    except Exception as err:  # noqa: BLE001
        raise ValueError(_unreadable(path, err)) from err


def _unreadable(path: Path, err: Exception) -> str:
    kind = "a truncated or corrupt zip archive" if not zipfile.is_zipfile(path) else "an unreadable archive"
    return f"could not read {path} as a torch checkpoint ({kind}?): {type(err).__name__}: {err}"


def to_plain(obj: Any) -> Any:
    """Stand-ins and containers -> plain ``dict`` / ``list`` / ``str`` (for reading a stored config).

    Example:
        >>> to_plain(EasyDictStandIn(a=EasyDictStandIn(b=(1, 2))))
        {'a': {'b': [1, 2]}}
    """
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (PurePosixPath, PureWindowsPath, DeviceStandIn)):
        return str(obj)
    if isinstance(obj, ModuleStandIn):
        return {"stand_in": "module"}
    return obj
