# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Small shared pieces of the MONAI Label app: a thread-safe LRU cache and the request error type (issues 7, 16)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from fastapi import HTTPException

__all__ = ["LRUCache", "RequestError"]

V = TypeVar("V")


class RequestError(ValueError, HTTPException):
    """A request the server cannot serve, with the HTTP status code the client should receive.

    It is a FastAPI ``HTTPException``: raised anywhere under an endpoint (the app's ``infer``, the datastore's
    ``add_image`` / ``save_label``, the request guards) it reaches the client as that status with a JSON ``detail``
    naming the problem, so that 3D Slicer / OHIF can show it, and the server keeps serving. It is also a
    ``ValueError`` for code that runs outside a server (the train task, tests).

    Args:
        message: what is wrong with the request, in words a user understands.
        status_code: HTTP status, 400 (bad request) by default; 403 (refused), 404 (unknown id), 422 (a file that
            cannot be used).

    Raises:
        ValueError: ``status_code`` is not an HTTP error code.
    """

    def __init__(self, message: str, status_code: int = 400) -> None:
        if not 400 <= int(status_code) <= 599:
            raise ValueError(f"status_code must be an HTTP error code in [400, 599], got {status_code}.")
        ValueError.__init__(self, message)
        HTTPException.__init__(self, status_code=int(status_code), detail=message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class LRUCache(Generic[V]):
    """A bounded least-recently-used mapping, safe to share between server threads.

    Args:
        max_items: the most entries kept; inserting one more evicts the least recently used entry.

    Example:
        >>> cache = LRUCache(2)
        >>> cache.put("a", 1); cache.put("b", 2); cache.get("a"); cache.put("c", 3)
        1
        >>> sorted(cache.keys())
        ['a', 'c']
    """

    def __init__(self, max_items: int) -> None:
        if int(max_items) < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}.")
        self.max_items = int(max_items)
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, key: Hashable) -> V | None:
        """Return the value stored for ``key`` (marking it most recently used), or ``None``."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` under ``key``, evicting the least recently used entries beyond ``max_items``."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def get_or_create(self, key: Hashable, factory: Callable[[], V]) -> V:
        """Return the value for ``key``, creating and storing it with ``factory()`` when missing.

        The factory runs under the cache lock, so concurrent requests for one key build the value once.
        """
        with self._lock:
            value = self.get(key)
            if value is None:
                value = factory()
                self.put(key, value)
            return value

    def pop(self, key: Hashable) -> V | None:
        """Remove ``key`` and return its value, or ``None`` when absent."""
        with self._lock:
            return self._items.pop(key, None)

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._items.clear()

    def keys(self) -> list[Hashable]:
        """The keys, least recently used first."""
        with self._lock:
            return list(self._items.keys())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
