# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The app's datastore: MONAI Label's local datastore confined to its studies folder, with checks at the door.

MONAI Label 0.8.5 routes every datastore request (``PUT /datastore/image`` -> ``add_image``, ``PUT
/datastore/label`` and the infer ``save_label`` -> ``save_label``, downloads and infer -> ``get_image_uri`` /
``get_label_uri``, ``DELETE`` -> ``remove_*``, ``PUT .../info`` -> ``update_*_info``) to these methods of the app's
datastore, so :class:`ConfinedLocalDatastore` overrides exactly them (issue 16):

- an **image id** is a plain name (no ``/``, ``\\``, control characters, not ``.`` / ``..``) and a **label tag** a
  plain word (letters, digits, ``_ - .``); anything else is refused with HTTP 400 before the file system is touched,
  so the answer never depends on whether some path exists; a well-formed id that names no image is a 404;
- every file read or written resolves (links followed) inside the studies folder; a link leading out of it is
  refused with HTTP 403;
- uploads and saved labels are checked (``monai_adaptiveclick.data.validation``) before they are copied in: a file
  that is not a readable 3-D / 4-D volume with finite voxels, or a label whose shape differs from its image or whose
  values are not small non-negative integers, is refused with HTTP 422 naming the problem;
- :meth:`ConfinedLocalDatastore.image_problem` says why a stored image cannot be used (cached per file version),
  for the active-learning strategy.

Errors are :class:`lib.common.RequestError` (an ``HTTPException``), so the endpoint answers the 4xx itself.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.exception import ImageNotFoundException, LabelNotFoundException

from monai_adaptiveclick.data.items import BadInputError
from monai_adaptiveclick.data.validation import check_image_file, check_label_file

from .common import LRUCache, RequestError

__all__ = ["ConfinedLocalDatastore", "check_image_id", "check_label_tag", "WRITE_EXTENSIONS"]

logger = logging.getLogger(__name__)

#: File endings accepted for uploaded images and labels (single-file volume formats).
WRITE_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd")
_ID_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f]")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_MAX_ID = 200


