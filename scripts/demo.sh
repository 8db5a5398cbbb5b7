#!/usr/bin/env bash
# Set everything up and run the main job on the bundled sample: magnify the vibrating target
# and write the video plus a PNG with input|output frames and their space-time slices.
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo runs on the command line: no napari, no X server to install.
bash scripts/setup.sh --cli
mkdir -p out
.venv/bin/vmm magnify sample_data/vibrating_target.mp4 out/vibrating_target_magnified.mp4 \
    --method riesz --alpha 20 --band 1.5 2.5 --compare out/vibrating_target_compare.png -y
