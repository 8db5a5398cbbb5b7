#!/usr/bin/env bash
# Start (or resume) background CPU training of both learned magnifiers.
# Each run uses one torch thread under `nice -n 10`, detached with setsid/nohup, so it survives
# the shell and leaves CPU to others. Rerunning resumes from runs/MODEL/ckpt.pt (or, without a
# checkpoint, from the shipped weights in napari_vmm/weights/).
#   bash scripts/train_learned.sh            # both models
#   bash scripts/train_learned.sh realtime   # one model
# Logs: runs/MODEL.out (stdout) and runs/MODEL/log.jsonl; PIDs: runs/MODEL.pid
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(oh2018 realtime)
for m in "${models[@]}"; do
    if [ -f "runs/$m.pid" ] && kill -0 "$(cat "runs/$m.pid")" 2>/dev/null; then
        echo "$m: already training (pid $(cat "runs/$m.pid"))"
        continue
    fi
    setsid nohup nice -n 10 .venv/bin/python -m napari_vmm.cli.train "$m" --run-dir "runs/$m" \
        >> "runs/$m.out" 2>&1 < /dev/null &
    echo $! > "runs/$m.pid"
    echo "$m: training in the background, pid $!, log runs/$m.out"
done
