#!/usr/bin/env bash
# Commit the resumable state of local training runs (runs/ is git-ignored), so that a run
# outlives the machine: each session's checkout holds only what landed on main.
#   bash scripts/keep_run.sh runs/oh2018_g03 [runs/OTHER ...]
# Commits RUN/ckpt.pt (model, Adam state, step, curve), RUN/log.jsonl and RUN/export/; a later
# `vmm train ... --run-dir RUN` resumes from it. Keep only the runs worth continuing: every
# kept checkpoint stays in the history (a few MB each).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bash scripts/keep_run.sh RUN_DIR [RUN_DIR ...]" >&2; exit 2; }
files=()
for run in "$@"; do
  run=${run%/}
  [ -f "$run/ckpt.pt" ] || { echo "keep_run: $run/ckpt.pt not found" >&2; exit 1; }
  for f in "$run/ckpt.pt" "$run/log.jsonl" "$run"/export/*; do
    [ -f "$f" ] && files+=("$f")
  done
done
git add -f -- "${files[@]}"
steps=$(.venv/bin/python - "$@" <<'PY'
import sys, torch
print(", ".join(f"{r.rstrip('/')} at step {torch.load(r.rstrip('/') + '/ckpt.pt', map_location='cpu', weights_only=False)['step']}" for r in sys.argv[1:]))
PY
)
git commit -q -m "runs: keep $steps (resumable)" -- "${files[@]}"
echo "kept $steps"
