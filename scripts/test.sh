#!/usr/bin/env bash
# Set everything up (system packages, .venv, the project) and run the whole test suite.
# Napari tests need a display: they run under Xvfb (offscreen Qt cannot add image layers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/npe2 validate napari-vmm --imports
exec xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
