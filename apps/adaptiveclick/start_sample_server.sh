#!/usr/bin/env bash
# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
# Start the AdaptiveClick MONAI Label server on 127.0.0.1 with the embedded sample volumes as the studies folder
# (issue 7, "Sample studies"), so that 3D Slicer / OHIF can connect at once.
#
# Usage: apps/adaptiveclick/start_sample_server.sh [extra start_server arguments, e.g. --conf checkpoint model.pt]
# Environment: PORT (8000), STUDIES (outputs/label_studies), PYTHON (.venv/bin/python),
#              WITH_LABELS=1 also copies the sample labels to labels/final (so "Train" works at once).
set -euo pipefail
APP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$APP_DIR/../.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
STUDIES="${STUDIES:-$REPO/outputs/label_studies}"
PORT="${PORT:-8000}"

"$PY" - "$STUDIES" "${WITH_LABELS:-0}" <<'PYEOF'
import shutil
import sys
from pathlib import Path

from monai_adaptiveclick.data.sample import sample_volume_pairs

studies, with_labels = Path(sys.argv[1]), sys.argv[2] == "1"
(studies / "labels" / "final").mkdir(parents=True, exist_ok=True)
for image, label in sample_volume_pairs():
    if not (studies / image.name).exists():
        shutil.copy2(image, studies / image.name)
    if with_labels and not (studies / "labels" / "final" / image.name).exists():
        shutil.copy2(label, studies / "labels" / "final" / image.name)  # a label is named like its image
    print(f"study: {studies / image.name}")
PYEOF

exec "$PY" -m monailabel.main start_server --app "$APP_DIR" --studies "$STUDIES" --host 127.0.0.1 --port "$PORT" "$@"
