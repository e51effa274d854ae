# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""``python -m monai_adaptiveclick serve-sample``: the MONAI Label server on the embedded sample volumes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import UsageError

__all__ = ["DEMO_MODEL", "add_serve_sample_parser", "serve_sample_command"]


DEMO_MODEL = Path("outputs/demo/finetune/model.pt")
"""The model ``make demo`` fine-tunes; ``serve-sample`` serves it by default when it exists."""


def add_serve_sample_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``serve-sample`` subcommand (MONAI Label server on the embedded sample volumes)."""
    parser = subparsers.add_parser(
        "serve-sample",
        help="Start the MONAI Label server on 127.0.0.1 with the embedded sample volumes as studies.",
        description=(
            "Runs apps/adaptiveclick/start_sample_server.sh; connect 3D Slicer's MONAI Label module to it. The weights "
            f"served: --weights, else {DEMO_MODEL} when `make demo` has written it (while the app has no checkpoint "
            "of its own), else the starter model shipped inside the package."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1")
    parser.add_argument("--studies", type=Path, default=Path("outputs/label_studies"), help="studies folder")
    parser.add_argument("--with-labels", action="store_true", help="also copy the sample labels to labels/final")
    parser.add_argument("--weights", type=Path, default=None, help="model file to serve (default: the demo's model)")
    parser.set_defaults(func=_run_serve_sample)
    return parser


def serve_sample_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """``(argv, environment)`` that start the sample server for ``serve-sample``'s arguments."""
    import os

    script = Path(__file__).resolve().parents[2] / "apps" / "adaptiveclick" / "start_sample_server.sh"
    if not script.is_file():
        raise UsageError(f"the MONAI Label app is not next to this package ({script} missing); use a source checkout.")
    weights = args.weights if args.weights is not None else (DEMO_MODEL if DEMO_MODEL.is_file() else None)
    if weights is not None and not weights.is_file():
        raise UsageError(f"weights file {str(weights)!r} does not exist.")
    if weights is not None:
        from monai_adaptiveclick.networks import load_model

        try:  # refuse a file the server could not serve before starting it
            load_model(weights, map_location="cpu")
        except (ValueError, RuntimeError, OSError) as err:
            raise UsageError(f"cannot load weights {str(weights)!r}: {err}") from err
    argv = ["/bin/bash", str(script)]
    if weights is not None:
        argv += ["--conf", "bundle_checkpoint", str(weights.resolve())]
    env = {
        **os.environ,
        "PORT": str(args.port),
        "STUDIES": str(args.studies.resolve()),
        "WITH_LABELS": "1" if args.with_labels else "0",
        "PYTHON": sys.executable,
    }
    return argv, env


def _run_serve_sample(args: argparse.Namespace) -> int:
    """Handler of ``serve-sample``: replaces this process with the server start script."""
    import os

    argv, env = serve_sample_command(args)
    os.execve(argv[0], argv, env)
    return 0  # not reached: execve replaces the process
