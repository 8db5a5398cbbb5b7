#!/usr/bin/env bash
# Commit the validated weights of local training runs (runs/ is git-ignored), so that a run
# outlives the machine: each session's checkout holds only what landed on main.
#   bash scripts/keep_run.sh runs/fd4mm_c2 [runs/OTHER ...]
# Commits RUN/export/MODEL.{pt,json}: the weights with their provenance (command, seed, steps,
# data recipe, hardware, validation, sha256, checked on every load). The checkpoint with its
# Adam state (up to 18 MB) stays local. Go on from a kept run with the same command plus
#   --init RUN/export/MODEL.pt --run-dir NEW_RUN_DIR      (a fresh Adam state, lr warm-up)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bash scripts/keep_run.sh RUN_DIR [RUN_DIR ...]" >&2; exit 2; }
files=()
for run in "$@"; do
  run=${run%/}
  found=("$run"/export/*.pt)
  [ -f "${found[0]}" ] || { echo "keep_run: no validated export in $run/export" >&2; exit 1; }
  for pt in "${found[@]}"; do files+=("$pt" "${pt%.pt}.json"); done
done
kept=$(.venv/bin/python - "${files[@]}" <<'PY'
import sys
from pathlib import Path
from napari_vmm.core.learned.weights import load_weights
out = []
for pt in sys.argv[1::2]:
    _, prov = load_weights(Path(pt).stem, pt)  # checks the sha256 against the provenance
    out.append(f"{pt} ({prov['steps']} steps, val SSIM {prov['validation']['ssim']})")
print("; ".join(out))
PY
)
git add -f -- "${files[@]}"
git commit -q -m "runs: keep $kept" -- "${files[@]}"
echo "kept $kept"
