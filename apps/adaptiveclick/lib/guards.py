# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Request checks for what MONAI Label's endpoints do before the app sees a request (issue 16).

In MONAI Label 0.8.5 the endpoint functions parse the ``params`` form field themselves (``json.loads``), merge it
over the query (``request.update(params)``: a ``params.image`` replaces ``?image=``), and answer an empty image id
with a 500. The app cannot see any of that, so :func:`install_request_guards` wraps those functions
(``monailabel.endpoints.infer.run_inference``, ``monailabel.endpoints.datastore.add_image`` / ``save_label`` /
``update_image_info`` / ``update_label_info``; the routes call them by module name) with checks that answer HTTP 400
naming the problem and otherwise call the original unchanged. Everything after them (ids, tags, files, clicks) is
checked by the app and its datastore.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from .common import RequestError

__all__ = ["check_infer_call", "install_request_guards", "parse_params"]

logger = logging.getLogger(__name__)

_MARK = "__adaptiveclick_guard__"
_RESERVED = {"image": "the image is the ?image= query parameter", "model": "the model is the URL path /infer/<model>"}


def parse_params(value: Any, field: str = "params") -> dict:
    """The JSON object sent in a form field; ``RequestError`` (400) for anything else.

    Example:
        >>> parse_params('{"foreground": [[1, 2, 3]]}')
        {'foreground': [[1, 2, 3]]}
        >>> parse_params("[1, 2]")
        Traceback (most recent call last):
        ...
        lib.common.RequestError: 'params' must be a JSON object such as {"foreground": [[10, 20, 3]]}, got a JSON list.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        raise RequestError(
            f"'{field}' is not valid JSON ({err.msg} at character {err.pos}); send a JSON object such as "
            '{"foreground": [[10, 20, 3]]}.'
        ) from err
    except (TypeError, ValueError) as err:
        raise RequestError(f"'{field}' must be a JSON text, got {type(value).__name__}.") from err
    if not isinstance(parsed, dict):
        kind = {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(parsed), "null")
        raise RequestError(
            f"'{field}' must be a JSON object such as {{\"foreground\": [[10, 20, 3]]}}, got a JSON {kind}."
        )
    return parsed


def check_infer_call(arguments: Mapping[str, Any]) -> None:
    """Checks of ``POST /infer/<model>`` before MONAI Label merges the request (arguments of ``run_inference``).

    Raises:
        RequestError: an uploaded image, label or session instead of a datastore id; ``params`` that is not a JSON
            object or that sets ``image`` / ``model`` to another value than the query / path; no image id.
    """
    if arguments.get("file") is not None or arguments.get("session_id"):
        raise RequestError(
            "this server segments images of its datastore only: add the image with PUT /datastore/image, then send "
            "?image=<image id> (uploaded files and sessions are not accepted by /infer)."
        )
    if arguments.get("label") is not None:
        raise RequestError("this model takes no label file: send the clicks in 'params'.")
    params = parse_params(arguments.get("params"))
    for key, why in _RESERVED.items():  # MONAI Label would let params override them: only the same value is allowed
        if key in params and params[key] != arguments.get(key):
            raise RequestError(f"'params' may not set {key!r} (to {params[key]!r:.80}): {why}.")
    if not arguments.get("image"):
        raise RequestError("no image given: pass ?image=<image id> (a name from GET /datastore/).")


def _check_form(field: str) -> Callable[[Mapping[str, Any]], None]:
    def check(arguments: Mapping[str, Any]) -> None:
        parse_params(arguments.get(field), field)

    return check


_GUARDS: dict[str, dict[str, Callable[[Mapping[str, Any]], None]]] = {
    "monailabel.endpoints.infer": {"run_inference": check_infer_call},
    "monailabel.endpoints.datastore": {
        "add_image": _check_form("params"),
        "save_label": _check_form("params"),
        "update_image_info": _check_form("info"),
        "update_label_info": _check_form("info"),
    },
}


def _guard(function: Callable, check: Callable[[Mapping[str, Any]], None]) -> Callable:
    signature = inspect.signature(function)

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(signature.bind_partial(*args, **kwargs).arguments)
        return function(*args, **kwargs)

    setattr(guarded, _MARK, True)
    return guarded


def install_request_guards() -> list[str]:
    """Wrap MONAI Label's endpoint functions with the checks above (once; later calls change nothing).

    Returns:
        The qualified names of the functions guarded by this call.

    Raises:
        RuntimeError: a function to guard is missing (another MONAI Label version): the app must not run unguarded.
    """
    installed = []
    for module_name, checks in _GUARDS.items():
        module = importlib.import_module(module_name)
        for name, check in checks.items():
            function = getattr(module, name, None)
            if not callable(function):
                raise RuntimeError(f"{module_name}.{name} not found: the request guards need MONAI Label 0.8.5.")
            if getattr(function, _MARK, False):
                continue
            setattr(module, name, _guard(function, check))
            installed.append(f"{module_name}.{name}")
    if installed:
        logger.info(f"AdaptiveClick request guards on {', '.join(installed)}")
    return installed
