#!/usr/bin/env bash
# Ship the best validated weights of the local training runs (runs/*/export) into
# napari_vmm/weights/, rewrite provenance.md, redraw the training curves and commit those files.
#   bash scripts/train_snapshot.sh                  # every learned model
#   bash scripts/train_snapshot.sh --no-commit fd4mm
# See scripts/train_snapshot.py for which runs are candidates.
set -euo pipefail
cd "$(dirname "$0")/.."
exec nice -n 5 .venv/bin/python scripts/train_snapshot.py "$@"
