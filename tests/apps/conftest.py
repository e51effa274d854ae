# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""One real MONAI Label server on 127.0.0.1, started once and shared by the app tests (``label_server.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the test modules import label_server by name

from label_server import running_server  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared :class:`label_server.LabelServer` (stopped at the end of the session)."""
    pytest.importorskip("monailabel")
    with running_server(tmp_path_factory.mktemp("label_server")) as running:
        yield running