def _shown(value: Any) -> str:
    """``repr`` of a client value, shortened for messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_image_id(image_id: Any, what: str = "image id") -> str:
    """Return ``image_id`` when it is a plain datastore name, else raise ``RequestError`` (400).

    The check looks at the text only (never at the file system), so a refused path gets the same answer whether or
    not it exists.

    Example:
        >>> check_image_id("case_001")
        'case_001'
        >>> check_image_id("../etc/passwd")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lib.common.RequestError: image id '../etc/passwd' is not a datastore image name: ... paths are not accepted.
    """
    if not isinstance(image_id, str) or not image_id.strip():
        raise RequestError(f"no {what} given: pass the name of an image of the datastore, e.g. ?image=case_001.")
    if len(image_id) > _MAX_ID or image_id in (".", "..") or _ID_FORBIDDEN.search(image_id):
        raise RequestError(
            f"{what} {_shown(image_id)} is not a datastore image name: ids are plain names without '/', '\\', '..' "
            "or control characters (e.g. 'case_001'); paths are not accepted."
        )
    return image_id


def check_label_tag(tag: Any) -> str:
    """Return ``tag`` when it is a plain word (letters, digits, ``_ - .``, at most 64), else ``RequestError`` (400).

    Example:
        >>> check_label_tag("final")
        'final'
    """
    if not isinstance(tag, str) or not tag:
        raise RequestError("no label tag given: use a plain word such as 'final' or 'original'.")
    if not _TAG.match(tag):
        raise RequestError(
            f"label tag {_shown(tag)} is not a plain word: tags are letters, digits, '_', '-' and '.' (not first), "
            "at most 64 characters, e.g. 'final'; paths are not accepted."
        )
    return tag


def _info(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"'params' must be a JSON object, got {type(value).__name__} {_shown(value)}.")
    return value


class ConfinedLocalDatastore(LocalDatastore):
    """``LocalDatastore`` whose ids, tags and files stay inside the studies folder, with file checks at the door.

    Args:
        datastore_path: the studies folder.
        max_channels: most channels of an uploaded 4-D image.
        max_label: largest value of an uploaded or saved label.
        **kwargs: passed to ``LocalDatastore`` (``extensions``, ``auto_reload``, ``read_only``, ...).
    """

    def __init__(self, datastore_path: str, *, max_channels: int = 4, max_label: int = 255, **kwargs: Any) -> None:
        self._root = os.path.realpath(datastore_path)
        self._max_channels = int(max_channels)
        self._max_label = int(max_label)
        self._verdicts: LRUCache[str] = LRUCache(4096)
        super().__init__(datastore_path, **kwargs)

    # -- where files are ---------------------------------------------------------------------------------------
    def _confined(self, path: str, what: str) -> str:
        """``path`` resolved (links followed); ``RequestError`` 403 when that leaves the studies folder."""
        real = os.path.realpath(path)
        if os.path.commonpath([real, self._root]) != self._root:
            raise RequestError(f"{what} is a link that leads outside the studies folder; refused.", 403)
        return real

    def _write_ext(self, filename: str, what: str) -> str:
        _, ext = self._to_id(os.path.basename(filename))
        allowed = [e for e in WRITE_EXTENSIONS if f"*{e}" in self._extensions]
        if ext not in allowed:
            raise RequestError(
                f"{what} must be a {' / '.join(allowed)} file; the upload's name ends with {ext or 'no extension'!r}.",
                422,
            )
        return ext

    def get_image_uri(self, image_id: str) -> str:
        """The image file of ``image_id`` ("" when unknown); ids are checked, links out of the folder refused."""
        check_image_id(image_id)
        uri = super().get_image_uri(image_id)
        return self._confined(uri, f"image {image_id!r}") if uri else ""

    def get_label_uri(self, label_id: str, label_tag: str) -> str:
        """The label file of ``label_id`` / ``label_tag`` ("" when unknown); checked like :meth:`get_image_uri`."""
        check_image_id(label_id, "label id")
        check_label_tag(label_tag)
        uri = super().get_label_uri(label_id, label_tag)
        return self._confined(uri, f"label {label_id!r} ({label_tag})") if uri else ""

    def resolve_image(self, image_id: Any) -> str:
        """The file of a datastore image; ``RequestError`` 400 for a bad id, 404 for an unknown one, 403 for a link
        out of the studies folder."""
        uri = self.get_image_uri(check_image_id(image_id))
        if not uri:
            raise RequestError(f"unknown image {image_id!r}: no such image in the datastore.", 404)
        return uri

    # -- writes ------------------------------------------------------------------------------------------------
    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        """Check the id, the destination and the uploaded file, then store it (``PUT /datastore/image``).

        Raises:
            RequestError: 400 bad id or params, 403 destination outside the folder, 422 a file that fails the checks.
        """
        info = _info(image_info)
        derived, _ = self._to_id(os.path.basename(image_filename))
        image_id = check_image_id(image_id or derived)
        ext = self._write_ext(image_filename, f"image {image_id!r}")
        self._confined(os.path.join(self._datastore.image_path(), image_id + ext), f"image {image_id!r}")
        name = f"uploaded image {image_id!r}"
        try:
            check_image_file(image_filename, name=name, max_channels=self._max_channels)
        except BadInputError as err:
            logger.warning(f"refused upload: {err}")
            raise RequestError(f"{err}; the image was not stored.", 422) from err
        return super().add_image(image_id, image_filename, info)

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        """Check the id, tag, destination and label file (shape = image shape, values), then store it.

        Raises:
            RequestError: 400 bad id / tag / params, 404 unknown image, 403 destination outside the folder, 422 a
                label that fails the checks (or an image too damaged to check it against).
        """
        info = _info(label_info)
        check_label_tag(label_tag)
        image_uri = self.resolve_image(image_id)
        ext = self._write_ext(label_filename, f"label for image {image_id!r}")
        self._confined(os.path.join(self._datastore.label_path(label_tag), image_id + ext), f"label tag {label_tag!r}")
        try:
            image = check_image_file(
                image_uri, name=f"image {image_id!r}", max_channels=self._max_channels, read_voxels=False
            )
            name = f"label for image {image_id!r}"
            check_label_file(label_filename, image.spatial_shape, name=name, max_label=self._max_label)
        except BadInputError as err:
            logger.warning(f"refused label: {err}")
            raise RequestError(f"{err}; the label was not stored.", 422) from err
        return super().save_label(image_id, label_filename, label_tag, info)

    def remove_image(self, image_id: str) -> None:
        """Remove an image and its labels; 404 for an unknown id."""
        try:
            super().remove_image(check_image_id(image_id))
        except ImageNotFoundException as err:
            raise RequestError(f"unknown image {image_id!r}: no such image in the datastore.", 404) from err

    def remove_label(self, label_id: str, label_tag: str) -> None:
        """Remove one label; ids and tags checked."""
        super().remove_label(check_image_id(label_id, "label id"), check_label_tag(label_tag))

    def update_image_info(self, image_id: str, info: dict[str, Any]) -> None:
        """Update an image's info; 404 for an unknown id."""
        try:
            super().update_image_info(check_image_id(image_id), _info(info))
        except ImageNotFoundException as err:
            raise RequestError(f"unknown image {image_id!r}: no such image in the datastore.", 404) from err

    def update_label_info(self, label_id: str, label_tag: str, info: dict[str, Any]) -> None:
        """Update a label's info; 404 for an unknown label."""
        try:
            super().update_label_info(check_image_id(label_id, "label id"), check_label_tag(label_tag), _info(info))
        except LabelNotFoundException as err:
            raise RequestError(f"unknown label {label_id!r} with tag {label_tag!r}.", 404) from err

    def get_image_info(self, image_id: str) -> dict[str, Any]:
        """An image's info (``{}`` when unknown); the id is checked."""
        return super().get_image_info(check_image_id(image_id))

    def get_label_info(self, label_id: str, label_tag: str) -> dict[str, Any]:
        """A label's info (``{}`` when unknown); id and tag are checked."""
        return super().get_label_info(check_image_id(label_id, "label id"), check_label_tag(label_tag))

    # -- stored files that cannot be used ----------------------------------------------------------------------
    def image_problem(self, image_id: str) -> str | None:
        """Why the stored image ``image_id`` cannot be used (``None`` when it passes the file checks).

        The verdict is cached per file version (path, modification time, size); a rewritten file is checked again.
        """
        try:
            uri = self.resolve_image(image_id)
            stat = os.stat(uri)
        except (RequestError, OSError) as err:
            return str(err)
        key = (uri, stat.st_mtime_ns, stat.st_size)
        verdict = self._verdicts.get(key)
        if verdict is None:
            try:
                check_image_file(uri, name=f"image {image_id!r}", max_channels=self._max_channels)
                verdict = ""
            except BadInputError as err:
                verdict = str(err)
            self._verdicts.put(key, verdict)
        return verdict or None
